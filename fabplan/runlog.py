"""Run log: the standard `logging` module, one file per run next to its journal, `-v/-q` on the CLI.

Loggers, by the package that logs (so `-v` or a handler can pick them):
    fabplan.execute   executor: sessions, state changes, pauses, faults
    fabplan.planning  planner: what was planned and its estimate
    fabplan.monitor   the monitor page and its webhooks
    stage_drivers     device traffic at DEBUG (the `spy+` URLs log every command and reply)
    sim               the emulators

The terminal gets WARNING and above (-v: INFO, -vv: DEBUG, -q: ERROR only); a run's log file
(JOURNAL.log, appended across resumes) gets DEBUG whatever the terminal shows. Every handler
installed here carries `Redact`, so a password or token that reaches a message is masked before it
is written anywhere.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOTS = ("fabplan", "stage_drivers", "sim")
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
SECRET_ENV = ("FABPLAN_XPS_PASSWORD", "FABPLAN_MONITOR_TOKEN", "FABPLAN_DB_PASSWORD", "PGPASSWORD")

_SECRET_RE = re.compile(r"(?i)\b(password|passwd|pwd|token|secret|api[_-]?key)(\s*[=:]\s*|\"\s*:\s*\")([^\s&\"',;]+)")
_USERINFO_RE = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+):([^@\s/]+)@")


def redact(text: str) -> str:
    """Mask `password=...`, `token: ...`, `scheme://user:PASSWORD@host` and known secret env values."""
    text = _USERINFO_RE.sub(r"\1:***@", text)
    text = _SECRET_RE.sub(lambda m: m.group(1) + m.group(2) + "***", text)
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, "***")
    return text


class Redact(logging.Filter):
    """Rewrites each record's message with `redact` (the formatted message, arguments included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def verbosity_level(verbose: int = 0, quiet: bool = False) -> int:
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


class _Stderr(logging.StreamHandler):
    """The terminal handler writes to whatever sys.stderr is at the time (redirections, tests)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


_console: logging.Handler | None = None


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Terminal logging for the CLI (idempotent: a second call only changes the level)."""
    global _console
    level = verbosity_level(verbose, quiet)
    if _console is None:
        _console = _Stderr()
        _console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        _console.addFilter(Redact())
        for name in ROOTS:
            logging.getLogger(name).addHandler(_console)
    _console.setLevel(level)
    for name in ROOTS:
        logging.getLogger(name).setLevel(logging.DEBUG if _has_file_handler() else level)


def _has_file_handler() -> bool:
    return any(isinstance(h, logging.FileHandler) for h in logging.getLogger("fabplan").handlers)


def add_file_handler(path: str | os.PathLike, level: int = logging.DEBUG) -> logging.FileHandler:
    """Append every fabplan/stage_drivers/sim record at `level`+ to `path` (created with its folder)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8", delay=False)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(Redact())
    for name in ROOTS:
        lg = logging.getLogger(name)
        lg.addHandler(handler)
        if lg.level == logging.NOTSET or lg.level > level:
            lg.setLevel(level)
    return handler


def remove_handler(handler: logging.Handler) -> None:
    for name in ROOTS:
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def log_path(journal: str | os.PathLike) -> Path:
    j = Path(journal)
    return j.with_name(j.name + ".log") if j.suffix != ".jsonl" else j.with_suffix(".log")


@contextmanager
def run_log(journal: str | os.PathLike) -> Iterator[Path]:
    """A run's log file next to its journal (JOURNAL.log; appended by each resume) for the block."""
    path = log_path(journal)
    handler = add_file_handler(path)
    try:
        yield path
    finally:
        remove_handler(handler)
