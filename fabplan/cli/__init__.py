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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for user errors, no traceback)."""
    return dispatch(build_parser(), argv)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse and run one command: user errors print one line and give 2, never a traceback."""
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
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
