"""pymeasure's `ESP300` instrument (Newport ESP300/ESP301 command set) over a pyserial adapter on the
ESP301 emulator's pty, as the oracle for the emulator; and our driver's lines against pymeasure's.

Command behaviour: ESP301 user manual (EDH0235En1030) / ESP300 manual section 3: TP, MD, MO?, SL/SR,
SN (displacement units, codes 0-11), WS (command execution waits for the stop), DH (define home),
DP? (desired position), TS (status byte: bits 0-2 axis in motion, bit 4 motor power), TE? error
codes (axis errors = axis*100 + code), AB (emergency stop, motors off; MO turns them on again).
An unknown command (e.g. SCPI's *IDN?, which the ESP301 command list does not have) gets no reply
and queues error 6, COMMAND DOES NOT EXIST.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:It is not known whether this device support SCPI")
esp300 = pytest.importorskip("pymeasure.instruments.newport.esp300")
serial_adapter = pytest.importorskip("pymeasure.adapters")

from sim.esp301_emulator import Esp301Emulator  # noqa: E402
from stage_drivers.esp301 import Esp301Stage  # noqa: E402


class Recording(Esp301Emulator):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.lines: list[str] = []

    def _handle_line(self, line):
        self.lines.append(line)
        return super()._handle_line(line)


@pytest.fixture
def emu():
    e = Recording(speedup=float("inf")).start()
    yield e
    e.close()


@pytest.fixture
def esp(emu):
    adapter = serial_adapter.SerialAdapter(emu.port, baudrate=19200, timeout=1.0, write_termination="\r",
                                           read_termination="\r\n")
    inst = esp300.ESP300(adapter)
    yield inst
    adapter.close()


def test_pymeasure_axis_properties_and_motion(esp, emu):
    x = esp.x
    assert x.units == "millimeter"
    assert x.enabled is True
    assert (x.left_limit, x.right_limit) == (-25.0, 25.0)
    x.position = 1.5
    x.wait_for_stop()
    assert x.motion_done and x.position == pytest.approx(1.5, abs=1e-4)
    assert "1WS0" in emu.lines  # pymeasure's wait_for_stop sends WS, then polls MD?
    assert float(esp.ask("1DP?")) == pytest.approx(1.5)
    x.define_position(0.25)  # DH: the current position is now 0.25
    assert x.position == pytest.approx(0.25, abs=1e-4)
    x.zero()
    assert x.position == pytest.approx(0.0, abs=1e-4)
    assert esp.error == 0 and esp.errors == []


def test_pymeasure_errors_units_status_and_abort(esp, emu):
    x = esp.x
    x.position = 30.0  # beyond the +25 mm software limit
    errs = esp.errors
    assert [str(e) for e in errs] == ["Newport ESP300 axis 1 reported the error: POSITIVE SOFTWARE LIMIT DETECTED"]
    x.units = "inches"  # SN4: a label change, the number stays
    assert x.units == "inches"
    x.units = "millimeter"
    assert ord(esp.ask("TS")) & 0x17 == 0x10  # nothing moving, motor power on
    esp.write("AB")  # emergency stop: motors off, error 4 queued
    assert x.enabled is False
    assert [type(e).__name__ for e in esp.errors] == ["GeneralError"]
    x.enable()  # MO turns the motor on again after AB
    assert x.enabled is True
    x.position = 2.0
    x.wait_for_stop()
    assert x.position == pytest.approx(2.0, abs=1e-4)
    esp.adapter.connection.timeout = 0.3
    assert esp.ask("*IDN?").strip() == ""  # no reply (pymeasure returns what came before its timeout)
    esp.adapter.connection.timeout = 1.0
    assert esp.error == 6


def test_driver_lines_match_pymeasure(emu):
    """Same operation, same controller line (our driver chains its error check ';TB?' on the line)."""
    st = Esp301Stage(emu.port, 19200, timeout_s=2.0).connect()
    adapter = serial_adapter.SerialAdapter(emu.port, baudrate=19200, timeout=1.0, write_termination="\r",
                                           read_termination="\r\n")
    esp = esp300.ESP300(adapter)

    def synced():
        """pymeasure's writes get no reply: a TE? query marks when the emulator has read them."""
        assert esp.error == 0
        return [line for line in emu.lines if line != "TE?"]

    try:
        emu.lines.clear()
        st.move_to(1500.0, -250.0, 0.0)
        ours = emu.lines[0].split(";")
        emu.lines.clear()
        esp.x.position, esp.y.position, esp.phi.position = 1.5, -0.25, 0.0
        theirs = synced()
        assert ours[:3] == theirs and ours[3] == "TB?"
        emu.lines.clear()
        st.set_travel_limits("X", type(st.travel_limits()["X"])(-20000.0, 20000.0))
        mine = emu.lines[0].split(";")[:2]
        emu.lines.clear()
        esp.x.left_limit, esp.x.right_limit = -20.0, 20.0
        assert mine == synced()
        emu.lines.clear()
        st.position()
        mine = list(emu.lines)
        emu.lines.clear()
        _ = (esp.x.position, esp.y.position, esp.phi.position)
        # we query with '?', pymeasure without: both are "read position" in the manual
        assert [m.rstrip("?") for m in mine] == emu.lines
    finally:
        adapter.close()
        st.close()
