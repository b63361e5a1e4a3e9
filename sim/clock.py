"""Simulated time: real time, accelerated real time, or instant (durations accounted, no sleeping)."""

from __future__ import annotations

import math
import threading
import time


def parse_speedup(value) -> float:
    """'inf'/'instant' -> inf (instant moves); a number > 0 -> that factor."""
    if isinstance(value, str) and value.strip().lower() in ("inf", "instant", "infinite"):
        return math.inf
    speed = float(value)
    if not speed > 0:
        raise ValueError(f"speedup must be > 0 or 'inf', got {value!r}")
    return speed


class SimClock:
    """Seconds of emulated time. With speedup=inf nothing sleeps: waiting advances the clock."""

    def __init__(self, speedup: float = 1.0):
        self.speedup = parse_speedup(speedup)
        self.instant = math.isinf(self.speedup)
        self._t = 0.0
        self._t0 = time.monotonic()
        self._lock = threading.Lock()

    def now(self) -> float:
        if self.instant:
            return self._t
        return (time.monotonic() - self._t0) * self.speedup + self._t

    def advance(self, dt: float) -> None:
        """Account for `dt` seconds spent (instant mode), e.g. a burst of pulses."""
        if dt > 0:
            with self._lock:
                self._t += dt if self.instant else 0.0

    def wait_until(self, t: float, cancel: threading.Event | None = None) -> bool:
        """Block (scaled) until emulated time t; False if `cancel` was set first."""
        if self.instant:
            with self._lock:
                self._t = max(self._t, t)
            return not (cancel is not None and cancel.is_set())
        while True:
            remaining = (t - self.now()) / self.speedup
            if remaining <= 0:
                return True
            if cancel is not None:
                if cancel.wait(min(remaining, 0.05)):
                    return False
            else:
                time.sleep(min(remaining, 0.05))
