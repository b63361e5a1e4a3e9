"""Append-only, crash-safe fabrication journal (JSON lines) and the resume state derived from it.

Why JSON lines and not SQLite: a journal is written once, in order, and read whole; one `write()`
per record on an `O_APPEND` descriptor is atomic with respect to `kill -9` (the kernel owns the
bytes once `write` returns), and `fsync` makes it survive power loss. The reader tolerates a torn
last line (power loss mid-write), so no recovery step is needed. It greps, tails and diffs, and the
lab-log importer needs nothing but `json`. SQLite in WAL mode would give the same guarantees with a
commit (and its fsync) per shot plus page and WAL bookkeeping, for no benefit here.

Records: the schema, what each kind means and the shot-state rules are in
`fabplan.execute.records` (the one place they are written down); the writer below writes those
records and `read_journal` is the one reader (resume, reports and the lab logbook all use it).

Durability ("sync" of the writer):
  fsync  one `write` + one `fsync` per shot, the intent synced before the laser fires. The fired
         record of shot k rides in the same `write` as the intent of shot k+1 and that fsync makes
         both durable; losing it in a power cut makes shot k uncertain, which is safe.
  async  the same, with the fsync on a helper thread, overlapped with the move to the shot and
         joined before firing (the intent is then written before the move).
  batch  the intent of every shot is written (one `write`, no fsync) before it fires, and a
         `horizon` record naming the next batch of shots is fsynced before the batch starts. A
         process crash (kill -9, any signal, a bug) cannot lose a completed `write`: the page cache
         belongs to the kernel, so the per-shot records are exact. Only an OS crash or power cut can
         lose the unsynced tail; then a shot inside the last horizon with no surviving record may
         have fired, and it is declared uncertain. The reader tells the two apart by the kernel's
         boot id stored in each session: same boot -> exact; different boot -> horizon rule. Cost:
         one fsync per batch (256 shots by default) instead of per shot.
  none   no fsync (tests).
Each session starts with an fsync of the whole file, so only the last session's tail is ever at risk.
The writer holds an exclusive flock for its session: a second executor on the same journal is
refused. Measured costs: bench/RESULTS.md (executor section).
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from fabplan.errors import UserError
from fabplan.execute.records import (  # noqa: F401 - FIRED/PENDING/UNCERTAIN re-exported for readers
    FIRED,
    FORMAT,
    FORMAT_VERSION,
    PENDING,
    UNCERTAIN,
    HorizonRecord,
    NotFiredRecord,
    record_keys,
)
from fabplan.jsonutil import dumps

SYNC_MODES = ("fsync", "async", "batch", "none")


def boot_id() -> str:
    """The kernel's boot id (changes at every boot): tells a process crash from an OS crash."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def seq_ranges(seqs) -> list[list[int]]:
    """[3,4,5,9,10] -> [[3,5],[9,10]] (compact horizon/skip records)."""
    arr = np.asarray(seqs, dtype=np.int64)
    if not len(arr):
        return []
    breaks = np.flatnonzero(np.diff(arr) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(arr) - 1]])
    return [[int(arr[a]), int(arr[b])] for a, b in zip(starts, ends, strict=True)]


def expand_ranges(ranges) -> np.ndarray:
    parts = [np.arange(int(a), int(b) + 1) for a, b in ranges]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _num(v: float | None) -> str:
    """JSON number for a float (shortest round-trip repr), null for None/NaN/inf."""
    if v is None:
        return "null"
    f = float(v)
    return repr(f) if math.isfinite(f) else "null"


class _Syncer(threading.Thread):
    """Background fsync so the sync of shot k's intent overlaps the move to shot k (GIL released)."""

    def __init__(self, fd: int):
        super().__init__(name="journal-fsync", daemon=True)
        self.fd = fd
        self.cond = threading.Condition()
        self.requested = 0  # generation numbers
        self.done = 0
        self.error: BaseException | None = None
        self.stopping = False

    def run(self) -> None:
        while True:
            with self.cond:
                while self.requested == self.done and not self.stopping:
                    self.cond.wait()
                if self.stopping and self.requested == self.done:
                    return
                target = self.requested
            try:
                os.fsync(self.fd)
            except BaseException as exc:  # surfaced to the writer by wait()
                self.error = exc
            with self.cond:
                self.done = target
                self.cond.notify_all()

    def request(self) -> int:
        with self.cond:
            self.requested += 1
            self.cond.notify_all()
            return self.requested

    def wait(self, generation: int, timeout_s: float = 30.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.done >= generation or self.error is not None, timeout_s):
                raise OSError(f"journal fsync did not complete within {timeout_s} s")
        if self.error is not None:
            raise OSError(f"journal fsync failed: {self.error}") from self.error

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.join(timeout=30.0)


