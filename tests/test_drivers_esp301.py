"""ESP301 driver: exact bytes on a pseudo-terminal, reply terminators, error queue, and the driver
against the pty emulator including its fault classes. Protocol facts: Newport ESP301 user manual
(commands end CR, replies CR LF, TB? = "code, timestamp, text", axis errors = axis*100 + code)."""

from __future__ import annotations

import os
import select
import threading
import time
import tty

import pytest

from sim.esp301_emulator import Esp301Emulator
from stage_drivers import (
    CommandError,
    ConnectionLost,
    DeviceTimeout,
    EmergencyStop,
    FollowingError,
    ProtocolError,
    TravelLimitError,
    open_stage,
)
from stage_drivers.esp301 import Esp301Stage, error_class


class ScriptedPort:
    """A pty whose far end records lines and answers from a function (None = no reply)."""

    def __init__(self, respond):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.respond = respond
        self.lines: list[str] = []
        self.raw = b""
        self.stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        buf = b""
        while not self.stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 1024)
            except OSError:
                return
            self.raw += data
            buf += data
            while b"\r" in buf:
                line, _, buf = buf.partition(b"\r")
                self.lines.append(line.decode())
                out = self.respond(line.decode())
                if out is not None:
                    os.write(self.master, out.encode())

    def close(self):
        self.stop.set()
        os.close(self.master)
        os.close(self.slave)


def default(line: str):
    if line.endswith("SN?"):
        return "2\r\n"
    if line.endswith("SL?"):
        return "-25.000000\r\n"
    if line.endswith("SR?"):
        return "25.000000\r\n"
    if line.endswith("TB?"):
        return "0, 451322, NO ERROR DETECTED\r\n"
    if line == "VE?":
        return "ESP301 Version 3.0\r\n"
    if line.endswith("MD?"):
        return "1\r\n"
    if line.endswith("TP?"):
        return {"1": "1.500000\r\n", "2": "-0.250000\n", "3": "0.000100\r"}[line[0]]
    return None


@pytest.fixture
def port():
    ports = []

    def make(respond=default):
        p = ScriptedPort(respond)
        ports.append(p)
        return p

    yield make
    for p in ports:
        p.close()


def test_exact_bytes_and_any_reply_terminator(port):
    p = port()
    st = Esp301Stage(p.path, 19200, timeout_s=1.0).connect()
    assert p.lines[:8] == ["VE?", "1SN?", "2SN?", "3SN?", "1SL?", "1SR?", "2SL?", "2SR?"]
    n0 = len(p.lines)
    st.move_to(100.0, -250.0, 0.5)  # um -> mm
    assert p.lines[n0:] == ["1PA0.1;2PA-0.25;3PA0.0005;TB?", "1MD?", "2MD?", "3MD?", "TB?"]
    assert p.raw.endswith(b"TB?\r")
    # replies ended by CR LF, LF alone and CR alone all parse
    assert st.position() == pytest.approx((1500.0, -250.0, 0.1))
    st.close()


def test_error_queue_after_command_raises_typed_error(port):
    p = port(lambda line: "103, 451400, FOLLOWING ERROR THRESHOLD EXCEEDED\r\n" if line.startswith("1PA")
             else default(line))
    st = Esp301Stage(p.path, 19200, timeout_s=1.0).connect()
    with pytest.raises(FollowingError) as ei:
        st.move_to(1.0, 2.0, 3.0)
    e = ei.value
    assert e.code == 103 and e.command == "1PA0.001;2PA0.002;3PA0.003"
    assert e.reply == "103, 451400, FOLLOWING ERROR THRESHOLD EXCEEDED"
    assert "FOLLOWING ERROR" in str(e) and p.path in str(e)
    st.close()


def test_error_code_mapping():
    assert error_class(103) is FollowingError
    assert error_class(204) is TravelLimitError and error_class(307) is TravelLimitError
    assert error_class(4) is EmergencyStop


def test_limits_checked_before_sending(port):
    p = port()
    st = Esp301Stage(p.path, 19200, timeout_s=1.0).connect()
    n0 = len(p.lines)
    with pytest.raises(TravelLimitError):
        st.move_to(30000.0, 0.0, 0.0)  # SR is 25 mm
    assert len(p.lines) == n0
    st.close()


def test_silent_port_times_out(port):
    p = port(lambda line: None if line == "1TP?" else default(line))
    st = Esp301Stage(p.path, 19200, timeout_s=0.3).connect()
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout) as ei:
        st.position()
    assert time.monotonic() - t0 < 1.5 and ei.value.command == "1TP?"
    st.close()


def test_queries_from_threads_do_not_interleave(port):
    p = port()
    st = Esp301Stage(p.path, 19200, timeout_s=1.0).connect()
    results = []

    def worker():
        for _ in range(20):
            results.append(st.position())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(results) == 60 and all(r == pytest.approx((1500.0, -250.0, 0.1)) for r in results)
    st.close()


# ---------------------------------------------------------------------- against the emulator


@pytest.fixture
def emu():
    e = Esp301Emulator(speedup="inf").start()
    yield e
    e.close()


def test_driver_against_emulator(emu):
    with open_stage(emu.url, timeout_s=1.0) as st:
        st.home()
        assert st.status().ready
        st.move_to(1000.0, 2000.0, -300.0)
        assert st.position() == pytest.approx((1000.0, 2000.0, -300.0), abs=0.02)
        st.move_by(5.0, 0.0, 0.0)
        assert st.position()[0] == pytest.approx(1005.0, abs=0.02)
        assert st.travel_limits()["X"].max_um == 25000.0
        with pytest.raises(CommandError) as ei:
            st.command("1XX")
        assert ei.value.code == 6 and "COMMAND DOES NOT EXIST" in str(ei.value)


@pytest.mark.parametrize("kind, exc", [("following", FollowingError), ("limit", TravelLimitError),
                                       ("estop", EmergencyStop)])
def test_emulator_motion_faults(emu, kind, exc):
    with open_stage(emu.url, timeout_s=1.0) as st:
        st.home()
        emu.inject(kind)
        with pytest.raises(exc) as ei:
            st.move_to(500.0, 0.0, 0.0)
        assert ei.value.code is not None and not st.in_position()


@pytest.mark.parametrize("kind, exc", [("garble", ProtocolError), ("slow", DeviceTimeout),
                                       ("drop", ConnectionLost)])
def test_emulator_transport_faults(emu, kind, exc):
    st = open_stage(emu.url, timeout_s=0.3)
    emu.inject(kind, arg="3" if kind == "slow" else "")
    t0 = time.monotonic()
    with pytest.raises(exc):
        st.position()
    assert time.monotonic() - t0 < 1.5
    st.close()


def test_pyserial_url_handler_without_a_pty():
    from sim.protocol_esp301sim import controller

    with open_stage("esp301://?port=esp301sim://t1", timeout_s=1.0) as st:
        st.home()
        st.move_to(100.0, 200.0, 300.0)
        assert st.position() == pytest.approx((100.0, 200.0, 300.0), abs=0.02)
        controller("t1").inject("following")
        with pytest.raises(FollowingError):
            st.move_to(5.0, 0.0, 0.0)
        controller("t1").inject("drop")
        with pytest.raises(ConnectionLost):
            st.position()


def test_split_replies_are_transparent(emu):
    with open_stage(emu.url, timeout_s=1.0) as st:
        st.home()
        emu.inject("split", arg="all")
        st.move_to(100.0, 0.0, 0.0)
        assert st.position() == pytest.approx((100.0, 0.0, 0.0), abs=0.02)
