"""Device URLs (pyserial style) and where credentials come from (environment or config file, never URLs)."""

from __future__ import annotations

import pytest

from fabplan.errors import UserError
from stage_drivers import open_device, open_stage, parse_device_url
from stage_drivers.urls import credentials
from stage_drivers.xps import XpsStage


def test_parse_urls():
    u = parse_device_url("xps://192.168.0.254:5001?group=XY&unit=mm")
    assert (u.scheme, u.host, u.port, u.params) == ("xps", "192.168.0.254", 5001, {"group": "XY", "unit": "mm"})
    u = parse_device_url("esp301:///dev/ttyUSB0?baud=921600")
    assert (u.scheme, u.path, u.params["baud"]) == ("esp301", "/dev/ttyUSB0", "921600")
    assert parse_device_url("pharos://10.0.0.2:20020").port == 20020


@pytest.mark.parametrize("bad", ["ftp://x", "xps://admin:pw@host:5001", "xps://host:notaport"])
def test_bad_urls_are_user_errors(bad):
    with pytest.raises(UserError):
        parse_device_url(bad)


def test_pharos_is_not_a_stage():
    with pytest.raises(UserError):
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