class Journal:
    """Writer. `intent()` must return (and, in "async" mode, `wait_durable()` must return) before
    the laser fires; `fired()` is buffered into the next write.

    sync: "fsync" (fsync inside `intent`), "async" (fsync on a helper thread; `wait_durable` joins
    it, so the sync overlaps the move), "none" (write only: survives kill -9, not power loss).
    """

    def __init__(self, path: Path, fd: int, sync: str = "fsync"):
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {sync!r}")
        self.path = Path(path)
        self.fd = fd
        self.sync = sync
        self._guard: np.ndarray | None = None  # per-seq PENDING/UNCERTAIN/FIRED as this journal holds it
        self._may_fire: np.ndarray | None = None  # this session's selection (bool per seq)
        self._refire: np.ndarray | None = None  # uncertain shots this session may fire again (once)
        self.failed: OSError | None = None  # a write failed (disk full...): nothing more is appended
        self._h = ""  # the last link of the record chain
        self._pending: list[str] = []
        self._syncer: _Syncer | None = None
        self._generation = 0
        if sync == "async":
            self._syncer = _Syncer(fd)
            self._syncer.start()

    # ------------------------------------------------------------------ open
    @classmethod
    def create(cls, path: str | os.PathLike, header: dict[str, Any], sync: str = "fsync") -> Journal:
        """A new journal whose first line is `header` (refuses to overwrite an existing file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        _lock(fd, path)
        j = cls(path, fd, sync)
        rec = {"k": "header", "format": FORMAT, "format_version": FORMAT_VERSION, **header}
        j.write(rec, durable=True)
        _fsync_dir(path.parent)
        return j

    @classmethod
    def append_to(cls, path: str | os.PathLike, sync: str = "fsync") -> Journal:
        """Reopen for a resumed run; a torn last line is closed with a newline so it stays isolated."""
        path = Path(path)
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        try:
            _lock(fd, path)
        except BaseException:
            os.close(fd)
            raise
        size = os.fstat(fd).st_size
        j = cls(path, fd, sync)
        j._h = _last_link(fd, size)  # the chain continues from the last whole record
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":  # a torn write: isolate it, and say so (the reader then knows the
                # damaged line is the tail of a crashed session, not a record lost in the middle)
                os.write(fd, b"\n")
                j._emit(dumps({"k": "event", "what": TORN_MARK, "t": _now()}) + "\n", durable=False)
        os.fsync(fd)  # everything earlier sessions wrote is now durable (see the horizon rule)
        return j

    # ------------------------------------------------------------------ guard
    def guard_shots(self, state: np.ndarray | None, may_fire: np.ndarray, refire: np.ndarray | None = None) -> None:
        """From now on refuse (ShotRefused) an intent for a shot this journal holds as fired or uncertain,
        or that is not in `may_fire`, whatever the plan or the firing loop says: the last line of
        defence against firing a disc twice. `state`: the replayed per-seq state (None: a new journal);
        `refire`: uncertain shots the operator asked to fire again (--refire-uncertain), once each."""
        n = len(may_fire)
        self._guard = np.zeros(n, np.int8) if state is None else np.array(state, np.int8)
        self._may_fire = np.array(may_fire, bool)
        self._refire = np.zeros(n, bool) if refire is None else np.array(refire, bool) & (self._guard == UNCERTAIN)

    def _check_intents(self, seqs: np.ndarray) -> None:
        g = self._guard
        if g is None:
            return
        n = len(g)
        bad_range = (seqs < 0) | (seqs >= n)
        if bad_range.any():
            raise ShotRefused(f"{self.path}: refusing to fire shot {int(seqs[bad_range][0])}: not a shot of this "
                              f"plan (0..{n - 1})")
        st = g[seqs]
        refused = (st == FIRED) | ((st == UNCERTAIN) & ~self._refire[seqs]) | ~self._may_fire[seqs]
        if len(np.unique(seqs)) != len(seqs):
            raise ShotRefused(f"{self.path}: refusing to fire a shot twice in one row (duplicate seq in "
                              f"{seqs[:8].tolist()}...)")
        if refused.any():
            q = int(seqs[refused][0])
            why = ("already fired" if g[q] == FIRED else "uncertain (may have fired)" if g[q] == UNCERTAIN
                   else "not selected for this session")
            raise ShotRefused(f"{self.path}: refusing to fire shot {q}: the journal holds it as {why}; "
                              f"{int(refused.sum())} shot(s) refused, nothing fired for them")
        g[seqs] = UNCERTAIN
        self._refire[seqs] = False

    def left_pending(self, selected: np.ndarray) -> np.ndarray:
        """Seqs of `selected` still pending for this writer (never fired, or withdrawn by not_fired)."""
        if self._guard is None:
            return np.empty(0, np.int64)
        return np.flatnonzero(np.asarray(selected, bool) & (self._guard == PENDING))

    def _mark(self, seqs, value: int) -> None:
        if self._guard is not None:
            self._guard[np.asarray(seqs, np.int64)] = value

    # ------------------------------------------------------------------ write
    def _emit(self, line: str, durable: bool) -> None:
        if self._pending:
            line = "".join(self._pending) + line
            self._pending.clear()
        data = self._chain(line).encode()
        if self.failed is not None:  # after a failed write the last line may be torn: appending more
            raise self.failed  # would bury it mid-file, where a reader must refuse it as damage
        try:
            n = os.write(self.fd, data)
            if n != len(data):  # disk full: never fire on a half-written intent
                raise OSError(errno.ENOSPC, f"short write to the journal ({n} of {len(data)} bytes)", str(self.path))
        except OSError as exc:
            self.failed = exc
            raise
        if durable:
            self._sync()

    def _chain(self, text: str) -> str:
        """Give every line its link "h" in the record chain (see CHAIN below)."""
        h = self._h
        out = []
        for core in text.split("\n")[:-1]:  # every record ends with a newline
            h = chain_link(h, core.encode())
            out.append(f'{core[:-1]},"h":"{h}"}}\n')
        self._h = h
        return "".join(out)

    def _sync(self) -> None:
        if self.sync in ("fsync", "batch"):
            os.fsync(self.fd)
        elif self.sync == "async":
            assert self._syncer is not None
            self._generation = self._syncer.request()

    def wait_durable(self) -> None:
        """Block until every record written with durable=True is on disk (no-op unless "async")."""
        if self._syncer is not None and self._generation:
            self._syncer.wait(self._generation)

    def write(self, rec: dict[str, Any], durable: bool = False) -> None:
        """Any record (header, session, event, end); buffered fired records go out first."""
        rec.setdefault("t", _now())
        self._emit(dumps(rec) + "\n", durable)
        if durable:
            self.wait_durable()

    @property
    def per_shot_sync(self) -> bool:
        return self.sync in ("fsync", "async")

    def horizon(self, seqs) -> None:
        """("batch" mode) make durable that `seqs` may fire before the next fsync; no-op otherwise."""
        if self.sync != "batch":
            return
        rec = HorizonRecord(k="horizon", seqs=seq_ranges(seqs), n=len(seqs), t=_now())
        self._emit(json.dumps(rec) + "\n", durable=True)

    def intent(self, seq: int, disc_id: str, x: float, y: float, z: float, pulse_energy_uj: float,
               pulses: int, t: float | None = None) -> None:
        """The promise that shot `seq` may now fire (hot path: no json.dumps). Durable on return in
        "fsync" mode, after `wait_durable()` in "async" mode, covered by the horizon in "batch" mode."""
        g = self._guard
        if g is not None:
            q = int(seq)
            if 0 <= q < len(g) and g[q] == PENDING and self._may_fire[q]:
                g[q] = UNCERTAIN  # the per-shot common case, without the array temporaries below
            else:
                self._check_intents(np.array([q], np.int64))
        self._emit(
            f'{{"k":"intent","seq":{int(seq)},"id":{json.dumps(disc_id)},"x":{_num(x)},"y":{_num(y)},'
            f'"z":{_num(z)},"e":{_num(pulse_energy_uj)},"n":{int(pulses)},"t":{_now() if t is None else t!r}}}\n',
            durable=self.per_shot_sync,
        )

    def intents(self, seqs, ids, x, y, z, pulse_energy_uj, pulses) -> None:
        """Several intents (columns) in one write and one sync (fly mode: one pass fires a whole row)."""
        if self._guard is not None:
            self._check_intents(np.asarray(seqs, np.int64).ravel())
        t = repr(_now())
        cols = _columns(x, y, z, pulse_energy_uj)
        ids_json = [json.dumps(str(d)) for d in ids]
        self._emit(
            "".join(
                f'{{"k":"intent","seq":{s},"id":{d},"x":{a},"y":{b},"z":{c},"e":{e},"n":{n},"t":{t}}}\n'
                for s, d, a, b, c, e, n in zip(_ints(seqs), ids_json, *cols, _ints(pulses), strict=True)
            ),
            durable=True,
        )

    def fired_many(self, seqs, ex, ey, ez, pulse_energy_uj) -> None:
        """Confirmations for several shots (columns; buffered like `fired`)."""
        self._mark(_ints(seqs), FIRED)
        t = repr(_now())
        cols = _columns(ex, ey, ez, pulse_energy_uj)
        self._pending.append("".join(
            f'{{"k":"fired","seq":{s},"ex":{a},"ey":{b},"ez":{c},"e":{e},"t":{t}}}\n'
            for s, a, b, c, e in zip(_ints(seqs), *cols, strict=True)
        ))

    def fired(self, seq: int, ex: float | None, ey: float | None, ez: float | None,
              pulse_energy_uj: float | None, t: float | None = None) -> None:
        """Confirmation (buffered: written with the next record; `flush` forces it out)."""
        self._mark([int(seq)], FIRED)
        self._pending.append(
            f'{{"k":"fired","seq":{int(seq)},"ex":{_num(ex)},"ey":{_num(ey)},"ez":{_num(ez)},'
            f'"e":{_num(pulse_energy_uj)},"t":{_now() if t is None else t!r}}}\n'
        )

    def not_fired(self, seq: int, reason: str) -> None:
        """Withdraw an intent: the shot was positively not fired (written at once, not synced)."""
        if self._guard is not None and self._guard[int(seq)] == UNCERTAIN:
            self._guard[int(seq)] = PENDING
        rec = NotFiredRecord(k="not_fired", seq=int(seq), reason=reason, t=_now())
        self._emit(json.dumps(rec) + "\n", durable=False)

    def flush(self, durable: bool = True) -> None:
        """Write buffered confirmations (and sync them when `durable`)."""
        if self._pending:
            self._emit("", durable)
        elif durable:
            self._sync()
        if durable:
            self.wait_durable()

    def close(self) -> None:
        if self.fd < 0:
            return
        try:
            if self.failed is None:
                self.flush(durable=True)
        finally:
            if self._syncer is not None:
                self._syncer.stop()
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _ints(values) -> list[int]:
    return np.asarray(values, dtype=np.int64).tolist()


def _columns(*columns) -> list[list[str]]:
    """JSON number text for float columns (shortest repr; null where NaN/None), vectorised-ish."""
    out = []
    for col in columns:
        arr = np.asarray([np.nan if v is None else v for v in col] if isinstance(col, list) else col, dtype=float)
        if arr.ndim == 0:
            arr = np.full(1, arr)
        vals = arr.tolist()
        if np.isfinite(arr).all():
            out.append([repr(v) for v in vals])
        else:
            out.append([repr(v) if math.isfinite(v) else "null" for v in vals])
    return out


def _now() -> float:
    import time

    return time.time()


class JournalBusy(OSError):
    """Another process holds this journal: two executors on one run could fire a disc twice."""


def _lock(fd: int, path: Path) -> None:
    """Exclusive advisory lock for the life of the descriptor (released by the kernel on kill -9)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalBusy(f"{path}: journal is in use by another fabplan process (still running?)") from None


