"""In-memory stage and laser with scripted faults: no sockets, no emulated physics, instant moves.

For tests, benchmarks and notebooks that exercise the executor's logic rather than the wire
protocols (the emulators in sim/ are for those). Like ophyd's `sim` devices, they keep a ground
truth you can inspect: `FakeLaser.log` holds (x, y, z, pulses) of every burst or compare pulse.

    from sim.fakes import FakeLaser, FakeReadback, FakeStage

    stage = FakeStage(offset_um=0.05, faults={("move", 3): FollowingError("lost", device="fake")})
    laser = FakeLaser(stage)          # fires where the stage is; refuses unless it is in position
    stage.pco_laser = laser           # fly mode: moves across the laser's armed line fire pulses
    readback = FakeReadback(laser)    # fly mode: where those pulses landed

Or by URL: `open_stage("fake://")`, `open_laser("fake://", stage=stage)` (URL parameters
`offset_um`, `limit_um`, `interlock_open=1`).

Faults: `FakeStage(faults={("move" | "position", k): exc})` raises `exc` at the k-th such call;
`FakeLaser(faults={k: exc})` at the k-th fire (an exception with `after_firing = True`, see
`lost_after_firing`, is raised after the pulses went out: the shot must end uncertain).
"""

from __future__ import annotations

import numpy as np

from stage_drivers.protocols import (
    AxisLimits,
    ConnectionLost,
    InterlockOpen,
    MotionParams,
    NotInPosition,
    StageStatus,
    TravelLimitError,
)


class FakeStage:
    """A `Stage` (with the MotionProfile ability) that moves instantly."""

    url = "fake://stage"
    axes = ("X", "Y", "Z")

    def __init__(self, limits=(-1e5, 1e5), offset_um=0.0, faults=None):
        self.pos = [0.0, 0.0, 0.0]
        self.limits = {a: AxisLimits(*limits) for a in self.axes}
        self.offset_um = offset_um  # encoder error added after every move (x)
        self.faults = dict(faults or {})  # {("move" | "position", k): exception} raised at the k-th call
        self.calls = {"move": 0, "position": 0}
        self.params = {a: MotionParams(1e4, 1e5) for a in self.axes}
        self.stopped = 0
        self.in_pos = False
        self.homed = True

    on_move = None  # callable(stage) after every move (tests: press Ctrl+C at the k-th shot)
    pco_error_um = 0.0  # fly mode: compare pulses land this far downstream (x)
    pco_laser = None  # fly mode: the FakeLaser whose armed line this stage's moves cross

    @classmethod
    def from_url(cls, u, timeout_s=None) -> FakeStage:
        lim = u.float_param("limit_um", 1e5)
        stage = cls(limits=(-lim, lim), offset_um=u.float_param("offset_um", 0.0))
        stage.url = u.raw
        return stage

    def connect(self) -> FakeStage:
        return self

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeStage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tick(self, what):
        k = self.calls[what]
        self.calls[what] += 1
        exc = self.faults.get((what, k))
        if exc is not None:
            self.in_pos = False
            raise exc

    def move_to(self, x, y, z=None, timeout_s=None):
        self.check_limits(x, y, z)
        self.in_pos = False
        self._tick("move")
        laser = self.pco_laser
        if laser is not None and laser.line is not None and laser.armed:
            lo, hi = sorted((self.pos[0], x))
            hits = [p for p in laser.line if lo <= p <= hi]
            hits.sort(reverse=x < self.pos[0])
            for p in hits:
                laser.log.append((p + self.pco_error_um, y, self.pos[2] if z is None else z, 1))
        self.pos = [x + self.offset_um, y, self.pos[2] if z is None else z]
        self.in_pos = True
        if self.on_move:
            self.on_move(self)

    def move_by(self, dx, dy, dz=0.0, timeout_s=None):
        self.move_to(self.pos[0] + dx, self.pos[1] + dy, self.pos[2] + dz, timeout_s)

    def position(self):
        self._tick("position")
        return tuple(self.pos)

    def status(self):
        return StageStatus(12 if self.homed else 42, "ready" if self.homed else "not referenced", True,
                           self.homed, self.homed, False, False, tuple(self.pos), self.axes)

    def home(self, timeout_s=None):
        self.homed = True

    def in_position(self):
        return self.in_pos

    def travel_limits(self):
        return dict(self.limits)

    def set_travel_limits(self, axis, limits):
        self.limits[axis] = limits

    def check_limits(self, x, y, z=None):
        for a, v in zip(self.axes, (x, y, z), strict=True):
            if v is not None and not self.limits[a].contains(v):
                raise TravelLimitError(f"{a}={v} outside limits", device=self.url)

    def motion_params(self, axis):
        return self.params[axis]

    def set_motion_params(self, axis, p):
        self.params[axis] = p

    def max_velocity_acceleration(self, axis):
        return 1e6, 1e8  # um/s, um/s^2: nothing a plan asks for is clamped

    def stop(self):
        self.stopped += 1

    def abort(self):
        self.stopped += 1


