"""XPS emulator on its own: group state machine and error codes (Newport XPS manual tables), servo
lag and position-compare physics with closed-form bounds."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from sim.laser_model import LaserModel
from sim.xps_emulator import XpsEmulator, pco_count


def code(reply: str) -> int:
    return int(reply.split(",")[0])


def outputs(reply: str) -> list[str]:
    return reply[: -len(",EndOfAPI")].split(",")[1:]


@pytest.fixture
def emu(tmp_path):
    e = XpsEmulator(speedup="inf", pulse_log=tmp_path / "p.csv", seed=3)
    yield e
    e.close()


def status(e) -> int:
    return int(outputs(e.execute("GroupStatusGet(XYZ,int *)"))[0])


def test_state_machine_and_error_codes(emu):
    assert status(emu) == 0
    assert code(emu.execute("GroupHomeSearch(XYZ)")) == -22  # not initialised
    assert code(emu.execute("GroupInitialize(XYZ)")) == 0 and status(emu) == 42
    assert code(emu.execute("GroupMoveAbsolute(XYZ,1,1,0)")) == -109  # never homed
    assert code(emu.execute("GroupInitialize(XYZ)")) == -22  # already initialised
    assert code(emu.execute("GroupHomeSearch(XYZ)")) == 0 and status(emu) == 11
    assert code(emu.execute("GroupMoveAbsolute(XYZ,60,0,0)")) == -35  # beyond the 50 mm user limit
    assert code(emu.execute("PositionerUserTravelLimitsSet(XYZ.X,-10,10)")) == 0
    assert code(emu.execute("GroupMoveAbsolute(XYZ,11,0,0)")) == -35
    assert code(emu.execute("PositionerUserTravelLimitsSet(XYZ.X,-60,10)")) == -17  # outside the hardware range
    assert code(emu.execute("GroupMoveAbsolute(XYZ,abc,0,0)")) == -7
    assert code(emu.execute("GroupMoveAbsolute(XYZ,1,0,0)")) == 0 and status(emu) == 12
    assert code(emu.execute("GroupMotionDisable(XYZ)")) == 0 and status(emu) == 20
    assert code(emu.execute("GroupMoveAbsolute(XYZ,2,0,0)")) == -22
    assert code(emu.execute("GroupMotionEnable(XYZ)")) == 0 and status(emu) == 13
    assert code(emu.execute("GroupKill(XYZ)")) == 0 and status(emu) == 7
    assert outputs(emu.execute("GroupStatusStringGet(7,char *)")) == [
        "Not initialized state due to a GroupKill or KillAll command"]
    assert outputs(emu.execute("ErrorStringGet(-35,char *)")) == ["Position is outside of travel limits"]


def test_emergency_stop_latches_until_reinitialised(emu):
    emu.execute("GroupInitialize(XYZ)")
    emu.execute("GroupHomeSearch(XYZ)")
    emu.emergency_stop()
    assert status(emu) == 2
    assert code(emu.execute("GroupMoveAbsolute(XYZ,1,0,0)")) == -26
    assert code(emu.execute("GroupInitialize(XYZ)")) == 0 and status(emu) == 42


def test_following_error_is_velocity_times_servo_lag(tmp_path):
    """Mid-cruise the actual position trails the setpoint by v * lag (first-order servo lag model)."""
    e = XpsEmulator(speedup=1.0, initialized=True, servo_lag_s=1e-3)
    try:
        e.execute("PositionerSGammaParametersSet(XYZ.X,10,1000,0.005,0.005)")
        from sim.motion import Profile

        p = e.group.positioners[0]
        p.profile = Profile(0.0, 5.0, 0.0, 10.0, 1000.0, 0.005)  # cruise from ~0.015 s to ~0.5 s
        t = 0.25
        fe = p.setpoint(t) - float(p.actual(t, e.lag))
        assert fe == pytest.approx(10.0 * 1e-3, rel=1e-6)  # 10 mm/s x 1 ms = 10 um
    finally:
        e.close()


@pytest.mark.parametrize("velocity_mm_s", [2.0, 20.0])
def test_pco_placement_error_bounded_by_trigger_jitter(tmp_path, velocity_mm_s):
    """A PCO pulse lands within v / f_base (+ encoder noise) past its compare position: the laser
    emits on its next amplifier pulse after the trigger (200 kHz -> up to 5 us)."""
    laser = LaserModel(tmp_path / "p.csv", output_enabled=True, base_rate_hz=200e3)
    e = XpsEmulator(speedup="inf", initialized=True, laser=laser, seed=5)
    try:
        e.execute("GPIODigitalSet(GPIO3.DO,1,1)")
        e.execute(f"PositionerSGammaParametersSet(XYZ.X,{velocity_mm_s},1000,0.005,0.005)")
        e.execute("PositionerPositionComparePulseParametersSet(XYZ.X,1,0.075)")
        e.execute("PositionerPositionCompareSet(XYZ.X,1,2,0.01)")
        assert code(e.execute("PositionerPositionCompareEnable(XYZ.X)")) == 0
        assert code(e.execute("GroupMoveAbsolute(XYZ,2.5,0,0)")) == 0
        laser.log.flush()
        rows = list(csv.DictReader(open(tmp_path / "p.csv")))
        x = np.array([float(r["x_um"]) for r in rows])
        target = 1000.0 + 10.0 * np.arange(101)
        assert len(x) == 101
        err = x - target
        bound = velocity_mm_s * 1000.0 / 200e3  # um
        assert err.max() < bound + 0.01 and err.min() > -0.01  # + 5 sigma of the 2 nm encoder noise
    finally:
        e.close()
        laser.close()


def test_pco_count_survives_rounded_max_and_step():
    """(max-min)/step from 9-decimal mm strings: pitch 14/3 um -> step 0.004666667 (rounded up by
    3.3e-10), 500 positions from 0 -> max 2.328666667 = 498.99996 steps: the old
    floor(q + 1e-9) counted 499. Both max = last and max = last + step/2 must count 500."""
    assert pco_count(0.0, 2.328666667, 0.004666667) == 500
    assert pco_count(0.0, 2.328666667 + 0.0023333335, 0.004666667) == 500
    assert pco_count(0.1, 0.12, 0.01) == 3  # (0.12 - 0.1) / 0.01 = 1.9999999999999996
    assert pco_count(0.1, 0.125, 0.01) == 3
    assert pco_count(1.0, 1.0, 0.01) == 1
    assert pco_count(1.0, 1.0199, 0.01) == 2  # max short of the third position by 1 % of a step
    assert pco_count(-1.514236, -1.514236 + 0.0035, 0.0035) == 2  # 7 um over 3 positions, 3.5 um apart
    assert pco_count(-1.514236, -1.514236 + 0.007, 0.0035) == 3


def test_pco_fires_the_last_position_of_a_rounded_row(emu):
    e = emu
    assert code(e.execute("GroupInitialize(XYZ)")) == 0 and code(e.execute("GroupHomeSearch(XYZ)")) == 0
    assert code(e.execute("GroupMoveAbsolute(XYZ,-0.1,0,0)")) == 0
    e.execute("GPIODigitalSet(GPIO3.DO,1,1)")
    e.execute("PositionerPositionCompareSet(XYZ.X,0,2.328666667,0.004666667)")
    assert code(e.execute("PositionerPositionCompareEnable(XYZ.X)")) == 0
    assert code(e.execute("GroupMoveAbsolute(XYZ,2.4,0,0)")) == 0
    assert e.laser.fired == 500
