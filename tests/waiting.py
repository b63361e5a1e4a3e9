"""Waiting for a condition in tests: poll until it holds or a deadline passes, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(cond: Callable[[], T], timeout_s: float = 30.0, what: str = "condition", poll_s: float = 0.05) -> T:
    """The first truthy value of `cond()`; AssertionError naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(poll_s)
    raise AssertionError(f"timed out waiting for {what}")
