"""One executor session: journal (new or resumed), pre-flight, arm, fire, and a safe end on every path.

    result = execute(plan, stage, laser, "run.jsonl")                   # a new run
    result = execute(plan, stage, laser, "run.jsonl", resume=True)      # continue an interrupted one

Whatever happens (device error, Ctrl+C, SIGTERM, a bug), the `finally` closes the laser gate,
stops the stage, writes the buffered confirmations and an `end` record, and closes the journal.
"""

from __future__ import annotations

import fnmatch
import getpass
import math
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fabplan import __version__
from fabplan.attenuator import percent_energy_uj
from fabplan.errors import UserError, summarize_ids
from fabplan.execute.context import ENERGY_REL_TOLERANCE, Context, Options, RunStopped, ShotFailed, Stats
from fabplan.execute.control import RunControl, RunHooks, RunState, StopNow
from fabplan.execute.journal import Journal, JournalBusy, JournalState, ShotRefused, boot_id, read_journal
from fabplan.execute.preflight import PreflightError, preflight
from fabplan.execute.progress import Progress
from fabplan.execute.records import (
    FIRED,
    FORMAT,
    FORMAT_VERSION,
    PENDING,
    UNCERTAIN,
    EndRecord,
    HeaderRecord,
    SessionRecord,
    SkipRecord,
    UncertainRecord,
)
from stage_drivers.protocols import DeviceError, InterlockCheck, InterlockOpen


@dataclass
class RunResult:
    status: str  # completed | paused | stopped | failed
    message: str
    journal_path: Path
    stats: Stats
    counts: dict[str, int] = field(default_factory=dict)
    uncertain_ids: list[str] = field(default_factory=list)
    skipped_uncertain_ids: list[str] = field(default_factory=list)
    estimate_s: float = math.nan  # this session's selection (fabplan.execute.selection_estimate)
    wall_s: float = math.nan
    plan_estimate_s: float = math.nan  # the whole plan's (the plan header's estimate)
    estimate_parts_s: dict[str, float] = field(default_factory=dict)  # estimate_s by part
    mode: str = "step"
    dry_run: dict[str, Any] | None = None  # a dry run: pulses with light, emulated duration, pulse log, ...

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def summary(self) -> dict[str, Any]:
        errs = np.asarray(self.stats.errors_um)
        return {
            "status": self.status, "message": self.message, "journal": str(self.journal_path), "mode": self.mode,
            "fired_this_session": self.stats.fired, "failed": self.stats.failed,
            "skipped_uncertain": len(self.skipped_uncertain_ids), "not_selected": self.stats.not_selected,
            "already_fired": self.stats.already_fired, "journal_counts": self.counts,
            "uncertain_ids": self.uncertain_ids[:1000],
            "placement_error_nm": ({"median": float(np.median(errs) * 1e3), "p99": float(np.percentile(errs, 99) * 1e3),
                                    "max": float(errs.max() * 1e3)} if len(errs) else None),
            "rows_out_of_tolerance": len(self.stats.flagged_rows),
            "out_of_tolerance": out_of_tolerance_summary(self.stats),
            "duration_s": self.wall_s, "estimate_s": self.estimate_s, "plan_estimate_s": self.plan_estimate_s,
            "estimate_parts_s": self.estimate_parts_s,
        }


def _oot_rows(stats: Stats, excused: bool) -> list[int]:
    return [r["line"] for r in stats.flagged_rows if r.get("n_out_of_tolerance") and r.get("excused") == excused]


def out_of_tolerance_summary(stats: Stats) -> dict[str, Any]:
    """Fired shots that landed beyond the position tolerance (fly read-back). `shots` > 0 means the
    run is not a clean success (the CLI exits 4); `warned` are the first row's shots fired before the
    trigger lead was measured and within 1.5 x tolerance (a warning only)."""
    ids, warned = stats.out_of_tolerance_ids, stats.warned_ids
    tol = stats.tolerance_um
    return {"shots": len(ids), "rows": len(_oot_rows(stats, False)), "lines": _oot_rows(stats, False)[:100],
            "ids": ids[:20], "tolerance_nm": tol * 1e3 if math.isfinite(tol) else None,
            "warned_shots": len(warned), "warned_lines": _oot_rows(stats, True), "warned_ids": warned[:20]}


