"""Jerk-limited motion model: the standard 7-phase S-curve (limits v, a, jerk j = a / Tj, XPS SGamma),
checked against the planner's closed form (fabplan.planning.kinematics.move_time, worked by hand in
tests/test_kinematics_scurve.py) and against its own limits: |velocity| <= v, |acceleration| <= a,
monotone, ends exactly at the target.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fabplan.planning.kinematics import move_time
from sim.clock import SimClock, parse_speedup
from sim.faults import parse_faults
from sim.motion import Profile, jerk_time_for, move_duration
from sim.xps_emulator import XpsEmulator


@pytest.mark.parametrize("dist, v, a, tj", [(1.0, 20.0, 200.0, 0.02), (30.0, 20.0, 200.0, 0.02),
                                            (0.001, 5.0, 50.0, 0.005), (-12.0, 10.0, 100.0, 0.05),
                                            (0.3, 20.0, 200.0, 0.025), (5.0, 1.0, 1000.0, 0.05)])
def test_profile_is_the_planners_s_curve(dist, v, a, tj):
    p = Profile(2.0, 2.0 + dist, 1.0, v, a, tj)
    expected = float(move_time(dist, v, a, a / tj))
    assert p.duration == pytest.approx(expected, rel=1e-12)
    assert move_duration(dist, v, a, tj) == pytest.approx(expected, rel=1e-12)
    t = np.linspace(p.t0 - 0.01, p.t_end + 0.01, 40001)
    x = p.position(t)
    assert x[0] == 2.0 and x[-1] == 2.0 + dist
    assert p.position(p.t_end) == pytest.approx(2.0 + dist, abs=1e-12)
    dx = np.diff(x) * math.copysign(1, dist)
    assert (dx >= -1e-12).all()  # monotone: no overshoot
    vel = np.gradient(x, t)
    acc = np.gradient(vel, t)
    assert np.abs(vel).max() <= v * (1 + 1e-3)
    assert np.abs(acc).max() <= a * (1 + 2e-2)
    assert p.velocity_at(t) == pytest.approx(vel, abs=v * 2e-3)


def test_move_duration_equals_the_planner_in_every_regime():
    # v = 20, a = 200, Tj = 0.025 -> j = 8000: pure jerk below 2 a^3/j^2 = 0.25, cruise above v Ta = 2.5
    d = np.concatenate(([1e-6, 0.02, 0.2499, 0.2501, 1.0, 2.4999, 2.5001, 10.0], np.geomspace(1e-5, 80, 200)))
    ours = np.array([move_duration(x, 20.0, 200.0, 0.025) for x in d])
    assert ours == pytest.approx(move_time(d, 20.0, 200.0, 8000.0), rel=1e-12)
    prof = np.array([Profile(0.0, x, 0.0, 20.0, 200.0, 0.025).duration for x in d])
    assert prof == pytest.approx(ours, rel=1e-12)


@pytest.mark.parametrize("pco", [False, True], ids=["instant-path", "profile-path"])
@pytest.mark.parametrize("dist_um", [1.0, 20.0, 1000.0, 10000.0])
def test_emulated_move_time_agrees_with_the_planner(dist_um, pco):
    """What a dry run reports: the emulator's simulated time for one X move vs the plan estimate for the
    same v, a and jerk (SGamma min = max jerk time = a / j), 20 us servo lag included: within 1 %."""
    v, a, tj = 20.0, 200.0, 0.025  # mm/s, mm/s^2, s (the emulator's XY default SGamma)
    e = XpsEmulator(speedup="inf", initialized=True)
    try:
        assert e.execute(f"PositionerSGammaParametersSet(XYZ.X,{v},{a},{tj},{tj})").startswith("0,")
        if pco:  # compare enabled on Z (not moving): the move goes through Profile, not the hot path
            e.execute("PositionerPositionCompareSet(XYZ.Z,1,2,0.5)")
            e.execute("PositionerPositionCompareEnable(XYZ.Z)")
        t0 = e.clock.now()
        assert e.execute(f"GroupMoveRelative(XYZ,{dist_um / 1000.0},0,0)").startswith("0,")
        emulated = e.clock.now() - t0
    finally:
        e.close()
    planned = float(move_time(dist_um, v * 1e3, a * 1e3, a * 1e3 / tj))
    assert emulated == pytest.approx(planned, rel=0.01)


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


def test_named_fault_trigger_strikes_at_that_calls_nth_occurrence():
    from sim.faults import FaultPlan

    plan = FaultPlan("slow@GroupPositionCurrentGet#2:1.0,following@GroupStatusGet")
    calls = ["Login", "GroupPositionCurrentGet", "GroupStatusGet", "GroupPositionCurrentGet", "GroupMoveAbsolute"]
    struck = [[f.kind for f in plan.next_command(is_move=c == "GroupMoveAbsolute", name=c)] for c in calls]
    # slow at the 2nd encoder read (4th command); following waits for the first move after its trigger
    assert struck == [[], [], [], ["slow"], ["following"]]
    with pytest.raises(ValueError, match="NAME#N"):
        parse_faults("drop@Group Move#x")
