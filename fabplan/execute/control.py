"""Run control: deferred pause, immediate stop, and the signal handlers that drive them.

Modelled on bluesky's RunEngine state machine (idle -> running -> paused -> running | idle):
a pause is *deferred* to the next safe point (between shots: journal consistent, gate closed),
and a resumed run never replays a step that must not repeat (the journal decides that).

    Ctrl+C once   -> pause requested: the current shot finishes, then the run pauses (a Ctrl+C
                     during pre-flight: the run pauses before arming, nothing fired)
    Ctrl+C twice  -> stop now: `StopNow` is raised wherever the executor is; its `finally`
                     closes the gate and stops the stage
    SIGTERM/SIGHUP-> stop now (as a second Ctrl+C)

Exit codes of `fabplan run` / `dry-run` (fabplan/cli/cmd_run.py EPILOG): a pause or stop is 3, and so
is a Ctrl+C that cuts the command short outside the firing loop (loading, connecting, printing the
summary). Once the command has returned, the run's code stands: a Ctrl+C while the process ends
(atexit callbacks, threads joined, the interpreter's shutdown) interrupts nothing and is ignored
with a note (`fabplan.cli.run_process`); never a traceback, 130 or death by SIGINT (-2).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass
class RunHooks:
    """What a caller (the CLI, the demo, a notebook, a browser monitor) hears from a run, and how it
    answers a pause. Every field is optional; hooks run on the executor's thread, so keep them short.

    on_progress(done, total, disc_id)  after every shot (a fly row: once per row)
    on_message(text)                   a line for a person (pause, resume); default: the progress bar's stream
    on_state(old, new, reason)         every RunState change (running -> pausing -> paused -> ...)
    on_pause() -> bool                 at a pause (gate closed, journal consistent): True resumes the
                                       run, False (or no hook) ends the session "paused" (resume it later
                                       from its journal)
    progress_bar                       draw the terminal bar (a line per 10 % when not a terminal)
    """

    on_progress: Callable[[int, int, str], None] | None = None
    on_message: Callable[[str], None] | None = None
    on_state: Callable[[RunState, RunState, str], None] | None = None
    on_pause: Callable[[], bool] | None = None
    progress_bar: bool = False


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
    """Thread-safe run state; the executor calls `checkpoint()` at every safe point.

    Every change of state is passed to the listeners (`subscribe`) as (old, new, reason), after the
    lock is released: a listener may itself request a pause or a stop."""

    def __init__(self) -> None:
        self._state = RunState.IDLE
        self._lock = threading.RLock()  # re-entrant: a signal handler may run while the main thread holds it
        self.reason = ""
        self.interrupts = 0
        self._pause_pending = False
        self._listeners: list[Callable[[RunState, RunState, str], None]] = []
        self._changes: list[tuple[RunState, RunState, str]] = []

    @property
    def state(self) -> RunState:
        return self._state

    def subscribe(self, listener: Callable[[RunState, RunState, str], None]) -> None:
        """Call `listener(old, new, reason)` at every state change."""
        self._listeners.append(listener)

    def _set(self, new: RunState, check: bool = False) -> None:
        if check and new not in _ALLOWED[self._state] and new != self._state:
            raise RuntimeError(f"run state cannot go from {self._state.value} to {new.value}")
        if new != self._state:
            self._changes.append((self._state, new, self.reason))
        self._state = new

    def _notify(self) -> None:
        while self._changes:
            old, new, reason = self._changes.pop(0)
            for fn in list(self._listeners):
                fn(old, new, reason)

    def start(self) -> None:
        with self._lock:
            self._set(RunState.RUNNING, check=True)
            if self._pause_pending:  # Ctrl+C during pre-flight: pause before the first shot
                self._set(RunState.PAUSING)
        self._notify()

    def request_pause(self, reason: str = "pause requested") -> None:
        """Pause at the next safe point (the path of a first Ctrl+C); safe from any thread."""
        with self._lock:
            if self._state == RunState.RUNNING:
                self.reason = reason
                self._set(RunState.PAUSING)
            elif self._state == RunState.IDLE:
                self._pause_pending = True
                self.reason = reason
        self._notify()

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop at the next safe point (journal consistent, gate closed); safe from any thread."""
        with self._lock:
            if self._state in (RunState.RUNNING, RunState.PAUSING, RunState.PAUSED):
                self.reason = reason
                self._set(RunState.STOPPING)
        self._notify()

    def checkpoint(self) -> RunState:
        """At a safe point: PAUSING becomes PAUSED; returns the state the executor must act on."""
        if self._state is RunState.RUNNING:  # the per-shot fast path: no lock, no listener
            return RunState.RUNNING
        with self._lock:
            if self._state == RunState.PAUSING:
                self._set(RunState.PAUSED)
            state = self._state
        self._notify()
        return state

    def resume(self) -> None:
        with self._lock:
            self.interrupts = 0  # the next Ctrl+C pauses again
            self.reason = "resumed"
            self._set(RunState.RUNNING, check=True)
        self._notify()

    def finish(self, state: RunState) -> None:
        with self._lock:
            if self._state not in (RunState.DONE, RunState.STOPPED, RunState.FAILED):
                self._set(state)
        self._notify()

    # ------------------------------------------------------------------ signals
    shielded = False  # True while the executor closes the gate and writes the journal's end

    def on_interrupt(self) -> None:
        """SIGINT: first press pauses at the next safe point, the second stops now."""
        self.interrupts += 1
        if self.shielded:  # already stopping safely: never interrupt the shutdown itself
            self.request_stop("interrupted during shutdown")
            return
        if self.interrupts == 1 and self._state in (RunState.RUNNING, RunState.IDLE):
            self.request_pause("interrupted (Ctrl+C): finishing the current shot, then pausing (press again to stop now)")
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
    this is a no-op and the caller drives the RunControl directly. What a signal did is told through
    the RunControl's state listeners (the reason says "Ctrl+C ...").
    """

    def __init__(self, control: RunControl):
        self.control = control
        self._old: dict[int, object] = {}

    def _int(self, signum, frame) -> None:
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
        # SIGINT last: once it is back to the caller's handler a Ctrl+C may raise KeyboardInterrupt
        # here, and SIGTERM/SIGHUP must not stay routed to a run that has ended (shielded: ignored)
        for sig, old in reversed(list(self._old.items())):
            signal.signal(sig, old)
        self._old.clear()