def out_of_tolerance_note(stats: Stats) -> str:
    """'' or '; N shot(s) in R row(s) OUT OF TOLERANCE (100 nm): ids' (+ the excused first row, as a warning)."""
    s = out_of_tolerance_summary(stats)
    note = ""
    if s["shots"]:
        note += (f"; {s['shots']} shot(s) in {s['rows']} row(s) OUT OF the {s['tolerance_nm']:g} nm position "
                 f"tolerance: {summarize_ids(stats.out_of_tolerance_ids)}")
    if s["warned_shots"]:
        note += (f"; warning: {s['warned_shots']} shot(s) of the first row, fired before the trigger lead was "
                 f"measured, beyond the {s['tolerance_nm']:g} nm tolerance but within 1.5x: "
                 f"{summarize_ids(stats.warned_ids)}")
    return note


def selection_mask(ids: np.ndarray, only: str | None = None, skip_file: str | Path | None = None) -> np.ndarray:
    """Boolean mask of shots to consider: `only` = comma-separated glob patterns on disc ids
    (e.g. "A-r0*,B-*"), `skip_file` = disc ids to leave out, one per line (# comments)."""
    mask = np.ones(len(ids), bool)
    id_list = ids.tolist()
    if only:
        chosen: set[str] = set()
        for pat in (p.strip() for p in only.split(",")):
            if pat:
                chosen.update(fnmatch.filter(id_list, pat))
        if not chosen:
            raise UserError(f"--only {only!r} matches no disc of the plan")
        mask &= np.isin(ids, np.array(sorted(chosen)))
    if skip_file:
        try:
            text = Path(skip_file).read_text()
        except OSError as exc:
            raise UserError(f"--skip {skip_file}: {exc.strerror}") from None
        skip = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        skip = [s for s in skip if s]
        unknown = sorted(set(skip) - set(id_list))
        if unknown:
            raise UserError(f"--skip {skip_file}: unknown disc id(s) {summarize_ids(unknown)}")
        mask &= ~np.isin(ids, np.array(skip))
    return mask


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def attenuation_percent(plan, laser, attenuator_type: str | None, *, settle_s: float = 5.0) -> np.ndarray:
    """Laser attenuator setting (%) per shot.

    With a Pharos-style percent attenuator in the design, the plan's `attenuator` column already is
    that percentage (the design's calibration). Otherwise (no attenuator model, or an external
    waveplate this driver set cannot turn) the percentage is derived from the planned energy and
    the laser's own report of its energy at the current setting, assumed linear in percent.
    """
    s = plan.shots
    if attenuator_type == "percent" and np.isfinite(s.attenuator).all():
        _check_percent_calibration(plan, laser, settle_s)
        return s.attenuator.astype(float)
    now_pct = float(laser.attenuation())
    if now_pct < 1.0:
        laser.set_attenuation(100.0)
        now_pct = float(laser.attenuation())
    e_now = float(laser.pulse_energy_uj())
    if math.isnan(e_now):  # a gate-only source (xps://): no attenuator, no energy readout
        return np.full(len(s), np.nan)
    if not (e_now > 0 and now_pct > 0):
        raise PreflightError(f"{laser.url}: reports pulse energy {e_now} uJ at {now_pct} %: cannot set energies")
    e_full = e_now * 100.0 / now_pct
    pct = 100.0 * s.pulse_energy_uj / e_full
    if len(pct) and pct.max() > 100.0 + 1e-9:
        i = int(np.argmax(pct))
        raise PreflightError(f"{laser.url}: shot {s.disc_id[i]} needs {s.pulse_energy_uj[i]:.4g} uJ but the laser "
                             f"delivers at most {e_full:.4g} uJ")
    return np.round(pct, 6)


def _check_percent_calibration(plan, laser, settle_s: float = 5.0) -> None:
    """The plan turns energies into attenuator percent with the design's calibration (energy_at_100):
    a laser that reports another energy (another laser, an emulator started for another design, a
    stale calibration) would fire every shot at the wrong energy. Checked with the output enabled
    (the only time the laser reports its energy) and before the first shot, within the run's one
    energy tolerance (ENERGY_REL_TOLERANCE, as pre-flight and the per-shot check); a reading still
    settling after EnableOutput is polled for up to `settle_s`, as the per-shot check does."""
    att = (plan.header.get("model") or {}).get("attenuator") or {}
    e100, off = att.get("energy_at_100"), float(att.get("offset_percent") or 0.0)
    if not (isinstance(e100, (int, float)) and e100 > 0):
        return
    deadline = time.monotonic() + settle_s
    while True:
        pct = float(laser.attenuation())
        e_now = float(laser.pulse_energy_uj())
        if not (math.isfinite(e_now) and e_now > 0 and pct > off):
            return
        expected = float(percent_energy_uj(pct, e100, off))  # the design's forward model
        if abs(e_now / expected - 1.0) <= ENERGY_REL_TOLERANCE or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if abs(e_now / expected - 1.0) > ENERGY_REL_TOLERANCE:
        raise PreflightError(f"{laser.url}: reports {e_now:.4g} uJ at {pct:.4g} % but the design's attenuator "
                             f"calibration (energy_at_100 {e100:.4g} uJ) expects {expected:.4g} uJ (more than "
                             f"{ENERGY_REL_TOLERANCE:.0%} apart): check the laser "
                             "or recalibrate laser.attenuator before firing (nothing fired)")


