"""Request a pause of a run from another process: a request file next to its journal.

The monitor runs in its own process (or on another machine reading a shared folder), so it cannot
call the run's `RunControl` directly. It writes `JOURNAL.pause` (atomically: a temporary file, then
a rename); the run watches for that file and, when it appears, calls `control.request_pause()`: the
very path of a first Ctrl+C (the current shot finishes, the gate is closed, the journal records the
pause). The file is consumed when honoured, and a stale one is removed when a session starts, so a
request never carries over into a later resume.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("fabplan.execute.pause")

POLL_S = 0.2


def request_file(journal: str | os.PathLike) -> Path:
    j = Path(journal)
    return j.with_name(j.name + ".pause")


def request_pause(journal: str | os.PathLike, reason: str = "pause requested") -> dict[str, Any]:
    """Ask the run writing `journal` to pause at its next safe point (returns what was written)."""
    target = request_file(journal)
    rec = {"reason": reason, "t": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rec))
    os.replace(tmp, target)
    return {"request_file": str(target)}


class PauseWatcher:
    """A daemon thread that turns a request file into `control.request_pause(reason)`.

    Use as a context manager around the session; costs one stat() every POLL_S seconds."""

    def __init__(self, journal: str | os.PathLike, control, poll_s: float = POLL_S):
        self.path = request_file(journal)
        self.control = control
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.honoured = 0

    def __enter__(self) -> PauseWatcher:
        try:
            self.path.unlink()  # a stale request from an earlier session
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove stale pause request %s: %s", self.path, exc)
        self._thread = threading.Thread(target=self._run, name="pause-watcher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            if not self.path.exists():
                continue
            try:
                rec = json.loads(self.path.read_text() or "{}")
            except (OSError, ValueError):
                rec = {}
            try:
                self.path.unlink()
            except OSError:
                pass
            reason = str(rec.get("reason") or "pause requested")[:200]
            log.warning("pause request file found: %s", reason)
            self.honoured += 1
            self.control.request_pause(reason)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
