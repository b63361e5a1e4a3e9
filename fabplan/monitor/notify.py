"""Webhook alerts: a short JSON POST on pause, failure, stall and the first uncertain shot.

The body carries "text" (what Slack, Mattermost and Rocket.Chat incoming webhooks display) and the
same facts as fields for scripts:

    {"event": "pause"|"failure"|"stall"|"uncertain", "text": "...", "run_id": .., "design": ..,
     "journal": .., "host": .., "state": .., "counts": {..}, "t": ..}

Posts go out on a background thread with a short timeout and never raise: an unreachable webhook
must not disturb a run. A webhook URL usually embeds a secret, so logs name only its host.
What was true when the notifier first looked at an existing journal (an old pause, uncertain shots
of an earlier session) is not announced again: only changes seen while watching are, and a run
already stalled. Beside a new run the journal does not exist yet, so everything it says is news.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from fabplan.errors import UserError

log = logging.getLogger("fabplan.monitor.notify")

TIMEOUT_S = 5.0


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--notify {redact(url)}: give an http:// or https:// webhook URL")
    return url


def redact(url: str) -> str:
    """scheme://host[:port]/... : the path and query of a webhook are its secret."""
    p = urlsplit(url)
    host = p.hostname or "?"
    return f"{p.scheme}://{host}{':' + str(p.port) if p.port else ''}/..."


class Notifier:
    """Watches a `Monitor`'s state after each update (`observe`) and posts what changed."""

    def __init__(self, urls: list[str], *, timeout_s: float = TIMEOUT_S):
        self.urls = [check_url(u) for u in urls]
        self.timeout_s = timeout_s
        self.sent: list[dict[str, Any]] = []  # every message handed to the sender (tests, logs)
        self._baseline = False
        self._pauses = 0
        self._ends = 0
        self._stalled = False
        self._uncertain_told = False
        self._interrupted = False
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def fresh(self) -> None:
        """The journal does not exist yet (a run about to start): everything it will say is news."""
        self._baseline = True

    # ------------------------------------------------------------------ detection
    def observe(self, monitor) -> list[dict[str, Any]]:
        """Compare the monitor's state with the last look; post and return the new alerts."""
        m = monitor.model
        if m.header is None:
            return []
        st = monitor.state()
        pauses = int(m.n_events.get("pause", 0))
        ends = list(m.ends)
        unc = int(st["counts"]["uncertain"])
        state = st["state"]["state"]
        alerts: list[tuple[str, str]] = []
        if not self._baseline:
            self._baseline = True
            self._pauses, self._ends = pauses, len(ends)
            self._uncertain_told = unc > 0
            self._interrupted = state == "interrupted"
            # a run found stalled at the first look is news (a crashed writer on another host): go on
        if st["state"]["stalled"] and not self._stalled:
            alerts.append(("stall", f"run stalled: no journal record for {st['state']['last_record_age_s']:.0f} s"))
        if pauses > self._pauses:
            alerts.append(("pause", "run paused: " + str(_last_message(m, "pause") or "pause requested")))
        for end in ends[self._ends:]:
            status = end.get("status")
            if status == "failed":
                alerts.append(("failure", f"run FAILED: {end.get('message', '')}"))
            elif status in ("paused", "stopped") and pauses <= self._pauses:
                alerts.append(("pause", f"run {status}: {end.get('message', '')}"))
        if state == "interrupted" and not self._interrupted:
            alerts.append(("failure", "run interrupted: its process is gone without an end record"))
        if unc and not self._uncertain_told:
            ids = ", ".join(st["uncertain"]["ids"][:5])
            alerts.append(("uncertain", f"first uncertain shot(s): {unc} ({ids})"))
            self._uncertain_told = True
        self._pauses, self._ends = pauses, len(ends)
        self._stalled = bool(st["state"]["stalled"])
        self._interrupted = state == "interrupted"
        out = []
        for event, text in alerts:
            card = st["card"]
            name = card.get("design") or card.get("run_id")
            msg = {"event": event, "text": f"fabplan {name} ({card.get('run_id')}): {text}",
                   "run_id": card.get("run_id"), "design": card.get("design"), "journal": card.get("journal"),
                   "host": card.get("host"), "state": state, "counts": st["counts"], "t": time.time()}
            if st.get("resume"):
                msg["resume_command"] = st["resume"]["command"]
            out.append(msg)
            self.post(msg)
        return out

    # ------------------------------------------------------------------ sending
    def post(self, msg: dict[str, Any]) -> None:
        self.sent.append(msg)
        if not self.urls:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_loop, name="notify", daemon=True)
            self._thread.start()
        for url in self.urls:
            self._queue.put((url, msg))

    def _send_loop(self) -> None:
        while True:
            url, msg = self._queue.get()
            try:
                data = json.dumps(msg, allow_nan=False, default=str).encode()
                req = urllib.request.Request(url, data=data, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "User-Agent": "fabplan-monitor"})
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    resp.read(1024)
                self.delivered += 1
                log.info("notified %s: %s", redact(url), msg["event"])
            except Exception as exc:  # never disturb the run
                self.failed += 1
                log.warning("webhook %s failed: %s", redact(url), type(exc).__name__)
            finally:
                self._queue.task_done()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until queued posts were attempted (at exit); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


def _last_message(model, what: str) -> str | None:
    for ev in reversed(model.events):
        if ev.get("what") == what:
            return ev.get("message")
    return None