_FIRING_COLUMNS = ("x_um", "y_um", "z_um", "disc_id", "pulse_energy_uj", "pulses")


def _arrays(plan, att_pct: np.ndarray) -> dict[str, list]:
    """The plan's ShotTable columns the firing loops read, as Python lists under the same names
    (scalar access in the per-shot loop is several times faster on lists), and the attenuator
    setting (%) of each shot as this session calibrated it (None: leave the attenuator)."""
    s = plan.shots
    att = [None if math.isnan(v) else v for v in np.asarray(att_pct, float).tolist()]
    return {**{name: getattr(s, name).tolist() for name in _FIRING_COLUMNS}, "attenuator": att}


@dataclass(frozen=True)
class RunSpec:
    """What one executor session does with a plan (the engine's half of a session's RunConfig).

    journal_path  the journal to create (or, with `resume`, to continue)
    mode          "step" | "fly"; None: the plan's
    selection     boolean mask over the plan's shots (None: all); `selection_text` is how it was
                  asked for ({"only": glob, "skip_ids": [...]}), recorded in the journal header
    header_extra  more header fields (design file and its sha256, plan_dir, dry-run details)
    sync          journal durability: "fsync" | "async" | "batch" | "none" (see journal.py)
    attenuator_override  the attenuator kind to use instead of the plan header's `attenuator`
                  (a dry run whose emulator cannot model the design's attenuator offset)
    """

    journal_path: Path
    resume: bool = False
    mode: str | None = None
    options: Options = field(default_factory=Options)
    selection: np.ndarray | None = None
    selection_text: dict[str, Any] | None = None
    header_extra: dict[str, Any] | None = None
    sync: str = "fsync"
    attenuator_override: str | None = None


def execute(plan, stage, laser, spec: RunSpec | str | Path, hooks: RunHooks | None = None, *,
            control: RunControl | None = None, readback=None) -> RunResult:
    """Run (or resume) `plan` on connected devices; returns how the session ended (never raises for
    device faults: they end the session "failed" with the gate closed; UserError for pre-flight).

    `spec` may be just the journal path (a new run with default options); `control` lets another
    thread pause or stop the run; `readback` (fly mode) is a `PulseReadback` giving where pulses
    landed (the emulator's pulse log in a dry run)."""
    if not isinstance(spec, RunSpec):
        spec = RunSpec(Path(spec))
    run = _Execution(plan, stage, laser, spec, hooks or RunHooks(), control or RunControl(), readback)
    if run.mode == "fly" and not plan.lines:
        raise UserError("--mode fly needs a plan made for fly mode (process.mode: fly): this plan has no rows")
    try:
        if spec.resume:  # lock first, then read: no other executor can append while we decide what to fire
            run.journal = _reopen(run.path, spec.sync)
        return run.execute()
    finally:
        if run.journal is not None and run.journal.fd >= 0:  # refused before the session started
            run.journal.close()


def _reopen(path: Path, sync: str) -> Journal:
    try:
        return Journal.append_to(path, sync=sync)
    except JournalBusy as exc:
        raise UserError(str(exc)) from None
    except FileNotFoundError:
        raise UserError(f"{path}: no such journal") from None