class FakeLaser:
    """A `PulseSource` that fires where `stage` is: 1 uJ per pulse at 100 % (linear attenuator)."""

    url = "fake://laser"

    def __init__(self, stage: FakeStage, faults=None, interlock_open=False, energy_at_100_uj: float = 1.0):
        self.stage = stage
        self.log: list[tuple[float, float, float, int]] = []  # ground truth: x, y, z, pulses
        self._armed = False
        self.arm_count = 0
        self.faults = dict(faults or {})  # {k: exception} at the k-th fire call
        self.fire_calls = 0
        self.interlock_open = interlock_open
        self.energy_at_100_uj = energy_at_100_uj
        self.att = 100.0
        self.line = None

    @classmethod
    def from_url(cls, u, trigger=None, timeout_s=None) -> FakeLaser:
        stage = trigger if isinstance(trigger, FakeStage) else FakeStage()
        laser = cls(stage, interlock_open=u.params.get("interlock_open", "0") in ("1", "true", "yes"))
        stage.pco_laser = laser
        laser.url = u.raw
        return laser

    def connect(self) -> FakeLaser:
        return self

    def close(self) -> None:
        self.disarm()

    def __enter__(self) -> FakeLaser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def armed(self):
        return self._armed

    def arm(self):
        if self.interlock_open:
            raise InterlockOpen("interlock open", device=self.url, command="EnableOutput")
        self._armed = True
        self.arm_count += 1

    def disarm(self):
        self._armed = False

    def fire(self, n=1):
        k = self.fire_calls
        self.fire_calls += 1
        if not self._armed:
            raise RuntimeError("fired while disarmed")
        if not self.stage.in_position():
            raise NotInPosition("not in position", device=self.url)
        exc = self.faults.get(k)
        if exc is not None:
            if getattr(exc, "after_firing", False):
                self.log.append((*self.stage.pos, n))
            raise exc
        self.log.append((*self.stage.pos, n))

    def set_attenuation(self, percent):
        self.att = percent

    def attenuation(self):
        return self.att

    def pulse_energy_uj(self):
        return self.energy_at_100_uj * self.att / 100.0

    def arm_line(self, axis, positions):
        self.line = list(positions)

    def disarm_line(self):
        self.line = None


class FakeReadback:
    """A `PulseReadback`: the pulses FakeLaser logged since the last call, as (k, 4) t, x, y, z."""

    def __init__(self, laser: FakeLaser):
        self.laser, self.seen = laser, 0

    def read_new(self, expect=None, timeout_s=1.0):
        new = self.laser.log[self.seen:]
        self.seen = len(self.laser.log)
        return np.array([(0.0, x, y, z) for x, y, z, _n in new]).reshape(-1, 4)


def lost_after_firing(device: str = "fake://laser") -> ConnectionLost:
    """A connection lost after the pulses went out (FakeLaser logs them, then raises)."""
    exc = ConnectionLost("connection reset", device=device, command="fire")
    exc.after_firing = True  # type: ignore[attr-defined]
    return exc
