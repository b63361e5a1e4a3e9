"""Pre-flight: everything that must hold before anything moves or fires.

The plan is intact (hash recomputed), every position is inside the controller's travel limits,
every energy is finite, positive and within the laser's limit, the stage answers and is ready
(initialised, homed, no fault), the laser answers and is set to the energy the design expects
(read with its output closed, before the stage is homed or anything armed), and the shots to fire
are known. Nothing here moves the stage (except homing with --home, after the laser's setting is
checked) or opens the laser output; arming (which reports an open interlock) comes next, still
before the first move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fabplan.errors import UserError, summarize_ids
from stage_drivers.protocols import (
    BurstTrigger,
    ClosedReadout,
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


def _energy_tolerance() -> float:
    """The run's one energy tolerance (fabplan.execute.context.ENERGY_REL_TOLERANCE, 5 %): a laser
    further off would be refused after arming, before the first shot."""
    from fabplan.execute.context import ENERGY_REL_TOLERANCE

    return ENERGY_REL_TOLERANCE


def check_laser_setting(plan, laser, todo: np.ndarray, report: PreflightReport, *,
                        attenuator: str | None = None) -> None:
    """The laser's energy against the design, read with its output closed: before the stage is homed
    or moved and before anything is armed (a Pharos reports 0 output energy while closed, but its
    amplifier's power and rate give the energy at 100 % attenuator; `ClosedReadout`).

    With the design's percent-attenuator calibration (energy_at_100, no offset) the laser's energy at
    100 % must agree with energy_at_100 within the run's energy tolerance (ENERGY_REL_TOLERANCE, 5 %;
    the executor compares again, within the same 5 %, once the output is enabled and before the first
    shot: the backstop for lasers that cannot tell their energy while closed). Otherwise (percentages
    derived from the laser's own energy, or a calibration with an offset the laser's linear readout
    does not model) the laser must reach the highest planned energy. A laser that cannot tell its
    energy while closed is said so here; the check after arming then is the only one."""
    if not len(todo):
        return
    if not isinstance(laser, ClosedReadout):
        if math.isfinite(float(laser.pulse_energy_uj())):  # NaN: a gate-only source, no energy to compare
            report.ok(f"{laser.url} does not report its energy with the output closed: compared after arming, "
                      "before the first shot")
        return
    r = laser.closed_readout()
    report.devices["laser_setting"] = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                       for k, v in r.items()}
    rate = plan.header.get("repetition_rate_hz")
    f_out = float(r.get("output_frequency_hz", math.nan))
    report.ok(f"laser set to attenuator {float(r.get('attenuator_percent', math.nan)):.4g} %, output "
              f"{f_out / 1e3:.4g} kHz" + (f" (design {float(rate) / 1e3:.4g} kHz)" if rate else "")
              + ", read with the output closed")
    e_full = float(r.get("energy_at_100_uj", math.nan))
    if not math.isfinite(e_full):
        report.ok(f"laser energy not known with the output closed ({r.get('energy_unknown_why') or 'not reported'}): "
                  "compared after arming, before the first shot")
        return
    att = (plan.header.get("model") or {}).get("attenuator") or {}
    e100, off = att.get("energy_at_100"), float(att.get("offset_percent") or 0.0)
    kind = attenuator or plan.header.get("attenuator")
    if kind == "percent" and isinstance(e100, (int, float)) and e100 > 0 and off == 0.0:
        tol = _energy_tolerance()
        if abs(e_full / e100 - 1.0) > tol:
            raise PreflightError(f"{laser.url}: the laser delivers {e_full:.4g} uJ at 100 % attenuator (read with the "
                                 f"output closed) but the design's attenuator calibration says energy_at_100 "
                                 f"{e100:.4g} uJ (more than {tol:.0%} apart): check the laser or recalibrate "
                                 "laser.attenuator (nothing moved, nothing armed)")
        report.ok(f"laser energy at 100 % {e_full:.4g} uJ agrees with the design's energy_at_100 {e100:.4g} uJ "
                  "(read with the output closed)")
        return
    e_max = float(np.max(plan.shots.pulse_energy_uj[todo]))
    if e_max > e_full * (1 + 1e-9):
        raise PreflightError(f"{laser.url}: the laser delivers at most {e_full:.4g} uJ (at 100 % attenuator, read "
                             f"with the output closed) but the plan needs up to {e_max:.4g} uJ: check the laser "
                             "(nothing moved, nothing armed)")
    report.ok(f"laser energy at 100 % {e_full:.4g} uJ covers the plan's highest {e_max:.4g} uJ "
              "(read with the output closed)")


def check_fly_rate(plan, todo: np.ndarray, mode: str, report: PreflightReport) -> None:
    """Fly mode fires one pulse per compare event: the laser must pulse at least as often as a row's
    triggers come (velocity / pitch). The planner keeps to the design's repetition_rate; a laser set
    slower (its pulse picker, read with the output closed) would place the late pulses downstream,
    so the run is refused here, naming both rates."""
    f_out = (report.devices.get("laser_setting") or {}).get("output_frequency_hz")
    if mode != "fly" or not plan.lines or not len(todo) or not (isinstance(f_out, (int, float)) and f_out > 0):
        return
    marks = np.zeros(len(plan.shots) + 1, bool)
    marks[np.asarray(todo, np.int64) + 1] = True
    chosen = np.cumsum(marks)  # chosen[k]: shots to fire among seqs 0 .. k-1
    need = [abs(float(ln["velocity_um_s"]) / float(ln["pitch_um"])) for ln in plan.lines
            if ln.get("first_seq") is not None and float(ln.get("pitch_um") or 0.0) != 0.0
            and chosen[int(ln["last_seq"]) + 1] > chosen[int(ln["first_seq"])]]
    if not need:
        return
    worst = max(need)
    if worst > f_out * (1 + 1e-6):
        raise PreflightError(f"fly mode needs a pulse every {1e6 / worst:.4g} us (rows at up to {worst / 1e3:.4g} kHz "
                             f"of triggers) but the laser pulses every {1e6 / f_out:.4g} us ({f_out / 1e3:.4g} kHz, "
                             "read with the output closed): set the laser to the design's repetition_rate, or "
                             "re-plan with the laser's rate, or use --mode step (nothing moved, nothing armed)")
    report.ok(f"fly rows need up to {worst / 1e3:.4g} kHz of pulses; the laser gives {f_out / 1e3:.4g} kHz")


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
              home: bool = False, mode: str = "step", attenuator: str | None = None) -> PreflightReport:
    """All checks, cheapest first; raises PreflightError naming what to fix. `attenuator`: the
    attenuator kind the executor will use (default: the plan header's)."""
    report = PreflightReport()
    check_plan(plan, report)
    check_trigger(laser, mode, report)
    reset_position_compare(stage, laser, report)  # first thing on the controller: no stray compare pulses
    check_energies(plan, todo, max_pulse_energy_uj, report)
    # the laser's configuration against the plan, before homing moves anything
    check_laser_setting(plan, laser, todo, report, attenuator=attenuator)
    check_fly_rate(plan, todo, mode, report)
    check_attenuator(plan, laser, todo, report)
    check_stage_ready(stage, report, home=home)
    check_travel(plan, todo, stage, report)
    apply_motion(plan, stage, report)
    check_laser(laser, report)
    return report
