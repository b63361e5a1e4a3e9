"""Every injected fault class gives a clear typed DeviceError (device, command, reply) within the
driver's timeout, over the real transports (TCP, HTTP)."""

from __future__ import annotations

import threading
import time

import pytest

from sim import start_lab
from stage_drivers import (
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    EmergencyStop,
    FollowingError,
    InterlockOpen,
    MotionAborted,
    ProtocolError,
    TravelLimitError,
    open_laser,
    open_stage,
)


@pytest.fixture
def lab(tmp_path):
    lab = start_lab(tmp_path / "pulses.csv", homed=True)
    yield lab
    lab.close()


@pytest.fixture
def rig(lab):
    st = open_stage(lab.stage_url, timeout_s=0.5)
    laser = open_laser(lab.laser_url + "?interlock_check=0", stage=st, timeout_s=0.5)
    st.home()
    yield lab, st, laser
    laser.close()
    st.close()


def bounded(fn, exc, limit_s=2.0):
    t0 = time.monotonic()
    with pytest.raises(exc) as ei:
        fn()
    assert time.monotonic() - t0 < limit_s, "the driver must give up within its timeout"
    e = ei.value
    assert e.device and e.command, "errors name the device and the command"
    return e


def test_xps_drop_then_clean_reconnect(rig):
    lab, st, _ = rig
    lab.inject("xps", "drop")
    e = bounded(st.position, ConnectionLost)
    assert e.command.startswith("GroupPositionCurrentGet")
    assert len(st.position()) == 3  # the next call reconnects


def test_xps_garbled_reply(rig):
    lab, st, _ = rig
    lab.inject("xps", "garble")
    e = bounded(st.status_code, ProtocolError)
    assert e.reply.endswith(",EndOfAPI")
    assert st.status_code() == 11  # homed, not moved yet


def test_xps_split_replies_are_transparent(rig):
    lab, st, _ = rig
    lab.inject("xps", "split", arg="all")
    st.move_to(10.0, 20.0, 0.0)
    assert st.position() == pytest.approx((10.0, 20.0, 0.0), abs=0.05)
    assert st.status().code == 12


def test_xps_slow_reply_times_out(rig):
    lab, st, _ = rig
    lab.inject("xps", "slow", arg="5")
    e = bounded(st.status_code, DeviceTimeout, limit_s=1.5)
    assert e.command == "GroupStatusGet(XYZ,int *)"


def test_xps_following_error_then_recovery(rig):
    lab, st, _ = rig
    lab.inject("xps", "following")
    e = bounded(lambda: st.move_to(500.0, 0.0, 0.0), FollowingError)
    assert e.code == -25 and "Following" in str(e)
    s = st.status()
    assert s.code == 22 and s.fault and not st.in_position()
    st.home()  # GroupMotionEnable
    st.move_to(500.0, 0.0, 0.0)
    assert st.in_position()


def test_xps_travel_limit_hit(rig):
    lab, st, _ = rig
    lab.inject("xps", "limit")
    e = bounded(lambda: st.move_to(500.0, 0.0, 0.0), TravelLimitError)
    assert e.code == -35


def test_xps_emergency_stop(rig):
    lab, st, laser = rig
    laser.arm()
    lab.inject("xps", "estop")
    e = bounded(lambda: st.move_to(500.0, 0.0, 0.0), EmergencyStop)
    assert e.code == -26
    assert st.status().code == 2 and lab.xps.gpio_do & 1 == 0  # gate dropped with the e-stop


def test_laser_interlock_opens(rig):
    lab, st, laser = rig
    laser.arm()
    st.move_to(0.0, 0.0, 0.0)
    laser.fire(1)
    lab.inject("pharos", "interlock")
    e = bounded(lambda: laser.fire(1), InterlockOpen)
    assert e.reply == "Interlock" and not laser.armed
    assert lab.xps.gpio_do & 1 == 0
    with pytest.raises(InterlockOpen):
        laser.arm()


def test_pharos_faults(rig):
    lab, _, laser = rig
    lab.inject("pharos", "split")
    assert laser.state() == "StandingBy"
    lab.inject("pharos", "garble")
    bounded(laser.attenuation, ProtocolError)
    lab.inject("pharos", "slow", arg="5")
    bounded(laser.pulse_energy_uj, DeviceTimeout, limit_s=1.5)
    lab.inject("pharos", "drop")
    bounded(lambda: laser.set_attenuation(50.0), ConnectionLost)
    laser.set_attenuation(50.0)
    assert laser.attenuation() == 50.0
    assert laser.pulse_energy_uj() == 0.0  # output closed
    laser.arm()
    assert laser.pulse_energy_uj() == pytest.approx(5.0)


def test_move_timeout_aborts_the_move(tmp_path):
    with start_lab(tmp_path / "p.csv", speedup=1.0, homed=True) as lab, open_stage(lab.stage_url) as st:
        t0 = time.monotonic()
        e = bounded(lambda: st.move_to(40000.0, 0.0, 0.0, timeout_s=0.3), DeviceTimeout)
        assert time.monotonic() - t0 < 1.5 and e.command.startswith("GroupMoveAbsolute")
        assert st.status().code == 10  # aborted by the driver, not left running


def test_stop_from_another_thread_aborts_a_move(tmp_path):
    with start_lab(tmp_path / "p.csv", speedup=1.0, homed=True) as lab, open_stage(lab.stage_url) as st:
        threading.Timer(0.2, st.stop).start()
        e = bounded(lambda: st.move_to(-40000.0, 0.0, 0.0, timeout_s=3.0), MotionAborted)
        assert e.code == -27
        x = st.position()[0]
        assert -40000.0 < x < 0.0


def test_every_error_is_a_device_error():
    for cls in (ConnectionLost, DeviceTimeout, EmergencyStop, FollowingError, InterlockOpen, MotionAborted,
                ProtocolError, TravelLimitError):
        assert issubclass(cls, DeviceError)
