"""`fabplan run` (real hardware or emulators by URL) and `fabplan dry-run` (emulators started here).

Both go through the same executor and the same drivers; dry-run only starts the emulated lab
(XPS + Pharos over loopback) first and reads its pulse log back as ground truth.

Exit codes: 0 completed, 1 a device fault stopped the run, 2 user error (nothing moved; also a
--stage/--laser that cannot be reached or refuses the connection: a configuration error),
3 paused or stopped by the operator (resume with `fabplan run --resume JOURNAL`),
4 completed, but fired shot(s) landed out of the position tolerance (fly mode read-back; the summary
and `--json` "out_of_tolerance" list them). The first fly row, fired before the trigger lead is
measured, only warns when it stays within 1.5x the tolerance.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fabplan.cli._output import print_json
from fabplan.errors import UserError

EXIT = {"completed": 0, "failed": 1, "paused": 3, "stopped": 3}
EXIT_OUT_OF_TOLERANCE = 4
EPILOG = ("exit codes: 0 completed, 1 a device fault stopped the run (gate closed; resume after fixing it), "
          "2 user error or a device that cannot be reached (nothing moved), 3 paused or stopped by the operator (resume with --resume JOURNAL), "
          "4 completed but fired shot(s) landed out of the position tolerance (fly read-back; listed in the "
          "summary; the first row before the trigger lead is measured only warns within 1.5x tolerance)")


# ---------------------------------------------------------------------- plan loading


def load_target(target: str, mode: str | None) -> tuple[Any, Any, dict[str, Any]]:
    """(plan, design or None, header extras) for a design YAML or a plan directory."""
    from fabplan.execute.runner import file_sha256

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


def _keep_plan(plan, journal: Path, extra: dict) -> dict:
    """Save the plan next to the journal (JOURNAL.plan/) so a resume fires exactly that plan."""
    if "plan_dir" in extra or journal.exists():
        return {}
    plan_dir = journal.with_name(journal.name + ".plan")
    if plan_dir.exists():
        return {}
    plan.save(plan_dir)
    return {"plan_dir": str(plan_dir.resolve())}


def _default_journal(plan, dry: bool) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = str(plan.header.get("design_name") or "run").replace("/", "_")
    if dry:
        return Path(tempfile.mkdtemp(prefix="fabplan-dry-run-")) / f"{name}-{stamp}.jsonl"
    return Path("journals") / f"{name}-{stamp}.jsonl"


def _options(args, plan, design):
    from fabplan.execute.context import Options

    tol = args.tolerance_um if args.tolerance_um is not None else float(plan.header.get("position_tolerance_um") or 0.1)
    return Options(
        tolerance_um=tol,
        settle_retry_s=float(plan.header.get("settle_time_s") or 0.02),
        refire_uncertain=args.refire_uncertain,
        fly_fallback=args.multi_pulse,
        home=args.home,
        max_pulse_energy_uj=float(design.laser.max_pulse_energy) if design is not None else None,
        batch_size=args.batch,
        fly_lead_s=None if args.fly_lead_us is None else args.fly_lead_us * 1e-6,
    )


def _on_pause_prompt(ctx) -> bool:
    """Interactive pause: resume or stop (only when stdin is a terminal)."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input("paused: [r]esume or [s]top (resume later with --resume)? ").strip().lower()
    except (EOFError, KeyboardInterrupt):
        return False
    if answer.startswith("r"):
        ctx.control.interrupts = 0
        return True
    return False


def _selection(args, plan, header_sel: dict | None):
    import numpy as np

    from fabplan.execute.runner import selection_mask

    only = args.only if args.only is not None else (header_sel or {}).get("only")
    skip_ids = list((header_sel or {}).get("skip_ids") or [])
    mask = selection_mask(plan.shots.disc_id, only=only, skip_file=args.skip)
    if skip_ids and not args.skip:
        mask &= ~np.isin(plan.shots.disc_id, np.array(skip_ids))
    if args.skip:
        text = Path(args.skip).read_text()
        skip_ids = [s for s in (ln.split("#", 1)[0].strip() for ln in text.splitlines()) if s]
    sel = {"only": only, "skip_ids": skip_ids} if (only or skip_ids) else None
    return (mask if sel else None), sel


