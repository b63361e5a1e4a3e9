"""Device URLs (pyserial style) and where credentials come from (environment or config file, never URLs)."""

from __future__ import annotations

import pytest

from stage_drivers import DeviceUrlError, open_device, open_stage, parse_device_url
from stage_drivers.urls import credentials
from stage_drivers.xps import XpsStage


def test_parse_urls():
    u = parse_device_url("xps://192.168.0.254:5001?group=XY&unit=mm")
    assert (u.scheme, u.host, u.port, u.params) == ("xps", "192.168.0.254", 5001, {"group": "XY", "unit": "mm"})
    u = parse_device_url("esp301:///dev/ttyUSB0?baud=921600")
    assert (u.scheme, u.path, u.params["baud"]) == ("esp301", "/dev/ttyUSB0", "921600")
    assert parse_device_url("pharos://10.0.0.2:20020").port == 20020


@pytest.mark.parametrize("bad", ["ftp://x", "xps://admin:pw@host:5001", "xps://host:notaport"])
def test_bad_urls_are_url_errors(bad):
    with pytest.raises(DeviceUrlError):
        parse_device_url(bad)


def test_pharos_is_not_a_stage():
    with pytest.raises(DeviceUrlError):
        open_stage("pharos://127.0.0.1:1")


def test_credentials_from_env_then_config(tmp_path, monkeypatch):
    monkeypatch.delenv("FABPLAN_XPS_USER", raising=False)
    monkeypatch.delenv("FABPLAN_XPS_PASSWORD", raising=False)
    cfg = tmp_path / "devices.ini"
    cfg.write_text("[192.168.0.254]\nuser = Operator\npassword = fromfile\n")
    monkeypatch.setenv("FABPLAN_DEVICES_CONFIG", str(cfg))
    assert credentials("192.168.0.254") == ("Operator", "fromfile")
    assert credentials("other-host") is None
    monkeypatch.setenv("FABPLAN_XPS_USER", "Admin")
    monkeypatch.setenv("FABPLAN_XPS_PASSWORD", "fromenv")
    assert credentials("192.168.0.254") == ("Admin", "fromenv")
    st = open_device("xps://192.168.0.254:5001?group=XYZ", connect=False)
    assert isinstance(st, XpsStage) and st.credentials == ("Admin", "fromenv")
    assert "fromenv" not in st.url


def test_drivers_satisfy_the_protocols():
    from stage_drivers import PulseSource, Stage
    from stage_drivers.esp301 import Esp301Stage
    from stage_drivers.pharos import PharosLaser
    from stage_drivers.xps import XpsGate

    xps = XpsStage("127.0.0.1", 1)
    assert isinstance(xps, Stage) and isinstance(Esp301Stage("/dev/null"), Stage)
    assert isinstance(PharosLaser("127.0.0.1", 1), PulseSource)
    assert isinstance(XpsGate(xps, own=False, url="xps://127.0.0.1:1"), PulseSource)


def test_spy_prefix_logs_the_exact_bytes(caplog):
    """spy+ on any URL logs what goes over the wire, per scheme (bring-up on real hardware)."""
    import logging

    from sim.xps_emulator import XpsEmulator

    with XpsEmulator() as emu, caplog.at_level(logging.INFO, logger="fabplan.device.xps"):
        url = "spy+" + emu.url
        assert parse_device_url(url).scheme == "xps" and parse_device_url(url).spy
        with open_stage(url) as st:
            st.status()
    sent = [r.getMessage() for r in caplog.records if r.name == "fabplan.device.xps"]
    assert any("> b'GroupStatusGet(XYZ,int *)'" in m for m in sent)
    assert any("< b'0," in m and "EndOfAPI'" in m for m in sent)


def test_schemes_come_from_the_driver_modules():
    from stage_drivers.urls import driver_for, schemes

    assert {"xps", "esp301", "esp300", "pharos", "sim"} <= set(schemes())
    assert driver_for("pharos").stage is None and driver_for("pharos").module == "stage_drivers.pharos"
    assert driver_for("sim").module == "sim"


def test_a_new_driver_is_one_module_named_after_its_scheme(tmp_path, monkeypatch):
    """CONTRIBUTING's 'Adding a stage driver': a module whose last line registers its scheme."""
    from stage_drivers import Stage, urls

    pkg = tmp_path / "labdrivers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "pifake.py").write_text(
        "from sim.fakes import FakeStage\n"
        "from stage_drivers.urls import register_scheme\n\n"
        "class PiStage(FakeStage):\n"
        "    pass\n\n"
        "register_scheme('pifake', stage=PiStage.from_url)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(urls, "DRIVER_PACKAGES", [*urls.DRIVER_PACKAGES, "labdrivers"])
    monkeypatch.setattr(urls, "_REGISTRY", dict(urls._REGISTRY))
    with open_stage("pifake://10.0.0.5?offset_um=0.5") as st:
        assert type(st).__name__ == "PiStage" and isinstance(st, Stage) and st.offset_um == 0.5
    with pytest.raises(DeviceUrlError, match="not a laser"):
        urls.open_laser("pifake://10.0.0.5")
