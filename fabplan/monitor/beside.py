"""What `run`/`dry-run` add around a session: --station, --monitor, --notify and the run's log file.

Kept here so cmd_run.py only calls three functions: `add_flags(parser)` (argparse only, no heavy
imports), `apply_station(args)` before the session is built, and `watching(args, session)` around
`session.run()`. The monitor and the webhooks run in a child process (fabplan/monitor/server.py);
the run itself only writes its journal, as always, and a log file next to it (JOURNAL.log).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("fabplan.execute")

def add_flags(p: argparse.ArgumentParser) -> None:
    from fabplan.monitor.server import DEFAULT_PORT  # standard library only: cheap at parser build

    g = p.add_argument_group("watching the run")
    g.add_argument("--monitor", action="store_true",
                   help="serve the live monitor page beside the run and print its address (fabplan monitor)")
    g.add_argument("--monitor-port", type=int, metavar="N",
                   help=f"port for --monitor (default {DEFAULT_PORT}, or any free port when taken)")
    g.add_argument("--monitor-host", default="127.0.0.1", metavar="HOST",
                   help="address for --monitor (default 127.0.0.1; another needs the token it prints)")
    g.add_argument("--notify", action="append", default=[], metavar="URL",
                   help="POST a JSON alert to this webhook on pause, failure, stall, first uncertain shot (repeatable)")
    g.add_argument("--stall-after", type=float, default=60.0, metavar="S",
                   help="the monitor's stall alarm: no journal record for S seconds (default 60)")


def add_station_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--station", metavar="NAME",
                   help="take --stage, --laser and the journal folder from this station profile "
                        "(`fabplan station list`; FABPLAN_STATION); options given here win")


def apply_station(args) -> dict[str, Any] | None:
    """Fill args.stage/laser/journal from the named station (command-line options win)."""
    import os

    from fabplan.station import STATION_ENV, get_station

    name = getattr(args, "station", None) or os.environ.get(STATION_ENV)
    if not name:
        return None
    st = get_station(name)
    if st.get("stage") and not args.stage:
        args.stage = st["stage"]
    if st.get("laser") and not args.laser:
        args.laser = st["laser"]
    if st.get("journal_dir") and not args.journal and not getattr(args, "resume", None):
        from datetime import datetime, timezone

        stem = Path(str(args.target or "run")).stem or "run"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        args.journal = str(Path(st["journal_dir"]).expanduser() / f"{stem}-{stamp}.jsonl")
    log.info("station %s (%s): stage %s, laser %s", st["name"], st["file"], args.stage, args.laser)
    return st


def check_flags(args) -> None:
    from fabplan.errors import UserError
    from fabplan.monitor.notify import check_url

    for url in getattr(args, "notify", []) or []:
        check_url(url)
    if getattr(args, "stall_after", 60.0) <= 0:
        raise UserError(f"--stall-after must be positive, got {args.stall_after:g}")


@contextlib.contextmanager
def watching(args, session) -> Iterator[dict[str, Any]]:
    """The run's log file, the state log lines, and the monitor/webhook child process, for the run."""
    from fabplan.runlog import log_path

    journal = Path(session.journal_path)
    info: dict[str, Any] = {}
    keep_log = log_path(journal).exists() or journal.exists()  # a resume appends to the run's log
    try:
        with _watching(args, session, journal, info):
            yield info
    finally:
        if not keep_log and not journal.exists():  # refused before its journal existed: leave nothing
            log_path(journal).unlink(missing_ok=True)


@contextlib.contextmanager
def _watching(args, session, journal: Path, info: dict[str, Any]) -> Iterator[None]:
    from fabplan.runlog import run_log

    with run_log(journal) as log_file:
        info["log"] = str(log_file)
        plan = session.plan  # planned before this log existed: its summary goes in here
        log.info("%s %s: journal %s, plan %s (%d shots, %s mode, estimate %.1f s)",
                 "dry run" if getattr(args, "speedup", None) else "run", plan.header.get("design_name"), journal,
                 plan.plan_hash[:12], len(plan.shots), plan.header.get("mode"),
                 float((plan.header.get("estimate") or {}).get("total_s") or float("nan")))
        child = None
        if getattr(args, "monitor", False) or getattr(args, "notify", None):
            t0 = time.perf_counter()
            child = _start_child(args, journal, log_file)
            log.info("monitor started beside the run in %.1f ms of the run's time (pid %d)",
                     (time.perf_counter() - t0) * 1e3, child.proc.pid)
            if child.url:
                info["monitor"] = child.url
                print(f"monitor: {child.url}" + (f"  (token {child.token})" if child.token else ""), file=sys.stderr,
                      flush=True)
        try:
            yield
        finally:
            if child is not None:
                t0 = time.perf_counter()
                child.stop()  # its last look and final push to the pages: a fraction of a second
                log.info("monitor stopped in %.1f ms of the run's time (exit %s)", (time.perf_counter() - t0) * 1e3,
                         child.proc.returncode)


def _start_child(args, journal: Path, log_file: Path):
    from fabplan.monitor.server import start_beside

    return start_beside(journal, serve_page=bool(args.monitor), host=args.monitor_host, port=args.monitor_port,
                        notify=list(args.notify or []), stall_s=args.stall_after, log_file=log_file,
                        wait=False)  # the run never waits for its monitor


def state_logger(old, new, reason: str) -> None:
    """RunHooks.on_state: every run-state change into the run log."""
    log.info("run state %s -> %s%s", getattr(old, "value", old), getattr(new, "value", new),
             f": {reason}" if reason else "")
