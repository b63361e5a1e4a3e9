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

import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":
                os.write(fd, b"\n")
        os.fsync(fd)  # everything earlier sessions wrote is now durable (see the horizon rule)
        return cls(path, fd, sync)

    # ------------------------------------------------------------------ write
    def _emit(self, line: str, durable: bool) -> None:
        if self._pending:
            line = "".join(self._pending) + line
            self._pending.clear()
        data = line.encode()
        n = os.write(self.fd, data)
        if n != len(data):  # disk full: never fire on a half-written intent
            raise OSError(f"{self.path}: short write to the journal ({n} of {len(data)} bytes)")
        if durable:
            self._sync()

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
        self._emit(
            f'{{"k":"intent","seq":{int(seq)},"id":{json.dumps(disc_id)},"x":{_num(x)},"y":{_num(y)},'
            f'"z":{_num(z)},"e":{_num(pulse_energy_uj)},"n":{int(pulses)},"t":{_now() if t is None else t!r}}}\n',
            durable=self.per_shot_sync,
        )

    def intents(self, seqs, ids, x, y, z, pulse_energy_uj, pulses) -> None:
        """Several intents (columns) in one write and one sync (fly mode: one pass fires a whole row)."""
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
        t = repr(_now())
        cols = _columns(ex, ey, ez, pulse_energy_uj)
        self._pending.append("".join(
            f'{{"k":"fired","seq":{s},"ex":{a},"ey":{b},"ez":{c},"e":{e},"t":{t}}}\n'
            for s, a, b, c, e in zip(_ints(seqs), *cols, strict=True)
        ))

    def fired(self, seq: int, ex: float | None, ey: float | None, ez: float | None,
              pulse_energy_uj: float | None, t: float | None = None) -> None:
        """Confirmation (buffered: written with the next record; `flush` forces it out)."""
        self._pending.append(
            f'{{"k":"fired","seq":{int(seq)},"ex":{_num(ex)},"ey":{_num(ey)},"ez":{_num(ez)},'
            f'"e":{_num(pulse_energy_uj)},"t":{_now() if t is None else t!r}}}\n'
        )

    def not_fired(self, seq: int, reason: str) -> None:
        """Withdraw an intent: the shot was positively not fired (written at once, not synced)."""
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
    # from the intents (what was to be fired): disc id (None: no intent), commanded stage position,
    # planned pulse energy and pulse count; NaN / 0 where no intent was written
    disc_id: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    target_um: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))
    planned_pulse_energy_uj: np.ndarray = field(default_factory=lambda: np.empty(0))
    pulses: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    horizon_uncertain: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    sessions: list[dict[str, Any]] = field(default_factory=list)
    ends: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    not_fired: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: int = 0
    lines: int = 0

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
_FIRED_KEYS = tuple(f'"{k}"'.encode() for k in record_keys("fired"))  # the writer's layout (records.py)
_INTENT_KEYS = tuple(f'"{k}"'.encode() for k in record_keys("intent"))


def _f(v: bytes) -> float:
    return math.nan if v == b"null" else float(v)


def _fast_fired(line: bytes):
    """(seq, ex, ey, ez, e, t) of a fired line in the writer's layout, else None (then json.loads)."""
    parts = line[1:-1].split(b",")
    if len(parts) != 7:
        return None
    try:
        kv = [p.split(b":", 1) for p in parts]
        if tuple(k for k, _ in kv) != _FIRED_KEYS:
            return None
        return (int(kv[1][1]), _f(kv[2][1]), _f(kv[3][1]), _f(kv[4][1]), _f(kv[5][1]), _f(kv[6][1]))
    except (ValueError, IndexError):
        return None


def _fast_intent(line: bytes):
    """(seq, id, x, y, z, e, n, t) of an intent line in the writer's layout, else None (then json.loads).
    Disc ids of plans hold no commas or escapes; anything else takes the slow path."""
    parts = line[1:-1].split(b",")
    if len(parts) != 9:
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


def read_journal(path: str | os.PathLike, current_boot_id: str | None = None) -> JournalState:
    """Replay a journal; tolerates a torn last line (and isolated unparsable lines, which are counted).

    Horizon rule: if the last session has no end record and ran under another boot than now
    (`current_boot_id`, default this machine's), its horizon shots without any record are
    uncertain (`horizon_uncertain`), since an OS crash may have lost their unsynced intents."""
    path = Path(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    lines = raw.split(b"\n")
    header: dict[str, Any] | None = None
    bad = 0
    st: JournalState | None = None
    loads = json.loads
    last_horizon: list = []
    for lineno, line in enumerate(lines):
        if not line.strip():
            continue
        if st is not None and line.startswith(_FIRED_PREFIX) and line.endswith(b"}"):
            fast = _fast_fired(line)  # the hot record, in the writer's fixed layout
            if fast is not None:
                s_, ex, ey, ez, e, t = fast
                st.state[s_] = FIRED
                st.fire_count[s_] += 1
                st.encoder[s_] = (ex, ey, ez)
                st.pulse_energy_uj[s_] = e
                st.t_fired[s_] = t
                continue
        elif st is not None and line.startswith(_INTENT_PREFIX):
            fast_i = _fast_intent(line)
            if fast_i is not None:
                st.state[fast_i[0]] = UNCERTAIN
                q, did, x, y, z, e, npulses, t = fast_i
                st.intent_count[q] += 1
                st.t_intent[q] = t
                st.disc_id[q] = did
                st.target_um[q] = (x, y, z)
                st.planned_pulse_energy_uj[q] = e
                st.pulses[q] = npulses
                continue
        try:
            rec = loads(line)
        except ValueError:
            bad += 1
            continue
        if not isinstance(rec, dict):
            bad += 1
            continue
        k = rec.get("k")
        if header is None:
            if k != "header" or rec.get("format") != FORMAT:
                raise ValueError(f"{path}: not a fabplan journal (first record is not a header)")
            if int(rec.get("format_version", 0)) > FORMAT_VERSION:
                raise ValueError(f"{path}: journal format_version {rec['format_version']} is newer than "
                                 f"this fabplan understands ({FORMAT_VERSION})")
            header = rec
            n = int(rec["n_shots"])
            st = JournalState(
                path=path, header=rec, n_shots=n, state=np.zeros(n, np.int8),
                fire_count=np.zeros(n, np.int32), intent_count=np.zeros(n, np.int32),
                encoder=np.full((n, 3), np.nan), pulse_energy_uj=np.full(n, np.nan),
                t_fired=np.full(n, np.nan), t_intent=np.full(n, np.nan), disc_id=np.full(n, None, object),
                target_um=np.full((n, 3), np.nan), planned_pulse_energy_uj=np.full(n, np.nan),
                pulses=np.zeros(n, np.int32),
            )
            continue
        assert st is not None
        if k == "intent":
            s = rec["seq"]
            st.state[s] = UNCERTAIN
            st.intent_count[s] += 1
            st.t_intent[s] = rec.get("t") or np.nan
            st.disc_id[s] = rec.get("id")
            st.target_um[s] = [np.nan if rec.get(a) is None else rec[a] for a in ("x", "y", "z")]
            st.planned_pulse_energy_uj[s] = np.nan if rec.get("e") is None else rec["e"]
            st.pulses[s] = int(rec.get("n") or 0)
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
        raise ValueError(f"{path}: empty or torn journal (no header line)")
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
