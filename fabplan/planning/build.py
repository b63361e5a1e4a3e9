"""The planning pipeline: design -> shots -> verify -> order -> fly lines -> estimate -> Plan.

When the attenuator costs time to move and the design uses several settings, two orders are
timed (grouped by setting, ascending; and not grouped) and the faster one is kept.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from fabplan.disctable import DiscTable
from fabplan.planning.estimate import estimate_fly, estimate_step
from fabplan.planning.flylines import build_lines, line_endpoints, split_lines
from fabplan.planning.order import order_shots
from fabplan.planning.plan import Plan, ShotTable, design_hash
from fabplan.planning.shots import make_raw_shots
from fabplan.planning.tour import lower_bound, path_length
from fabplan.planning.verify import PlanViolations, Violation, verify_shots

log = logging.getLogger("fabplan.planning")

PLANNER_VERSION = 1  # bump when the same design would plan differently


def _is_lattice(design: Any) -> list[bool]:
    return [getattr(a, "lattice", None) is not None and not hasattr(a, "discs") for a in design.arrays]


def _beam_model_params(beam: Any) -> dict[str, Any]:
    p = dict(beam.params())
    if "source" in p:  # a measured profile: its numbers are hashed, not where the file was
        p["source"] = Path(str(p["source"])).name
    return p


def _schedule(
    design: Any, raw: Any, discs: DiscTable, group: np.ndarray | None, cache: dict | None = None
) -> dict[str, Any]:
    proc = design.process
    motion = proc.motion
    method = proc.ordering
    key = group is not None
    if cache is not None and key in cache:
        order, line_key = cache[key]  # the order does not depend on the mode, only the timing
    else:
        order, line_key = order_shots(
            raw.x_um, raw.y_um, discs.array_index, discs.row, discs.col, _is_lattice(design), method, group
        )
        if cache is not None:
            cache[key] = (order, line_key)
    att = design.laser.attenuator
    att_move = float(att.move_time) if att is not None else 0.0
    x, y, z = raw.x_um[order], raw.y_um[order], raw.z_um[order]
    kin = {"v": float(motion.velocity), "a": float(motion.acceleration), "j": float(motion.jerk)}
    if proc.mode == "fly":
        line_no = split_lines(
            x, y, z, line_key, raw.attenuator[order], raw.pulses[order], float(proc.position_tolerance)
        )
        lines = build_lines(
            x,
            y,
            z,
            line_no,
            raw.pulses[order],
            v_max=kin["v"],
            a=kin["a"],
            j=kin["j"],
            tol_um=float(proc.position_tolerance),
            jitter_s=float(proc.fly_trigger_jitter),
            rep_rate_hz=float(design.laser.repetition_rate),
            settle_s=float(proc.settle_time),
        )
        first = np.array([ln["first_seq"] for ln in lines], np.int64)
        est = estimate_fly(
            lines,
            raw.attenuator[order][first],
            settle_s=float(proc.settle_time),
            attenuator_move_s=att_move,
            **kin,
        )
    else:
        line_no = np.full(len(order), -1, np.int64)
        lines = []
        est = estimate_step(
            x,
            y,
            z,
            raw.pulses[order],
            raw.attenuator[order],
            settle_s=float(proc.settle_time),
            rep_rate_hz=float(design.laser.repetition_rate),
            attenuator_move_s=att_move,
            **kin,
        )
    return {"order": order, "line": line_no, "lines": lines, "estimate": est, "grouped": group is not None}


def _best_schedule(design: Any, raw: Any, discs: DiscTable, cache: dict | None = None) -> dict[str, Any]:
    """Ungrouped, and grouped by attenuator setting when moving it costs time: the faster one."""
    att = design.laser.attenuator
    n_settings = len(np.unique(raw.attenuator[np.isfinite(raw.attenuator)]))
    candidates = [_schedule(design, raw, discs, None, cache)]
    if (
        att is not None
        and float(att.move_time) > 0
        and n_settings > 1
        and design.process.ordering != "as-listed"
    ):
        candidates.append(_schedule(design, raw, discs, raw.attenuator, cache))
    return min(candidates, key=lambda c: c["estimate"]["total_s"])


def _fly_violations(design: Any, lines: list[dict], ids_in_order: np.ndarray) -> list[Violation]:
    if not lines:
        return []
    sx, sy, sz, ex, ey, ez = line_endpoints(lines)
    trav = design.process.travel
    bad = np.zeros(len(lines), bool)
    for (lo, hi), vals in ((trav.x, (sx, ex)), (trav.y, (sy, ey)), (trav.z, (sz, ez))):
        for v in vals:
            bad |= (v < lo) | (v > hi)
    if not bad.any():
        return []
    first = np.array([ln["first_seq"] for ln in lines])[bad]
    from fabplan.errors import summarize_ids

    return [
        Violation(
            "runup_outside_travel",
            f"{int(bad.sum())} fly line(s) need run-up or run-out beyond the stage travel; first discs: "
            f"{summarize_ids(ids_in_order[first])}",
            first,
            [str(s) for s in ids_in_order[first][:20]],
        )
    ]


def build_plan(design: Any, discs: DiscTable | None = None, beam: Any = None) -> Plan:
    """Verify, order and time every shot of `design`; raises PlanViolations (exit 2) on violations."""
    from fabplan import __version__
    from fabplan.beam import make_beam

    if discs is None:
        from fabplan.design import expand

        discs = expand(design)
    if beam is None:
        base = design.path.parent if getattr(design, "path", None) else None
        beam = make_beam(design.beam, design.laser, base_dir=base)
    file = str(design.path) if getattr(design, "path", None) else None
    raw = make_raw_shots(design, discs, beam)
    ids = discs.ids
    violations = verify_shots(design, raw, ids, beam)
    if violations:
        raise PlanViolations(violations, file)

    att = design.laser.attenuator
    orders: dict = {}
    best = _best_schedule(design, raw, discs, orders)
    order = best["order"]
    lines = best["lines"]
    warnings = []
    from fabplan.design.transforms import sample_to_stage

    residual = float(getattr(sample_to_stage(design), "residual_um", 0.0))
    if residual > float(design.process.position_tolerance):
        warnings.append(
            f"alignment: the fiducial fit leaves {residual:.3g} um RMS residual, more than the position "
            f"tolerance {design.process.position_tolerance:g} um (check the measured fiducial positions)"
        )
    if design.process.mode == "fly" and lines and len(lines) * 2 > len(order) and len(order) > 1:
        as_step = design.model_copy(update={"process": design.process.model_copy(update={"mode": "step"})})
        step = _best_schedule(as_step, raw, discs, orders)
        if step["estimate"]["total_s"] < best["estimate"]["total_s"]:
            warnings.append(
                f"fly mode: {len(lines)} lines for {len(order)} shots (rows split where spacing, pulses or the "
                f"attenuator setting change); step mode would take {step['estimate']['total_s']:.1f} s instead of "
                f"{best['estimate']['total_s']:.1f} s"
            )
    fly_problems = _fly_violations(design, lines, ids[order])
    if fly_problems:
        raise PlanViolations(fly_problems, file)

    shots = ShotTable.from_columns(
        disc_id=ids[order],
        x_um=raw.x_um[order],
        y_um=raw.y_um[order],
        z_um=raw.z_um[order],
        sample_x_um=raw.sample_x_um[order],
        sample_y_um=raw.sample_y_um[order],
        fluence_mj_cm2=raw.fluence_mj_cm2[order],
        pulse_energy_uj=raw.pulse_energy_uj[order],
        pulses=raw.pulses[order],
        attenuator=raw.attenuator[order],
        diameter_um=raw.diameter_um[order],
        trench_outer_um=raw.trench_outer_um[order],
        line=best["line"],
    )
    length = path_length(shots.x_um, shots.y_um)
    bound, bound_how = lower_bound(shots.x_um, shots.y_um)
    proc = design.process
    tx = [shots.x_um, shots.y_um, shots.z_um]
    if lines:
        sx, sy, sz, ex, ey, ez = line_endpoints(lines)
        tx = [np.r_[tx[0], sx, ex], np.r_[tx[1], sy, ey], np.r_[tx[2], sz, ez]]
    travel = {
        k: [float(v.min()), float(v.max())] if len(v) else [0.0, 0.0] for k, v in zip("xyz", tx, strict=True)
    }
    design_text = getattr(design, "source_text", "") or ""
    header = {
        "design_hash": design_hash(design_text),
        "design_name": design.name,
        "mode": proc.mode,
        "repetition_rate_hz": float(design.laser.repetition_rate),
        "position_tolerance_um": float(proc.position_tolerance),
        "settle_time_s": float(proc.settle_time),
        "estimate": best["estimate"],
        "path_length_um": length,
        "path_lower_bound_um": bound,
        "lower_bound_method": bound_how,
        "path_ratio": (length / bound) if bound > 0 else None,
        "travel": travel,
        "fabplan_version": __version__,
        "ordering": proc.ordering,
        "attenuator_grouping": bool(best["grouped"]),
        "n_lines": len(lines),
        "n_discs": len(discs),
        "warnings": warnings,
        "attenuator": None if att is None else att.type,
        # What the fluence column means (unhashed: model.beam carries a non-default definition).
        "fluence_definition": beam.fluence_definition_info(),
        "model": {
            "planner_version": PLANNER_VERSION,
            "beam": _beam_model_params(beam),
            # The attenuator calibration turns energies into settings: part of the model, and what a
            # dry run of a saved plan needs to emulate the same attenuator.
            "attenuator": None if att is None else att.model_dump(),
            "motion": {
                "velocity_um_s": float(proc.motion.velocity),
                "acceleration_um_s2": float(proc.motion.acceleration),
                "jerk_um_s3": float(proc.motion.jerk),
            },
        },
    }
    plan = Plan.assemble(header, shots, lines)
    log.info("planned %s: %d shots (%s mode), estimate %.1f s, plan %s", header.get("design_name"), len(shots),
             header.get("mode"), float((header.get("estimate") or {}).get("total_s") or float("nan")),
             plan.plan_hash[:12])
    return plan