def _fsync_dir(path: Path) -> None:
    """Make the new file's directory entry durable too (else a power cut can lose the whole file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- read


@dataclass
class JournalState:
    """Everything resume and reports need, derived by replaying a journal."""

    path: Path
    header: dict[str, Any]
    n_shots: int
    state: np.ndarray  # int8 per seq: PENDING / UNCERTAIN / FIRED
    fire_count: np.ndarray  # int32 per seq: fired records seen (> 1 would be a double shot)
    intent_count: np.ndarray
    encoder: np.ndarray  # (n, 3) last fired encoder position, NaN if none
    pulse_energy_uj: np.ndarray  # pulse energy the laser reported at the last fired record, NaN if none
    t_fired: np.ndarray  # last fired time, NaN if none
    t_intent: np.ndarray
    # the last intent of each shot (its line, or its record when it took the slow path; None: no
    # intent), parsed on first use by disc_id / target_um / planned_pulse_energy_uj / pulses
    intents: list = field(default_factory=list, repr=False)
    horizon_uncertain: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    sessions: list[dict[str, Any]] = field(default_factory=list)
    ends: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    not_fired: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: int = 0
    lines: int = 0

    @property
    def disc_id(self) -> np.ndarray:
        """Disc id per shot from its last intent (None where none was written)."""
        return self._intent_columns[0]

    @property
    def target_um(self) -> np.ndarray:
        """(n, 3) commanded stage position per shot from its last intent, um (NaN: none)."""
        return self._intent_columns[1]

    @property
    def planned_pulse_energy_uj(self) -> np.ndarray:
        """Planned pulse energy per shot from its last intent, uJ (NaN: none)."""
        return self._intent_columns[2]

    @property
    def pulses(self) -> np.ndarray:
        """Pulse count per shot from its last intent (0: none)."""
        return self._intent_columns[3]

    @cached_property
    def _intent_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = self.n_shots
        ids, target = np.full(n, None, object), np.full((n, 3), np.nan)
        energy, pulses = np.full(n, np.nan), np.zeros(n, np.int32)
        rows = []
        for q, rec in enumerate(self.intents):
            if rec is None:
                continue
            got = _parse_intent(rec) if isinstance(rec, bytes) else None
            if got is None:  # the slow path's record (or a line the fast parser declines)
                r = json.loads(rec) if isinstance(rec, bytes) else rec
                got = (q, r.get("id"), *(math.nan if r.get(a) is None else float(r[a]) for a in ("x", "y", "z", "e")),
                       int(r.get("n") or 0), 0.0)
            rows.append((q, *got[1:7]))
        if rows:
            q, did, x, y, z, e, npl = zip(*rows, strict=True)
            qi = np.asarray(q, np.int64)
            ids[qi] = did
            target[qi] = np.column_stack([x, y, z])
            energy[qi] = e
            pulses[qi] = npl
        return ids, target, energy, pulses

    @property
    def plan_hash(self) -> str:
        return str(self.header.get("plan_hash", ""))

    def seqs(self, which: int) -> np.ndarray:
        return np.flatnonzero(self.state == which)

    @property
    def uncertain(self) -> np.ndarray:
        return self.seqs(UNCERTAIN)

    @property
    def fired(self) -> np.ndarray:
        return self.seqs(FIRED)

    @property
    def pending(self) -> np.ndarray:
        return self.seqs(PENDING)

    @property
    def last_status(self) -> str | None:
        """Status of the last session that ended cleanly; None if the last session never ended."""
        if not self.sessions:
            return None
        if self.ends and self.ends[-1].get("_line", -1) > self.sessions[-1].get("_line", -1):
            return str(self.ends[-1].get("status"))
        return None

    def counts(self) -> dict[str, int]:
        return {
            "fired": int((self.state == FIRED).sum()),
            "uncertain": int((self.state == UNCERTAIN).sum()),
            "pending": int((self.state == PENDING).sum()),
            "double_fired": int((self.fire_count > 1).sum()),
        }


_FIRED_PREFIX = b'{"k":"fired","seq":'
_INTENT_PREFIX = b'{"k":"intent","seq":'
_FIRED_KEYS = tuple(f'"{k}"'.encode() for k in record_keys("fired") if k != "h")  # the writer's layout (records.py), without the link
_INTENT_KEYS = tuple(f'"{k}"'.encode() for k in record_keys("intent") if k != "h")


def _f(v: bytes) -> float:
    return math.nan if v == b"null" else float(v)


def _fast_fired(line: bytes):
    """(seq, ex, ey, ez, e, t) of a fired line in the writer's layout, else None (then json.loads)."""
    line = _unlinked(line)
    parts = line[1:-1].split(b",")
    if len(parts) != len(_FIRED_KEYS):
        return None
    try:
        kv = [p.split(b":", 1) for p in parts]
        if tuple(k for k, _ in kv) != _FIRED_KEYS:
            return None
        return (int(kv[1][1]), _f(kv[2][1]), _f(kv[3][1]), _f(kv[4][1]), _f(kv[5][1]), _f(kv[6][1]))
    except (ValueError, IndexError):
        return None


