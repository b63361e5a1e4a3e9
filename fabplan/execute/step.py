"""Step-and-shoot: move, wait for motion done, read the encoder, check the position, fire, record.

Per shot, against an XPS: 3 round trips, 1 journal write, and 1 fsync ("fsync"/"async" durability)
or 1/256 fsync ("batch" durability, see journal.py).
  1. GroupMoveAbsolute    blocks until the controller reports motion done (no polling loop needed)
  2. GroupPositionCurrentGet  the encoder, not the setpoint: the only proof the stage is there
  3. the fire call        n gate pulses; the driver refuses unless the last move ended in position
  fsync of the intent record: the promise "this shot may fire" must survive a power cut before it
  fires. With sync="async" it runs on a helper thread during round trips 1-2 and is joined before 3;
  the previous shot's fired record rides in the same write.
"""

from __future__ import annotations

import math
import time

import numpy as np

from fabplan.execute.context import Context, ShotFailed
from stage_drivers.protocols import EmergencyStop, InterlockOpen, NotInPosition


def _distance(pos, x: float, y: float, z: float) -> float:
    dz = (pos[2] - z) if len(pos) > 2 else 0.0
    return math.sqrt((pos[0] - x) ** 2 + (pos[1] - y) ** 2 + dz * dz)


def fire_step(ctx: Context, seqs: np.ndarray) -> None:
    """Fire `seqs` (plan order) one by one; stops at the first failure (journal consistent)."""
    a = ctx.arrays
    xs, ys, zs = a["x_um"], a["y_um"], a["z_um"]
    ids, energy, pulses = a["disc_id"], a["pulse_energy_uj"], a["pulses"]
    att = a["attenuator"]
    stage, laser, journal, progress, stats = ctx.stage, ctx.laser, ctx.journal, ctx.progress, ctx.stats
    tol = ctx.options.tolerance_um
    early_intent = journal.sync == "async"  # overlap the fsync with the move
    batch = max(1, ctx.options.batch_size)
    seq_list = seqs.tolist()
    last_att = None
    for i, seq in enumerate(seq_list):
        if i % batch == 0:
            journal.horizon(seq_list[i:i + batch])  # "batch" durability: one fsync per batch
        x, y, z = xs[seq], ys[seq], zs[seq]
        disc_id = ids[seq]
        if att[seq] != last_att:
            ctx.set_energy(seq)
            last_att = att[seq]
        if early_intent:
            journal.intent(seq, disc_id, x, y, z, energy[seq], pulses[seq])
        try:
            stage.move_to(x, y, z)
            pos = stage.position()
            err = _distance(pos, x, y, z)
            retries = ctx.options.position_retries
            while err > tol and retries > 0:
                retries -= 1
                time.sleep(ctx.options.settle_retry_s)
                pos = stage.position()
                err = _distance(pos, x, y, z)
            if err > tol:
                raise ShotFailed(
                    f"{disc_id}: stage at ({pos[0]:.4f}, {pos[1]:.4f}, {pos[2]:.4f}) um is {err * 1e3:.0f} nm "
                    f"from the target ({x:.4f}, {y:.4f}, {z:.4f}) after {ctx.options.position_retries} "
                    f"re-reads; tolerance {tol * 1e3:.0f} nm. Not fired. Check the stage tuning / "
                    "PositionerMotionDoneSet window, then resume.", disc_id)
        except BaseException as exc:
            # nothing fired: withdraw the intent so the shot stays pending (not uncertain)
            if early_intent:
                journal.not_fired(seq, f"{type(exc).__name__}: {exc}")
            stats.failed += 1
            if isinstance(exc, EmergencyStop) and ctx.fired_seqs:
                # the emergency stop struck after the previous move succeeded: the shot fired since
                # may have met a closed safety chain (gate forced low) -> uncertain, not fired
                ctx.suspect.extend(ctx.fired_seqs[-1:])
            raise
        if not early_intent:
            journal.intent(seq, disc_id, x, y, z, energy[seq], pulses[seq])
        journal.wait_durable()
        try:
            laser.fire(pulses[seq])  # any other exception here leaves the shot uncertain, as it must
        except (NotInPosition, InterlockOpen) as exc:
            # refused before a trigger went out (or no light could leave): positively not fired
            journal.not_fired(seq, f"{type(exc).__name__}: {exc}")
            stats.failed += 1
            raise
        journal.fired(seq, pos[0], pos[1], pos[2], ctx.pulse_energy_uj)
        ctx.fired_seqs.append(seq)
        ctx.fired_at.append(time.monotonic())
        stats.fired += 1
        stats.errors_um.append(err)
        ctx.done_total += 1
        progress.update(ctx.done_total, disc_id)
        ctx.checkpoint()
