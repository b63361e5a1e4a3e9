"""The fabrication journal's record schema: one place that says what every line of a journal is.

A journal is JSON lines; key "k" gives the kind of each record; times "t" are Unix seconds (UTC);
positions are um, energies uJ; a number that is NaN/inf is written as null. The writer
(`fabplan.execute.journal.Journal`) writes these records and the one reader
(`fabplan.execute.journal.read_journal`) replays them into a `JournalState` (per-shot state,
disc ids, positions, energies); everything else (resume, reports, the lab logbook) reads that.

  header      first line, once per journal (HeaderRecord)
  session     start of every run of the journal: the first run and each resume (SessionRecord)
  intent      written, and made durable, BEFORE the laser may fire shot `seq` (IntentRecord)
  fired       after the controller confirmed the pulses (FiredRecord)
  not_fired   the shot was positively NOT fired (out of position, refused): the intent is withdrawn
  horizon     ("batch" durability) made durable before a batch fires: these shots may fire before
              the next fsync
  uncertain   shots a session declared uncertain when it started (the horizon rule)
  unconfirmed shots recorded fired that may have been dark (interlock found open after them, or an
              emergency stop after the last good move): uncertain again
  skip        shots this session deliberately left out
  event       anything else worth a line (pause, resume, row_out_of_tolerance, ...)
  interlock   the laser's safety interlock was seen closed or open (InterlockRecord): written when
              the state changes and, while closed, at most every INTERLOCK_RECORD_S seconds (never
              one per shot)
  end         end of a session, with its status and summary

Shot state, by replaying the lines in order: no intent -> PENDING; intent then fired -> FIRED;
intent then not_fired -> PENDING; intent with neither -> UNCERTAIN (the process died between making
the intent durable and learning the outcome). A torn or unparsable line is skipped and counted.

`intent` and `fired` are the hot records: the writer formats them by hand in exactly the key order
given here (the chain link "h" appended last, see journal.py CHAIN), and the reader has a fast path for that layout (tests/test_journal_schema.py holds the
two to this schema). Readers must ignore keys they do not know; a new key needs no version bump,
a changed meaning does (FORMAT_VERSION).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

FORMAT = "fabplan-journal"
FORMAT_VERSION = 1

# per-shot state derived by the reader
PENDING, UNCERTAIN, FIRED = 0, 1, 2

Seq = int  # index of a shot in the plan's shot table (its firing order)


class _Timed(TypedDict, total=False):
    t: float  # Unix time the record was written; the writer fills it in
    h: str  # link of the record chain (journal.py CHAIN); the writer appends it to every line


class HeaderRecord(_Timed, total=False):
    """First line. `design_file`, `design_file_sha256`, `plan_dir`, `plan_mode`, `selection` and the
    dry-run fields (`dry_run`, `speedup`, `faults`, `pulse_log`) are present when they apply."""

    k: Literal["header"]
    format: str  # FORMAT
    format_version: int
    run_id: str
    plan_hash: str
    design_hash: str
    design_name: str | None
    mode: str  # "step" | "fly"
    n_shots: int
    devices: dict[str, Any]  # {"stage": url, "laser": url, "stage_info": {..}, "laser_info": {..}}
    software: dict[str, str]  # {"fabplan": .., "python": .., "platform": ..}
    estimate_s: float | None
    position_tolerance_um: float
    started: str  # ISO 8601 UTC
    host: str
    pid: int
    user: str
    design_file: str
    design_file_sha256: str | None
    plan_dir: str  # the exact plan the run fires (kept next to the journal as JOURNAL.plan/)
    plan_mode: str
    selection: dict[str, Any]  # {"only": glob | None, "skip_ids": [..]}
    dry_run: bool
    speedup: str
    faults: dict[str, str]
    pulse_log: str
    # a run on sim:// emulators: the URLs as given ({"stage": .., "laser": ..}; `devices` holds the emulators'
    # loopback addresses, gone with the run), from which `run --resume` starts equivalent emulators
    device_urls: dict[str, str]


class SessionRecord(_Timed, total=False):
    k: Literal["session"]
    n: int  # 0 for the first run, then 1, 2, ... for each resume
    resume: bool
    mode: str
    boot_id: str  # the kernel's boot id: a process crash (same boot) vs an OS crash (horizon rule)
    durability: str  # "fsync" | "async" | "batch" | "none"
    refire_uncertain: bool
    pid: int
    started: str
    devices: dict[str, Any]
    preflight: list[str]  # the checks that passed
    to_fire: int
    uncertain: list[Seq]
    selection: dict[str, Any]
    # what this session fires, timed after pre-flight (fabplan.execute.selection_estimate): total_s and
    # its parts (moves_s incl. approach_s from the stage's position), n_shots, plan_total_s, text
    estimate: dict[str, Any]


class IntentRecord(TypedDict):
    """Key order is the wire layout (hot path)."""

    k: Literal["intent"]
    seq: Seq
    id: str  # disc id
    x: float | None  # commanded stage position, um
    y: float | None
    z: float | None
    e: float | None  # planned pulse energy, uJ
    n: int  # pulses
    t: float
    h: str  # chain link (last key)


class FiredRecord(TypedDict):
    """Key order is the wire layout (hot path)."""

    k: Literal["fired"]
    seq: Seq
    ex: float | None  # encoder position at firing, um; null when unknown (fly mode on real hardware)
    ey: float | None
    ez: float | None
    e: float | None  # pulse energy the laser reported, uJ
    t: float
    h: str  # chain link (last key)


class NotFiredRecord(_Timed):
    k: Literal["not_fired"]
    seq: Seq
    reason: str


class HorizonRecord(_Timed):
    k: Literal["horizon"]
    seqs: list[list[int]]  # [[first, last], ...] inclusive ranges
    n: int


class UncertainRecord(_Timed):
    k: Literal["uncertain"]
    seqs: list[Seq]
    reason: str


class UnconfirmedRecord(_Timed):
    k: Literal["unconfirmed"]
    seqs: list[Seq]
    reason: str


class SkipRecord(_Timed):
    k: Literal["skip"]
    seqs: list[Seq]
    reason: str


class EventRecord(_Timed, total=False):
    k: Literal["event"]
    what: str  # "pause" | "resume" | "row_out_of_tolerance" | ...
    message: str


INTERLOCK_RECORD_S = 2.0
"""While the interlock stays closed, at most one interlock record per this many seconds."""


class InterlockRecord(_Timed, total=False):
    k: Literal["interlock"]
    closed: bool  # True: the interlock was closed at "t"; False: found open (the gate was closed)
    seen: float  # Unix time the interlock was seen in that state (the laser's own check may predate "t")
    source: str  # "arm" (arming checked it) | "laser" (the laser's own check while firing) | "check"
    message: str  # when open: what the laser reported


class EndRecord(_Timed, total=False):
    k: Literal["end"]
    status: str  # "completed" | "paused" | "stopped" | "failed"
    message: str
    summary: dict[str, Any]  # fired, failed, skipped_uncertain, rows/shots_out_of_tolerance, duration_s


RECORDS: dict[str, type] = {
    "header": HeaderRecord, "session": SessionRecord, "intent": IntentRecord, "fired": FiredRecord,
    "not_fired": NotFiredRecord, "horizon": HorizonRecord, "uncertain": UncertainRecord,
    "unconfirmed": UnconfirmedRecord, "skip": SkipRecord, "event": EventRecord, "interlock": InterlockRecord, "end": EndRecord,
}
"""Record kind ("k") -> its TypedDict."""


def record_keys(kind: str) -> tuple[str, ...]:
    """The keys a record of `kind` may carry, in schema order (the wire order of intent/fired)."""
    return tuple(RECORDS[kind].__annotations__)
