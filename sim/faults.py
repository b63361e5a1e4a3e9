"""Scriptable fault injection for the emulators: `KIND[@K][:ARG]`, comma separated.

K is the 1-based index of the command (counted over all connections of one emulator) at which
the fault strikes; without @K it strikes at the next command. K may instead name a command,
`@NAME` or `@NAME#N` (its N-th call, default the first), so a test does not depend on how many
set-up commands a driver sends before it (e.g. `slow@PositionerPositionCompareEnable:1.0`,
`drop@GroupPositionCurrentGet#20`). Kinds:

  drop       close the connection instead of answering
  garble     answer with bytes that do not parse
  split      answer in 1-3 byte pieces (ARG: 'all' = every reply from K on)
  slow:S     answer S seconds late (past the driver's timeout)
  following  the first move at or after K ends in a following error
  limit      the first move at or after K hits a hardware travel limit
  estop      emergency stop at K (motion stops, group not initialised until re-initialised)
  interlock  the laser safety interlock opens at K (no more light)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

KINDS = ("drop", "garble", "split", "slow", "following", "limit", "estop", "interlock")
MOVE_KINDS = ("following", "limit")


@dataclass
class Fault:
    kind: str
    at: int  # global command index; 0 until a named trigger is reached
    arg: str = ""
    done: bool = False
    command: str = ""  # named trigger: strike at this command's `occurrence`-th call
    occurrence: int = 1


def parse_faults(spec) -> list[Fault]:
    """'drop@5,slow@3:2.0' or a list of such strings -> faults (at=0 means 'next command')."""
    if not spec:
        return []
    items = spec.split(",") if isinstance(spec, str) else [s for part in spec for s in part.split(",")]
    faults = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        head, _, arg = item.partition(":")
        kind, _, at = head.partition("@")
        kind = kind.strip().lower()
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r} (expected one of {', '.join(KINDS)})")
        at = at.strip()
        if at and not at.isdigit():
            name, _, nth = at.partition("#")
            if not name.isidentifier() or (nth and not nth.isdigit()) or nth == "0":
                raise ValueError(f"fault {item!r}: @K must be a command number, NAME or NAME#N")
            faults.append(Fault(kind, 0, arg.strip(), command=name, occurrence=int(nth or 1)))
            continue
        faults.append(Fault(kind, int(at) if at else 0, arg.strip()))
    return faults


class FaultPlan:
    """Counts commands and hands out the faults due at each one (thread-safe)."""

    def __init__(self, spec=None):
        self._lock = threading.Lock()
        self.count = 0
        self.faults: list[Fault] = []
        self.split_all = False
        self._calls: dict[str, int] = {}
        for f in parse_faults(spec):
            if f.command:
                self.faults.append(f)
            else:
                self.add(f.kind, f.at or None, f.arg)

    def add(self, kind: str, at: int | None = None, arg: str = "") -> None:
        """Schedule a fault at command `at` (default: the next command)."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self.faults.append(Fault(kind, at if at else self.count + 1, str(arg)))

    def next_command(self, is_move: bool = False, name: str = "") -> list[Fault]:
        """Advance the counter; return the faults that strike this command (`name`: its function)."""
        with self._lock:
            self.count += 1
            if name:
                self._calls[name] = calls = self._calls.get(name, 0) + 1
                for f in self.faults:
                    if f.command == name and not f.at and calls == f.occurrence:
                        f.at = self.count  # the named trigger is reached: strike from here on
            hits = []
            for f in self.faults:
                if f.done or not f.at or f.at > self.count:
                    continue
                if f.kind in MOVE_KINDS and not is_move:
                    continue  # waits for the first move at or after K
                if f.kind != "split" or f.arg != "all":
                    f.done = True
                hits.append(f)
            return hits
