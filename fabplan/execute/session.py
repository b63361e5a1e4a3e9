"""A fabrication run as one object: the use case below the CLI, the demo, a notebook and the monitor.

    from fabplan.execute.session import RunConfig, RunHooks, RunSession

    session = RunSession.start(RunConfig(target="designs/x.yaml", stage="xps://10.0.0.2:5001"))
    session = RunSession.resume("journals/x.jsonl")              # the devices and plan it recorded
    session = RunSession.dry_run(RunConfig(target="designs/x.yaml"))  # emulators started here
    session = RunSession.dry_resume("journals/x-dry.jsonl")       # a dry run carried on, fresh emulators
    result = session.run(RunHooks(on_progress=lambda done, total, disc: ...))

A `RunConfig` (frozen) is everything the operator chose; a constructor turns it into a session:
the plan (a design YAML is planned, a plan directory loaded; on resume the plan saved beside the
journal), the journal path, the device URLs and what the journal header records. Nothing connects
or moves until `run()`, which connects the devices (an unreachable one is a UserError: nothing
moved), keeps the plan beside the journal (JOURNAL.plan/, removed again if the run is refused
before its journal exists), installs the Ctrl+C/SIGTERM handlers (main thread only), runs the
executor (`fabplan.execute.runner.execute`) and returns its `RunResult`, with `dry_run` figures for
a dry run.

Pausing from elsewhere: `session.request_pause()` (any thread) takes the path of a first Ctrl+C:
the current shot finishes, the gate closes, the journal records the pause; then `hooks.on_pause`
decides (True resumes, False or no hook ends the session "paused", resumable from the journal).
`session.request_stop()` stops at the next safe point. Another *process* (the browser monitor)
creates the file `session.pause_file` (JOURNAL + ".pause") or `session.stop_file` (".stop"); the
session polls for them every `REQUEST_POLL_S` while it runs and removes a file it acted on. A
pause file present when a session starts is removed first (it belonged to an earlier session).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fabplan.errors import UserError
from fabplan.execute.context import Options
from fabplan.execute.control import RunControl, RunHooks, SignalHandlers
from fabplan.execute.runner import RunResult, RunSpec, execute, selection_mask

__all__ = ["RunConfig", "RunHooks", "RunResult", "RunSession", "DevicesFailed", "OperatorStopped", "load_target"]

REQUEST_POLL_S = 0.2


@dataclass(frozen=True)
class RunConfig:
    """What the operator chose for a run (the CLI's options; every field optional).

    target       design YAML or plan directory (on resume: default the plan saved with the journal)
    stage, laser device URLs (laser default: the stage's gate); on resume default the journal's
    journal      journal file (default journals/NAME-TIME.jsonl; journals/NAME-TIME-dry.jsonl for a dry run)
    mode         "step" | "fly": override the design's process.mode
    only, skip   disc-id globs to fire / a file of ids not to fire (recorded; reused on resume)
    durability   journal sync "fsync" | "async" | "batch" (default fsync for run, batch for dry run)
    speedup, pulse_log, faults, lab_process   dry run only: the emulated lab
    """

    target: str | None = None
    stage: str | None = None
    laser: str | None = None
    journal: str | None = None
    mode: str | None = None
    only: str | None = None
    skip: str | None = None
    refire_uncertain: bool = False
    tolerance_um: float | None = None
    multi_pulse: str = "auto"
    durability: str | None = None
    fly_lead_us: float | None = None
    batch: int = 256
    home: bool = False
    speedup: str = "inf"
    pulse_log: str | None = None
    faults: tuple[str, ...] = ()
    lab_process: bool = False

    def check(self) -> None:
        """Refuse bad options before anything connects or moves."""
        if self.tolerance_um is not None and not self.tolerance_um > 0:
            raise UserError(f"--tolerance-um must be positive, got {self.tolerance_um:g}")


class OperatorStopped(Exception):  # noqa: N818 - an outcome, like RunResult
    """SIGTERM or a second Ctrl+C before the session's firing loop began: nothing fired (exit 3, like a
    stop during the run)."""


class DevicesFailed(Exception):  # noqa: N818 - an outcome, like RunResult
    """A device failed before the first shot (connect-time fault, a pre-flight query): nothing moved,
    nothing fired. The message is the device's error with what it means for the run."""


def file_sha256(path: str | Path | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _journal_design_file(journal, h: dict[str, Any]) -> str | None:
    """The journal header's design_file, only if it is byte for byte the file the run started from: a
    journal is a text file anyone can edit, and fabplan must not be pointed at arbitrary files by it."""
    dfile = h.get("design_file")
    if not dfile:
        return None
    from fabplan.design.yamlsource import MAX_FILE_BYTES
    from fabplan.textfiles import read_bytes_limited

    try:
        data = read_bytes_limited(str(dfile), MAX_FILE_BYTES)
    except (OSError, TypeError, ValueError):
        data = None
    want = h.get("design_file_sha256")
    if data is None or not isinstance(want, str) or hashlib.sha256(data).hexdigest() != want:
        raise UserError(f"{journal}: the design file the journal names ({str(dfile)[:200]}) is missing or not the "
                        "file the run started from (sha256 differs), and the saved plan is gone: give the "
                        "design or plan directory as TARGET")
    return str(dfile)


def load_target(target: str | Path, mode: str | None) -> tuple[Any, Any, dict[str, Any]]:
    """(plan, design or None, journal header extras) for a design YAML or a plan directory."""
    path = Path(target)
    if path.is_dir():
        from fabplan.planning.plan import Plan

        plan = Plan.load(path)
        if mode and mode != plan.mode and mode == "fly":
            raise UserError(f"{path}: plan was made for {plan.mode} mode; re-plan the design with process.mode: fly")
        return plan, None, {"plan_dir": str(path.resolve())}
    if not path.is_file():
        raise UserError(f"{target}: no such design file or plan directory")
    from fabplan.design import load_design
    from fabplan.planning import build_plan

    design = load_design(path)
    if mode and mode != design.process.mode:
        design = design.model_copy(update={"process": design.process.model_copy(update={"mode": mode})})
    plan = build_plan(design)
    extra = {"design_file": str(path.resolve()), "design_file_sha256": file_sha256(path), "plan_mode": plan.mode}
    return plan, design, extra


def _default_journal(plan, dry: bool) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = str(plan.header.get("design_name") or "run").replace("/", "_")
    # A dry run's journal goes where --help says, like a run's: it is what `dry-run --resume` and
    # `lab import-journal` read, so it must outlive the command (a temp folder did not say so).
    return Path("journals") / f"{name}-{stamp}{'-dry' if dry else ''}.jsonl"


@dataclass
class _Lab:
    """Dry run: the emulated lab's settings (started by `run`)."""

    pulse_log: Path
    faults: dict[str, str]
    max_pulse_energy_uj: float
    attenuator_override: str | None
    rep_rate_hz: float = 0.0  # the design's repetition_rate: the emulated pulse picker gives it (0: amplifier's)


@dataclass
class RunSession:
    """One run (or resume, or dry run) of a plan; make it with `start`, `resume` or `dry_run`."""

    config: RunConfig
    plan: Any
    design: Any
    journal_path: Path
    stage_url: str | None
    laser_url: str | None
    header_extra: dict[str, Any] = field(default_factory=dict)
    resuming: bool = False
    selection_saved: dict[str, Any] | None = None  # the journal's recorded selection (resume)
    hint: str = ""  # appended to device errors (a dry-run journal resumed without devices)
    lab: _Lab | None = None
    warnings: list[str] = field(default_factory=list)
    control: RunControl = field(default_factory=RunControl)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def start(cls, config: RunConfig) -> RunSession:
        """A new run of `config.target` on the devices `config.stage` / `config.laser`."""
        config.check()
        if not config.target:
            raise UserError("give a design file or plan directory (or --resume JOURNAL)")
        if not config.stage:
            raise UserError("--stage URL is required (e.g. xps://192.168.0.254:5001?group=XYZ)")
        plan, design, extra = load_target(config.target, config.mode)
        journal = Path(config.journal) if config.journal else _default_journal(plan, dry=False)
        stage_url = _sim_takes_design_laser(config.stage, plan, design)
        laser_url = _sim_takes_design_laser(config.laser or config.stage, plan, design)
        from fabplan.execute.sim_resume import given_urls

        extra.update({"device_urls": u} if (u := given_urls(stage_url, laser_url)) else {})  # sim://: for resume
        return cls(config, plan, design, journal, stage_url, laser_url, extra)

    @classmethod
    def resume(cls, journal: str | Path, config: RunConfig | None = None) -> RunSession:
        """Continue the run recorded in `journal`: its saved plan (or `config.target`), its devices
        (or `config.stage`/`laser`), its mode and selection unless `config` gives others."""
        from fabplan.execute.journal import read_journal

        config = config or RunConfig()
        config.check()
        try:
            h = read_journal(journal).header
        except ValueError as exc:  # not a journal, or a newer format
            raise UserError(str(exc)) from None
        except (KeyError, IndexError, TypeError) as exc:
            raise UserError(f"{journal}: not a readable fabplan journal ({type(exc).__name__}: {exc})") from None
        saved = h.get("plan_dir")
        warnings = []
        if not config.target and saved and Path(saved).is_dir():
            target = saved  # the exact plan the run started with, whatever the planner version now
            dfile = h.get("design_file")
            if dfile and h.get("design_file_sha256") and file_sha256(dfile) != h["design_file_sha256"]:
                warnings.append(f"{dfile} changed since this run started; resuming the saved plan {saved}")
        else:
            target = config.target or _journal_design_file(journal, h) or saved
        if not target:
            raise UserError(f"{journal}: journal names no design file or plan directory; give it as TARGET")
        mode = config.mode or h.get("plan_mode") or h.get("mode")
        plan, design, extra = load_target(target, h.get("plan_mode") or mode)
        devices = h.get("devices") or {}
        from fabplan.execute.sim_resume import resume_urls

        sim = resume_urls(h)  # a sim:// run: equivalent emulators, not the ports of its gone ones
        stage_url = config.stage or (sim[0] if sim else devices.get("stage"))
        if not stage_url:
            raise UserError("--stage URL is required")
        hint = (" (this journal is from a dry run whose emulators are gone: carry it on with "
                f"`fabplan dry-run --resume {journal}`, or give --stage/--laser)") if h.get("dry_run") else ""
        laser = (None if config.stage else sim[1]) if sim else devices.get("laser")  # --stage alone: its laser
        laser_url = _sim_takes_design_laser(config.laser or laser or stage_url, plan, design)
        stage_url = _sim_takes_design_laser(stage_url, plan, design)
        # fresh emulators start unreferenced (a real stage after power-up): home them, as dry_resume does
        config = replace(config, home=True) if sim and not config.stage else config
        return cls(replace(config, mode=config.mode or h.get("mode")), plan, design, Path(journal), stage_url,
                   laser_url, extra, resuming=True,
                   selection_saved=h.get("selection"), hint=hint, warnings=warnings)

    @classmethod
    def dry_run(cls, config: RunConfig) -> RunSession:
        """`config.target` against emulators started by `run()` (XPS + Pharos over loopback, through
        the real drivers); the emulator's pulse log is the ground truth read back after each fly row."""
        config.check()
        plan, design, extra = load_target(config.target or "", config.mode)
        journal = Path(config.journal) if config.journal else _default_journal(plan, dry=True)
        pulse_log = Path(config.pulse_log) if config.pulse_log else journal.with_suffix(".pulses.csv")
        if pulse_log.exists():
            raise UserError(f"{pulse_log}: pulse log exists; choose another --pulse-log")
        faults = parse_faults(config.faults)
        energy, override = _emulated_attenuator(plan, design)
        extra = {**extra, "dry_run": True, "speedup": config.speedup, "faults": faults, "pulse_log": str(pulse_log)}
        config = replace(config, home=True)  # the emulated stage starts unreferenced, like a real one after power-up
        return cls(config, plan, design, journal, None, None, extra,
                   lab=_Lab(pulse_log, faults, energy, override, _design_rate_hz(plan, design)))

    @classmethod
    def dry_resume(cls, journal: str | Path, config: RunConfig | None = None) -> RunSession:
        """Carry on a dry run from its journal on fresh emulators (the first session's went with it):
        the saved plan, mode and selection as `resume` takes them, the emulated stage homed again, and
        this session's pulses in their own log beside the first (JOURNAL.pulses-2.csv, -3, ...: the new
        emulators' clock starts at zero again)."""
        from fabplan.execute.journal import read_journal

        config = config or RunConfig()
        try:
            h = read_journal(journal).header
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise UserError(f"{journal}: not a readable fabplan journal ({exc})") from None
        if not h.get("dry_run"):
            raise UserError(f"{journal}: not a dry-run journal; resume a run on devices with `fabplan run --resume`")
        session = cls.resume(journal, replace(config, stage=config.stage or "sim://dry-run-resume"))
        from fabplan.execute.sim_resume import next_free

        first = Path(h.get("pulse_log") or Path(journal).with_suffix(".pulses.csv"))
        pulse_log = Path(config.pulse_log) if config.pulse_log else next_free(first)
        if pulse_log.exists():
            raise UserError(f"{pulse_log}: pulse log exists; choose another --pulse-log")
        faults = parse_faults(config.faults)
        energy, override = _emulated_attenuator(session.plan, session.design)
        session.header_extra = {**session.header_extra, "dry_run": True, "speedup": config.speedup,
                                "faults": faults, "pulse_log": str(pulse_log)}
        session.config = replace(session.config, home=True)
        session.lab = _Lab(pulse_log, faults, energy, override, _design_rate_hz(session.plan, session.design))
        session.hint = ""
        return session

    # ------------------------------------------------------------------ control

    @property
    def mode(self) -> str:
        return self.config.mode or self.plan.mode

    @property
    def pause_file(self) -> Path:
        return self.journal_path.with_name(self.journal_path.name + ".pause")

    @property
    def stop_file(self) -> Path:
        return self.journal_path.with_name(self.journal_path.name + ".stop")

    def request_pause(self, reason: str = "pause requested") -> None:
        """Pause at the next safe point, as a first Ctrl+C does (safe from any thread)."""
        self.control.request_pause(reason)

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop at the next safe point (gate closed, journal consistent; safe from any thread)."""
        self.control.request_stop(reason)

    # ------------------------------------------------------------------ run

    def spec(self) -> RunSpec:
        """What the executor gets: journal, options, selection, durability, header extras."""
        c, plan = self.config, self.plan
        mask, sel = self._selection()
        tol = c.tolerance_um if c.tolerance_um is not None else float(plan.header.get("position_tolerance_um") or 0.1)
        options = Options(
            tolerance_um=tol,
            settle_retry_s=float(plan.header.get("settle_time_s") or 0.02),
            refire_uncertain=c.refire_uncertain,
            fly_fallback=c.multi_pulse,
            home=c.home,
            max_pulse_energy_uj=float(self.design.laser.max_pulse_energy) if self.design is not None else None,
            batch_size=c.batch,
            fly_lead_s=None if c.fly_lead_us is None else c.fly_lead_us * 1e-6,
        )
        return RunSpec(self.journal_path, resume=self.resuming, mode=c.mode, options=options, selection=mask,
                       selection_text=sel, header_extra=self.header_extra,
                       sync=c.durability or ("batch" if self.lab is not None else "fsync"),
                       attenuator_override=self.lab.attenuator_override if self.lab is not None else None)

    def _selection(self) -> tuple[np.ndarray | None, dict[str, Any] | None]:
        c, saved, ids = self.config, self.selection_saved or {}, self.plan.shots.disc_id
        only = c.only if c.only is not None else saved.get("only")
        skip_ids = list(saved.get("skip_ids") or [])
        mask = selection_mask(ids, only=only, skip_file=c.skip)
        if skip_ids and not c.skip:
            mask &= ~np.isin(ids, np.array(skip_ids))
        if c.skip:
            text = Path(c.skip).read_text()
            skip_ids = [s for s in (ln.split("#", 1)[0].strip() for ln in text.splitlines()) if s]
        sel = {"only": only, "skip_ids": skip_ids} if (only or skip_ids) else None
        return (mask if sel else None), sel

    def run(self, hooks: RunHooks | None = None) -> RunResult:
        """Connect, pre-flight, fire, end safely; returns how the session ended (`result.status`).

        Raises UserError (nothing moved: bad input, unreachable device, pre-flight refusal) and
        DevicesFailed (a device fault before the first shot)."""
        hooks = hooks or RunHooks()
        spec = self.spec()  # a bad --only/--skip is refused before anything connects
        if self.lab is not None:
            return self._run_dry(spec, hooks)
        try:
            return self._run_devices(spec, hooks)
        finally:  # an in-process sim:// lab ends with the run: its pulse log is flushed and closed
            _close_sim_labs(self.stage_url, self.laser_url)

    def _run_devices(self, spec: RunSpec, hooks: RunHooks) -> RunResult:
        from stage_drivers import open_laser, open_stage
        from stage_drivers.protocols import DeviceError

        # connect first: a device that cannot be reached is a configuration error (nothing moved)
        # and must not leave a JOURNAL.plan/ behind for a run that never started
        try:
            stage = open_stage(self.stage_url)
        except DeviceError as exc:
            raise UserError(f"{exc} (--stage; nothing moved){self.hint}") from None
        try:
            laser = open_laser(self.laser_url or self.stage_url, stage=stage)
        except DeviceError as exc:
            stage.close()
            raise UserError(f"{exc} (--laser; nothing moved){self.hint}") from None
        from stage_drivers.guardian import GuardianError, guardian_for

        # a guardian process with its own connections closes gate, compare and laser output if this
        # process dies (stage_drivers/guardian.py); if the guardian dies, the run stops
        guard = guardian_for(self.stage_url, self.laser_url or self.stage_url, on_lost=self.request_stop)
        try:  # the guardian is entered first and left last: it outlives the devices' own safe close
            with guard, stage, laser, self._plan_kept_if_run(spec):
                return self._execute(spec, stage, laser, hooks, None)
        except GuardianError as exc:
            laser.close()
            stage.close()
            raise UserError(f"{exc} (the guardian process; nothing moved){self.hint}") from None
        except DeviceError as exc:  # a pre-flight query failed: nothing moved, nothing fired
            raise DevicesFailed(f"{exc}{self.hint}") from exc

    def _run_dry(self, spec: RunSpec, hooks: RunHooks) -> RunResult:
        from fabplan.execute.pulselog import PulseLogReader, read_pulse_log
        from sim.clock import parse_speedup
        from sim.lab import start_lab
        from stage_drivers import open_laser, open_stage
        from stage_drivers.protocols import DeviceError

        lab_cfg = self.lab
        assert lab_cfg is not None
        try:
            # the emulated laser at the design's rate, as a real run's laser is set (and a sim:// URL's)
            lab = start_lab(lab_cfg.pulse_log, speedup=self.config.speedup, process=self.config.lab_process,
                            faults=lab_cfg.faults, homed=False, max_pulse_energy_uj=lab_cfg.max_pulse_energy_uj,
                            rep_rate_hz=lab_cfg.rep_rate_hz, laser_base_rate_hz=max(200e3, lab_cfg.rep_rate_hz))
        except ValueError as exc:
            raise UserError(f"--fault/--speedup: {exc}") from exc
        t0 = time.perf_counter()
        with lab:
            readback = PulseLogReader(lab.pulse_log_path, flush=lab.flush)  # a child-process lab flushes itself
            # connect as `run` does: a device that fails while connecting is exit 2 in both (one code for
            # one cause); a fault after connecting (pre-flight) is DevicesFailed, exit 1, in both
            try:
                stage = open_stage(lab.stage_url)
            except DeviceError as exc:
                raise UserError(f"{exc} (the emulated stage, while connecting; nothing moved)") from None
            try:
                laser = open_laser(lab.laser_url, stage=stage)
            except DeviceError as exc:
                stage.close()
                raise UserError(f"{exc} (the emulated laser, while connecting; nothing moved)") from None
            try:
                with stage, laser, self._plan_kept_if_run(spec):
                    result = self._execute(spec, stage, laser, hooks, readback)
            except DeviceError as exc:  # an injected fault struck during pre-flight
                raise DevicesFailed(f"{exc} (before the first shot: nothing moved, nothing fired)") from exc
        lab_wall = time.perf_counter() - t0
        pulses = read_pulse_log(lab_cfg.pulse_log)
        # one wall time: the executor's (result.wall_s, first command to last shot), as a real run
        # reports it; the emulated lab's start/stop is kept apart as lab_session_wall_s
        result.dry_run = {
            "pulses_with_light": int(len(pulses)),
            "emulated_duration_s": float(pulses[-1, 0]) if len(pulses) else math.nan,
            # emulated time splits at the first pulse: homing + approach (+ pre-flight) before it,
            # the shots themselves after it (what the planner's estimate covers)
            "emulated_before_first_pulse_s": float(pulses[0, 0]) if len(pulses) else math.nan,
            "emulated_first_to_last_pulse_s": float(pulses[-1, 0] - pulses[0, 0]) if len(pulses) else math.nan,
            "speedup": float(parse_speedup(self.config.speedup)),
            "laser_rate_hz": lab_cfg.rep_rate_hz or None,  # the emulated laser's output rate (the design's)
            "estimated_real_duration_s": result.estimate_s,
            # the estimate of what this session fired (its selection, less shots already done)
            "estimate_parts_s": dict(result.estimate_parts_s),
            "plan_estimate_parts_s": {k: float(v) for k, v in self.plan.estimate.items()},
            "achieved_wall_s": result.wall_s,
            "lab_session_wall_s": lab_wall,
            "shots_per_wall_s": (result.stats.fired / result.wall_s) if result.wall_s > 0 else None,
            "pulse_log": str(lab_cfg.pulse_log),
        }
        return result

    def _execute(self, spec: RunSpec, stage, laser, hooks: RunHooks, readback) -> RunResult:
        if self.pause_file.exists():  # left by an earlier session: not a request to this one
            self.pause_file.unlink(missing_ok=True)
        from fabplan.execute.control import StopNow

        with SignalHandlers(self.control), self._watch_request_files():
            try:
                return execute(self.plan, stage, laser, spec, hooks, control=self.control, readback=readback)
            except StopNow as exc:  # SIGTERM / a second Ctrl+C before the firing loop (e.g. in pre-flight)
                raise OperatorStopped(f"stopped ({exc}) before the first shot: nothing fired") from None

    @contextlib.contextmanager
    def _watch_request_files(self):
        """Poll for JOURNAL.pause / JOURNAL.stop (another process asking) while the run lasts."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(REQUEST_POLL_S):
                for path, act, what in ((self.stop_file, self.request_stop, "stop"),
                                        (self.pause_file, self.request_pause, "pause")):
                    if path.exists():
                        path.unlink(missing_ok=True)
                        act(f"{path.name}: {what} requested")

        t = threading.Thread(target=watch, name="fabplan-run-requests", daemon=True)
        t.start()
        try:
            yield
        finally:
            done.set()
            t.join(timeout=2.0)

    @contextlib.contextmanager
    def _plan_kept_if_run(self, spec: RunSpec):
        """Save the plan next to the journal (JOURNAL.plan/, named in the header) so a resume fires
        exactly that plan; remove it again when the run is refused before its journal exists."""
        journal, extra = self.journal_path, self.header_extra
        kept = None
        if not self.resuming and "plan_dir" not in extra and not journal.exists():
            plan_dir = journal.with_name(journal.name + ".plan")
            if not plan_dir.exists():
                self.plan.save(plan_dir)
                kept = extra["plan_dir"] = str(plan_dir.resolve())
        try:
            yield
        except BaseException:
            if kept and not journal.exists():
                shutil.rmtree(kept, ignore_errors=True)
            raise


def _close_sim_labs(*urls: str | None) -> None:
    """Close the in-process emulated labs that sim:// device URLs started (if `sim` was used at all)."""
    if "sim.lab" not in sys.modules:
        return
    from sim.lab import close_lab_for_url

    for url in urls:
        if url:
            close_lab_for_url(url)


def parse_faults(specs) -> dict[str, str]:
    """--fault [DEV=]KIND[@K][:ARG] specs -> {"xps": "drop@40,...", "pharos": ...}."""
    faults: dict[str, str] = {}
    for spec in specs:
        dev, sep, rest = spec.partition("=")
        if not sep:
            dev, rest = "xps", spec
        if dev not in ("xps", "pharos"):
            raise UserError(f"--fault {spec!r}: device must be xps or pharos (xps=drop@40, pharos=interlock@3)")
        faults[dev] = ",".join(x for x in (faults.get(dev), rest) if x)
    return faults


def _sim_takes_design_laser(url: str | None, plan, design) -> str | None:
    """A sim:// URL with the design's laser: max_pulse_energy (uJ at 100 %) and rep_rate (Hz), as a
    dry run's emulator gets them (a plan directory's: its saved ones), added unless the URL sets them; an explicit value that disagrees with
    the design is left for pre-flight to refuse. Other schemes are returned unchanged."""
    if not url:
        return url
    spy = url[:4].lower() == "spy+"
    body = url[4:] if spy else url
    if not body.lower().startswith("sim://"):
        return url
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(body)
    params = dict(parse_qsl(parts.query))
    add = {}
    if "max_pulse_energy" not in params:
        add["max_pulse_energy"] = f"{_emulated_attenuator(plan, design)[0]:g}"
    rate = _design_rate_hz(plan, design)  # a plan directory has no design: its saved rate
    if "rep_rate" not in params and rate:
        add["rep_rate"] = f"{float(rate):g}"
    if not add:
        return url
    query = "&".join(x for x in (parts.query, urlencode(add)) if x)
    return (url[:4] if spy else "") + urlunsplit(parts._replace(query=query))


def _design_rate_hz(plan, design) -> float:
    """The design's laser repetition rate (Hz; the saved plan's when there is no design), 0 if unknown."""
    rate = getattr(getattr(design, "laser", None), "repetition_rate", None) or plan.header.get("repetition_rate_hz")
    try:
        return float(rate) if rate and float(rate) > 0 else 0.0
    except (TypeError, ValueError):
        return 0.0


def _emulated_attenuator(plan, design) -> tuple[float, str | None]:
    """(the emulated Pharos's pulse energy at 100 %, attenuator kind override or None).

    The emulated Pharos is linear in percent: it gets the design's (or saved plan's) calibration when
    it has one; an attenuator offset it does not model makes the executor derive percentages from
    the laser's reported energy instead ("emulated-linear")."""
    model = plan.header.get("model", {})
    energy = float(design.laser.max_pulse_energy if design is not None
                   else model.get("beam", {}).get("max_pulse_energy_uj", 10.0))
    att = design.laser.attenuator if design is not None else None
    if att is None and isinstance(model.get("attenuator"), dict):  # a saved plan carries its calibration
        from types import SimpleNamespace

        att = SimpleNamespace(**model["attenuator"])
    if att is not None and att.type == "percent":
        if float(getattr(att, "offset_percent", 0.0) or 0.0) == 0.0:
            return float(att.energy_at_100), None
        return energy, "emulated-linear"
    return energy, None

