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
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fabplan.cli._output import print_json
from fabplan.errors import UserError

if TYPE_CHECKING:
    from fabplan.execute.session import RunConfig

EXIT = {"completed": 0, "failed": 1, "paused": 3, "stopped": 3}
EXIT_OUT_OF_TOLERANCE = 4
EPILOG = ("exit codes: 0 completed, 1 a device fault stopped the run (gate closed; resume after fixing it), "
          "2 user error or a device that cannot be reached (nothing moved), 3 paused or stopped by the operator (resume with --resume JOURNAL), "
          "4 completed but fired shot(s) landed out of the position tolerance (fly read-back; listed in the "
          "summary; the first row before the trigger lead is measured only warns within 1.5x tolerance)")


# ---------------------------------------------------------------------- run / dry-run


def _config(args) -> RunConfig:
    from fabplan.execute.session import RunConfig

    return RunConfig(
        target=getattr(args, "target", None) or getattr(args, "design", None), stage=getattr(args, "stage", None),
        laser=getattr(args, "laser", None), journal=args.journal, mode=args.mode, only=args.only, skip=args.skip,
        refire_uncertain=args.refire_uncertain, tolerance_um=args.tolerance_um, multi_pulse=args.multi_pulse,
        durability=args.durability, fly_lead_us=args.fly_lead_us, batch=args.batch, home=args.home,
        speedup=getattr(args, "speedup", "inf"), pulse_log=getattr(args, "pulse_log", None),
        faults=tuple(getattr(args, "fault", ())), lab_process=getattr(args, "lab_process", "no") == "yes",
    )


def _check_report(args) -> None:
    """A report name found wrong only after a long run would lose its figure: refuse it first."""
    if args.report and Path(args.report).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UserError(f"--report {args.report}: use a .png, .svg or .pdf file name")
    from fabplan.monitor.beside import check_flags

    check_flags(args)  # --notify URLs, --stall-after


def _on_pause_prompt() -> bool:
    """Interactive pause: resume or stop (only when stdin is a terminal)."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input("paused: [r]esume or [s]top (resume later with --resume)? ").strip().lower()
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.startswith("r")


def _run(args) -> int:
    from fabplan.execute.session import RunSession
    from fabplan.monitor.beside import apply_station

    _check_report(args)
    apply_station(args)  # --station: stage, laser, journal folder (options given win)
    config = _config(args)
    try:
        session = RunSession.resume(args.resume, config) if args.resume else RunSession.start(config)
    except KeyboardInterrupt:
        return _interrupted()
    return _run_session(args, session)


def _dry_run(args) -> int:
    from fabplan.execute.session import RunSession

    _check_report(args)
    if not args.design and not args.resume:
        raise UserError("give a design file or plan directory (or --resume JOURNAL)")
    try:  # --resume: fresh emulators carry on from the journal (the first session's are gone)
        session = (RunSession.dry_resume(args.resume, _config(args)) if args.resume
                   else RunSession.dry_run(_config(args)))
    except KeyboardInterrupt:
        return _interrupted()
    return _run_session(args, session)


def _interrupted() -> int:
    """Ctrl+C (once or twice) outside the firing loop: the same exit code as a stop inside it."""
    print("stopped: interrupted (Ctrl+C)", file=sys.stderr)
    return EXIT["stopped"]


def _run_session(args, session) -> int:
    from fabplan.execute.control import RunHooks
    from fabplan.execute.session import DevicesFailed, OperatorStopped
    from fabplan.monitor.beside import state_logger, watching

    for w in session.warnings:
        print(f"warning: {w}", file=sys.stderr)
    try:
        with watching(args, session):  # JOURNAL.log, and the --monitor / --notify child process
            result = session.run(RunHooks(on_pause=_on_pause_prompt, progress_bar=not args.json,
                                          on_state=state_logger))
    except DevicesFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OperatorStopped as exc:  # SIGTERM / double Ctrl+C before the firing loop: exit 3 like a stop in it
        print(str(exc), file=sys.stderr)
        return EXIT["stopped"]
    except KeyboardInterrupt:
        return _interrupted()
    try:
        return _finish(args, session.plan, result)
    except KeyboardInterrupt:  # while printing the summary / writing the report: the run itself has ended
        return _interrupted()


def _finish(args, plan, result) -> int:
    from fabplan.execute.journal import read_journal
    from fabplan.execute.report import summary_lines, write_report

    summary = result.summary()
    dry = result.dry_run
    sim_t = dry["emulated_duration_s"] if dry else None
    if dry and not args.json:
        rate = dry["shots_per_wall_s"] or 0.0
        # the durations (wall, emulated, estimated) are printed once, by summary_lines, each with what it covers
        print(f"dry run ({result.mode}, speedup {args.speedup}): {result.stats.fired} shot(s) at {rate:.0f} shots/s wall")
    summary.update(dry or {})
    from fabplan.beam.base import format_fluence_definition, plan_fluence_definition

    summary["fluence_definition"] = plan_fluence_definition(plan.header)  # what the plan's fluences mean
    if args.report:
        summary["report"] = write_report(args.report, read_journal(result.journal_path), plan,
                                         pulse_log=dry["pulse_log"] if dry else None)["path"]
    if args.json:
        print_json(summary)
    else:
        for line in summary_lines(result, sim_t, dry_run=dry is not None):
            print(line)
        print(f"  fluence: {format_fluence_definition(summary['fluence_definition'])}")
        if dry:
            print(f"  pulse log {dry['pulse_log']} ({dry['pulses_with_light']} pulses with light)")
        if args.report:
            print(f"  report {args.report}")
    rc = EXIT.get(result.status, 1)
    if rc == 0 and summary["out_of_tolerance"]["shots"]:
        rc = EXIT_OUT_OF_TOLERANCE
    return rc


# ---------------------------------------------------------------------- parsers


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("step", "fly"), help="override the design's process.mode")
    p.add_argument("--journal", metavar="FILE", help="journal file (JSON lines; default journals/NAME-TIME.jsonl, "
                   "journals/NAME-TIME-dry.jsonl for a dry run)")
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
    from fabplan.monitor.beside import add_flags

    add_flags(p)  # --monitor, --notify, ...


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
    from fabplan.monitor.beside import add_station_flag

    add_station_flag(p)
    _common(p)
    p.set_defaults(func=_run, interrupt_exit=EXIT["stopped"])  # a Ctrl+C cutting it short: 3 (fabplan/cli/__init__.py)

    q = sub.add_parser("dry-run", help="run a design against emulators started here (same code path as run)",
                       description="Start the XPS + Pharos emulators over loopback and run the design through the "
                       "real drivers and executor; the emulator's pulse log is the ground truth.",
                       epilog=EPILOG)
    q.add_argument("design", nargs="?", metavar="DESIGN|PLAN_DIR")
    q.add_argument("--resume", metavar="JOURNAL", help="carry on the dry run recorded in JOURNAL on fresh emulators "
                   "(its plan, mode and selection; this session's pulses in JOURNAL.pulses-2.csv, ...)")
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
    q.set_defaults(func=_dry_run, home=True, interrupt_exit=EXIT["stopped"])


def main(argv: list[str] | None = None) -> int:
    """`python -m fabplan.cli.cmd_run run|dry-run ...`: the same commands without importing every other
    command module (a lighter process for supervisors and the kill tests)."""
    from fabplan.cli import dispatch

    parser = argparse.ArgumentParser(prog="fabplan")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return dispatch(parser, argv)


if __name__ == "__main__":
    from fabplan.cli import run_process

    run_process(main)
