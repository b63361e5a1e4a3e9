"""Worker process pools whose workers die with the process that started them.

A `ProcessPoolExecutor`'s workers outlive a parent killed with SIGKILL (no chance to shut the pool
down): they keep parsing, or sit idle, until someone kills them. `orphan_safe_pool(n)` starts each
worker with a guard: on Linux `prctl(PR_SET_PDEATHSIG, SIGKILL)` (the kernel kills the worker when
the thread that created it exits), elsewhere (or if prctl is unavailable) a daemon thread that
watches the parent pid and exits the worker once it changes. Either way the worker first checks that
its parent is still the process that started it (the parent may die before the guard is in place).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5


def _set_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            threading.Event().wait(WATCH_INTERVAL_S)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def die_with_parent(parent_pid: int, user_init=None, user_args=()) -> None:
    """Pool initializer: tie this worker's life to `parent_pid`, then run the caller's initializer."""
    if not _set_pdeathsig():
        _watch_parent(parent_pid)
    if os.getppid() != parent_pid:  # the parent died before the guard was set
        os._exit(1)
    if user_init is not None:
        user_init(*user_args)


def orphan_safe_pool(max_workers: int, initializer=None, initargs=(), **kwargs) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor whose workers exit when this process dies (even by SIGKILL)."""
    return ProcessPoolExecutor(max_workers, initializer=die_with_parent,
                               initargs=(os.getpid(), initializer, tuple(initargs)), **kwargs)


__all__ = ["die_with_parent", "orphan_safe_pool"]