def _fast_intent(line: bytes):
    """(seq, t) of an intent line in the writer's layout (seq the 2nd field, t the last), else None;
    the rest of the line is parsed only when a reader asks for it (`JournalState.disc_id`, ...)."""
    line = _unlinked(line)
    if not line.endswith(b"}"):
        return None
    head, _, rest = line[len(_INTENT_PREFIX):].partition(b",")
    tail = line.rsplit(b',"t":', 1)
    if len(tail) != 2 or not rest.startswith(b'"id":'):
        return None
    try:
        return int(head), float(tail[1][:-1])
    except ValueError:
        return None


def _parse_intent(line: bytes):
    """(seq, id, x, y, z, e, n, t) of an intent line in the writer's layout, else None (then json.loads).
    Disc ids of plans hold no commas or escapes; anything else takes the slow path."""
    line = _unlinked(line)
    parts = line[1:-1].split(b",")
    if len(parts) != len(_INTENT_KEYS):
        return None
    try:
        kv = [p.split(b":", 1) for p in parts]
        if tuple(k for k, _ in kv) != _INTENT_KEYS:
            return None
        did = kv[2][1]
        if len(did) < 2 or did[:1] != b'"' or did[-1:] != b'"' or b"\\" in did:
            return None
        return (int(kv[1][1]), did[1:-1].decode(), _f(kv[3][1]), _f(kv[4][1]), _f(kv[5][1]), _f(kv[6][1]),
                int(kv[7][1]), float(kv[8][1]))
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


