"""Read an emulator's pulse log (the ground truth of where light hit) incrementally.

The log is CSV `t_s,x_um,y_um,z_um,energy_uj,gate,source` (or JSON lines with those keys). Only
pulses with light (gate 1) count. `read_new()` returns what was appended since the last call; a
`flush` callable (the in-process emulator's log flush) is called first so a row's pulses are all
on disk when it is confirmed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


class PulseLogReader:
    def __init__(self, path: str | Path, flush: Callable[[], None] | None = None):
        self.path = Path(path)
        self.flush = flush
        self.offset = 0
        self._tail = b""

    def read_new(self, expect: int | None = None, timeout_s: float = 1.0) -> np.ndarray:
        """(k, 4) array of t_s, x_um, y_um, z_um for pulses with light appended since the last call.

        With `expect`, keep reading until that many arrived or `timeout_s` passed (an emulator in
        another process flushes its log on its own schedule)."""
        got = self._read_once()
        if expect is None or len(got) >= expect:
            return got
        deadline = time.monotonic() + timeout_s
        parts = [got]
        n = len(got)
        while n < expect and time.monotonic() < deadline:
            time.sleep(0.02)
            more = self._read_once()
            parts.append(more)
            n += len(more)
        return np.concatenate(parts)

    def _read_once(self) -> np.ndarray:
        if self.flush is not None:
            self.flush()
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return np.empty((0, 4))
        self.offset += len(data)
        data = self._tail + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._tail = data
            return np.empty((0, 4))
        self._tail = data[cut + 1:]
        return parse_pulses(data[: cut + 1])


def parse_pulses(data: bytes) -> np.ndarray:
    lines = [ln for ln in data.split(b"\n") if ln and not ln.startswith(b"t_s")]
    if not lines:
        return np.empty((0, 4))
    if lines[0].startswith(b"{"):
        recs = [json.loads(ln) for ln in lines]
        rows = [(r["t_s"], r["x_um"], r["y_um"], r["z_um"]) for r in recs if int(r.get("gate", 1)) == 1]
        return np.array(rows, float).reshape(-1, 4)
    body = b"\n".join(lines)
    for src in (b",pco", b",gpio"):  # drop the one text column, then parse in C
        body = body.replace(src + b"\n", b"\n")
        if body.endswith(src):
            body = body[: -len(src)]
    try:
        flat = np.array(body.replace(b"\n", b",").split(b","), dtype=float)
        arr = flat.reshape(-1, 6)
    except ValueError:
        arr = np.array([ln.split(b",")[:6] for ln in lines], dtype=float)
    return arr[arr[:, 5] == 1][:, :4]


def read_pulse_log(path: str | Path) -> np.ndarray:
    """Whole log: (k, 4) t, x, y, z of pulses with light."""
    return PulseLogReader(path).read_new()
