"""The `fabplan` command line.

Sub-commands live in `fabplan/cli/cmd_*.py`; each module defines `register(subparsers)` which adds
its parser(s) and sets `func=handler` (handler(args) -> int exit code). Modules are discovered, so
adding a command never means editing this file.

Ctrl+C: a command may say what an interrupt means for it with `set_defaults(interrupt_exit=N)`
(`run` / `dry-run`: 3, an operator stop; others 130). The process entry (`run_process`, behind the
`fabplan` script and `python -m fabplan`) ends every process with a documented code whenever a
Ctrl+C lands: the command's own until it returns, then that command's result (a Ctrl+C while
Python shuts down, atexit callbacks and threads joined, interrupts nothing): never a traceback,
130 from a run, or death by SIGINT (exit -2).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import pkgutil
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

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
    interrupt_exit = int(getattr(args, "interrupt_exit", 130))
    _Interrupts.exit_code = interrupt_exit
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
    except KeyboardInterrupt:  # (run / dry-run handle their own; this is the moment around them)
        print("interrupted (Ctrl+C)", file=sys.stderr)
        return interrupt_exit
    except BrokenPipeError:  # `fabplan ... | head`
        return 0
    except OSError as exc:  # a path the user named cannot be read or written (-o into a missing folder, ...)
        if exc.filename is None:
            raise
        print(f"error: cannot open {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def run() -> NoReturn:
    """The `fabplan` script and `python -m fabplan`."""
    run_process(main)


# ---------------------------------------------------------------------- process entry and exit

_INTERRUPT_EXIT = {"run": 3, "dry-run": 3}  # before the arguments are parsed (cmd_run sets interrupt_exit)


class _Interrupts:
    """Ctrl+C in a process started by `run_process`: a KeyboardInterrupt while the command runs (the
    command decides its exit code), only counted once it has returned."""

    finishing = False  # the command has returned: its result, and the exit code, are decided
    late = 0  # Ctrl+C counted while finishing
    exit_code = 130  # what a Ctrl+C that interrupts this command means (run / dry-run: 3)


def _on_sigint(signum, frame) -> None:
    if _Interrupts.finishing:
        _Interrupts.late += 1
        return
    raise KeyboardInterrupt


def run_process(entry: Callable[[], Any]) -> NoReturn:
    """Run `entry()` (returns the exit code) and end the process with that code, whenever a Ctrl+C lands.

    Python's own ending is where a Ctrl+C used to escape: a KeyboardInterrupt between the command's
    return and `sys.exit` killed the process by SIGINT (exit -2) or met dispatch's 130, one inside
    an atexit callback (a sim:// lab closing its pulse log) or while non-daemon threads were joined
    printed a traceback, and late in the interpreter's shutdown Python puts back the default
    handler (-2 again). Here, once the command has returned, its code stands: a Ctrl+C interrupts
    nothing any more (the run has ended, the gate was closed before its summary) and is only
    counted while the threads are joined and the atexit callbacks run (done here, in Python's
    order), then ignored (SIG_IGN: the one disposition the interpreter's shutdown leaves alone).
    A Ctrl+C while the command runs is the command's (run / dry-run: a pause, or exit 3 when it
    cuts the loading, connecting or the summary short)."""
    first = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    _Interrupts.exit_code = _INTERRUPT_EXIT.get(first, 130)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not started with Ctrl+C ignored (nohup)
        signal.signal(signal.SIGINT, _on_sigint)
    code: Any = 1
    try:
        try:
            code = entry()
        finally:
            _Interrupts.finishing = True  # no call before this: a Ctrl+C cannot land in between
    except KeyboardInterrupt:  # outside the command's own handling: importing, or around dispatch
        _Interrupts.finishing = True
        code = _Interrupts.exit_code
        _say("interrupted (Ctrl+C)")
    except SystemExit as exc:  # argparse: --help, a usage error
        code = exc.code
    _finish_process(code)


def _finish_process(code: Any) -> NoReturn:
    shutdown = getattr(threading, "_shutdown", None)  # what Py_FinalizeEx does first: join non-daemon threads
    if shutdown is not None:
        shutdown()
    else:
        for t in threading.enumerate():
            if t is not threading.current_thread() and not t.daemon:
                t.join()
    atexit._run_exitfuncs()  # then the atexit callbacks (each once: the list is cleared)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # CPython: a KeyboardInterrupt that ended any code run from a *string* (exec of a str, as
    # namedtuple and dataclasses do while a module imports) sets a process-wide flag, even when the
    # interrupt was caught; under `python -m` the interpreter then kills itself by SIGINT at exit
    # (-2) whatever the exit code. Each string exec clears the flag as it starts: clear it here.
    exec("pass", {})
    if _Interrupts.late:
        shown = 0 if code is None else code
        _say(f"Ctrl+C ignored: the command had already ended (exit {shown})")
    sys.exit(code)


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):  # stderr closed or a broken pipe: the exit code still tells
        pass
