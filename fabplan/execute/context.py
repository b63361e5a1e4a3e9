"""What one executor session carries around: plan, devices, journal, control, progress, counters."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fabplan.execute.control import RunControl, RunState
from fabplan.execute.journal import Journal
from fabplan.execute.progress import Progress
from fabplan.execute.records import INTERLOCK_RECORD_S
from stage_drivers.protocols import InterlockCheck


class RunStopped(Exception):  # noqa: N818 - control flow
    """The run must stop here (pause not resumed, stop requested); the journal is consistent."""

    def __init__(self, state: RunState, reason: str):
        self.state = state
        super().__init__(reason)


# Laser-reported vs planned pulse energy, relative: the one energy tolerance of a run. Pre-flight
# (the laser's energy at 100 % read with the output closed, against the design's energy_at_100), the
# check after arming (the reported energy at the current attenuator, before the first shot) and the
# per-shot check (after every attenuator move) all use it, so no shot fires at an energy a later
# check would refuse. Readback that lags (a Pharos derives ActualOutputEnergy from a power reading
# that settles after EnableOutput or an attenuator move) is met by polling for up to
# Options.attenuator_timeout_s, not by a looser tolerance.
ENERGY_REL_TOLERANCE = 0.05


class ShotFailed(Exception):
    """A shot could not be fired safely (out of position after retries, device refused)."""

    def __init__(self, message: str, disc_id: str = ""):
        self.disc_id = disc_id
        super().__init__(message)


@dataclass
class Options:
    tolerance_um: float = 0.1
    settle_retry_s: float = 0.02  # extra settle before re-reading the encoder
    position_retries: int = 2
    refire_uncertain: bool = False
    fly_fallback: str = "auto"  # multi-pulse rows: "passes" (repeat the pass) | "step" | "auto" (plan says)
    home: bool = False
    fly_lead_s: float | None = None  # fly trigger lead; None: measured from the read-back (0 without one)
    batch_size: int = 256  # "batch" journal durability: shots per fsynced horizon
    attenuator_timeout_s: float = 5.0  # wait for the laser's energy to settle after an attenuator move
    max_pulse_energy_uj: float | None = None
    energy_rel_tolerance: float | None = ENERGY_REL_TOLERANCE  # laser-reported vs planned; None: record only


@dataclass
class Stats:
    fired: int = 0
    failed: int = 0
    skipped: int = 0  # uncertain shots left alone this session
    uncertain_skipped: list[int] = field(default_factory=list)
    not_selected: int = 0
    already_fired: int = 0
    out_of_tolerance: int = 0  # fired shots placed beyond the tolerance (fly read-back), excused ones included
    out_of_tolerance_ids: list[str] = field(default_factory=list)  # not excused: the run is not a clean success
    warned_ids: list[str] = field(default_factory=list)  # excused: first row before the lead was measured, <= 1.5 tol
    tolerance_um: float = math.nan
    flagged_rows: list[dict[str, Any]] = field(default_factory=list)
    errors_um: list[float] = field(default_factory=list)  # placement error of each fired shot
    t_start: float = field(default_factory=time.time)
    t_end: float = math.nan


@dataclass
class Context:
    plan: Any
    stage: Any
    laser: Any
    journal: Journal
    control: RunControl
    progress: Progress
    options: Options
    stats: Stats = field(default_factory=Stats)
    on_pause: Callable[[], bool] | None = None  # RunHooks.on_pause: True resumes; False/None ends paused
    pulse_readback: Any = None  # fly mode: object with .read_new() -> array (k, 4) t,x,y,z (emulator log)
    attenuation: float = math.nan
    pulse_energy_uj: float = math.nan  # what the laser reports at the current setting
    done_total: int = 0
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    fired_seqs: list[int] = field(default_factory=list)  # this session, in firing order
    fired_at: list[float] = field(default_factory=list)  # time.monotonic() of each, for the interlock rule
    fly_lead_s: float = 0.0
    lead_samples: list[float] = field(default_factory=list)
    suspect: list[int] = field(default_factory=list)  # fired shots to mark uncertain at exit (safety chain)
    interlock_closed: bool | None = None  # last interlock state written to the journal
    _interlock_next: float = 0.0  # time.monotonic() before which no periodic interlock record is written
    _interlock_seen: float | None = None  # the laser's last_interlock_ok already recorded
    _interlock_seen_t: float = 0.0  # Unix time of the latest observation recorded

    def recent_shots(self, window_s: float) -> list[int]:
        """Shots of this session fired within the last `window_s` seconds."""
        return self.shots_fired_since(time.monotonic() - window_s)

    def shots_fired_since(self, t_monotonic: float) -> list[int]:
        """Shots of this session whose fire call returned at or after `t_monotonic`.

        fired_at is taken after fire() returns, so a shot whose trigger went out after `t` is always
        included (a shot triggered just before `t` may be too: conservative)."""
        import bisect

        k = bisect.bisect_left(self.fired_at, t_monotonic)
        return self.fired_seqs[k:]

    def interlock(self, closed: bool, source: str, message: str = "", seen: float | None = None) -> None:
        """Journal an interlock observation (an "interlock" record, records.py); `seen` Unix time of it."""
        seen = time.time() if seen is None else seen
        rec: dict[str, Any] = {"k": "interlock", "closed": closed, "seen": round(seen, 6), "source": source}
        self._interlock_seen_t = max(self._interlock_seen_t, seen)
        if message:
            rec["message"] = message
        self.interlock_closed = closed
        self._interlock_next = time.monotonic() + INTERLOCK_RECORD_S
        if self.journal.failed is None:
            self.journal.write(rec)

    def observe_interlock(self) -> None:
        """Between shots: record the laser's own latest good interlock check, at most every
        INTERLOCK_RECORD_S seconds while closed (a state change is recorded where it is seen)."""
        now = time.monotonic()
        if now < self._interlock_next:
            return
        self._interlock_next = now + INTERLOCK_RECORD_S
        laser = self.laser
        last = laser.last_interlock_ok if isinstance(laser, InterlockCheck) else None
        if not isinstance(last, (int, float)) or not math.isfinite(last) or last == self._interlock_seen:
            return
        self._interlock_seen = float(last)
        seen = time.time() - max(0.0, now - float(last))
        if seen > self._interlock_seen_t:  # e.g. the check arming made, already recorded as "arm"
            self.interlock(True, "laser", seen=seen)

    def checkpoint(self) -> None:
        """At a safe point (between shots): honour a pause or stop request."""
        self.observe_interlock()
        state = self.control.checkpoint()
        if state is RunState.RUNNING:
            return
        if state is RunState.PAUSED:
            self.journal.flush(durable=True)
            self.laser.disarm()  # gate closed while paused
            self.journal.write({"k": "event", "what": "pause", "message": self.control.reason}, durable=True)
            self.progress.message(f"paused: {self.control.reason}")
            if self.on_pause is not None and self.on_pause():
                self.control.resume()
                self.journal.write({"k": "event", "what": "resume"}, durable=True)
                self.laser.arm()
                self.progress.message("resumed")
                return
            raise RunStopped(RunState.PAUSED, self.control.reason or "paused")
        raise RunStopped(RunState.STOPPED, self.control.reason or "stopped")

    def set_energy(self, seq: int) -> None:
        """Set the attenuator for shot `seq` when it differs from the current setting."""
        a = self.arrays["attenuator"][seq]
        if a is None or a == self.attenuation:
            if math.isnan(self.pulse_energy_uj):
                self.pulse_energy_uj = float(self.laser.pulse_energy_uj())
            return
        self.laser.set_attenuation(a)
        self.attenuation = math.nan  # unknown until the energy is confirmed below
        tol = self.options.energy_rel_tolerance
        planned = float(self.arrays["pulse_energy_uj"][seq])
        # a motorised attenuator takes a while: poll the laser's energy until it settles on the plan
        deadline = time.monotonic() + self.options.attenuator_timeout_s
        while True:
            self.pulse_energy_uj = float(self.laser.pulse_energy_uj())
            ok = tol is None or math.isnan(self.pulse_energy_uj) or abs(self.pulse_energy_uj - planned) <= tol * planned
            if ok or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if ok:
            self.attenuation = a
        else:
            raise ShotFailed(f"{self.laser.url}: pulse energy {self.pulse_energy_uj:.4g} uJ at attenuation {a:.4g} "
                             f"differs from the planned {planned:.4g} uJ by more than {tol:.0%} "
                             f"{self.options.attenuator_timeout_s:g} s after the attenuator move",
                             str(self.arrays["disc_id"][seq]))
