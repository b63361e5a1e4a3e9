"""Light Conversion's own client (`lightcon.laser_clients.Pharos`) as the oracle for the Pharos
emulator, and our driver's requests against the client's for the same operation.

lightcon 1.7 defaults: port 20022, base http://host:port/v1/, endpoints /Basic (status object),
/Basic/ActualOutputFrequency (kHz), /Basic/ActualPpDivider (polled after set_pp(blocking=True)),
/Basic/TargetPpDivider (PUT, body the number as text), /Basic/EnableOutput, /Basic/CloseOutput (POST).
"""

from __future__ import annotations

import pytest

laser_clients = pytest.importorskip("lightcon.laser_clients")

from sim.pharos_emulator import PharosEmulator  # noqa: E402
from stage_drivers import open_laser  # noqa: E402


class Recording(PharosEmulator):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.requests: list[tuple[str, str, bytes]] = []

    def handle(self, method, path, body):
        self.requests.append((method, path, body))
        return super().handle(method, path, body)


@pytest.fixture
def emu():
    e = Recording().start()
    yield e
    e.close()


def test_lightcon_pharos_drives_the_emulator(emu):
    ph = laser_clients.Pharos("127.0.0.1", port=emu.port)
    assert ph.connected
    status = ph.get_status()
    assert status["ActualStateName"] == "StandingBy" and status["ActualPpDivider"] == 1  # output closed
    ph.set_pp(4, blocking=True)  # polls ActualPpDivider until it reads 4 (hung forever when it was 404)
    assert ph.get_pp() == 4
    assert ph.get_frequency() == pytest.approx(50.0)  # kHz: 200 kHz / 4
    ph.enable_output()
    assert emu.laser.output_enabled
    assert ph._get("Basic/ActualOutputPower") == pytest.approx(ph._get("Basic/ActualOutputEnergy") * 50e3 * 1e-6)
    assert ph._get("Basic/GeneralStatus") == "Operational"  # output open
    assert ph._get("Basic/ActualAttenuatorPercentage") == pytest.approx(100.0)
    ph.close_output()
    assert not emu.laser.output_enabled
    assert ph._get("Basic/ActualOutputPower") == 0.0


def test_base_path_and_port_come_from_the_url():
    with Recording(base_paths=("/v0/Basic",)) as emu:
        ph = laser_clients.Pharos("127.0.0.1", port=emu.port, version="v0")
        assert ph.get_pp() == 1
        laser = open_laser(f"pharos://127.0.0.1:{emu.port}/v0", timeout_s=2.0)
        assert laser.state() == "StandingBy"
        assert emu.requests[-1][1] == "/v0/Basic/ActualStateName"
        laser.close()
        assert emu.handle("GET", "/v1/Basic/ActualStateName", b"")[0] == 404  # this firmware serves v0 only


def test_driver_requests_match_lightcon(emu):
    ph = laser_clients.Pharos("127.0.0.1", port=emu.port)
    laser = open_laser(emu.url, timeout_s=2.0)

    def both(ours, theirs):
        emu.requests.clear()
        ours()
        mine = list(emu.requests)
        emu.requests.clear()
        theirs()
        return mine, list(emu.requests)

    mine, theirs = both(lambda: laser.set_divider(4), lambda: ph.set_pp(4))
    assert mine == theirs == [("PUT", "/v1/Basic/TargetPpDivider", b"4")]
    mine, theirs = both(laser.output_frequency_hz, ph.get_frequency)
    assert mine == theirs == [("GET", "/v1/Basic/ActualOutputFrequency", b"")]
    mine, theirs = both(lambda: laser.request("POST", "EnableOutput"), ph.enable_output)
    assert mine == theirs == [("POST", "/v1/Basic/EnableOutput", b"")]
    mine, theirs = both(laser.disarm, ph.close_output)
    assert mine == theirs == [("POST", "/v1/Basic/CloseOutput", b"")]
    laser.close()