def _execute(args, plan, design, stage, laser, journal: Path, *, resume: bool, extra: dict, header_sel,
             pulse_readback=None, attenuator_type: str | None = None):
    from fabplan.execute.control import RunControl, SignalHandlers
    from fabplan.execute.progress import Progress
    from fabplan.execute.runner import execute

    mask, sel = _selection(args, plan, header_sel)
    control = RunControl()
    progress = Progress(len(plan.shots), args.mode or plan.mode, enabled=not args.json)
    with SignalHandlers(control, on_message=progress.message):
        return execute(plan, stage, laser, journal, resume=resume, mode=args.mode, options=_options(args, plan, design),
                       selection=mask, selection_text=sel, header_extra=extra, control=control, progress=progress,
                       on_pause=_on_pause_prompt, pulse_readback=pulse_readback,
                       sync=args.durability or ("batch" if args.func is _dry_run else "fsync"),
                       attenuator_type=attenuator_type or plan.header.get("attenuator"))


def _finish(args, plan, result, extra_summary: dict | None = None, sim_time_s: float | None = None) -> int:
    from fabplan.execute.journal import read_journal
    from fabplan.execute.report import summary_lines, write_report

    summary = result.summary()
    summary.update(extra_summary or {})
    if args.report:
        summary["report"] = write_report(args.report, read_journal(result.journal_path), plan)["path"]
    if args.json:
        print_json(summary)
    else:
        for line in summary_lines(result, sim_time_s, dry_run=extra_summary is not None):
            print(line)
        if extra_summary and "pulse_log" in extra_summary:
            print(f"  pulse log {extra_summary['pulse_log']} ({extra_summary['pulses_with_light']} pulses with light)")
        if args.report:
            print(f"  report {args.report}")
    rc = EXIT.get(result.status, 1)
    if rc == 0 and summary["out_of_tolerance"]["shots"]:
        rc = EXIT_OUT_OF_TOLERANCE
    return rc


# ---------------------------------------------------------------------- run


def _check_args(args) -> None:
    """Refuse bad options before anything connects or moves (a report name found wrong only after
    a long run would lose its figure)."""
    if args.tolerance_um is not None and not args.tolerance_um > 0:
        raise UserError(f"--tolerance-um must be positive, got {args.tolerance_um:g}")
    if args.report and Path(args.report).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UserError(f"--report {args.report}: use a .png, .svg or .pdf file name")


def _run(args) -> int:
    _check_args(args)
    from fabplan.execute.journal import read_journal
    from stage_drivers import open_laser, open_stage

    header_sel = None
    h: dict = {}
    if args.resume:
        state = read_journal(args.resume)
        h = state.header
        saved = h.get("plan_dir")
        if not args.target and saved and Path(saved).is_dir():
            target = saved  # the exact plan the run started with, whatever the planner version now
            from fabplan.execute.runner import file_sha256

            dfile = h.get("design_file")
            if dfile and h.get("design_file_sha256") and file_sha256(dfile) != h["design_file_sha256"]:
                print(f"warning: {dfile} changed since this run started; resuming the saved plan {saved}",
                      file=sys.stderr)
        else:
            target = args.target or h.get("design_file") or saved
        if not target:
            raise UserError(f"{args.resume}: journal names no design file or plan directory; give it as TARGET")
        mode = args.mode or h.get("plan_mode") or h.get("mode")
        plan, design, extra = load_target(target, h.get("plan_mode") or mode)
        args.mode = args.mode or h.get("mode")
        devices = h.get("devices") or {}
        stage_url = args.stage or devices.get("stage")
        laser_url = args.laser or devices.get("laser")
        journal = Path(args.resume)
        header_sel = h.get("selection")
    else:
        if not args.target:
            raise UserError("give a design file or plan directory (or --resume JOURNAL)")
        if not args.stage:
            raise UserError("--stage URL is required (e.g. xps://192.168.0.254:5001?group=XYZ)")
        plan, design, extra = load_target(args.target, args.mode)
        stage_url, laser_url = args.stage, args.laser or args.stage
        journal = Path(args.journal) if args.journal else _default_journal(plan, dry=False)
    if not stage_url:
        raise UserError("--stage URL is required")
    from stage_drivers.protocols import DeviceError

    hint = " (this journal is from a dry run whose emulators are gone: give --stage/--laser)" if h.get("dry_run") else ""
    # connect first: a device that cannot be reached is a configuration error (exit 2, nothing moved)
    # and must not leave a JOURNAL.plan/ behind for a run that never started
    try:
        stage = open_stage(stage_url)
    except DeviceError as exc:
        raise UserError(f"{exc} (--stage; nothing moved){hint}") from None
    try:
        laser = open_laser(laser_url or stage_url, stage=stage)
    except DeviceError as exc:
        stage.close()
        raise UserError(f"{exc} (--laser; nothing moved){hint}") from None
    try:
        with stage, laser, _plan_kept_if_run(plan, journal, extra, keep=not args.resume):
            result = _execute(args, plan, design, stage, laser, journal, resume=bool(args.resume), extra=extra,
                              header_sel=header_sel)
    except DeviceError as exc:  # a pre-flight query failed: nothing moved, nothing fired
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 1
    return _finish(args, plan, result)


