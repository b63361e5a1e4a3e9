"""QA: a damaged devices.ini never prints its lines (they may hold a password), exit 2 with file and line."""

from __future__ import annotations

import pytest

from fabplan.cli import main

CASES = {
    "missing-equals": (b"[xps://10.0.0.5]\nuser = Administrator\npassword S3cr3tPW\n", "line 3"),
    "no-section": (b"user = x\npassword = S3cr3tPW\n", "line 1"),
    "latin-1": (b"[xps]\nuser = x\npassword = S3cr3t\xe9PW\n", "UnicodeDecodeError"),
    "duplicate": (b"[xps]\npassword = S3cr3tPW\npassword = S3cr3tPW\n", "line 3"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_devices_ini_never_echoes_the_secret(tmp_path, monkeypatch, capsys, name):
    data, where = CASES[name]
    ini = tmp_path / "devices.ini"
    ini.write_bytes(data)
    monkeypatch.setenv("FABPLAN_DEVICES_CONFIG", str(ini))
    monkeypatch.delenv("FABPLAN_XPS_USER", raising=False)
    monkeypatch.delenv("FABPLAN_XPS_PASSWORD", raising=False)
    assert main(["stage", "status", "xps://10.0.0.5:5001"]) == 2
    out = capsys.readouterr()
    assert "S3cr3t" not in out.err + out.out and "Traceback" not in out.err
    assert str(ini) in out.err and where in out.err and out.err.count("\n") == 1, out.err
