"""S-curve move times against the closed-form phases, worked by hand, and the step/fly estimates.

Limits v = 20, a = 100, j = 1000 (any consistent units): jerk time Tj = a/j = 0.1, the
acceleration limit is reached (v > a^2/j = 10), accel phase Ta = v/a + a/j = 0.3,
distance to reach v and stop d_full = v Ta = 6, distance at which a is just reached 2 a^3/j^2 = 2.
"""

import numpy as np
import pytest

from fabplan.planning.estimate import estimate_fly, estimate_step
from fabplan.planning.kinematics import accel_distance, group_move_times, move_time

V, A, J = 20.0, 100.0, 1000.0


def test_cruise_case_by_hand():
    # d = 10 >= 6: t = d/v + Ta = 0.5 + 0.3
    assert move_time(10.0, V, A, J) == pytest.approx(0.8)


def test_acceleration_limited_case_by_hand():
    # d = 4 in [2, 6): vp^2 + vp a^2/j - a d = 0 -> vp = (-10 + sqrt(100 + 1600)) / 2 = 15.6155
    vp = (-10 + np.sqrt(1700)) / 2
    assert move_time(4.0, V, A, J) == pytest.approx(2 * (vp / A + A / J))
    assert move_time(4.0, V, A, J) == pytest.approx(0.512311, rel=1e-5)


def test_jerk_limited_case_by_hand():
    # d = 1 < 2: four jerk phases, d = 2 j Tj^3 -> Tj = (1/2000)^(1/3), t = 4 Tj
    assert move_time(1.0, V, A, J) == pytest.approx(4 * (1 / 2000) ** (1 / 3))


def test_continuous_at_regime_boundaries_and_monotone():
    for d in (2.0, 6.0):
        lo, hi = move_time([d * (1 - 1e-9), d * (1 + 1e-9)], V, A, J)
        assert lo == pytest.approx(hi, rel=1e-6)
    d = np.linspace(0, 50, 5001)
    t = move_time(d, V, A, J)
    assert t[0] == 0 and np.all(np.diff(t) > 0)
    # a low jerk that never lets acceleration reach a: a' = sqrt(v j)
    assert move_time(1000.0, 10.0, 1e6, 1.0) == pytest.approx(1000 / 10 + 2 * np.sqrt(10.0))


def test_accel_distance_and_group_move():
    assert accel_distance(V, A, J) == pytest.approx(V * 0.3 / 2)
    t = group_move_times(np.array([10.0, 0.0]), np.array([1.0, 4.0]), None, V, A, J)
    assert t.tolist() == pytest.approx([0.8, 0.512311], rel=1e-5)


def test_step_estimate_by_hand():
    # three shots 10 apart on x, 2 pulses each at 1 kHz, settle 0.02 s, one attenuator change
    x = np.array([0.0, 10.0, 20.0])
    est = estimate_step(
        x,
        np.zeros(3),
        np.zeros(3),
        np.array([2, 2, 2]),
        np.array([10.0, 10.0, 12.0]),
        v=V,
        a=A,
        j=J,
        settle_s=0.02,
        rep_rate_hz=1000.0,
        attenuator_move_s=0.5,
    )
    assert est["moves_s"] == pytest.approx(2 * 0.8)
    assert est["settle_s"] == pytest.approx(0.06)
    assert est["pulses_s"] == pytest.approx(0.006)
    assert est["attenuator_s"] == pytest.approx(0.5)
    assert est["total_s"] == pytest.approx(1.6 + 0.06 + 0.006 + 0.5)


def _line(**changes) -> dict:
    """One fly line from x = -2 to 101 um at 10 um/s (shots 0..10), as the planner writes it."""
    line = {
        "line": 0, "axis": "x", "x_um": 0.0, "y_um": 0.0, "z_um": 0.0, "start_um": -2.0, "stop_um": 101.0,
        "velocity_um_s": 10.0, "first_seq": 0, "last_seq": 10, "dy_dx": 0.0, "dz_dx": 0.0,
    }
    return {**line, **changes}


def test_fly_estimate_by_hand():
    # one line: first shot x=0, last x=100 at v=10; run-up = accel distance 10*Ta/2 with
    # Ta = 10/100 + 0.1 = 0.2 -> 1.0, settle 0.1 s adds 1.0 of constant velocity before the first shot.
    line = _line()
    back = dict(line, line=1, y_um=5.0, start_um=102.0, stop_um=-1.0, velocity_um_s=10.0)
    est = estimate_fly(
        [line, back], np.array([np.nan, np.nan]), v=V, a=A, j=J, settle_s=0.1, attenuator_move_s=0.5
    )
    per_line = 103.0 / 10.0 + 0.2  # d/v + Ta (accelerate, settle, 100 at v, decelerate)
    assert est["moves_s"] + est["settle_s"] == pytest.approx(2 * per_line)
    assert est["settle_s"] == pytest.approx(0.2)
    # turnaround from (101, 0) to (102, 5): x 1 (jerk-limited), y 5 (acceleration-limited)
    assert est["turnarounds_s"] == pytest.approx(float(max(move_time(1.0, V, A, J), move_time(5.0, V, A, J))))
    assert est["pulses_s"] == 0.0


def test_fly_multi_pulse_lines_take_passes():
    line = _line(passes=3)
    est = estimate_fly([line], np.array([np.nan]), v=V, a=A, j=J, settle_s=0.1, attenuator_move_s=0.5)
    assert est["moves_s"] + est["settle_s"] == pytest.approx(3 * (103.0 / 10.0 + 0.2))
    assert est["settle_s"] == pytest.approx(0.3)
    assert est["turnarounds_s"] == pytest.approx(2 * float(move_time(103.0, V, A, J)))  # two returns