# CHAIN: every record ends with "h", the first 16 hex digits of blake2b(previous h + the record's line
# without its "h"). A line removed, inserted or edited in the middle breaks the chain at the next
# record, which the reader refuses with that line number; a torn last write simply has no link.
# (Journals written before the chain have no "h": they are read as before, without this check.)


def _unlinked(line: bytes) -> bytes:
    """The line without its chain link (as the fast parsers expect it)."""
    if line.endswith(b'"}'):
        got = _split_link(line)
        if got is not None:
            return got[0]
    return line


def chain_link(prev: str, core: bytes) -> str:
    return hashlib.blake2b(prev.encode() + core, digest_size=8).hexdigest()


def _split_link(line: bytes) -> tuple[bytes, str] | None:
    """(the line without its link, the link) or None when the line carries none (slices, not a regex:
    this runs on every line of every journal read)."""
    if line[-24:-18] != b',"h":"' or line[-2:] != b'"}':
        return None
    return line[:-24] + b"}", line[-18:-2].decode("latin-1")  # not hex: it cannot match a digest


def _last_link(fd: int, size: int) -> str:
    """The link of the last whole record of the file (read backwards in pieces), "" if none."""
    pos, tail = size, b""
    while pos > 0:
        step = min(pos, 1 << 16)
        pos -= step
        os.lseek(fd, pos, os.SEEK_SET)
        tail = os.read(fd, step) + tail
        lines = tail.split(b"\n")
        for line in reversed(lines[1:] if pos else lines):
            got = _split_link(line)
            if got is not None:
                return got[1]
        tail = lines[0]
    return ""


