"""Jerk-limited motion model: closed-form checks of the box-filtered trapezoid (S-curve).

A trapezoid with limits v, a over distance D lasts T = D/v + v/a (D >= v^2/a) or 2 sqrt(D/a)
(triangular); box-filtering over Tj adds Tj, keeps peak |acceleration| <= a and makes the jerk a/Tj.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.clock import SimClock, parse_speedup
from sim.faults import parse_faults
from sim.motion import Profile, jerk_time_for, move_duration


@pytest.mark.parametrize("dist, v, a, tj", [(1.0, 20.0, 200.0, 0.02), (30.0, 20.0, 200.0, 0.02),
                                            (0.001, 5.0, 50.0, 0.005), (-12.0, 10.0, 100.0, 0.05)])
def test_profile_closed_form(dist, v, a, tj):
    p = Profile(2.0, 2.0 + dist, 1.0, v, a, tj)
    d = abs(dist)
    expected = (d / v + v / a if d >= v * v / a else 2 * math.sqrt(d / a)) + tj
    assert p.duration == pytest.approx(expected)
    assert move_duration(dist, v, a, tj) == pytest.approx(expected)
    t = np.linspace(p.t0 - 0.01, p.t_end + 0.01, 40001)
    x = p.position(t)
    assert x[0] == 2.0 and x[-1] == pytest.approx(2.0 + dist, abs=1e-12)
    dx = np.diff(x) * math.copysign(1, dist)
    assert (dx >= -1e-12).all()  # monotone: no overshoot
    vel = np.gradient(x, t)
    acc = np.gradient(vel, t)
    assert np.abs(vel).max() <= v * (1 + 1e-3)
    assert np.abs(acc).max() <= a * (1 + 2e-2)


def test_crossing_times_invert_position():
    p = Profile(0.0, 5.0, 0.0, 10.0, 100.0, 0.01)
    values = np.linspace(0.01, 4.99, 50)
    t = p.crossing_times(values)
    assert p.position(t) == pytest.approx(values, abs=1e-12)
    assert np.isnan(p.crossing_times([6.0])[0])
    lagged = p.crossing_times(values, lag=1e-3)
    assert lagged - t == pytest.approx(np.full(50, 1e-3))


def test_jerk_time_clamped_to_sgamma_window():
    assert jerk_time_for(20.0, 200.0, 0.005, 0.05) == pytest.approx(0.025)  # a quarter of v/a
    assert jerk_time_for(100.0, 10.0, 0.005, 0.05) == 0.05
    assert jerk_time_for(1.0, 1000.0, 0.005, 0.05) == 0.005


def test_instant_clock_accounts_without_sleeping():
    c = SimClock("inf")
    assert c.instant and c.now() == 0.0
    assert c.wait_until(12.5)
    c.advance(0.5)
    assert c.now() == 13.0
    assert parse_speedup("10") == 10.0
    with pytest.raises(ValueError):
        parse_speedup("0")


def test_fault_spec_parsing():
    f = parse_faults("drop@5, slow@3:2.5,estop")
    assert [(x.kind, x.at, x.arg) for x in f] == [("drop", 5, ""), ("slow", 3, "2.5"), ("estop", 0, "")]
    with pytest.raises(ValueError):
        parse_faults("explode@1")
