"""Pharos REST driver: the exact requests it makes (method, path, JSON body) and their replies,
against the HTTP emulator. Endpoints: Light Conversion Pharos REST API, /v1/Basic/..."""

from __future__ import annotations

import pytest

from sim.pharos_emulator import PharosEmulator
from stage_drivers import CommandError, DeviceError, InterlockOpen, open_laser


class Recording(PharosEmulator):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.requests: list[tuple[str, str, bytes]] = []

    def handle(self, method, path, body):
        self.requests.append((method, path, body))
        return super().handle(method, path, body)


class FakeTrigger:
    def __init__(self):
        self.calls = []

    def set_gate(self, open_):
        self.calls.append(("gate", open_))

    def fire_pulses(self, n):
        self.calls.append(("fire", n))

    def arm_compare(self, axis, positions):
        self.calls.append(("pco", axis, list(positions)))

    def disarm_compare(self):
        self.calls.append(("pco-off",))


@pytest.fixture
def emu():
    e = Recording().start()
    yield e
    e.close()


def test_requests_and_replies(emu):
    trig = FakeTrigger()
    laser = open_laser(emu.url + "?interlock_check=100", stage=trig, timeout_s=1.0)
    assert emu.requests == [("GET", "/v1/Basic/ActualStateName", b"")]
    assert trig.calls == [("gate", False)]
    emu.requests.clear()
    laser.set_attenuation(25)
    laser.set_divider(4)
    laser.arm()
    assert emu.requests == [("PUT", "/v1/Basic/TargetAttenuatorPercentage", b"25.0"),
                            ("GET", "/v1/Basic/ActualAttenuatorPercentage", b""),  # waits for arrival
                            ("PUT", "/v1/Basic/TargetPpDivider", b"4"),
                            ("GET", "/v1/Basic/ActualStateName", b""), ("POST", "/v1/Basic/EnableOutput", b"")]
    assert laser.attenuation() == 25.0
    assert laser.pulse_energy_uj() == pytest.approx(2.5)  # 10 uJ at 100 % in the emulator
    assert laser.output_frequency_hz() == pytest.approx(50e3)  # 200 kHz / 4, reported in kHz
    assert laser.state() == "Operational"
    laser.fire(3)
    assert trig.calls[-2:] == [("gate", True), ("fire", 3)]
    laser.close()
    assert trig.calls[-2:] == [("gate", False), ("pco-off",)]
    assert emu.requests[-1] == ("POST", "/v1/Basic/CloseOutput", b"")
    assert not emu.laser.output_enabled


def test_bad_values_are_refused(emu):
    laser = open_laser(emu.url, stage=FakeTrigger(), timeout_s=1.0)
    with pytest.raises(ValueError):
        laser.set_attenuation(150.0)
    with pytest.raises(CommandError) as ei:
        laser.request("PUT", "TargetPpDivider", 0)
    assert ei.value.code == 400 and "divider" in str(ei.value) and ei.value.command.startswith("PUT /v1/Basic")
    with pytest.raises(DeviceError):
        laser.fire(1)  # not armed
    laser.close()


def test_enable_refused_with_interlock_open(emu):
    laser = open_laser(emu.url, stage=FakeTrigger(), timeout_s=1.0)
    emu.laser.interlock_open = True
    with pytest.raises(InterlockOpen):
        laser.arm()
    assert not laser.armed and not emu.laser.output_enabled
    with pytest.raises(InterlockOpen) as ei:
        laser.request("POST", "EnableOutput")
    assert ei.value.code == 409
    laser.close()


def test_refused_connection_is_a_device_error():
    from stage_drivers import ConnectionLost

    e = PharosEmulator().start()
    url = e.url
    e.close()
    with pytest.raises(ConnectionLost):
        open_laser(url, timeout_s=0.5)


def test_last_interlock_ok_is_the_last_good_check(emu):
    """fire() checks the interlock only every interlock_check_s: when a check finds it open, the
    shots since `last_interlock_ok` (monotonic, taken when the good check was sent) may be dark."""
    import time

    laser = open_laser(emu.url + "?interlock_check=3600", stage=FakeTrigger(), timeout_s=1.0)
    assert laser.last_interlock_ok is None  # never checked good yet
    before = time.monotonic()
    laser.arm()
    good = laser.last_interlock_ok
    assert good is not None and before <= good <= time.monotonic()
    laser.fire(1)  # within the check interval: no REST round trip, the time stays
    assert laser.last_interlock_ok == good
    emu.laser.interlock_open = True
    laser.fire(1)  # the opening goes unseen until the next check
    with pytest.raises(InterlockOpen):
        laser.check_interlock()
    assert laser.last_interlock_ok == good  # a failed check does not move it
    emu.laser.interlock_open = False
    laser.check_interlock()
    assert laser.last_interlock_ok > good
    laser.close()


def test_set_attenuation_waits_for_the_actual_attenuator():
    """The attenuator is a motorised waveplate: the driver returns once ActualAttenuatorPercentage has
    arrived (Target is only where it was told to go), or times out naming where it is."""
    from stage_drivers import DeviceTimeout

    with Recording(attenuator_speed_pct_s=400.0) as emu:
        laser = open_laser(emu.url + "?attenuator_timeout=10", timeout_s=2.0)
        laser.poll_interval_s = 0.01
        laser.set_attenuation(25.0)  # 75 % of travel: ~0.19 s at 400 %/s
        polls = [r for r in emu.requests if r[1].endswith("/ActualAttenuatorPercentage")]
        assert len(polls) > 1 and laser.attenuation() == 25.0
        laser.close()
    with Recording(attenuator_speed_pct_s=1e-3) as emu:
        laser = open_laser(emu.url + "?attenuator_timeout=0.1", timeout_s=2.0)
        with pytest.raises(DeviceTimeout, match="attenuator at 100"):
            laser.set_attenuation(50.0)
        laser.close()
