"""`fabplan monitor JOURNAL`: a read-only web page that follows a run while it happens."""

from __future__ import annotations

import argparse
import os
import sys

from fabplan.cli._output import print_json
from fabplan.errors import UserError

TOKEN_ENV = "FABPLAN_MONITOR_TOKEN"


def _handler(args) -> int:
    from pathlib import Path

    from fabplan.monitor.notify import check_url
    from fabplan.monitor.server import READY, is_loopback, monitor_cpus, serve, serve_notify_only

    cpus = monitor_cpus()
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, cpus)  # before any thread starts: they all inherit it
        except OSError as exc:
            raise UserError(f"$FABPLAN_MONITOR_CPUS: cannot run on CPUs {sorted(cpus)} ({exc.strerror})") from None

    for u in args.notify:
        check_url(u)
    if args.stall_after <= 0:
        raise UserError(f"--stall-after must be positive, got {args.stall_after:g}")
    if args.json:
        from fabplan.monitor.state import Monitor

        if not Path(args.journal).is_file():
            raise UserError(f"{args.journal}: no such journal")
        mon = Monitor(args.journal, stall_s=args.stall_after)
        mon.update(wait_layout=True)
        if mon.model.header is None:
            raise UserError(f"{args.journal}: {mon.follower.error or 'not a fabplan journal'}")
        print_json(mon.state())
        return 0
    if args.parent is None and not Path(args.journal).exists():
        print(f"waiting for {args.journal} to appear", file=sys.stderr)
    if args.parent is not None and hasattr(os, "nice"):
        os.nice(10)  # beside a run: the run comes first whenever both want the CPU
    log_file = os.environ.get("FABPLAN_MONITOR_LOG")
    if log_file:
        from fabplan.runlog import add_file_handler

        add_file_handler(log_file)
    token = os.environ.get(TOKEN_ENV) or None  # never on the command line: `ps` shows that to every user
    if args.token and not token:
        import secrets

        token = secrets.token_urlsafe(18)

    def ready(url: str, tok: str | None) -> None:
        if args.parent is not None:  # a child beside a run: one machine-readable line
            print(f"{READY}{url}", flush=True)  # the run bound the socket and chose the token: it knows both
            return
        print(f"monitor: {url}  (journal {args.journal}; Ctrl+C to stop)", flush=True)
        if tok:
            note = "" if is_loopback(args.host) else f" (required: --host {args.host} is reachable from other machines)"
            print(f"token: {tok}{note}", flush=True)

    # beside a run: the run writes "end" to our stdin when it is over (EOF if its process dies)
    end_fd = sys.stdin.fileno() if args.parent is not None and sys.stdin is not None else None
    if args.no_page:
        rc = serve_notify_only(args.journal, args.notify, stall_s=args.stall_after, parent_pid=args.parent,
                               on_ready=ready, end_fd=end_fd, baseline_bytes=args.baseline_bytes)
    else:
        sock = None
        if args.fd is not None:  # bound by the run, which printed the address already
            import socket

            sock = socket.socket(fileno=args.fd)
        try:
            rc = serve(args.journal, host=args.host, port=args.port, token=token, notify=args.notify,
                       stall_s=args.stall_after, allow_pause=not args.no_pause, parent_pid=args.parent,
                       on_ready=ready, sock=sock, end_fd=end_fd, baseline_bytes=args.baseline_bytes)
        except KeyboardInterrupt:
            rc = 0
    # Served and cleaned up: leave without interpreter finalisation, which would kill helper threads
    # (the map loader, the web stack's workers) inside C code and can print glibc's "FATAL:
    # exception not rethrown" on the operator's terminal.
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def register(sub: argparse._SubParsersAction) -> None:
    from fabplan.monitor.server import DEFAULT_PORT

    p = sub.add_parser("monitor", help="watch a run in a browser: live page following its journal",
                       description="Serve a read-only web page that follows a fabrication journal as it grows "
                       "(run card, progress in time, counts, sample map, quality, events) and one control: "
                       "request pause (the path of Ctrl+C: the current shot finishes, the gate closes). The "
                       "journal may be written by another process or machine (a shared folder).",
                       epilog="the same JSON the page draws is at /api/state (and --json prints it once)")
    p.add_argument("journal", metavar="JOURNAL")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other needs a token, made up when not given)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--token", action="store_true",
                   help=f"require a token on 127.0.0.1 too (made up and printed, or ${TOKEN_ENV}); the page asks for it")
    p.add_argument("--notify", action="append", default=[], metavar="URL",
                   help="POST a JSON alert to this webhook on pause, failure, stall, first uncertain shot (repeatable)")
    p.add_argument("--stall-after", type=float, default=60.0, metavar="S",
                   help="alarm when a running journal gets no record for S seconds (default 60)")
    p.add_argument("--no-pause", action="store_true", help="hide the request-pause control (a view only)")
    p.add_argument("--json", action="store_true", help="print the state once as JSON and exit")
    p.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # started beside a run: exit with it
    p.add_argument("--no-page", action="store_true", help=argparse.SUPPRESS)  # webhooks only
    p.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a listening socket the run bound for us
    p.add_argument("--baseline-bytes", type=int, help=argparse.SUPPRESS)  # journal size before the session
    p.set_defaults(func=_handler)


def main(argv: list[str] | None = None) -> int:
    """`python -m fabplan.cli.cmd_monitor monitor ...` (the child process beside a run)."""
    from fabplan.cli import dispatch

    parser = argparse.ArgumentParser(prog="fabplan")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return dispatch(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
