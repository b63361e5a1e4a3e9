"""The `fabplan` command line.

Sub-commands live in `fabplan/cli/cmd_*.py`; each module defines `register(subparsers)` which adds
its parser(s) and sets `func=handler` (handler(args) -> int exit code). Modules are discovered, so
adding a command never means editing this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from fabplan import __version__
from fabplan.errors import ProblemsError, UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fabplan",
        description="Design, plan, drive and evaluate femtosecond donut-beam microdisc laser arrays.",
    )
    parser.add_argument("--version", action="version", version=f"fabplan {__version__}")
    add_verbosity(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            module.register(sub)
    stack = list(sub.choices.values())  # `fabplan run ... -v` as well as `fabplan -v run ...`
    while stack:
        cmd = stack.pop()
        add_verbosity(cmd, suppress=True)
        for action in cmd._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return parser


def add_verbosity(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """-v (INFO; -vv DEBUG) and -q (errors only) for the log on the terminal (fabplan/runlog.py).

    On the sub-commands they are accepted but not listed (`fabplan --help` documents them once)."""
    if suppress:
        parser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more on the terminal (-v info, -vv debug incl. the device traffic of spy+ URLs); "
                             "also accepted after the command")
    parser.add_argument("-q", "--quiet", action="store_true", help="log only errors on the terminal")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for user errors, no traceback)."""
    return dispatch(build_parser(), argv)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse and run one command: user errors print one line and give 2, never a traceback."""
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from fabplan.runlog import setup_logging

    setup_logging(getattr(args, "verbose", 0) or 0, bool(getattr(args, "quiet", False)))
    try:
        return int(args.func(args) or 0)
    except ProblemsError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `fabplan ... | head`
        return 0
    except OSError as exc:  # a path the user named cannot be read or written (-o into a missing folder, ...)
        if exc.filename is None:
            raise
        print(f"error: cannot open {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def run() -> None:
    sys.exit(main())
