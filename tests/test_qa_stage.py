"""QA of `fabplan stage` as a new user meets it: un-homed moves, unreachable controllers, --json."""

from __future__ import annotations

import json

from fabplan.cli import main


def test_move_before_homing_says_how_to_home(capsys):
    # sim://lab starts a fresh, un-homed emulator: the XPS answers -22 "Not allowed action".
    assert main(["stage", "move", "sim://lab", "100um", "0", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "code -22" in err
    assert "fabplan stage home sim://lab" in err and "--home" in err


def test_move_with_home_json(capsys):
    assert main(["stage", "move", "sim://lab", "100um", "0", "0", "--home", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert abs(data["position_um"][0] - 100.0) < 0.1  # emulator encoder noise is ~10 nm


def test_unreachable_controller_is_one_line_exit_2(capsys):
    # Port 1 on loopback refuses at once; the message names the device and what was attempted.
    assert main(["stage", "status", "xps://127.0.0.1:1?group=XYZ", "--timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: xps://127.0.0.1:1?group=XYZ: cannot connect") and err.count("\n") == 1