class _Execution:
    """One session of the executor: decide what to fire, pre-flight, journal, fire, end safely."""

    def __init__(self, plan, stage, laser, spec: RunSpec, hooks: RunHooks, control: RunControl, readback):
        self.plan, self.stage, self.laser, self.spec = plan, stage, laser, spec
        self.hooks, self.control, self.readback = hooks, control, readback
        self.path = Path(spec.journal_path)
        self.mode = spec.mode or plan.mode
        self.journal: Journal | None = None
        self.estimate: dict[str, Any] = {}  # what this session will fire, timed (after pre-flight)

    def _todo(self, stats: Stats) -> tuple[np.ndarray, np.ndarray, JournalState | None]:
        """(shots to fire, shots already fired, resume state) after the resume rules."""
        plan, spec = self.plan, self.spec
        n = len(plan.shots)
        mask = np.ones(n, bool) if spec.selection is None else np.asarray(spec.selection, bool)
        state: JournalState | None = None
        if spec.resume:
            state = read_journal(self.path)
            if state.plan_hash != plan.plan_hash:
                raise UserError(f"{self.path}: journal was written for plan {state.plan_hash[:12]}..., "
                                f"this plan is {plan.plan_hash[:12]}...: refusing to resume on a different plan")
            if state.n_shots != n:
                raise UserError(f"{self.path}: journal has {state.n_shots} shots, plan has {n}")
            already = state.state == FIRED
            uncertain = (state.state == UNCERTAIN) & mask
            todo = mask & (state.state == PENDING)
            if spec.options.refire_uncertain:
                todo |= uncertain
                skipped_unc = np.zeros(n, bool)
            else:
                skipped_unc = uncertain
        else:
            if self.path.exists():
                raise UserError(f"{self.path}: journal exists; use --resume {self.path} or another --journal")
            already = np.zeros(n, bool)
            skipped_unc = np.zeros(n, bool)
            todo = mask.copy()
        stats.not_selected = int((~mask).sum())
        stats.already_fired = int((already & mask).sum())
        stats.uncertain_skipped = np.flatnonzero(skipped_unc).tolist()
        stats.skipped = len(stats.uncertain_skipped)
        return todo, already, state

    def _open_journal(self, t0: float, devices: dict[str, Any], report, state, stats: Stats, n_todo: int) -> Journal:
        plan, spec = self.plan, self.spec
        journal = self.journal
        if journal is None:
            header = HeaderRecord(
                k="header", format=FORMAT, format_version=FORMAT_VERSION,
                run_id=f"{plan.plan_hash[:8]}-{int(t0)}", plan_hash=plan.plan_hash,
                design_hash=plan.design_hash, design_name=plan.header.get("design_name"),
                mode=self.mode, n_shots=len(plan.shots), devices=devices,
                software={"fabplan": __version__, "python": sys.version.split()[0], "platform": platform.platform()},
                estimate_s=plan.estimate.get("total_s"), position_tolerance_um=spec.options.tolerance_um,
                started=_iso(t0), t=t0, host=socket.gethostname(), pid=os.getpid(), user=_user(),
            )
            header.update(spec.header_extra or {})  # type: ignore[typeddict-item]
            if spec.selection_text:
                header["selection"] = spec.selection_text  # type: ignore[typeddict-item]
            journal = self.journal = Journal.create(self.path, header, sync=spec.sync)
        journal.write(SessionRecord(
            k="session", n=len(state.sessions) if state else 0, resume=spec.resume, mode=self.mode,
            boot_id=boot_id(), durability=spec.sync, refire_uncertain=spec.options.refire_uncertain,
            pid=os.getpid(), started=_iso(t0), devices=devices, preflight=report.checks, to_fire=n_todo,
            uncertain=stats.uncertain_skipped[:100000], selection=spec.selection_text or {},
            estimate=self.estimate), durable=True)
        if state is not None and len(state.horizon_uncertain):
            journal.write(UncertainRecord(
                k="uncertain", seqs=state.horizon_uncertain.tolist(),
                reason="OS crash or power loss inside a batch horizon: these shots may have fired"), durable=True)
        if stats.uncertain_skipped:
            journal.write(SkipRecord(
                k="skip", seqs=stats.uncertain_skipped,
                reason="uncertain (intent without confirmation; --refire-uncertain fires them)"), durable=True)
        return journal

    def execute(self) -> RunResult:
        plan, stage, laser, spec, hooks, control = self.plan, self.stage, self.laser, self.spec, self.hooks, self.control
        mode = self.mode
        stats = Stats()
        todo, already, state = self._todo(stats)
        todo_idx = np.flatnonzero(todo)
        report = preflight(plan, stage, laser, todo_idx, max_pulse_energy_uj=spec.options.max_pulse_energy_uj,
                           home=spec.options.home, mode=mode)
        self.estimate = _session_estimate(plan, todo, mode, report, spec)
        t0 = time.time()
        devices = {"stage": stage.url, "laser": laser.url, **{f"{k}_info": v for k, v in report.devices.items()}}
        journal = self._open_journal(t0, devices, report, state, stats, len(todo_idx))
        # the writer refuses any intent for a shot the journal holds as fired/uncertain or not selected
        journal.guard_shots(state.state if state is not None else None, todo, refire=todo)
        done0 = int(already.sum())
        # the bar's total is what this run can reach (done before + to fire now), not the plan's size:
        # under --only 8 of 63 shows 8/8 at the end, a resume after 40 of 63 shows 40/63 .. 63/63
        progress = Progress(done0 + len(todo_idx), mode, done=done0, enabled=hooks.progress_bar,
                            on_update=hooks.on_progress,
                            on_message=hooks.on_message)
        progress.message(self.estimate["text"])  # the start message: what fires and how long it should take
        ctx = Context(plan=plan, stage=stage, laser=laser, journal=journal, control=control, progress=progress,
                      options=spec.options, stats=stats, on_pause=hooks.on_pause, pulse_readback=self.readback,
                      arrays={}, done_total=done0, fly_lead_s=spec.options.fly_lead_s or 0.0)

        def on_state(old: RunState, new: RunState, reason: str) -> None:
            if new is RunState.PAUSING:
                progress.message(reason)  # e.g. Ctrl+C: finishing the current shot, then pausing
            if hooks.on_state is not None:
                hooks.on_state(old, new, reason)

        control.subscribe(on_state)
        status, message = "failed", ""
        bug: BaseException | None = None
        try:
            control.start()
            with progress:
                if control.state is not RunState.RUNNING:  # a Ctrl+C during pre-flight: pause here, before
                    ctx.checkpoint()  # arming (it waited for the checkpoint after the first shot)
                if not laser.armed:  # (a pause resumed at that checkpoint has armed it)
                    laser.arm()  # reports an open interlock before anything moves
                ctx.interlock(True, "arm")
                # the laser reports its energy only with the output enabled: calibrate the attenuator now
                att_pct = attenuation_percent(plan, laser, spec.attenuator_override or plan.header.get("attenuator"),
                                              settle_s=spec.options.attenuator_timeout_s)
                ctx.arrays = _arrays(plan, att_pct)
                if mode == "fly":
                    from fabplan.execute.fly import fire_fly

                    fire_fly(ctx, todo)
                else:
                    from fabplan.execute.step import fire_step

                    fire_step(ctx, todo_idx)
                if isinstance(laser, InterlockCheck):
                    laser.check_interlock()  # the last shots were lit only if the interlock is still closed
                    ctx.interlock(True, "check")
            left = journal.left_pending(todo)  # e.g. a fly row whose read-back saw no pulse (not_fired)
            if len(left):
                status = "failed"
                message = (f"{stats.fired} shot(s) fired, but {len(left)} selected shot(s) were not "
                           f"({summarize_ids(plan.shots.disc_id[left])}): not completed; resume the journal to fire them")
                control.finish(RunState.FAILED)
            else:
                status, message = "completed", f"{stats.fired} shot(s) fired" + out_of_tolerance_note(stats)
                control.finish(RunState.DONE)
        except RunStopped as exc:
            status = "paused" if exc.state is RunState.PAUSED else "stopped"
            message = str(exc)
            control.finish(RunState.STOPPED)
        except StopNow as exc:
            status, message = "stopped", f"stopped at once ({exc})"
            control.finish(RunState.STOPPED)
        except (ShotFailed, PreflightError, ShotRefused) as exc:
            status, message = "failed", str(exc)
            control.finish(RunState.FAILED)
        except Exception as exc:  # device faults and bugs alike end the session safely
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            control.finish(RunState.FAILED)
            if journal.failed is not None:
                pass  # nothing more can be written; shots whose confirmation was lost stay uncertain
            elif isinstance(exc, InterlockOpen):
                ctx.interlock(False, "laser", message=str(exc))
                _unconfirm_recent(ctx, journal, exc)
            elif ctx.suspect:
                _unconfirm(ctx, journal, ctx.suspect, f"{type(exc).__name__} ({exc}) struck after the last good "
                           "move: the shot fired since may have met a closed safety chain")
            if not isinstance(exc, (DeviceError, OSError)):
                bug = exc  # an internal error keeps its traceback, after the safe stop below
        finally:
            control.shielded = True  # a further Ctrl+C/SIGTERM must not cut the shutdown short
            _safe_stop(ctx)
            stats.t_end = time.time()
            try:
                if journal.failed is not None:  # disk full (or gone): the journal keeps its last good record
                    exc = journal.failed
                    status = "failed"
                    message = (f"cannot write the journal {self.path} ({exc.strerror or exc}): the gate is closed; "
                               f"free space on the disk holding {self.path.parent} and resume with --resume "
                               f"{self.path}")
                    raise _JournalUnwritable
                journal.flush(durable=True)
                journal.write(EndRecord(
                    k="end", status=status, message=message,
                    summary={"fired": stats.fired, "failed": stats.failed, "skipped_uncertain": stats.skipped,
                             "rows_out_of_tolerance": len(stats.flagged_rows),
                             "shots_out_of_tolerance": len(stats.out_of_tolerance_ids),
                             "duration_s": stats.t_end - t0}), durable=True)
            except (_JournalUnwritable, OSError) as exc:  # the end record could not be written either
                if not isinstance(exc, _JournalUnwritable):
                    status, message = "failed", f"{message}; the journal's end record could not be written ({exc})"
            finally:
                journal.close()
        if bug is not None:
            raise bug
        final = read_journal(self.path)
        ids = plan.shots.disc_id
        return RunResult(status=status, message=message, journal_path=self.path, stats=stats,
                         counts=final.counts(), uncertain_ids=ids[final.uncertain].tolist(),
                         skipped_uncertain_ids=ids[stats.uncertain_skipped].tolist(),
                         estimate_s=float(self.estimate["total_s"]), wall_s=stats.t_end - t0, mode=mode,
                         plan_estimate_s=float(plan.estimate.get("total_s", math.nan)),
                         estimate_parts_s={k: float(v) for k, v in self.estimate.items()
                                           if k.endswith("_s") and k != "plan_total_s"})


