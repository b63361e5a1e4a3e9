"""ESP301 displacement units (SN?): every code the manual lists is either converted exactly or refused.

Unit codes from the ESP301 user manual (EDH0235En1030, "SN - set axis displacement units"):
0 encoder count, 1 motor step, 2 mm, 3 um, 4 inch, 5 milli-inch, 6 micro-inch, 7 degree, 8 gradian,
9 radian, 10 milliradian, 11 microradian. 1 inch = 25.4 mm exactly (international inch, 1959).
"""

from __future__ import annotations

import pytest
from test_drivers_esp301 import ScriptedPort, default

from sim.esp301_emulator import Esp301Emulator
from stage_drivers.esp301 import Esp301Stage, UnitError, um_per_unit

UM = {2: 1000.0, 3: 1.0, 4: 25400.0, 5: 25.4, 6: 0.0254}


def scripted(units: dict[str, int]):
    def respond(line: str):
        if line.endswith("SN?"):
            return f"{units[line[0]]}\r\n"
        if line.endswith("TP?"):
            return "1.000000\r\n"
        return default(line)
    return ScriptedPort(respond)


@pytest.mark.parametrize("code", sorted(UM))
def test_every_length_unit_converts_position_limits_and_moves(code):
    p = scripted({"1": code, "2": 2, "3": 3})
    try:
        st = Esp301Stage(p.path, 19200, timeout_s=1.0).connect()
        u = UM[code]
        assert st.position() == pytest.approx((u, 1000.0, 1.0))
        lim = st.travel_limits()["X"]
        assert (lim.min_um, lim.max_um) == pytest.approx((-25.0 * u, 25.0 * u))
        n0 = len(p.lines)
        st.move_to(2.0 * u, 0.0, 0.0)
        assert p.lines[n0].startswith("1PA2;")
        st.close()
    finally:
        p.close()


def test_inch_axis_is_not_taken_for_mm():
    """The issue's case: SN?=4 and TP 1.000000 is one inch, 25400 um (not 1000 um); limits +-25 in."""
    p = scripted({"1": 4, "2": 4, "3": 2})
    try:
        st = Esp301Stage(p.path, 19200, timeout_s=1.0).connect()
        assert st.position()[0] == pytest.approx(25400.0)
        assert st.travel_limits()["Y"].max_um == pytest.approx(635000.0)
        n0 = len(p.lines)
        st.move_to(12700.0, -2540.0, 100.0)
        assert p.lines[n0] == "1PA0.5;2PA-0.1;3PA0.1;TB?"
        st.close()
    finally:
        p.close()


@pytest.mark.parametrize("code", [0, 1, 7, 8, 9, 10, 11, 12, -1])
def test_units_a_linear_stage_cannot_use_are_refused_naming_axis_and_code(code):
    p = scripted({"1": 2, "2": code, "3": 2})
    try:
        with pytest.raises(UnitError) as ei:
            Esp301Stage(p.path, 19200, timeout_s=1.0).connect()
        msg = str(ei.value)
        assert "axis Y (controller axis 2)" in msg and f"SN?={code}" in msg
        assert ei.value.code == code and ei.value.command == "2SN?"
        # nothing was moved and no limits were read for a refused controller
        assert not any("PA" in x or "SL?" in x for x in p.lines)
    finally:
        p.close()


def test_unit_table_matches_manual_names():
    assert um_per_unit(5, "X", 1) == pytest.approx(25.4)
    with pytest.raises(UnitError, match=r"\(degree\): angular"):
        um_per_unit(7, "Z", 3)
    with pytest.raises(UnitError, match=r"\(encoder counts\)"):
        um_per_unit(0, "X", 1)


def test_emulator_sn_query_set_and_driver_conversion():
    with Esp301Emulator(speedup=float("inf"), units=(4, 2, 3)) as emu:
        st = Esp301Stage(emu.port, 19200, timeout_s=2.0).connect()
        st.move_to(2540.0, 1000.0, 5.0)
        assert emu.axes[0].position == pytest.approx(0.1) and emu.axes[2].position == pytest.approx(5.0)
        assert st.position() == pytest.approx((2540.0, 1000.0, 5.0), abs=0.5)
        # SN set is a label change (manual note): the number stays, the driver re-reads it on connect
        st.command("1SN3")
        assert st.query("1SN?") == "3"
        st.command("2SN9")
        with pytest.raises(UnitError, match="axis Y"):
            Esp301Stage(emu.port, 19200, timeout_s=2.0).connect()
        with pytest.raises(Exception, match="101"):
            st.command("1SN12")  # outside 0..11: parameter out of range
        st.close()
