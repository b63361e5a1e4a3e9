"""XPS driver: exact bytes sent, parsing of recorded replies (split, short OK, errors), and the
driver against the emulator over real loopback TCP. Protocol facts: Newport XPS programmer's
manual (reply "<code>,<outputs>,EndOfAPI", error codes, group states)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sim.xps_emulator import XpsEmulator
from stage_drivers import (
    AuthenticationError,
    CommandError,
    ConnectionLost,
    DeviceTimeout,
    EmergencyStop,
    FollowingError,
    MotionAborted,
    MotionParams,
    NotInPosition,
    NotReadyError,
    ProtocolError,
    TravelLimitError,
    open_laser,
    open_stage,
)
from stage_drivers.urls import parse_device_url
from stage_drivers.xps import XpsReplyParser, XpsStage, decode_status, fmt_num, split_reply


class FakeXps:
    """A scripted controller: records every call with the index of the connection it came on."""

    def __init__(self, respond=None):
        self.calls: list[tuple[int, str]] = []
        self.respond = respond or (lambda cmd: None)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.n_conn = 0
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.n_conn += 1
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, self.n_conn), daemon=True).start()

    def _serve(self, c, idx):
        buf = b""
        while not self.stop.is_set():
            try:
                data = c.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b")" in buf:
                cmd, _, buf = buf.partition(b")")
                cmd = cmd.decode() + ")"
                self.calls.append((idx, cmd))
                out = self.respond(cmd)
                if out is None:
                    out = default_reply(cmd)
                if out == "DROP":
                    c.close()
                    return
                if out == "SILENT":
                    continue
                for chunk in [out] if isinstance(out, (str, bytes)) else out:
                    c.sendall(chunk.encode() if isinstance(chunk, str) else chunk)
                    time.sleep(0.001)

    def close(self):
        self.stop.set()
        self.sock.close()
        for c in self.conns:
            c.close()

    def sent(self):
        return [c for _, c in self.calls]


def default_reply(cmd: str) -> str:
    if cmd.startswith("GroupStatusGet"):
        return "0,12,EndOfAPI"
    if cmd.startswith("PositionerUserTravelLimitsGet"):
        return "0,-50,50,EndOfAPI"
    if cmd.startswith("ErrorStringGet"):
        code = cmd.split("(")[1].split(",")[0]
        return f"0,Controller text for {code},EndOfAPI"
    if cmd.startswith("EventExtendedStart"):
        return "0,7,EndOfAPI"
    return "0,,EndOfAPI"


@pytest.fixture
def fake():
    servers = []

    def make(respond=None):
        s = FakeXps(respond)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def stage_for(f: FakeXps, **kw) -> XpsStage:
    kw.setdefault("timeout_s", 1.0)
    return XpsStage("127.0.0.1", f.port, group="XYZ", **kw).connect()


# ---------------------------------------------------------------------- pure parsing


def test_reply_parser_reassembles_any_chunking():
    # Reference example: a reply arriving as "0,3.14" "1592,EndOf" "API"
    p = XpsReplyParser()
    assert p.feed(b"0,3.14") == []
    assert p.feed(b"1592,EndOf") == []
    assert p.feed(b"API") == [b"0,3.141592"]
    assert split_reply(b"0,3.141592") == (0, "3.141592")


@pytest.mark.parametrize("raw, expected", [
    ("0,,EndOfAPI", (0, "")),
    ("0,EndOfAPI", (0, "")),
    ("0,1.5,-2,EndOfAPI", (0, "1.5,-2")),
    ("-20,GroupPositionCurrentGet(Group1,double *),EndOfAPI", (-20, "GroupPositionCurrentGet(Group1,double *)")),
    ("garbage,EndOfAPI", (None, "garbage")),
])
def test_split_reply(raw, expected):
    assert split_reply(raw) == expected


def test_number_formatting_has_no_exponent():
    assert fmt_num(1.5) == "1.5"
    assert fmt_num(2.0) == "2"
    assert fmt_num(1e-5) == "0.00001"
    assert fmt_num(-0.0) == "0"
    assert fmt_num(-0.0001) == "-0.0001"


def test_status_decoding_follows_newport_table():
    assert decode_status(0)["initialized"] is False
    assert decode_status(42)["homed"] is False and decode_status(42)["initialized"] is True
    assert decode_status(11)["ready"] and decode_status(11)["homed"]
    assert decode_status(44)["moving"]
    assert decode_status(22)["fault"] and decode_status(2)["fault"]


# ---------------------------------------------------------------------- expected exchanges


def test_connect_and_move_bytes_and_separate_move_socket(fake):
    f = fake()
    st = stage_for(f)
    assert f.sent() == ["GroupStatusGet(XYZ,int *)", "PositionerPositionCompareDisable(XYZ.X)",
                        "PositionerPositionCompareDisable(XYZ.Y)", "PositionerPositionCompareDisable(XYZ.Z)",
                        "GPIODigitalSet(GPIO3.DO,1,0)", "PositionerUserTravelLimitsGet(XYZ.X,double *,double *)",
                        "PositionerUserTravelLimitsGet(XYZ.Y,double *,double *)",
                        "PositionerUserTravelLimitsGet(XYZ.Z,double *,double *)"]
    st.move_to(100.0, -200.0, 0.5)  # um -> mm on the wire
    conn, cmd = f.calls[-1]
    assert cmd == "GroupMoveAbsolute(XYZ,0.1,-0.2,0.0005)"
    assert conn != f.calls[0][0]  # blocking moves have their own socket
    st.close()


def test_position_parses_a_split_reply(fake):
    f = fake(lambda c: ["0,1.5", ",2.25,-0.0", "01,EndOf", "API"] if c.startswith("GroupPositionCurrentGet") else None)
    st = stage_for(f)
    assert st.position() == pytest.approx((1500.0, 2250.0, -1.0))
    assert f.sent()[-1] == "GroupPositionCurrentGet(XYZ,double *,double *,double *)"
    st.close()


@pytest.mark.parametrize("ok", ["0,EndOfAPI", "0,,EndOfAPI"])
def test_short_and_long_ok_replies_are_both_accepted(fake, ok):
    f = fake(lambda c: ok if c.startswith("GPIODigitalSet") else None)
    st = stage_for(f)
    st.set_gate(True)
    st.set_gate(False)
    assert f.sent()[-2:] == ["GPIODigitalSet(GPIO3.DO,1,1)", "GPIODigitalSet(GPIO3.DO,1,0)"]
    st.close()


@pytest.mark.parametrize("code, exc", [(-25, FollowingError), (-35, TravelLimitError), (-26, EmergencyStop),
                                       (-22, NotReadyError), (-17, CommandError)])
def test_error_reply_maps_to_typed_exception_with_controller_text(fake, code, exc):
    f = fake(lambda c: f"{code},{c},EndOfAPI" if c.startswith("GroupMoveAbsolute") else None)
    st = stage_for(f)
    with pytest.raises(exc) as ei:
        st.move_to(1.0, 2.0, 3.0)
    e = ei.value
    assert e.code == code and e.command == "GroupMoveAbsolute(XYZ,0.001,0.002,0.003)"
    assert e.reply == f"{code},GroupMoveAbsolute(XYZ,0.001,0.002,0.003),EndOfAPI"
    assert f"Controller text for {code}" in str(e) and f"127.0.0.1:{f.port}" in str(e)
    assert f"ErrorStringGet({code},char *)" in f.sent()
    assert not st.in_position()
    st.close()


def test_fire_and_position_compare_bytes(fake):
    def respond(c):
        if c.startswith("GatheringExternalCurrentNumberGet"):
            return "0,2,3,EndOfAPI"
        if c.startswith("GatheringExternalDataGet("):
            i = int(c.split("(")[1].split(",")[0])
            return f"0,{0.1 + 0.01 * i};0.5;-0.25,EndOfAPI"
        return None
    f = fake(respond)
    st = stage_for(f)
    with pytest.raises(NotInPosition):
        st.fire_pulses(1)  # nothing fires before a move has completed
    st.move_to(0, 0, 0)
    n0 = len(f.calls)
    st.fire_pulses(3)
    st.fire_pulses(3)
    # one DOPulse per pulse (the manual leaves the action's other parameters unused: no burst count)
    assert f.sent()[n0:] == ["EventExtendedConfigurationTriggerSet(Immediate,0,0,0,0)",
                             "EventExtendedConfigurationActionSet(GPIO3.DO.DOPulse,2,0,0,0)"] + [
                             "EventExtendedStart(int *)"] * 6
    n0 = len(f.calls)
    st.arm_compare("X", [100.0, 110.0, 120.0])
    st.disarm_compare()
    assert f.sent()[n0:] == ["PositionerPositionComparePulseParametersSet(XYZ.X,1,0.075)",
                             "PositionerPositionCompareSet(XYZ.X,0.1,0.125,0.01)",  # max = last + step/2
                             # capture: the compare pulses (wired to TRIG IN) latch every encoder position
                             "GatheringExternalConfigurationSet(XYZ.X.ExternalLatchPosition,"
                             "XYZ.Y.ExternalLatchPosition,XYZ.Z.ExternalLatchPosition)",
                             "EventExtendedConfigurationTriggerSet(Immediate,0,0,0,0)",
                             "EventExtendedConfigurationActionSet(ExternalGatheringRun,3,1,0,0)",
                             "EventExtendedStart(int *)",
                             "PositionerPositionCompareEnable(XYZ.X)", "PositionerPositionCompareDisable(XYZ.X)",
                             "GatheringExternalCurrentNumberGet(int *,int *)",
                             "GatheringExternalDataGet(0,char *)", "GatheringExternalDataGet(1,char *)",
                             "GatheringExternalStopAndSave()"]  # 2 of 3 latched: end the gathering
    got = st.captured_positions()
    assert len(got) == 2 and [v for row in got for v in row] == pytest.approx([100, 500, -250, 110, 500, -250])
    assert st.captured_positions() == []
    with pytest.raises(ValueError):
        st.arm_compare("X", [0.0, 10.0, 25.0])  # PCO needs a constant step
    st.close()


def test_connect_reset_can_be_turned_off_for_monitors(fake):
    f = fake()
    st = XpsStage.from_url(parse_device_url(f"xps://127.0.0.1:{f.port}?group=XYZ&reset=0")).connect()
    assert not any("Compare" in c or "GPIO" in c for c in f.sent())  # a monitor must not touch a running job
    st.close()


def test_compare_disable_refused_before_init_is_sent_after_homing(fake):
    """A controller that refuses PCO disable while not initialised (-22) gets it right after homing."""
    state = {"code": 0}

    def respond(c):
        if c.startswith("GroupStatusGet"):
            return f"0,{state['code']},EndOfAPI"
        if c.startswith("PositionerPositionCompareDisable") and state["code"] < 10:
            return f"-22,{c},EndOfAPI"
        if c.startswith("GroupHomeSearch"):
            state["code"] = 11
        return None

    f = fake(respond)
    st = stage_for(f)
    assert "GPIODigitalSet(GPIO3.DO,1,0)" in f.sent()  # the gate goes low all the same
    n0 = len(f.calls)
    st.home()
    assert f.sent()[n0:] == ["GroupStatusGet(XYZ,int *)", "GroupInitialize(XYZ)", "GroupHomeSearch(XYZ)",
                             "PositionerPositionCompareDisable(XYZ.X)", "PositionerPositionCompareDisable(XYZ.Y)",
                             "PositionerPositionCompareDisable(XYZ.Z)"]
    st.close()


@pytest.mark.parametrize("pitch_um, n", [(20.000000001, 300), (7.0 / 3.0, 3), (7.0 / 3.0, 4), (7.0, 3),
                                         (14.0 / 3.0, 4), (14.0 / 3.0, 500), (19.9998782, 200)])
def test_compare_max_is_last_plus_half_step(fake, pitch_um, n):
    """The step goes out rounded to 1e-9 mm; max = last + step/2 keeps floor((max-min)/step) = n-1
    whichever way it rounded (14/3 um -> 0.004666667 mm, rounded up: max = last lost the last disc)."""
    f = fake()
    st = stage_for(f)
    x0 = -1514.23617
    st.arm_compare("X", [x0 + i * pitch_um for i in range(n)])
    cmd = [c for c in f.sent() if c.startswith("PositionerPositionCompareSet")][-1]
    lo, hi, step = (float(v) for v in cmd[:-1].split(",")[1:])
    assert int((hi - lo) / step) + 1 == n  # a plain floor, no tolerance needed
    assert hi - lo == pytest.approx((n - 0.5) * pitch_um / 1000.0, abs=2e-9)
    st.close()


def test_compare_max_clamped_to_the_travel_limit(fake):
    f = fake()
    st = stage_for(f)  # limits -50..50 mm
    st.arm_compare("X", [49980.0, 49990.0, 50000.0])
    assert "PositionerPositionCompareSet(XYZ.X,49.98,50,0.01)" in f.sent()
    st.close()


def test_sgamma_and_limits_bytes(fake):
    f = fake(lambda c: "0,20,200,0.005,0.05,EndOfAPI" if c.startswith("PositionerSGammaParametersGet") else None)
    st = stage_for(f)
    st.set_motion_params("Y", MotionParams(10000.0, 100000.0, 0.01, 0.02))
    assert f.sent()[-1] == "PositionerSGammaParametersSet(XYZ.Y,10,100,0.01,0.02)"
    assert st.motion_params("X") == MotionParams(20000.0, 200000.0, 0.005, 0.05)
    with pytest.raises(TravelLimitError):
        st.move_to(60000.0, 0.0, 0.0)  # limits are -50..50 mm: refused before sending
    assert not any(c.startswith("GroupMoveAbsolute") for c in f.sent())
    st.close()


def test_login_failure_never_shows_the_password(fake, monkeypatch):
    f = fake(lambda c: f"-106,{c},EndOfAPI" if c.startswith("Login") else None)
    st = XpsStage("127.0.0.1", f.port, credentials=("Admin", "s3cret"), timeout_s=1.0)
    with pytest.raises(AuthenticationError) as ei:
        st.connect()
    assert "s3cret" not in str(ei.value) and "s3cret" not in repr(ei.value.__dict__)
    assert f.sent()[0] == "Login(Admin,s3cret)"


def test_garbled_reply_is_a_protocol_error_and_the_link_recovers(fake):
    bad = {"n": 0}

    def respond(c):
        if c.startswith("GroupStatusGet") and bad["n"] == 1:
            bad["n"] += 1
            return "\x15#!zz,EndOfAPI"
        if c.startswith("GroupStatusGet"):
            bad["n"] += 1
        return None

    f = fake(respond)
    st = stage_for(f)
    with pytest.raises(ProtocolError) as ei:
        st.status_code()
    assert ei.value.command == "GroupStatusGet(XYZ,int *)" and "zz" in ei.value.reply
    assert st.status_code() == 12  # reconnected on the next call
    assert f.n_conn == 2
    st.close()


def test_silent_controller_times_out_bounded_and_reconnects(fake):
    silent = {"on": False}
    f = fake(lambda c: "SILENT" if silent["on"] and c.startswith("GroupStatusGet") else None)
    st = stage_for(f, timeout_s=0.3)
    silent["on"] = True
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout) as ei:
        st.status_code()
    assert time.monotonic() - t0 < 2.0
    assert ei.value.command == "GroupStatusGet(XYZ,int *)"
    silent["on"] = False
    assert st.status_code() == 12
    st.close()


def test_dropped_connection_is_connection_lost(fake):
    f = fake(lambda c: "DROP" if c.startswith("GroupPositionCurrentGet") else None)
    st = stage_for(f)
    with pytest.raises(ConnectionLost) as ei:
        st.position()
    assert "GroupPositionCurrentGet" in ei.value.command
    st.close()


# ---------------------------------------------------------------------- against the emulator


@pytest.fixture
def emu(tmp_path):
    e = XpsEmulator(speedup="inf", pulse_log=tmp_path / "pulses.csv").start()
    yield e
    e.close()


def test_home_move_and_states_against_emulator(emu):
    with open_stage(emu.url, timeout_s=2.0) as st:
        s = st.status()
        assert s.code == 0 and not s.initialized
        with pytest.raises(NotReadyError) as ei:
            st.move_to(1.0, 1.0, 0.0)  # not initialised: -22
        assert ei.value.code == -22
        st.home()
        assert st.status().code == 11
        st.move_to(1000.0, -2000.0, 50.0)
        assert st.status().code == 12
        pos = st.position()
        # emulator: rest error 5 nm rms + encoder noise 2 nm rms
        assert pos == pytest.approx((1000.0, -2000.0, 50.0), abs=0.05)
        st.move_by(10.0, 0.0, 0.0)
        assert st.position()[0] == pytest.approx(1010.0, abs=0.05)
        assert st.max_velocity_acceleration("X") == (100000.0, 1000000.0)
        with pytest.raises(CommandError) as ei:
            st.set_motion_params("X", MotionParams(1e9, 1e5))  # above the maximum velocity: -17
        assert ei.value.code == -17 and "out of range" in str(ei.value)


def test_emulator_rejects_positioner_moves_in_multi_axis_group(emu):
    assert emu.execute("GroupMoveAbsolute(XYZ.X,1)").startswith("-22,")
    assert emu.execute("GroupMoveAbsolute(NOPE,1,2,3)").startswith("-19,")
    assert emu.execute("GroupMoveAbsolute(XYZ,1,2)").startswith("-9,")
    assert emu.execute("Bogus(1)").startswith("-4,")


def test_step_shots_land_where_commanded(emu, tmp_path):
    with open_stage(emu.url) as st, open_laser(emu.url, stage=st) as laser:
        st.home()
        laser.arm()
        targets = [(100.0 * i, 50.0 * i, 1.0) for i in range(20)]
        for x, y, z in targets:
            st.move_to(x, y, z)
            laser.fire(2)
    emu.laser.log.flush()
    rows = (tmp_path / "pulses.csv").read_text().splitlines()
    assert rows[0] == "t_s,x_um,y_um,z_um,energy_uj,gate,source"
    assert len(rows) == 1 + 40
    xs = [float(r.split(",")[1]) for r in rows[1:]]
    for i, (x, _, _) in enumerate(targets):
        assert xs[2 * i] == pytest.approx(x, abs=0.05)


def test_fly_line_fires_at_each_compare_position(emu, tmp_path):
    with open_stage(emu.url) as st, open_laser(emu.url, stage=st) as laser:
        st.home()
        st.set_motion_params("X", MotionParams(5000.0, 100000.0))  # 5 mm/s
        laser.arm()
        xs = [100.0 + 5.0 * i for i in range(200)]
        st.move_to(0.0, 10.0, 0.0)
        laser.arm_line("X", xs)
        st.move_to(1200.0, 10.0, 0.0)
        laser.disarm_line()
        st.move_to(0.0, 10.0, 0.0)  # disarmed: the way back fires nothing
    emu.laser.log.flush()
    rows = [r.split(",") for r in (tmp_path / "pulses.csv").read_text().splitlines()[1:]]
    assert len(rows) == len(xs) and all(r[6] == "pco" for r in rows)
    err = [abs(float(r[1]) - x) for r, x in zip(rows, xs, strict=True)]
    # trigger jitter <= 5 us at 200 kHz x 5 mm/s = 25 nm, + encoder noise 2 nm rms
    assert max(err) < 0.04


def _pco_rows(emu, path):
    emu.laser.log.flush()
    return [r.split(",") for r in path.read_text().splitlines()[1:] if r.endswith(",pco")]


def test_connect_disarms_compare_left_by_a_killed_process(emu, tmp_path):
    """A run killed mid-row leaves PCO enabled and the gate high; the next process's driver disables
    compare on every positioner and lowers the gate on connect, so its first pass fires nothing."""
    xs = [1000.0 + 20.0 * i for i in range(10)]
    st1 = open_stage(emu.url)
    st1.home()
    laser1 = open_laser(emu.url, stage=st1)
    laser1.arm()
    st1.move_to(0.0, 0.0, 0.0)
    laser1.arm_line("X", xs)
    st1._poll.close()  # killed: no disarm, no close, just the sockets gone
    st1._move.close()
    assert emu.group.positioners[0].pco_enabled and emu.gpio_do & 1
    with open_stage(emu.url) as st2:
        assert not any(p.pco_enabled for p in emu.group.positioners)  # before anything moves
        assert emu.gpio_do & 1 == 0
        with open_laser(emu.url, stage=st2) as laser2:
            st2.home()
            laser2.arm()
            st2.move_to(1500.0, 0.0, 0.0)  # across the old row with the gate open
    assert _pco_rows(emu, tmp_path / "pulses.csv") == []


@pytest.mark.parametrize("pitch_um, n", [(20.000000001, 50), (7.0 / 3.0, 3), (7.0 / 3.0, 4), (14.0 / 3.0, 4),
                                         (14.0 / 3.0, 100)])
def test_fly_row_with_non_round_pitch_fires_every_disc(emu, tmp_path, pitch_um, n):
    with open_stage(emu.url) as st, open_laser(emu.url, stage=st) as laser:
        st.home()
        st.set_motion_params("X", MotionParams(5000.0, 100000.0))
        laser.arm()
        xs = [-1514.23617 + i * pitch_um for i in range(n)]
        st.move_to(xs[0] - 20.0, 0.0, 0.0)
        laser.arm_line("X", xs)
        st.move_to(xs[-1] + 20.0, 0.0, 0.0)
        laser.disarm_line()
    rows = _pco_rows(emu, tmp_path / "pulses.csv")
    assert len(rows) == n
    assert max(abs(float(r[1]) - x) for r, x in zip(rows, xs, strict=True)) < 0.04  # as in the test above


def test_closing_the_laser_closes_the_gate(emu):
    with open_stage(emu.url) as st:
        with open_laser(emu.url, stage=st) as laser:
            st.home()
            laser.arm()
            assert emu.gpio_do & 1
        assert emu.gpio_do & 1 == 0


def test_polling_socket_sees_a_move_in_progress(tmp_path):
    """Real-time emulation: while the move socket blocks, the polling socket reads state 44 and a
    position between start and target (why the driver uses two sockets)."""
    e = XpsEmulator(speedup=1.0, initialized=True, pulse_log=tmp_path / "p.csv").start()
    try:
        with open_stage(e.url, timeout_s=1.0) as st:
            done = threading.Event()
            errors = []

            def move():
                try:
                    st.move_to(20000.0, 0.0, 0.0, timeout_s=5.0)  # 20 mm at 20 mm/s: ~1.1 s
                    done.set()
                except MotionAborted as exc:
                    errors.append(exc)

            t = threading.Thread(target=move)
            t.start()
            for _ in range(50):  # wait (bounded) for the move to start
                if st.status_code() == 44:
                    break
                time.sleep(0.02)
            assert st.status_code() == 44 and not done.is_set()
            x = st.position()[0]
            assert 0.0 < x < 20000.0
            assert abs(st.following_error()[0]) > 0.0  # servo lag while moving
            st.stop()
            t.join(2.0)
            assert not t.is_alive() and not done.is_set()
            assert errors and errors[0].code == -27  # the blocked move ended with MotionAborted
            assert st.status_code() == 10
    finally:
        e.close()
