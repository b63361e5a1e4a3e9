"""Pre-flight: everything that must hold before anything moves or fires.

The plan is intact (hash recomputed), every position is inside the controller's travel limits,
every energy is finite, positive and within the laser's limit, the stage answers and is ready
(initialised, homed, no fault), the laser answers, and the shots to fire are known. Nothing here
moves the stage or opens the laser output; arming (which reports an open interlock) comes next,
still before the first move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fabplan.errors import UserError, summarize_ids
from stage_drivers.protocols import (
    BurstTrigger,
    ExternallyTriggered,
    InterlockCheck,
    MotionDoneCriterion,
    MotionParams,
    MotionProfile,
    PositionCompare,
)


class PreflightError(UserError):
    """A pre-flight check failed: nothing moved, nothing fired."""


@dataclass
class PreflightReport:
    checks: list[str] = field(default_factory=list)
    devices: dict[str, Any] = field(default_factory=dict)

    def ok(self, text: str) -> None:
        self.checks.append(text)


def check_plan(plan, report: PreflightReport) -> None:
    """Recompute the plan hash from its content: a hand-edited or truncated plan never runs."""
    h = plan.content_hash()  # shots, fly lines, tolerance, settle, mode: everything the executor acts on
    if h != plan.plan_hash:
        raise PreflightError(f"plan content does not match its plan_hash ({plan.plan_hash[:12]}... recorded, "
                             f"{h[:12]}... computed): re-plan from the design")
    if len(plan.shots) != int(plan.header.get("n_shots", len(plan.shots))):
        raise PreflightError("plan n_shots does not match its shot table")
    report.ok(f"plan {plan.plan_hash[:12]} verified ({len(plan.shots)} shots)")


def check_energies(plan, todo: np.ndarray, max_pulse_energy_uj: float | None, report: PreflightReport) -> None:
    e = plan.shots.pulse_energy_uj[todo]
    n = plan.shots.pulses[todo]
    bad = ~np.isfinite(e) | (e <= 0) | (n < 1)
    if max_pulse_energy_uj is not None and np.isfinite(max_pulse_energy_uj):
        bad |= e > max_pulse_energy_uj * (1 + 1e-9)
    if bad.any():
        ids = plan.shots.disc_id[todo][bad]
        raise PreflightError(f"{bad.sum()} shot(s) with an energy or pulse count outside the limits "
                             f"(0 < E <= {max_pulse_energy_uj} uJ, pulses >= 1): {summarize_ids(ids)}")
    if len(e):
        report.ok(f"energies {e.min():.4g}..{e.max():.4g} uJ within limits")


def check_travel(plan, todo: np.ndarray, stage, report: PreflightReport) -> None:
    """Every target (and every fly-mode run-up) inside the controller's travel limits."""
    limits = stage.travel_limits()
    s = plan.shots
    coords = {"X": s.x_um[todo], "Y": s.y_um[todo], "Z": s.z_um[todo]}
    if plan.mode == "fly" and plan.lines:
        lines = [ln for ln in plan.lines if ln.get("first_seq") is not None]
        coords["X"] = np.concatenate([coords["X"], [ln["start_um"] for ln in lines], [ln["stop_um"] for ln in lines]])
    problems = []
    for axis, values in coords.items():
        lim = limits.get(axis)
        if lim is None or not len(values):
            continue
        out = (values < lim.min_um) | (values > lim.max_um)
        if out.any():
            problems.append(f"{axis} {values[out].min():.3f}..{values[out].max():.3f} um outside "
                            f"[{lim.min_um:.3f}, {lim.max_um:.3f}] ({out.sum()} target(s))")
    if problems:
        raise PreflightError("targets outside the stage travel: " + "; ".join(problems))
    report.ok("all targets inside travel " + ", ".join(
        f"{a}[{lim.min_um:.0f},{lim.max_um:.0f}]" for a, lim in limits.items()))


def check_stage_ready(stage, report: PreflightReport, *, home: bool = False) -> None:
    status = stage.status()
    if status.moving:  # a move left running by a session that died: stop it, never build on it
        stage.stop()
        import time

        deadline = time.monotonic() + 10.0
        while status.moving and time.monotonic() < deadline:
            time.sleep(0.05)
            status = stage.status()
        report.ok(f"stopped a motion left running by a previous session (now {status.code} {status.text})")
    if status.fault:
        raise PreflightError(f"{stage.url}: stage reports a fault ({status.code} {status.text}); "
                             "clear it at the controller before running")
    if not (status.initialized and status.homed):
        if not home:
            raise PreflightError(f"{stage.url}: stage not initialised/homed ({status.code} {status.text}); "
                                 "home it first (or pass --home)")
        stage.home()
        status = stage.status()
    if not status.ready:
        raise PreflightError(f"{stage.url}: stage not ready ({status.code} {status.text})")
    report.devices["stage"] = {"url": stage.url, "status": status.code, "status_text": status.text,
                               "position_um": list(status.position_um)}
    report.ok(f"stage ready ({status.text})")


def check_laser(laser, report: PreflightReport) -> None:
    if isinstance(laser, InterlockCheck):
        laser.check_interlock()  # raises InterlockOpen
        report.ok("laser interlock closed")
    energy = laser.pulse_energy_uj()
    report.devices["laser"] = {"url": laser.url, "pulse_energy_uj": energy,
                               "attenuation_percent": laser.attenuation()}
    report.ok(f"laser answers (pulse energy {energy:.4g} uJ)")