class ShotRefused(Exception):
    """The journal writer refused an intent: the shot is already fired or uncertain in this journal,
    or not selected. Nothing was written or fired for it; the session ends "failed", gate closed."""


class JournalError(UserError, ValueError):
    """A journal that cannot be trusted: not a journal, a newer format, or damaged other than by a torn
    last write. Resuming on it could fire a disc twice, so it is refused with the line at fault."""


# Far beyond any plan (a plan directory holds at most ~3.5 million shots); a header claiming more
# (e.g. "n_shots": 1e12, 931 GiB of state arrays) is refused before anything is allocated.
MAX_SHOTS = 20_000_000
_NUM = (int, float)


def _is_seq(v: Any, n: int) -> bool:
    return type(v) is int and 0 <= v < n


def _is_num(v: Any) -> bool:
    return v is None or (isinstance(v, _NUM) and not isinstance(v, bool))


def _check_record(rec: dict[str, Any], n: int) -> str | None:
    """Why `rec` is not a valid record of its kind for a journal of `n` shots (None when it is)."""
    k = rec.get("k")
    if not isinstance(k, str):
        return "record without a kind ('k')"
    if k in ("intent", "fired", "not_fired"):
        if not _is_seq(rec.get("seq"), n):
            return f"{k}: seq must be a shot number 0..{n - 1}, got {_clip(rec.get('seq'))}"
        keys = ("x", "y", "z", "e", "t") if k == "intent" else ("ex", "ey", "ez", "e", "t") if k == "fired" else ("t",)
        bad = [a for a in keys if not _is_num(rec.get(a))]
        if bad:
            return f"{k}: {bad[0]} must be a number or null, got {_clip(rec.get(bad[0]))}"
        if k == "intent" and not (rec.get("n") is None or (type(rec.get("n")) is int and rec["n"] >= 0)):
            return f"intent: n (pulses) must be a whole number, got {_clip(rec.get('n'))}"
        if k == "intent" and not isinstance(rec.get("id", ""), (str, type(None))):
            return f"intent: id must be a string, got {_clip(rec.get('id'))}"
    elif k in ("uncertain", "unconfirmed", "skip"):
        seqs = rec.get("seqs", [])
        if not isinstance(seqs, list) or not all(_is_seq(q, n) for q in seqs):
            return f"{k}: seqs must be a list of shot numbers 0..{n - 1}"
    elif k == "horizon":
        r = rec.get("seqs", [])
        if not isinstance(r, list) or not all(
            isinstance(p, list) and len(p) == 2 and _is_seq(p[0], n) and _is_seq(p[1], n) and p[0] <= p[1]
            for p in r
        ):
            return f"horizon: seqs must be [first, last] ranges of shot numbers 0..{n - 1}"
    elif k == "header":
        return "a second header record"
    return None