@contextlib.contextmanager
def _plan_kept_if_run(plan, journal: Path, extra: dict, keep: bool = True):
    """Save the plan next to the journal (into `extra`) for the run; remove it again when the run is
    refused before its journal exists (nothing ran: no stray JOURNAL.plan/ folder)."""
    kept = _keep_plan(plan, journal, extra) if keep else {}
    extra.update(kept)
    try:
        yield
    except BaseException:
        if kept and not journal.exists():
            shutil.rmtree(kept["plan_dir"], ignore_errors=True)
        raise


# ---------------------------------------------------------------------- dry run


def _dry_run(args) -> int:
    _check_args(args)
    from fabplan.execute.pulselog import PulseLogReader, read_pulse_log
    from sim.lab import start_lab
    from stage_drivers import open_laser, open_stage

    plan, design, extra = load_target(args.design, args.mode)
    mode = args.mode or plan.mode
    journal = Path(args.journal) if args.journal else _default_journal(plan, dry=True)
    pulse_log = Path(args.pulse_log) if args.pulse_log else journal.with_suffix(".pulses.csv")
    if pulse_log.exists():
        raise UserError(f"{pulse_log}: pulse log exists; choose another --pulse-log")
    faults: dict[str, str] = {}
    for spec in args.fault:
        dev, sep, rest = spec.partition("=")
        if not sep:
            dev, rest = "xps", spec
        if dev not in ("xps", "pharos"):
            raise UserError(f"--fault {spec!r}: device must be xps or pharos (xps=drop@40, pharos=interlock@3)")
        faults[dev] = ",".join(x for x in (faults.get(dev), rest) if x)
    in_process = args.lab_process != "yes"
    # the emulated Pharos is linear in percent: give it the design's calibration when it has one
    model = plan.header.get("model", {})
    energy = float(
        design.laser.max_pulse_energy if design is not None else model.get("beam", {}).get("max_pulse_energy_uj", 10.0)
    )
    att = getattr(getattr(design, "laser", None), "attenuator", None)
    if att is None and isinstance(model.get("attenuator"), dict):  # a saved plan carries its calibration
        from types import SimpleNamespace

        att = SimpleNamespace(**model["attenuator"])
    att_type_override = None
    if att is not None and att.type == "percent":
        if float(getattr(att, "offset_percent", 0.0) or 0.0) == 0.0:
            energy = float(att.energy_at_100)
        else:  # an offset the emulator does not model: derive percentages from its reported energy
            att_type_override = "emulated-linear"
    try:
        lab = start_lab(pulse_log, speedup=args.speedup, process=not in_process, faults=faults, homed=False,
                        max_pulse_energy_uj=energy)
    except ValueError as exc:
        raise UserError(f"--fault/--speedup: {exc}") from exc
    extra = {**extra, "dry_run": True, "speedup": args.speedup, "faults": faults, "pulse_log": str(pulse_log)}
    args.home = True  # the emulated stage starts unreferenced, like a real one after power-up
    t0 = time.perf_counter()
    from stage_drivers.protocols import DeviceError

    with lab:
        readback = PulseLogReader(lab.pulse_log_path, flush=lab.flush)  # a child-process lab flushes itself
        try:
            with open_stage(lab.stage_url) as stage, open_laser(lab.laser_url, stage=stage) as laser, \
                    _plan_kept_if_run(plan, journal, extra):
                result = _execute(args, plan, design, stage, laser, journal, resume=False, extra=extra,
                                  header_sel=None, pulse_readback=readback, attenuator_type=att_type_override)
        except DeviceError as exc:  # an injected fault struck during connect / pre-flight: nothing moved
            print(f"error: {exc} (before the first shot: nothing moved, nothing fired)", file=sys.stderr)
            return 1
    wall = time.perf_counter() - t0
    pulses = read_pulse_log(pulse_log)
    sim_t = float(pulses[-1, 0]) if len(pulses) else math.nan
    summary = {
        "pulses_with_light": int(len(pulses)),
        "emulated_duration_s": sim_t,
        "estimated_real_duration_s": result.estimate_s,
        "achieved_wall_s": wall,
        "shots_per_wall_s": (result.stats.fired / result.wall_s) if result.wall_s > 0 else None,
        "pulse_log": str(pulse_log),
    }
    if not args.json:
        rate = summary["shots_per_wall_s"] or 0.0
        print(f"dry run ({mode}, speedup {args.speedup}): estimated real duration {result.estimate_s:.1f} s, "
              f"emulated {sim_t:.1f} s, achieved {wall:.1f} s wall ({rate:.0f} shots/s)")
    return _finish(args, plan, result, summary, sim_time_s=sim_t)


