"""Request a pause of a run from another process: a request file next to its journal.

The monitor runs in its own process (or on another machine reading a shared folder), so it cannot
call the run's `RunControl` directly. It writes `JOURNAL.pause` (atomically: a temporary file, then
a rename), the file a `RunSession` polls for while it runs (fabplan/execute/session.py,
`session.pause_file`): the session then calls `request_pause()`, the very path of a first Ctrl+C
(the current shot finishes, the gate is closed, the journal records the pause). The session removes
the file when it acts on it, and a stale one when it starts, so a request never carries over into a
later resume. The file's content (who asked, why) is for people; the session needs only its presence.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any


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