def _clip(v: Any, limit: int = 40) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _header_state(path: Path, rec: dict[str, Any], lineno: int) -> JournalState:
    at = f"{path}:{lineno + 1}"
    if rec.get("k") != "header" or rec.get("format") != FORMAT:
        raise JournalError(f"{at}: not a fabplan journal (first record is not a header)")
    version = rec.get("format_version")
    if type(version) is not int or version < 1:
        raise JournalError(f"{at}: journal format_version must be a whole number, got {_clip(version)}")
    if version > FORMAT_VERSION:
        raise JournalError(f"{at}: journal format_version {version} is newer than this fabplan understands "
                           f"({FORMAT_VERSION})")
    n = rec.get("n_shots")
    if type(n) is not int or not 0 <= n <= MAX_SHOTS:
        raise JournalError(f"{at}: n_shots must be a whole number 0..{MAX_SHOTS:,}, got {_clip(n)}")
    if not isinstance(rec.get("plan_hash", ""), str):
        raise JournalError(f"{at}: plan_hash must be a string")
    return JournalState(
        path=path, header=rec, n_shots=n, state=np.zeros(n, np.int8),
        fire_count=np.zeros(n, np.int32), intent_count=np.zeros(n, np.int32),
        encoder=np.full((n, 3), np.nan), pulse_energy_uj=np.full(n, np.nan),
        t_fired=np.full(n, np.nan), t_intent=np.full(n, np.nan), intents=[None] * n,
    )


TORN_MARK = "torn_write_isolated"  # event `Journal.append_to` writes right after a torn last line


def _torn_ok(lines: list[bytes], i: int) -> bool:
    """A line that is not JSON is a torn write (tolerated) only if it is the last line, or the next
    line is the mark `append_to` leaves after one (a resume after the crash that tore it); anything
    else is damage in the middle."""
    for nxt in lines[i + 1:]:
        if nxt.strip():
            try:
                rec = json.loads(nxt)
            except ValueError:
                return False
            return isinstance(rec, dict) and rec.get("k") == "event" and rec.get("what") == TORN_MARK
    return True