def _session_estimate(plan, todo: np.ndarray, mode: str, report, spec: RunSpec) -> dict[str, Any]:
    """This session's estimate from where pre-flight found the stage, with its start message."""
    from fabplan.execute.selection_estimate import describe, session_estimate

    pos = (report.devices.get("stage") or {}).get("position_um")
    est = session_estimate(plan, todo, mode=mode, start_um=pos or None, multi_pulse=spec.options.fly_fallback)
    est["text"] = describe(est, len(plan.shots))
    return est


class _JournalUnwritable(Exception):
    """Internal: skip the end record of a journal whose last write failed."""


def _unconfirm_recent(ctx: Context, journal: Journal, exc: BaseException) -> None:
    """The interlock was found open: shots since the previous good check may have been dark.

    With the laser's `last_interlock_ok` (monotonic time the last good check was sent) the cut is
    exact: shots fired after it are uncertain, those before were lit. Without it, a fixed window of
    the laser's check period + 0.2 s."""
    laser = ctx.laser
    since = laser.last_interlock_ok if isinstance(laser, InterlockCheck) else None
    if isinstance(since, (int, float)) and math.isfinite(since):
        seqs = ctx.shots_fired_since(float(since))
        what = "after the last good interlock check"
    else:
        window = (float(laser.interlock_check_s or 0.0) if isinstance(laser, InterlockCheck) else 0.0) + 0.2
        seqs = ctx.recent_shots(window)
        what = f"within {window:.2f} s of the failed interlock check (the laser does not report its last good check)"
    _unconfirm(ctx, journal, seqs, f"laser interlock found open ({exc}); these shots fired {what} "
               "and may have been dark")


def _unconfirm(ctx: Context, journal: Journal, seqs: list[int], reason: str) -> None:
    if seqs:
        journal.flush(durable=False)
        journal.write({"k": "unconfirmed", "seqs": list(seqs), "reason": reason}, durable=True)
        ctx.stats.fired -= len(seqs)


def _safe_stop(ctx: Context) -> None:
    """Gate closed first, then the stage stopped; each step tolerates a dead connection.

    A second Ctrl+C arriving here must not skip the rest, so StopNow is swallowed until done."""
    for step in (ctx.laser.disarm, _disarm_line(ctx), ctx.stage.stop):
        for _attempt in range(2):
            try:
                step()
                break
            except StopNow:
                continue
            except Exception:
                break


def _disarm_line(ctx: Context):
    def f() -> None:
        if ctx.plan.mode == "fly":
            ctx.laser.disarm_line()
    return f


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return ""
