"""Follow a journal while it is written: read only the appended bytes, fold them into per-shot arrays.

Why not `read_journal` in a loop: it re-reads the whole file (50 MB for a 250,000-shot run) at each
look. The follower keeps its file offset and parses only what was appended; a torn last line (the
writer is mid-`write`, or a power cut) stays in a buffer until its newline arrives, and a line that
never parses is counted, like the journal reader does. If the file is replaced (another inode) or
shrinks, the model starts again from the first byte.

The state rules are the journal's (fabplan/execute/journal.py): intent -> uncertain, fired -> fired,
not_fired -> pending again, `unconfirmed` -> uncertain again, `uncertain` marks pending shots.
The hot records (intent, fired) are read in bulk, and only for what the counts need: their shot
number (one regular expression per batch of lines in the writer's layout) and byte offset. Their
numbers (target, encoder, energy, time) are parsed later, from the file at those offsets, for the
few shots that need them (the quality window, a clicked disc): a follower costs the run's machine
little CPU. Any other layout falls back to `json.loads`, so a change of key order costs speed,
never correctness. Consecutive hot lines are applied as one batch: inside a batch a shot has
at most one intent followed by its fired record (a second intent for the same shot only comes in a
later session, after a `session` line, which ends the batch).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PENDING, UNCERTAIN, FIRED = 0, 1, 2  # the journal's codes (fabplan.execute.journal)

_INTENT = b'{"k":"intent",'
_FIRED = b'{"k":"fired",'
_SEQ_RE = re.compile(rb'"seq":(\d+),')  # once per hot line: a key inside a JSON string would be escaped
_INTENT_NUMS = re.compile(  # the writer's layout of an intent: seq, x, y, z, e, t
    rb'^\{"k":"intent","seq":(\d+),"id":"(?:[^"\\]|\\.)*","x":([^,]*),"y":([^,]*),"z":([^,]*),"e":([^,]*),'
    rb'"n":\d+,"t":([^,}]*)[,}]', re.M)
_FIRED_NUMS = re.compile(  # and of a fired record: seq, ex, ey, ez, e, t
    rb'^\{"k":"fired","seq":(\d+),"ex":([^,]*),"ey":([^,]*),"ez":([^,]*),"e":([^,]*),"t":([^,}]*)[,}]', re.M)
_T_RE = re.compile(rb',"t":([0-9.eE+-]+)(?:,"h":"[0-9a-f]*")?\}$')  # "h": the journal's record chain

EVENT_KEEP = 500  # most recent events kept for the page (counts are exact regardless)


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


@dataclass
class RunModel:
    """Per-shot arrays and the run's records, as far as the journal has been read."""

    header: dict[str, Any] | None = None
    n: int = 0
    state: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    intent_count: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    fire_count: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    target: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    planned_e: np.ndarray = field(default_factory=lambda: np.zeros(0))
    encoder: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    t_intent: np.ndarray = field(default_factory=lambda: np.zeros(0))
    t_fired: np.ndarray = field(default_factory=lambda: np.zeros(0))
    off_intent: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # byte offset of its line
    off_fired: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    have_intent: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # numbers parsed from that line
    have_fired: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    fired_order: list[np.ndarray] = field(default_factory=list)  # seqs in the order their fired lines came
    sessions: list[dict[str, Any]] = field(default_factory=list)
    ends: list[dict[str, Any]] = field(default_factory=list)
    events: deque = field(default_factory=lambda: deque(maxlen=EVENT_KEEP))  # every non-shot record, trimmed
    not_fired: dict[int, str] = field(default_factory=dict)
    skipped: set[int] = field(default_factory=set)  # shots a session left out (uncertain, not re-fired)
    declared_uncertain: set[int] = field(default_factory=set)  # named by unconfirmed/uncertain records
    n_events: dict[str, int] = field(default_factory=dict)  # count per kind/what
    last_seq: int = -1  # shot of the last intent (where the stage is)
    interlock_closed_t: float = math.nan  # Unix time the interlock was last seen closed ("interlock" records)
    interlock_open: bool | None = None  # the last interlock record's verdict (None: no record yet)
    last_t: float = math.nan  # time stamp of the last record
    bad_lines: int = 0
    records: int = 0
    version: int = 0  # bumped whenever something was read

    def reset_arrays(self, n: int) -> None:
        self.n = n
        self.state = np.zeros(n, np.int8)
        self.intent_count = np.zeros(n, np.int32)
        self.fire_count = np.zeros(n, np.int32)
        self.target = np.full((n, 3), np.nan)
        self.planned_e = np.full(n, np.nan)
        self.encoder = np.full((n, 3), np.nan)
        self.energy = np.full(n, np.nan)
        self.t_intent = np.full(n, np.nan)
        self.t_fired = np.full(n, np.nan)
        self.off_intent = np.full(n, -1, np.int64)
        self.off_fired = np.full(n, -1, np.int64)
        self.have_intent = np.zeros(n, bool)
        self.have_fired = np.zeros(n, bool)

    # ------------------------------------------------------------------ derived
    def fired_seqs(self) -> np.ndarray:
        if len(self.fired_order) > 1:
            self.fired_order = [np.concatenate(self.fired_order)]
        return self.fired_order[0] if self.fired_order else np.empty(0, np.int64)

    def error_um(self, seqs: np.ndarray) -> np.ndarray:
        """|encoder - target| of shots (um; NaN where either is unknown; z ignored when not reported)."""
        d = self.encoder[seqs] - self.target[seqs]
        dz = np.nan_to_num(d[:, 2], nan=0.0)
        return np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2 + dz ** 2)

    def status(self) -> str:
        """starting | running | paused | completed | paused | stopped | failed (the last session's)."""
        if not self.sessions:
            return "starting"
        last_session = self.sessions[-1]["_line"]
        if self.ends and self.ends[-1]["_line"] > last_session:
            return str(self.ends[-1].get("status") or "ended")
        for ev in reversed(self.events):
            if ev.get("_line", -1) < last_session:
                break
            if ev.get("k") == "event" and ev.get("what") in ("pause", "resume"):
                return "paused" if ev["what"] == "pause" else "running"
        return "running"

    # ------------------------------------------------------------------ apply
    def _event(self, rec: dict[str, Any]) -> None:
        key = str(rec.get("what") or rec.get("k"))
        self.n_events[key] = self.n_events.get(key, 0) + 1
        self.events.append(rec)

    def apply_record(self, rec: dict[str, Any], offset: int, line_no: int) -> None:
        """One record that is not in the bulk layout (rare kinds, or a hot record laid out otherwise)."""
        k = rec.get("k")
        t = rec.get("t")
        if isinstance(t, (int, float)):
            self.last_t = float(t)
        if self.header is None:
            if k != "header":
                raise ValueError("not a fabplan journal (first record is not a header)")
            self.header = rec
            self.reset_arrays(int(rec.get("n_shots") or 0))
            return
        rec["_line"] = line_no
        rec["_off"] = offset
        seq = rec.get("seq")
        if k == "intent" and isinstance(seq, int) and 0 <= seq < self.n:
            self.state[seq] = UNCERTAIN
            self.intent_count[seq] += 1
            self._numbers(seq, rec)
            self.off_intent[seq] = offset
            self.last_seq = seq
        elif k == "fired" and isinstance(seq, int) and 0 <= seq < self.n:
            self.state[seq] = FIRED
            self.fire_count[seq] += 1
            self._numbers(seq, rec)
            self.off_fired[seq] = offset
            self.fired_order.append(np.array([seq], np.int64))
        elif k == "not_fired" and isinstance(seq, int) and 0 <= seq < self.n:
            if self.state[seq] == UNCERTAIN:
                self.state[seq] = PENDING
            self.not_fired[seq] = str(rec.get("reason", ""))
            self._event(rec)
        elif k in ("unconfirmed", "uncertain", "skip"):
            u = np.asarray(rec.get("seqs") or [], dtype=np.int64)
            u = u[(u >= 0) & (u < self.n)]
            if k in ("unconfirmed", "uncertain"):
                self.declared_uncertain.update(u.tolist())
            if k == "unconfirmed":
                u = u[self.state[u] == FIRED]
                self.state[u] = UNCERTAIN
                self.fire_count[u] -= 1
            elif k == "uncertain":
                self.state[u[self.state[u] == PENDING]] = UNCERTAIN
            else:
                self.skipped.update(u.tolist())
            self._event(rec)
        elif k == "session":
            self.sessions.append(rec)
            self.skipped.clear()  # each session says again what it leaves out
            self._event(rec)
        elif k == "end":
            self.ends.append(rec)
            self._event(rec)
        elif k == "interlock":  # routine (every few seconds): kept as a state, not listed among the events
            self.interlock_open = rec.get("closed") is False
            seen = rec.get("seen", t)
            if not self.interlock_open and isinstance(seen, (int, float)):
                self.interlock_closed_t = max(float(seen), self.interlock_closed_t) if math.isfinite(
                    self.interlock_closed_t) else float(seen)
            if self.interlock_open:
                self._event({**rec, "what": "interlock_open"})
        elif k in ("event", "horizon") or k is not None:
            if k != "horizon":
                self._event(rec)

    def _bulk(self, lines: list[bytes], offsets: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
        """(seqs, offsets) of hot lines in the writer's layout; None when any line is laid out otherwise."""
        m = _SEQ_RE.findall(b"\n".join(lines))
        if len(m) != len(lines):
            return None
        seq = np.array(m).astype(np.int64)
        off = np.asarray(offsets, np.int64)
        ok = (seq >= 0) & (seq < self.n)
        if not ok.all():
            seq, off = seq[ok], off[ok]
        t = _T_RE.search(lines[-1])
        if t is not None:
            self.last_t = float(t.group(1))
        return seq, off

    def apply_intents(self, lines: list[bytes], offsets: list[int]) -> None:
        got = self._bulk(lines, offsets)
        if got is None:  # another layout somewhere: one by one
            for ln, off in zip(lines, offsets, strict=True):
                self._fallback(ln, off)
            return
        seq, off = got
        self.state[seq] = UNCERTAIN
        np.add.at(self.intent_count, seq, 1)
        self.off_intent[seq] = off
        self.have_intent[seq] = False
        if len(seq):
            self.last_seq = int(seq[-1])

    def apply_fired(self, lines: list[bytes], offsets: list[int]) -> None:
        got = self._bulk(lines, offsets)
        if got is None:
            for ln, off in zip(lines, offsets, strict=True):
                self._fallback(ln, off)
            return
        seq, off = got
        self.state[seq] = FIRED
        np.add.at(self.fire_count, seq, 1)
        self.off_fired[seq] = off
        self.have_fired[seq] = False
        self.fired_order.append(seq)

    def fill(self, seqs: np.ndarray, read_lines) -> None:
        """Parse target/energy/time (intent) and encoder/energy/time (fired) of `seqs` from their lines
        (`read_lines(offsets) -> [bytes]`), once per line."""
        seqs = np.asarray(seqs, np.int64)
        for kind, off_arr, have in (("intent", self.off_intent, self.have_intent),
                                    ("fired", self.off_fired, self.have_fired)):
            need = seqs[(off_arr[seqs] >= 0) & ~have[seqs]]
            if not len(need):
                continue
            need = np.unique(need)
            lines = read_lines(off_arr[need].tolist())
            if self._fill_bulk(kind, need, lines):
                have[need] = True
                continue
            for s_, line in zip(need.tolist(), lines, strict=True):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and rec.get("k") == kind:
                    self._numbers(s_, rec)

    def _numbers(self, seq: int, rec: dict[str, Any]) -> None:
        """The numbers of one intent (target, planned energy, time) or fired record (encoder, energy, time)."""
        if rec.get("k") == "intent":
            self.target[seq] = (_num(rec.get("x")), _num(rec.get("y")), _num(rec.get("z")))
            self.planned_e[seq] = _num(rec.get("e"))
            self.t_intent[seq] = _num(rec.get("t"))
            self.have_intent[seq] = True
        else:
            self.encoder[seq] = (_num(rec.get("ex")), _num(rec.get("ey")), _num(rec.get("ez")))
            self.energy[seq] = _num(rec.get("e"))
            self.t_fired[seq] = _num(rec.get("t"))
            self.have_fired[seq] = True

    def _fill_bulk(self, kind: str, need: np.ndarray, lines: list[bytes]) -> bool:
        """The numbers of many lines in the writer's layout with one regular expression (False: some
        line is laid out otherwise, or is not the record expected; the caller parses them one by one)."""
        rx = _INTENT_NUMS if kind == "intent" else _FIRED_NUMS
        m = rx.findall(b"\n".join(ln.rstrip(b"\n") for ln in lines))
        if len(m) != len(lines):
            return False
        cols = np.array(m)
        if not np.array_equal(cols[:, 0].astype(np.int64), need):
            return False
        nums = cols[:, 1:]
        nums[nums == b"null"] = b"nan"
        v = nums.astype(float)
        if kind == "intent":
            self.target[need] = v[:, 0:3]
            self.planned_e[need] = v[:, 3]
            self.t_intent[need] = v[:, 4]
        else:
            self.encoder[need] = v[:, 0:3]
            self.energy[need] = v[:, 3]
            self.t_fired[need] = v[:, 4]
        return True

    def _fallback(self, line: bytes, offset: int) -> None:
        try:
            rec = json.loads(line)
        except ValueError:
            self.bad_lines += 1
            return
        if not isinstance(rec, dict):
            self.bad_lines += 1
            return
        self.apply_record(rec, offset, self.records)


class JournalFollower:
    """`poll()` reads what was appended to `path` since the last call and applies it to `model`.

    Works on a file another process (or machine) is writing: it only opens, seeks and reads; it
    never locks the journal (a lock could make the executor's own exclusive lock fail)."""

    def __init__(self, path: str | os.PathLike, chunk_bytes: int = 64 << 20):
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self.model = RunModel()
        self.offset = 0
        self._tail = b""
        self._ident: tuple[int, int] | None = None
        self.error: str | None = None
        self.last_poll = math.nan
        self.last_growth = math.nan  # wall clock of the last poll that found new bytes
        self.size = 0

    def _restart(self) -> None:
        self.model = RunModel()
        self.offset = 0
        self._tail = b""

    def poll(self, upto: int | None = None) -> int:
        """Read the new bytes (up to chunk_bytes per call, and not past byte `upto` when given);
        returns the number of records applied."""
        self.last_poll = time.time()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.error = f"{self.path}: no journal yet"
            return 0
        except OSError as exc:
            self.error = f"{self.path}: {exc.strerror or exc}"
            return 0
        ident = (st.st_dev, st.st_ino)
        if self._ident is not None and (ident != self._ident or st.st_size < self.offset):
            self._restart()  # replaced or truncated: start over
        self._ident = ident
        self.size = st.st_size if upto is None else min(st.st_size, upto)
        if self.size <= self.offset:
            return 0
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(min(self.size - self.offset, self.chunk_bytes))
        except OSError as exc:
            self.error = f"{self.path}: {exc.strerror or exc}"
            return 0
        self.error = None
        if not data:
            return 0
        self.last_growth = self.last_poll
        start = self.offset - len(self._tail)  # file offset of the first byte of `buf`
        self.offset += len(data)
        buf = self._tail + data
        cut = buf.rfind(b"\n")
        if cut < 0:  # no complete line yet (a torn or half-written line stays buffered)
            self._tail = buf
            return 0
        self._tail = buf[cut + 1:]
        try:
            n = self._apply(buf[:cut], start)
        except ValueError as exc:
            self.error = f"{self.path}: {exc}"
            self._restart()
            self._ident = None
            return 0
        if n:
            self.model.version += 1
        return n

    def poll_all(self, upto: int | None = None) -> int:
        """Poll until the file's current end (or byte `upto`) has been read."""
        total = 0
        while True:
            n_before = self.offset
            total += self.poll(upto)
            if self.offset == n_before or self.offset >= self.size:
                return total

    def _apply(self, block: bytes, start: int) -> int:
        model = self.model
        hot_i: list[bytes] = []
        off_i: list[int] = []
        hot_f: list[bytes] = []
        off_f: list[int] = []
        first = model.records
        off = start
        for ln in block.split(b"\n"):
            here = off
            off += len(ln) + 1
            if not ln:
                continue
            model.records += 1
            if model.header is not None and ln.endswith(b"}"):  # a torn line goes to json (and is counted bad)
                if ln.startswith(_FIRED):
                    hot_f.append(ln)
                    off_f.append(here)
                    continue
                if ln.startswith(_INTENT):
                    hot_i.append(ln)
                    off_i.append(here)
                    continue
            self._flush(hot_i, off_i, hot_f, off_f)
            try:
                rec = json.loads(ln)
            except ValueError:
                if model.header is None:
                    raise ValueError("not a fabplan journal (first line is not a JSON header)") from None
                model.bad_lines += 1
                continue
            if not isinstance(rec, dict):
                model.bad_lines += 1
                continue
            model.apply_record(rec, here, model.records)
        self._flush(hot_i, off_i, hot_f, off_f)
        return model.records - first

    def _flush(self, hot_i, off_i, hot_f, off_f) -> None:
        if hot_i:
            self.model.apply_intents(hot_i, off_i)
            hot_i.clear()
            off_i.clear()
        if hot_f:
            self.model.apply_fired(hot_f, off_f)
            hot_f.clear()
            off_f.clear()

    def read_lines(self, offsets: list[int]) -> list[bytes]:
        """The raw lines starting at `offsets` (one open, a seek per line)."""
        out = []
        try:
            with open(self.path, "rb") as fh:
                for o in offsets:
                    fh.seek(o)
                    out.append(fh.readline(1 << 20))
        except OSError:
            out += [b""] * (len(offsets) - len(out))
        return out

    def fill(self, seqs) -> None:
        """Numbers of these shots' intent/fired records (see RunModel.fill)."""
        self.model.fill(np.asarray(seqs, np.int64), self.read_lines)

    def read_line(self, offset: int) -> dict[str, Any] | None:
        """The record starting at byte `offset` (for a disc's raw records), None if unreadable."""
        if offset < 0:
            return None
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                line = fh.readline(1 << 20)
            rec = json.loads(line)
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) else None