# ---------------------------------------------------------------------- parsers


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("step", "fly"), help="override the design's process.mode")
    p.add_argument("--journal", metavar="FILE", help="journal file (JSON lines; default journals/NAME-TIME.jsonl)")
    p.add_argument("--only", metavar="PATTERN", help="fire only discs whose id matches (glob, comma separated); "
                   "recorded in the journal and reused by --resume unless given again")
    p.add_argument("--skip", metavar="FILE", help="file of disc ids not to fire, one per line (# comments); "
                   "recorded in the journal and reused by --resume unless given again")
    p.add_argument("--refire-uncertain", action="store_true",
                   help="on resume, fire shots whose outcome is unknown (intent without confirmation)")
    p.add_argument("--tolerance-um", type=float, help="max |encoder - target| before firing (default: plan's)")
    p.add_argument("--multi-pulse", choices=("auto", "passes", "step"), default="auto",
                   help="fly mode, discs with N > 1 pulses: N passes per row, or step-and-shoot that row")
    p.add_argument("--durability", choices=("fsync", "async", "batch"),
                   help="journal sync: fsync of each intent before its shot (default for run), the same fsync "
                        "overlapped with the move, or one fsync per batch of shots with a write per shot (exact "
                        "across a process crash, batch-bounded uncertainty after a power cut; default for dry-run)")
    p.add_argument("--fly-lead-us", type=float,
                   help="fly mode: arm position compare this long (us) ahead of each disc to cancel the trigger-to-"
                        "pulse delay (default: measured from the pulse read-back in a dry run, else 0)")
    p.add_argument("--batch", type=int, default=256, help="shots per fsync with --durability batch")
    p.add_argument("--report", metavar="PNG", help="write a report figure (placement errors, map, timeline)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="fabricate: drive the stage and laser through a plan, with a crash-safe journal",
                       description="Run a design or plan on real hardware (or emulators given by URL). Pre-flight "
                       "checks come first; Ctrl+C once pauses after the current shot, twice stops at once; the laser "
                       "gate is closed on every exit. Resume an interrupted run with --resume JOURNAL.",
                       epilog=EPILOG)
    p.add_argument("target", nargs="?", metavar="DESIGN|PLAN_DIR")
    p.add_argument("--stage", metavar="URL", help="stage controller, e.g. xps://192.168.0.254:5001?group=XYZ")
    p.add_argument("--laser", metavar="URL", help="laser, e.g. pharos://192.168.0.20:20020 (default: the stage gate)")
    p.add_argument("--resume", metavar="JOURNAL", help="continue the run recorded in JOURNAL")
    p.add_argument("--home", action="store_true", help="home the stage in pre-flight if it is not referenced")
    _common(p)
    p.set_defaults(func=_run)

    q = sub.add_parser("dry-run", help="run a design against emulators started here (same code path as run)",
                       description="Start the XPS + Pharos emulators over loopback and run the design through the "
                       "real drivers and executor; the emulator's pulse log is the ground truth.",
                       epilog=EPILOG)
    q.add_argument("design", metavar="DESIGN|PLAN_DIR")
    q.add_argument("--speedup", default="inf", help="emulated time factor or 'inf' (instant moves, default)")
    q.add_argument("--pulse-log", metavar="FILE", help="emulator pulse log (default next to the journal)")
    q.add_argument("--fault", action="append", default=[], metavar="[DEV=]KIND[@K][:ARG]",
                   help="inject a fault (xps or pharos; kinds: drop garble split slow:S following limit estop "
                        "interlock; @K: at the K-th command, or on the xps @NAME[#N]: at the N-th call of a "
                        "controller function, e.g. slow@GroupPositionCurrentGet#20:1.0); repeatable")
    q.add_argument("--lab-process", choices=("yes", "no"), default="no",
                   help="run the emulators in a child process instead of threads of this one (default no: "
                        "faster on a small machine, and the pulse log can be flushed for each fly row)")
    _common(q)
    q.set_defaults(func=_dry_run, home=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m fabplan.cli.cmd_run run|dry-run ...`: the same commands without importing every other
    command module (a lighter process for supervisors and the kill tests)."""
    from fabplan.cli import dispatch

    parser = argparse.ArgumentParser(prog="fabplan")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return dispatch(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