def read_journal(path: str | os.PathLike, current_boot_id: str | None = None) -> JournalState:
    """Replay a journal; tolerates a torn last write (the tail of a crashed session), refuses anything
    else it cannot account for with a JournalError naming the line: a record that is not valid for its
    kind (seq negative, past the end or not an integer, ...), a damaged line in the middle, a header
    that is torn, of another format or version, or claims an absurd n_shots.

    Horizon rule: if the last session has no end record and ran under another boot than now
    (`current_boot_id`, default this machine's), its horizon shots without any record are
    uncertain (`horizon_uncertain`), since an OS crash may have lost their unsynced intents."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except IsADirectoryError:
        raise JournalError(f"{path}: is a directory, not a journal") from None
    lines = raw.split(b"\n")
    bad = 0
    st: JournalState | None = None
    loads = json.loads
    last_horizon: list = []
    n = 0
    prev, chained = "", False
    for lineno, line in enumerate(lines):
        if not line.strip():
            continue
        link = _split_link(line)
        if link is not None:
            if chain_link(prev, link[0]) != link[1]:
                raise JournalError(f"{path}:{lineno + 1}: record chain broken (this record was edited, or one before "
                                   "it removed or inserted): the journal cannot be trusted")
            prev, chained = link[1], True
            line = link[0]  # parsed without its link, in the writer's layout
        if st is not None and line.startswith(_FIRED_PREFIX) and line.endswith(b"}"):
            fast = _fast_fired(line)  # the hot record, in the writer's fixed layout
            if fast is not None:
                s_, ex, ey, ez, e, t = fast
                if not 0 <= s_ < n:
                    raise JournalError(f"{path}:{lineno + 1}: fired: seq must be a shot number 0..{n - 1}, "
                                       f"got {s_}: the journal cannot be trusted")
                st.state[s_] = FIRED
                st.fire_count[s_] += 1
                st.encoder[s_] = (ex, ey, ez)
                st.pulse_energy_uj[s_] = e
                st.t_fired[s_] = t
                continue
        elif st is not None and line.startswith(_INTENT_PREFIX):
            # lazily parsed later: only a line the chain vouches for, or one that parses strictly now
            fast_i = _fast_intent(line) if link is not None or _parse_intent(line) is not None else None
            if fast_i is not None:
                q, t = fast_i
                if not 0 <= q < n:
                    raise JournalError(f"{path}:{lineno + 1}: intent: seq must be a shot number 0..{n - 1}, "
                                       f"got {q}: the journal cannot be trusted")
                st.state[q] = UNCERTAIN
                st.intent_count[q] += 1
                st.t_intent[q] = t
                st.intents[q] = line
                continue
        try:
            rec = loads(line)
        except (ValueError, RecursionError):
            rec = None
        if not isinstance(rec, dict):
            if st is None:
                raise JournalError(f"{path}:{lineno + 1}: torn or damaged header line: not a readable journal")
            if not _torn_ok(lines, lineno):
                raise JournalError(f"{path}:{lineno + 1}: damaged record (not a JSON object) in the middle of "
                                   "the journal: records may be lost, so it cannot be trusted")
            bad += 1
            continue
        if chained and link is None:
            raise JournalError(f"{path}:{lineno + 1}: record without its chain link in a chained journal "
                               "(inserted by hand?): the journal cannot be trusted")
        if st is None:
            st = _header_state(path, rec, lineno)
            n = st.n_shots
            continue
        why = _check_record(rec, n)
        if why is not None:
            raise JournalError(f"{path}:{lineno + 1}: {why}: the journal cannot be trusted")
        k = rec["k"]
        if k == "intent":
            s = rec["seq"]
            st.state[s] = UNCERTAIN
            st.intent_count[s] += 1
            st.t_intent[s] = rec.get("t") or np.nan
            st.intents[s] = rec
        elif k == "fired":
            s = rec["seq"]
            st.state[s] = FIRED
            st.fire_count[s] += 1
            st.encoder[s] = [np.nan if rec.get(a) is None else rec[a] for a in ("ex", "ey", "ez")]
            st.pulse_energy_uj[s] = np.nan if rec.get("e") is None else rec["e"]
            st.t_fired[s] = rec.get("t") or np.nan
        elif k == "not_fired":
            s = rec["seq"]
            if st.state[s] == UNCERTAIN:
                st.state[s] = PENDING
            st.not_fired.append(rec)
        elif k == "session":
            rec["_line"] = lineno
            st.sessions.append(rec)
            last_horizon = []
        elif k == "horizon":
            last_horizon.append(rec.get("seqs", []))
        elif k == "unconfirmed":
            u = np.asarray(rec.get("seqs", []), dtype=np.int64)
            u = u[st.state[u] == FIRED]
            st.state[u] = UNCERTAIN
            st.fire_count[u] -= 1
        elif k == "uncertain":
            u = np.asarray(rec.get("seqs", []), dtype=np.int64)
            u = u[st.state[u] == PENDING]
            st.state[u] = UNCERTAIN
        elif k == "end":
            rec["_line"] = lineno
            st.ends.append(rec)
        elif k == "event":
            st.events.append(rec)
    if st is None:
        raise JournalError(f"{path}: empty or torn journal (no header line)")
    if st.sessions and last_horizon and st.last_status is None:
        now_boot = boot_id() if current_boot_id is None else current_boot_id
        if st.sessions[-1].get("boot_id") != now_boot or not now_boot:
            cover = np.concatenate([expand_ranges(r) for r in last_horizon])
            cover = np.unique(cover[(cover >= 0) & (cover < st.n_shots)])
            cover = cover[(st.state[cover] == PENDING) & (st.intent_count[cover] == 0)]
            st.state[cover] = UNCERTAIN
            st.horizon_uncertain = cover
    st.bad_lines = bad
    st.lines = len(lines)
    return st
