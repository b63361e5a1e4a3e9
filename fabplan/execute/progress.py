"""Live progress: a rich bar on a terminal (shots done/total, rate, ETA, disc id, mode); when the
output is not a terminal, one plain line per 10 % so logs stay short.

`update()` is called once per shot at up to thousands of shots per second, so it only stores
numbers; the display is refreshed at most every 0.1 s.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    def __init__(self, total: int, mode: str, *, done: int = 0, stream: TextIO | None = None,
                 live: bool | None = None, enabled: bool = True,
                 on_update: Callable[[int, int, str], None] | None = None,
                 on_message: Callable[[str], None] | None = None):
        self.total = max(int(total), 0)
        self.mode = mode
        self.start_done = done
        self.done = done
        self.disc_id = ""
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.live = (self.stream.isatty() if live is None else live) and enabled
        self._t0 = time.monotonic()
        self._next_refresh = 0.0
        self._next_decile = self._decile_after(done)
        self._rich = None
        self._task = None
        self.on_update = on_update  # RunHooks.on_progress
        self.on_message = on_message  # RunHooks.on_message

    def _decile_after(self, done: int) -> int:
        if not self.total:
            return 1 << 62
        step = max(self.total // 10, 1)
        return (done // step + 1) * step

    def __enter__(self) -> Progress:
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("[bold]{task.fields[mode]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[disc]}"),
                console=Console(file=self.stream),
                auto_refresh=False,
                transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task("shots", total=self.total, completed=self.done,
                                             mode=self.mode, rate="", disc="")
        return self

    def rate(self) -> float:
        dt = time.monotonic() - self._t0
        return (self.done - self.start_done) / dt if dt > 0 else 0.0

    def update(self, done: int, disc_id: str = "") -> None:
        self.done = done
        self.disc_id = disc_id
        if self.on_update is not None:
            self.on_update(done, self.total, disc_id)
        if not self.enabled:
            return
        now = time.monotonic()
        if self._rich is not None:
            if now >= self._next_refresh:
                self._next_refresh = now + 0.1
                self._refresh()
        elif done >= self._next_decile:
            self._next_decile = self._decile_after(done)
            eta = (self.total - done) / self.rate() if self.rate() > 0 else float("nan")
            print(f"{self.mode}: {done}/{self.total} shots ({100 * done / self.total:.0f} %), "
                  f"{self.rate():.0f} shots/s, ETA {eta:.0f} s, at {disc_id}", file=self.stream, flush=True)

    def _refresh(self) -> None:
        assert self._rich is not None
        self._rich.update(self._task, completed=self.done, rate=f"{self.rate():.0f}/s", disc=self.disc_id)
        self._rich.refresh()

    def message(self, text: str) -> None:
        if self.on_message is not None:
            self.on_message(text)
        elif self._rich is not None:
            self._rich.console.print(text)
        elif self.enabled:
            print(text, file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._refresh()
            self._rich.stop()
            self._rich = None
