"""In-memory stage and pulse source with scripted faults, plus a synthetic plan, for executor unit
tests (the integration tests use the wire-protocol emulators in sim/)."""

from __future__ import annotations

import numpy as np

from fabplan.planning.plan import Plan, ShotTable
from stage_drivers.protocols import (
    AxisLimits,
    ConnectionLost,
    MotionParams,
    NotInPosition,
    StageStatus,
)


class FakeStage:
    url = "fake://stage"
    axes = ("X", "Y", "Z")

    def __init__(self, limits=(-1e5, 1e5), offset_um=0.0, faults=None):
        self.pos = [0.0, 0.0, 0.0]
        self.limits = {a: AxisLimits(*limits) for a in self.axes}
        self.offset_um = offset_um  # encoder error added after every move
        self.faults = dict(faults or {})  # {("move", k): exception} raised at the k-th call
        self.calls = {"move": 0, "position": 0}
        self.params = {a: MotionParams(1e4, 1e5) for a in self.axes}
        self.stopped = 0
        self.in_pos = False
        self.homed = True

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
        laser = getattr(self, "pco_laser", None)
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

    on_move = None
    pco_error_um = 0.0

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

    def check_limits(self, x, y, z=None):
        from stage_drivers.protocols import TravelLimitError

        for a, v in zip(self.axes, (x, y, z), strict=True):
            if v is not None and not self.limits[a].contains(v):
                raise TravelLimitError(f"{a}={v} outside limits", device=self.url)

    def motion_params(self, axis):
        return self.params[axis]

    def set_motion_params(self, axis, p):
        self.params[axis] = p

    def stop(self):
        self.stopped += 1

    def abort(self):
        self.stopped += 1


class FakeLaser:
    url = "fake://laser"

    def __init__(self, stage: FakeStage, faults=None, interlock_open=False):
        self.stage = stage
        self.log: list[tuple[float, float, float, int]] = []  # ground truth: x, y, z, pulses
        self._armed = False
        self.arm_count = 0
        self.faults = dict(faults or {})  # {k: exception} at the k-th fire call
        self.fire_calls = 0
        self.interlock_open = interlock_open
        self.att = 100.0
        self.line = None

    @property
    def armed(self):
        return self._armed

    def arm(self):
        from stage_drivers.protocols import InterlockOpen

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
        return 1.0 * self.att / 100.0  # 1 uJ at 100 %

    def arm_line(self, axis, positions):
        self.line = list(positions)

    def disarm_line(self):
        self.line = None


class FakeReadback:
    """Pulses logged by FakeLaser since the last call, as (k, 4) t, x, y, z."""

    def __init__(self, laser: FakeLaser):
        self.laser, self.seen = laser, 0

    def read_new(self, expect=None, timeout_s=1.0):
        new = self.laser.log[self.seen:]
        self.seen = len(self.laser.log)
        return np.array([(0.0, x, y, z) for x, y, z, _n in new]).reshape(-1, 4)


def lost_after_firing():
    exc = ConnectionLost("connection reset", device="fake://laser", command="fire")
    exc.after_firing = True
    return exc


def make_plan(n_rows=3, n_cols=4, pitch=10.0, mode="step", pulses=1) -> Plan:
    rows, cols = np.divmod(np.arange(n_rows * n_cols), n_cols)
    x = cols * pitch
    serp = rows % 2 == 1
    x = np.where(serp, (n_cols - 1 - cols) * pitch, x)
    y = rows * pitch
    ids = [f"A-r{r:02d}c{c:02d}" for r, c in zip(rows, np.where(serp, n_cols - 1 - cols, cols), strict=True)]
    n = len(x)
    shots = ShotTable.from_columns(
        disc_id=ids, x_um=x, y_um=y, z_um=np.zeros(n), sample_x_um=x, sample_y_um=y,
        fluence_mj_cm2=np.full(n, 100.0), pulse_energy_uj=np.full(n, 0.5), pulses=np.full(n, pulses),
        attenuator=np.full(n, np.nan), diameter_um=np.full(n, 5.0), trench_outer_um=np.full(n, 8.0),
        line=rows if mode == "fly" else np.full(n, -1),
    )
    lines = []
    if mode == "fly":
        for r in range(n_rows):
            first, last = r * n_cols, r * n_cols + n_cols - 1
            xs = x[first:last + 1]
            d = 1 if xs[-1] > xs[0] else -1
            lines.append({"line": r, "axis": "x", "y_um": float(y[first]), "z_um": 0.0,
                          "start_um": float(xs[0] - d * 50), "stop_um": float(xs[-1] + d * 50),
                          "velocity_um_s": 1000.0, "first_seq": first, "last_seq": last})
    header = {"design_hash": "d" * 64, "design_name": "fake", "mode": mode, "model": {},
              "estimate": {"total_s": 1.0}, "position_tolerance_um": 0.1}
    return Plan.assemble(header, shots, lines)


def test_fake_plan_is_consistent():
    plan = make_plan(mode="fly")
    assert len(plan.shots) == 12 and len(plan.lines) == 3
    assert plan.lines[1]["start_um"] > plan.lines[1]["stop_um"]