def check_attenuator(plan, laser, todo: np.ndarray, report: PreflightReport) -> None:
    """A plan that sets the laser's percent attenuator needs a laser that has one: found here, before
    arming, not at the first shot (a gate-only source, e.g. `--stage xps://...` without `--laser`)."""
    if plan.header.get("attenuator") != "percent" or not len(todo):
        return
    pct = plan.shots.attenuator[todo]
    need = np.isfinite(pct) & (np.abs(pct - 100.0) > 1e-6)
    if need.any() and np.isnan(laser.pulse_energy_uj()):  # the xps:// gate: no attenuator, no energy readout
        raise PreflightError(f"{laser.url}: the plan sets the laser's percent attenuator ({int(need.sum())} shot(s) "
                             "below 100 %) but this pulse source has none: give the laser with --laser "
                             "pharos://HOST:PORT")
    report.ok("laser attenuator present for the plan's percent settings")


def check_trigger(laser, mode: str, report: PreflightReport) -> None:
    """An externally triggered laser fires through a stage controller: it must have the BurstTrigger
    ability (and PositionCompare in fly mode). A source that triggers itself (the xps:// gate) needs
    neither here."""
    if not isinstance(laser, ExternallyTriggered):
        return
    trig = laser.trigger
    if not isinstance(trig, BurstTrigger):
        raise PreflightError(f"{laser.url}: no stage controller that can trigger the laser "
                             f"({getattr(trig, 'url', trig)!s} lacks the BurstTrigger ability: set_gate, "
                             "fire_pulses); use an XPS stage")
    if mode == "fly" and not isinstance(trig, PositionCompare):
        raise PreflightError(f"{trig.url}: lacks the PositionCompare ability (arm_compare): fly mode needs an "
                             "XPS; use --mode step")
    report.ok("laser triggered by the stage controller" + (" (position compare)" if mode == "fly" else ""))


def apply_motion(plan, stage, report: PreflightReport) -> None:
    """Give the controller the plan's velocity, acceleration and jerk for x and y, and its settle
    time as the motion-done criterion (a move returns once the stage has stayed within the position
    tolerance for the settle time).

    The time estimate assumes them; a controller left at other settings (a previous user's, or its
    power-up defaults) would make the run slower or harsher than planned. Values above the
    controller's own maxima are clamped to them, and the report says so. A stage without the
    MotionProfile ability keeps its own settings."""
    motion = plan.header.get("model", {}).get("motion")
    if not motion or not isinstance(stage, MotionProfile):
        return
    applied = []
    for axis in [a for a in stage.axes if a.upper() in ("X", "Y")]:
        v, a = float(motion["velocity_um_s"]), float(motion["acceleration_um_s2"])
        vmax, amax = stage.max_velocity_acceleration(axis)
        clamped = v > vmax or a > amax
        v, a = min(v, vmax), min(a, amax)
        jerk_time = a / float(motion["jerk_um_s3"])  # SGamma: jerk time = acceleration / jerk
        stage.set_motion_params(axis, MotionParams(v, a, jerk_time, jerk_time))
        if isinstance(stage, MotionDoneCriterion):  # the plan's settle time, as the motion-done criterion
            stage.set_motion_done(axis, float(plan.header.get("position_tolerance_um") or 0.1),
                                  float(plan.header.get("settle_time_s") or 0.0))
        applied.append(f"{axis} {v / 1e3:g} mm/s, {a / 1e3:g} mm/s^2" + (" (clamped to controller max)" if clamped else ""))
    if applied:
        report.ok("motion set from the plan: " + "; ".join(applied))


def reset_position_compare(stage, laser, report: PreflightReport) -> None:
    """Disable position compare on every positioner of the controllers that can trigger the laser.

    A run killed during a fly pass leaves the controller's compare armed; the driver of the next
    process does not know it, and the first move across that row would fire stray pulses as soon
    as the gate opens."""
    controllers = [laser.trigger] if isinstance(laser, ExternallyTriggered) else []
    controllers.append(stage)  # a gate-only source (xps://) rides on the stage's controller
    done: list = []
    for c in controllers:
        if isinstance(c, PositionCompare) and not any(c is d for d in done):
            c.disarm_compare(all_positioners=True)
            done.append(c)
            report.ok(f"position compare disabled on every positioner of {c.url}")


def preflight(plan, stage, laser, todo: np.ndarray, *, max_pulse_energy_uj: float | None = None,
              home: bool = False, mode: str = "step") -> PreflightReport:
    """All checks, cheapest first; raises PreflightError naming what to fix."""
    report = PreflightReport()
    check_plan(plan, report)
    check_trigger(laser, mode, report)
    reset_position_compare(stage, laser, report)  # first thing on the controller: no stray compare pulses
    check_energies(plan, todo, max_pulse_energy_uj, report)
    check_stage_ready(stage, report, home=home)
    check_travel(plan, todo, stage, report)
    apply_motion(plan, stage, report)
    check_laser(laser, report)
    check_attenuator(plan, laser, todo, report)
    return report
