"""ESP301 emulator commands as the ESP301 user manual (EDH0235En1030, section 3) describes them:
WS makes later commands wait for the stop, TS is a status character (bits 0-2 axis in motion, bit 4
motor power), DP? the desired (target) position, DH defines the current position, AB stops and
turns the motors off until MO."""

from __future__ import annotations

from sim.esp301_emulator import Esp301Emulator


def run(emu, line):
    """Execute one controller line (';'-joined commands) as the serial loop does; the replies."""
    return [r for r in (emu.execute(c) for c in line.split(";")) if r is not None]


def test_ws_waits_for_the_stop_ts_and_dp_report_motion():
    emu = Esp301Emulator(speedup=4.0)  # 4x real time: a 20 mm move at 5 mm/s takes ~1 s of wall time
    assert run(emu, "1PA20") == []
    ts, dp, md = run(emu, "TS;1DP?;1MD?")
    assert ord(ts) & 0x01 and ord(ts) & 0x10 and ord(ts) & 0x40  # axis 1 moving, power on, bit 6
    assert float(dp) == 20.0 and md == "0"
    run(emu, "1DH5")  # refused while moving: axis 1 parameter error
    assert run(emu, "TE?") == ["101"]
    # WS: the commands after it on the line run only once axis 1 has stopped
    md, tp = run(emu, "1WS;1MD?;1TP?")
    assert md == "1" and abs(float(tp) - 20.0) < 1e-4
    assert ord(run(emu, "TS")[0]) & 0x07 == 0


def test_dh_defines_home_and_ab_needs_mo():
    emu = Esp301Emulator(speedup=float("inf"))
    run(emu, "1PA1.5;1WS")
    run(emu, "1DH0.25")
    assert abs(float(run(emu, "1TP?")[0]) - 0.25) < 1e-4 and float(run(emu, "1DP?")[0]) == 0.25
    run(emu, "AB")
    assert run(emu, "1MO?;TE?") == ["0", "4"]  # motors off, EMERGENCY STOP ACTIVATED queued
    run(emu, "1PA1")
    assert run(emu, "TE?") == ["4"]  # no motion until the motor is turned on again
    run(emu, "1MO;1PA1;1WS")
    assert run(emu, "1MO?;TE?") == ["1", "0"] and abs(float(run(emu, "1TP?")[0]) - 1.0) < 1e-4
    assert run(emu, "*IDN?") == [] and run(emu, "TE?") == ["6"]  # not in the ESP301 command set
