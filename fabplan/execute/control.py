"""Run control: deferred pause, immediate stop, and the signal handlers that drive them.

Modelled on bluesky's RunEngine state machine (idle -> running -> paused -> running | idle):
a pause is *deferred* to the next safe point (between shots: journal consistent, gate closed),
and a resumed run never replays a step that must not repeat (the journal decides that).

    Ctrl+C once   -> pause requested: the current shot finishes, then the run pauses
    Ctrl+C twice  -> stop now: `StopNow` is raised wherever the executor is; its `finally`
                     closes the gate and stops the stage
    SIGTERM/SIGHUP-> stop now (as a second Ctrl+C)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from enum import Enum


class RunState(str, Enum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSING = "pausing"  # pause requested, waiting for the next safe point
    PAUSED = "paused"
    STOPPING = "stopping"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"


class StopNow(BaseException):  # noqa: N818 - a control-flow signal like KeyboardInterrupt, not an error
    """Raised into the executor to stop immediately (second Ctrl+C, SIGTERM). BaseException so that
    `except Exception` in a driver cannot swallow it."""


_ALLOWED = {
    RunState.IDLE: {RunState.RUNNING},
    RunState.RUNNING: {RunState.PAUSING, RunState.PAUSED, RunState.STOPPING, RunState.DONE, RunState.STOPPED,
                       RunState.FAILED},
    RunState.PAUSING: {RunState.PAUSED, RunState.STOPPING, RunState.STOPPED, RunState.DONE, RunState.FAILED},
    RunState.PAUSED: {RunState.RUNNING, RunState.STOPPING, RunState.STOPPED, RunState.FAILED},
    RunState.STOPPING: {RunState.STOPPED, RunState.FAILED},
    RunState.DONE: set(),
    RunState.STOPPED: set(),
    RunState.FAILED: set(),
}


class RunControl:
    """Thread-safe run state; the executor calls `checkpoint()` at every safe point."""

    def __init__(self) -> None:
        self._state = RunState.IDLE
        self._lock = threading.Lock()
        self.reason = ""
        self.interrupts = 0

    @property
    def state(self) -> RunState:
        return self._state

    def _to(self, new: RunState) -> None:
        if new not in _ALLOWED[self._state] and new != self._state:
            raise RuntimeError(f"run state cannot go from {self._state.value} to {new.value}")
        self._state = new

    def start(self) -> None:
        with self._lock:
            self._to(RunState.RUNNING)
            if self._pause_pending:  # Ctrl+C during pre-flight: pause before the first shot
                self._state = RunState.PAUSING

    _pause_pending = False

    def request_pause(self, reason: str = "pause requested") -> None:
        with self._lock:
            if self._state == RunState.RUNNING:
                self._state = RunState.PAUSING
                self.reason = reason
            elif self._state == RunState.IDLE:
                self._pause_pending = True
                self.reason = reason

    def request_stop(self, reason: str = "stop requested") -> None:
        with self._lock:
            if self._state in (RunState.RUNNING, RunState.PAUSING, RunState.PAUSED):
                self._state = RunState.STOPPING
                self.reason = reason

    @property
    def pause_requested(self) -> bool:
        return self._state is RunState.PAUSING

    def checkpoint(self) -> RunState:
        """At a safe point: PAUSING becomes PAUSED; returns the state the executor must act on."""
        with self._lock:
            if self._state == RunState.PAUSING:
                self._state = RunState.PAUSED
            return self._state

    def resume(self) -> None:
        with self._lock:
            self._to(RunState.RUNNING)

    def finish(self, state: RunState) -> None:
        with self._lock:
            if self._state not in (RunState.DONE, RunState.STOPPED, RunState.FAILED):
                self._state = state

    # ------------------------------------------------------------------ signals
    shielded = False  # True while the executor closes the gate and writes the journal's end

    def on_interrupt(self) -> None:
        """SIGINT: first press pauses at the next safe point, the second stops now."""
        self.interrupts += 1
        if self.shielded:  # already stopping safely: never interrupt the shutdown itself
            self.request_stop("interrupted during shutdown")
            return
        if self.interrupts == 1 and self._state in (RunState.RUNNING, RunState.IDLE):
            self.request_pause("interrupted (Ctrl+C): finishing the current shot, then pausing")
            return
        self.request_stop("interrupted twice: stopping now")
        raise StopNow("interrupted twice")

    def on_terminate(self, signum: int) -> None:
        self.request_stop(f"received {signal.Signals(signum).name}: stopping now")
        if not self.shielded:
            raise StopNow(signal.Signals(signum).name)


class SignalHandlers:
    """Install SIGINT/SIGTERM/SIGHUP handlers routing to a RunControl; restores the old ones on exit.

    Only the main thread can install handlers; elsewhere (tests running the executor in a thread)
    this is a no-op and the caller drives the RunControl directly.
    """

    def __init__(self, control: RunControl, on_message: Callable[[str], None] | None = None):
        self.control = control
        self.on_message = on_message
        self._old: dict[int, object] = {}

    def _int(self, signum, frame) -> None:
        first = self.control.interrupts == 0
        if first and self.on_message:
            self.on_message("Ctrl+C: finishing the current shot, then pausing (press again to stop now)")
        self.control.on_interrupt()

    def _term(self, signum, frame) -> None:
        self.control.on_terminate(signum)

    def __enter__(self) -> SignalHandlers:
        if threading.current_thread() is not threading.main_thread():
            return self
        self._old[signal.SIGINT] = signal.signal(signal.SIGINT, self._int)
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                self._old[sig] = signal.signal(sig, self._term)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
