"""Newport XPS driver over TCP (port 5001): one group of positioners plus the laser gate/trigger.

Wire protocol: a request is a bare function call `GroupMoveAbsolute(XYZ,1,2,0.5)`; outputs are
typed placeholders (`double *`); the reply is `<code>,<outputs>,EndOfAPI`, arriving in any number
of pieces. A motion call answers only when the move ends, so blocking moves use their own socket
and everything else (status, position, abort, GPIO) goes through a second one; each socket has a
lock, every call a deadline. After a timeout the socket is dropped (a late reply would desync it)
and reopened, with Login, on the next call.

Laser wiring assumed (and emulated by sim.xps_emulator): GPIO3.DO bit 0 = gate (level, AND'ed
with every trigger), GPIO3.DO bit 1 = trigger pulsed by an Immediate extended event
(GPIO3.DO.DOPulse), and the position-compare (PCO) output of the driver cards OR'ed into the
trigger. Configure other masks with `?gate_mask=&trigger_mask=`.

Fly-shot capture (`?capture=1`, the default): the position-compare output is also wired to the
controller's TRIG IN, and every armed row runs an external gathering of each positioner's
`ExternalLatchPosition` (GatheringExternalConfigurationSet + the ExternalGatheringRun action), so
the encoder positions at every compare pulse are read back from the controller after the row
(`captured_positions()`). `?capture=0` for a controller whose TRIG IN is not wired.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Sequence

from stage_drivers.protocols import (  # noqa: F401 - fmt_num is also importable from here
    AuthenticationError,
    AxisLimits,
    CommandError,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    EmergencyStop,
    FollowingError,
    LineFiring,
    MotionAborted,
    MotionParams,
    NotInPosition,
    NotReadyError,
    ProtocolError,
    StageStatus,
    TravelLimitError,
    fmt_num,
)
from stage_drivers.urls import credentials, register_scheme, spy_transport

END = b",EndOfAPI"
DEFAULT_PORT = 5001

ERROR_CLASSES: dict[int, type[DeviceError]] = {
    -2: DeviceTimeout,
    -21: NotReadyError,
    -22: NotReadyError,
    -25: FollowingError,
    -26: EmergencyStop,
    -27: MotionAborted,
    -33: DeviceTimeout,
    -35: TravelLimitError,
    -106: AuthenticationError,
    -109: NotReadyError,
}

# Fallback texts when ErrorStringGet itself cannot be asked (connection gone).
KNOWN_ERRORS = {
    -1: "Busy socket", -2: "TCP timeout", -4: "Unknown command", -7: "Wrong format in the command string",
    -9: "Wrong number of parameters", -17: "Parameter out of range or incorrect",
    -18: "Positioner name doesn't exist", -19: "Group name doesn't exist", -21: "Controller in initialization",
    -22: "Not allowed action", -25: "Following error", -26: "Emergency signal", -27: "Move aborted",
    -28: "Home search timeout", -29: "Mnemonic gathering type doesn't exist", -33: "Motion done timeout",
    -35: "Position is outside of travel limits", -39: "Mnemonic action doesn't exist",
    -40: "Mnemonic event doesn't exist", -43: "Gathering running", -80: "Event ID not defined",
    -106: "Wrong user name or password", -109: "Group must be homed first",
}

FOLLOWING_STATUS = {3, 4, 21, 22}
ESTOP_STATUS = {1, 2, 40}


def decode_status(code: int) -> dict:
    """Portable fields from an XPS group status code (Newport group state table)."""
    return {
        "initialized": not (0 <= code <= 9),
        "homed": 10 <= code <= 18 or code in (20, 21, 22, 44, 45, 47) or 23 <= code <= 38,
        "ready": 10 <= code <= 18,
        "moving": code in (43, 44, 45, 47),
        "fault": code in FOLLOWING_STATUS or code in ESTOP_STATUS or code in (5, 6),
    }


class XpsReplyParser:
    """Accumulates bytes and yields complete replies (without ',EndOfAPI')."""

    def __init__(self):
        self.buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out = []
        while True:
            i = self.buf.find(END)
            if i < 0:
                return out
            out.append(self.buf[:i])
            self.buf = self.buf[i + len(END):]


def split_reply(raw: bytes | str) -> tuple[int | None, str]:
    """'0,1.5,2,EndOfAPI' -> (0, '1.5,2'); '0,EndOfAPI' and '0,,EndOfAPI' -> (0, ''); (None, text) if garbled."""
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    if text.endswith(",EndOfAPI"):
        text = text[: -len(",EndOfAPI")]
    head, _, payload = text.partition(",")
    try:
        return int(head.strip()), payload
    except ValueError:
        return None, text


class _Link:
    """One socket to the controller, used by one caller at a time."""

    def __init__(self, stage: XpsStage, role: str):
        self.stage = stage
        self.role = role
        self.sock: socket.socket | None = None
        self.parser = XpsReplyParser()
        self.lock = threading.Lock()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.parser = XpsReplyParser()

    def _open(self, deadline: float):
        st = self.stage
        try:
            self.sock = spy_transport(st, socket.create_connection((st.host, st.port),
                                                                   timeout=max(deadline - time.monotonic(), 0.01)))
        except TimeoutError as exc:
            raise DeviceTimeout("connect timed out", device=st.url, command=f"connect {self.role}") from exc
        except OSError as exc:
            raise ConnectionLost(f"cannot connect: {exc}", device=st.url, command=f"connect {self.role}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        st._forget_configuration()  # a new connection may face a rebooted controller
        if st.credentials is not None:
            user, password = st.credentials
            code, payload, raw = self._exchange(f"Login({user},{password})", deadline, shown=f"Login({user},***)")
            if code != 0:
                self.close()
                raise AuthenticationError("login refused", device=st.url, command=f"Login({user},***)",
                                          reply=f"{code},***", code=code)

    def call(self, cmd: str, timeout_s: float) -> tuple[int, str, str]:
        """Send one function call; (code, payload, raw reply text)."""
        with self.lock:
            deadline = time.monotonic() + timeout_s
            if self.sock is None:
                self._open(deadline)
            return self._exchange(cmd, deadline)

    def _exchange(self, cmd: str, deadline: float, shown: str | None = None) -> tuple[int, str, str]:
        st = self.stage
        shown = shown or cmd
        try:
            self.sock.sendall(cmd.encode("ascii"))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self.sock.settimeout(remaining)
                data = self.sock.recv(65536)
                if not data:
                    partial = self.parser.buf.decode("ascii", "replace")
                    self.close()
                    raise ConnectionLost("connection closed by the controller", device=st.url, command=shown,
                                         reply=partial)
                replies = self.parser.feed(data)
                if replies:
                    raw = replies[0].decode("ascii", "replace") + ",EndOfAPI"
                    if len(replies) > 1 or self.parser.buf:
                        self.close()  # more than one reply to one call: out of step
                        raise ProtocolError("unexpected extra data after the reply", device=st.url,
                                            command=shown, reply=raw)
                    code, payload = split_reply(replies[0])
                    if code is None:
                        self.close()
                        raise ProtocolError("reply does not start with an integer code", device=st.url,
                                            command=shown, reply=raw)
                    return code, payload, raw
        except TimeoutError as exc:
            partial = self.parser.buf.decode("ascii", "replace")
            self.close()
            raise DeviceTimeout(f"no complete reply within the timeout ({self.role} socket)", device=st.url,
                                command=shown, reply=partial) from exc
        except OSError as exc:
            partial = self.parser.buf.decode("ascii", "replace")
            self.close()
            raise ConnectionLost(f"connection lost: {exc}", device=st.url, command=shown, reply=partial) from exc


class XpsStage:
    """A Newport XPS positioner group as a `Stage`, plus the gate/trigger used by the lasers."""

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, group: str = "XYZ",
                 positioners: Sequence[str] = ("X", "Y", "Z"), unit: str = "mm", timeout_s: float | None = None,
                 move_timeout_s: float = 60.0, home_timeout_s: float = 180.0,
                 credentials: tuple[str, str] | None = None, gate_mask: int = 1, trigger_mask: int = 2,
                 url: str | None = None, reset_on_connect: bool = True, capture: bool = True):
        self.host, self.port, self.group = host, port, group
        self.axes = tuple(positioners)
        self.positioners = tuple(f"{group}.{p}" for p in positioners)
        if unit not in ("mm", "um"):
            raise ValueError(f"unit must be mm or um, got {unit!r}")
        self.um_per_unit = 1000.0 if unit == "mm" else 1.0
        self.timeout_s = 5.0 if timeout_s is None else float(timeout_s)
        self.move_timeout_s = move_timeout_s
        self.home_timeout_s = home_timeout_s
        self.credentials = credentials
        self.gate_mask, self.trigger_mask = gate_mask, trigger_mask
        self.url = url or f"xps://{host}:{port}?group={group}"
        self._poll = _Link(self, "poll")
        self._move = _Link(self, "move")
        self._limits: dict[str, AxisLimits] = {}
        self._in_position = False
        self._event_config: tuple[str, str] | None = None  # the extended event configuration last sent
        self._pco_params_set: set[str] = set()
        self._pco_armed: list[str] = []
        self._gate_touched = False
        self._status_text: dict[int, str] = {}
        self._target: list[float] | None = None
        self.reset_on_connect = reset_on_connect
        self._pco_reset_pending = False
        self.capture = capture
        self._capture_types: str | None = None
        self._capturing = 0  # points the running external gathering expects (0: none running)
        self._captured: list[tuple[float, ...]] = []

    @classmethod
    def from_url(cls, u, timeout_s: float | None = None) -> XpsStage:
        p = u.params
        axes = tuple(a for a in p.get("positioners", p.get("axes", "X,Y,Z")).split(",") if a)
        return cls(u.host or "127.0.0.1", u.port or DEFAULT_PORT, group=p.get("group", "XYZ"), positioners=axes,
                   unit=p.get("unit", "mm"), timeout_s=timeout_s if timeout_s is not None else u.float_param(
                       "timeout", 5.0), move_timeout_s=u.float_param("move_timeout", 60.0),
                   credentials=credentials(u.host, "xps"), gate_mask=int(p.get("gate_mask", 1)),
                   trigger_mask=int(p.get("trigger_mask", 2)), url=u.raw,
                   reset_on_connect=p.get("reset", "1").lower() not in ("0", "false", "no"),
                   capture=p.get("capture", "1").lower() not in ("0", "false", "no"))

    # ------------------------------------------------------------------ low level

    def call(self, cmd: str, n_out: int = 0, *, link: str = "poll", timeout_s: float | None = None,
             text_out: bool = False) -> list[str]:
        """Send `cmd`; return its outputs as strings; raise the mapped DeviceError on a non-zero code."""
        lk = self._move if link == "move" else self._poll
        code, payload, raw = lk.call(cmd, self.timeout_s if timeout_s is None else timeout_s)
        if code != 0:
            raise self._error(code, cmd, raw)
        if text_out:
            return [payload]
        fields = [f.strip() for f in payload.split(",")] if payload.strip(", ") else []
        if len(fields) != n_out:
            raise ProtocolError(f"expected {n_out} output(s), got {len(fields)}", device=self.url, command=cmd,
                                reply=raw)
        return fields

    def _floats(self, cmd: str, n_out: int, **kw) -> list[float]:
        out = self.call(cmd, n_out, **kw)
        try:
            return [float(v) for v in out]
        except ValueError as exc:
            raise ProtocolError("non-numeric output", device=self.url, command=cmd, reply=",".join(out)) from exc

    def error_string(self, code: int) -> str:
        """The controller's text for an error code (ErrorStringGet), or a built-in fallback."""
        try:
            code2, payload, _ = self._poll.call(f"ErrorStringGet({code},char *)", self.timeout_s)
            if code2 == 0 and payload.strip():
                return payload.strip().rstrip(",")
        except DeviceError:
            pass
        return KNOWN_ERRORS.get(code, "unknown error")

    def _error(self, code: int, cmd: str, raw: str) -> DeviceError:
        if cmd.startswith("Login("):
            cmd, raw = cmd.split(",")[0] + ",***)", f"{code},***"
        cls = ERROR_CLASSES.get(code, CommandError)
        return cls(self.error_string(code), device=self.url, command=cmd, reply=raw, code=code)

    def _to_units(self, um: float) -> str:
        return fmt_num(um / self.um_per_unit)

    # ------------------------------------------------------------------ connection

    def connect(self) -> XpsStage:
        """Open the polling socket (Login if configured), make the outputs safe, read the group's limits.

        Safe outputs (unless `reset_on_connect=False`, URL `?reset=0`, for monitors that must not
        touch a run in progress): position compare disabled on every positioner of the group and
        the gate low. A process killed mid-row leaves PCO enabled on the controller, and this
        process's first move across that row would otherwise fire stray pulses once the gate opens.
        Costs len(positioners) + 1 calls at connect, nothing per shot.
        """
        self.status_code()  # validates the group name (-19) and the connection
        if self.reset_on_connect:
            self.reset_outputs()
        self._read_limits()
        return self

    def reset_outputs(self) -> None:
        """Position compare off on every positioner of the group (armed by anyone), then the gate low.

        A controller that refuses PCO disable in its current state (not initialised: NotReadyError)
        is asked again right after the next successful home(), before anything can move."""
        try:
            self.disarm_compare(all_positioners=True)
            self._pco_reset_pending = False
        except NotReadyError:
            self._pco_reset_pending = True
        self.set_gate(False)

    def _read_limits(self):
        for ax, pos in zip(self.axes, self.positioners, strict=True):
            lo, hi = self._floats(f"PositionerUserTravelLimitsGet({pos},double *,double *)", 2)
            self._limits[ax] = AxisLimits(lo * self.um_per_unit, hi * self.um_per_unit)

    def _forget_configuration(self) -> None:
        """Drop cached controller-side set-up (extended event, external gathering, PCO pulse parameters) so it is sent again."""
        self._event_config = None
        self._capture_types = None
        self._pco_params_set.clear()

    def reconnect(self) -> None:
        """Drop both sockets; the next call reopens them (and logs in again)."""
        self._poll.close()
        self._move.close()
        self._in_position = False

    def close(self) -> None:
        """Close the gate (best effort), disable position compare, then both sockets."""
        try:
            if self._gate_touched:
                self.set_gate(False)
            self.disarm_compare()
        except DeviceError:
            pass
        finally:
            self._poll.close()
            self._move.close()

    def __enter__(self) -> XpsStage:
        if self._poll.sock is None:
            self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ state

    def status_code(self) -> int:
        return int(self.call(f"GroupStatusGet({self.group},int *)", 1)[0])

    def status(self) -> StageStatus:
        code = self.status_code()
        if code not in self._status_text:
            self._status_text[code] = self.call(f"GroupStatusStringGet({code},char *)", text_out=True)[0].strip(", ")
        pos = self.position()
        return StageStatus(code=code, text=self._status_text[code], position_um=pos, axes=self.axes,
                           **decode_status(code))

    def in_position(self) -> bool:
        return self._in_position

    def position(self) -> tuple[float, ...]:
        n = len(self.axes)
        vals = self._floats(f"GroupPositionCurrentGet({self.group}{',double *' * n})", n)
        return tuple(v * self.um_per_unit for v in vals)

    def setpoint(self) -> tuple[float, ...]:
        n = len(self.axes)
        vals = self._floats(f"GroupPositionSetpointGet({self.group}{',double *' * n})", n)
        return tuple(v * self.um_per_unit for v in vals)

    def following_error(self) -> tuple[float, ...]:
        n = len(self.axes)
        vals = self._floats(f"GroupCurrentFollowingErrorGet({self.group}{',double *' * n})", n)
        return tuple(v * self.um_per_unit for v in vals)

    # ------------------------------------------------------------------ motion

    def home(self, timeout_s: float | None = None, force: bool = False) -> None:
        """Initialise and home the group unless it is already homed and ready (force=True re-homes)."""
        self._in_position = False
        code = self.status_code()
        if force and code >= 10:
            self.call(f"GroupKill({self.group})")
            code = self.status_code()
        if 10 <= code <= 18:
            self._finish_pco_reset()
            self._in_position = True
            return
        if 20 <= code <= 38:
            self.call(f"GroupMotionEnable({self.group})")
            self._finish_pco_reset()
            self._in_position = True
            return
        if code < 10:
            self.call(f"GroupInitialize({self.group})")
        self.call(f"GroupHomeSearch({self.group})", link="move",
                  timeout_s=timeout_s if timeout_s is not None else self.home_timeout_s)
        self._target = None
        self._finish_pco_reset()
        self._in_position = True

    def _finish_pco_reset(self) -> None:
        """The connect-time PCO disable the controller refused (not initialised), before any move."""
        if self._pco_reset_pending:
            self.disarm_compare(all_positioners=True)
            self._pco_reset_pending = False

    def check_limits(self, x_um: float, y_um: float, z_um: float | None = None) -> None:
        values = self._values(x_um, y_um, z_um)
        for ax, v in zip(self.axes, values, strict=True):
            lim = self._limits.get(ax)
            if not math.isfinite(v):
                raise TravelLimitError(f"{ax} target {v!r} is not a finite number", device=self.url)
            if lim is not None and not lim.contains(v):
                raise TravelLimitError(
                    f"{ax} target {v:.4f} um outside travel limits [{lim.min_um:.4f}, {lim.max_um:.4f}] um "
                    "(not sent)", device=self.url)

    def _values(self, x_um, y_um, z_um) -> list[float]:
        values = [float(x_um), float(y_um)]
        if len(self.axes) >= 3:
            if z_um is None:
                z_um = self._target[2] if self._target else self.setpoint()[2]
            values.append(float(z_um))
            values += [self._target[i] if self._target else 0.0 for i in range(3, len(self.axes))]
        elif z_um is not None:
            raise ValueError(f"{self.url}: group {self.group} has no Z axis")
        return values

    def move_to(self, x_um: float, y_um: float, z_um: float | None = None, timeout_s: float | None = None) -> None:
        values = self._values(x_um, y_um, z_um)
        self.check_limits(*values[:3])
        args = ",".join(self._to_units(v) for v in values)
        self._blocking_move(f"GroupMoveAbsolute({self.group},{args})", timeout_s)
        self._target = values

    def move_by(self, dx_um: float, dy_um: float, dz_um: float = 0.0, timeout_s: float | None = None) -> None:
        base = list(self._target) if self._target else list(self.setpoint())
        deltas = [dx_um, dy_um, dz_um][: len(self.axes)] + [0.0] * max(0, len(self.axes) - 3)
        target = [b + d for b, d in zip(base, deltas, strict=True)]
        self.check_limits(*target[:3])
        args = ",".join(self._to_units(d) for d in deltas)
        self._blocking_move(f"GroupMoveRelative({self.group},{args})", timeout_s)
        self._target = target

    def _blocking_move(self, cmd: str, timeout_s: float | None):
        self._in_position = False
        self._target = None
        try:
            self.call(cmd, link="move", timeout_s=self.move_timeout_s if timeout_s is None else timeout_s)
        except (DeviceTimeout, ConnectionLost, ProtocolError):
            try:  # the move may still be running on the controller: stop it before reporting
                self.call(f"GroupMoveAbort({self.group})")
            except DeviceError:
                pass
            raise
        self._in_position = True

    def stop(self) -> None:
        self._in_position = False
        try:
            self.call(f"GroupMoveAbort({self.group})")
        except NotReadyError:
            pass  # nothing was moving

    def abort(self) -> None:
        self._in_position = False
        try:
            if self._gate_touched:
                self.set_gate(False)
        finally:
            self.call(f"GroupKill({self.group})")

    # ------------------------------------------------------------------ parameters

    def _positioner(self, axis: str) -> str:
        if axis in self.axes:
            return self.positioners[self.axes.index(axis)]
        if axis in self.positioners:
            return axis
        raise ValueError(f"{self.url}: no axis {axis!r} (axes {', '.join(self.axes)})")

    def motion_params(self, axis: str) -> MotionParams:
        pos = self._positioner(axis)
        v, a, jmin, jmax = self._floats(
            f"PositionerSGammaParametersGet({pos},double *,double *,double *,double *)", 4)
        return MotionParams(v * self.um_per_unit, a * self.um_per_unit, jmin, jmax)

    def set_motion_params(self, axis: str, params: MotionParams) -> None:
        pos = self._positioner(axis)
        self.call(f"PositionerSGammaParametersSet({pos},{self._to_units(params.velocity_um_s)},"
                  f"{self._to_units(params.acceleration_um_s2)},{fmt_num(params.min_jerk_time_s)},"
                  f"{fmt_num(params.max_jerk_time_s)})")

    def set_motion_done(self, axis: str, position_window_um: float, checking_time_s: float,
                        velocity_window_um_s: float = 100.0, mean_period_s: float = 0.001,
                        timeout_s: float = 1.0) -> None:
        """Settle criterion: a move is done once the position has stayed within `position_window_um`
        for `checking_time_s` (PositionerMotionDoneSet). The controller applies it only when the
        positioner's MotionDoneMode in system.ini is VelocityAndPositionWindow."""
        pos = self._positioner(axis)
        self.call(f"PositionerMotionDoneSet({pos},{self._to_units(position_window_um)},"
                  f"{self._to_units(velocity_window_um_s)},{fmt_num(checking_time_s)},"
                  f"{fmt_num(mean_period_s)},{fmt_num(timeout_s)})")

    def max_velocity_acceleration(self, axis: str) -> tuple[float, float]:
        pos = self._positioner(axis)
        v, a = self._floats(f"PositionerMaximumVelocityAndAccelerationGet({pos},double *,double *)", 2)
        return v * self.um_per_unit, a * self.um_per_unit

    def travel_limits(self) -> dict[str, AxisLimits]:
        if not self._limits:
            self._read_limits()
        return dict(self._limits)

    def set_travel_limits(self, axis: str, limits: AxisLimits) -> None:
        pos = self._positioner(axis)
        self.call(f"PositionerUserTravelLimitsSet({pos},{self._to_units(limits.min_um)},"
                  f"{self._to_units(limits.max_um)})")
        self._read_limits()

    # ------------------------------------------------------------------ gate, trigger, position compare

    def set_gate(self, open_: bool) -> None:
        """Laser gate line high (open) or low (closed)."""
        self._gate_touched = True
        self.call(f"GPIODigitalSet(GPIO3.DO,{self.gate_mask},{self.gate_mask if open_ else 0})")

    def fire_pulses(self, n: int = 1) -> None:
        """One trigger releasing n pulses now; refuses unless the last move finished in position."""
        if n < 1:
            raise ValueError("n must be >= 1")
        if not self._in_position:
            raise NotInPosition("refusing to fire: the stage has not reported the last move done",
                                device=self.url, command="EventExtendedStart(int *)")
        self._configure_event("Immediate,0,0,0,0", f"GPIO3.DO.DOPulse,{self.trigger_mask},0,0,0")
        for _ in range(n):  # one DOPulse releases one pulse: its other parameters are unused (manual)
            self.call("EventExtendedStart(int *)", 1)

    def _configure_event(self, trigger: str, action: str) -> None:
        """EventExtendedStart launches the last configuration sent: send it only when it changes."""
        if self._event_config != (trigger, action):
            self._event_config = None
            self.call(f"EventExtendedConfigurationTriggerSet({trigger})")
            self.call(f"EventExtendedConfigurationActionSet({action})")
            self._event_config = (trigger, action)

    def arm_compare(self, axis: str, positions_um: Sequence[float]) -> LineFiring:
        """Position compare on `axis`: a trigger each time its encoder crosses one of the positions."""
        pos = self._positioner(axis)
        ax = self.axes[self.positioners.index(pos)]
        pts = sorted(float(p) for p in positions_um)
        if not pts:
            raise ValueError("no positions to fire at")
        lim = self._limits.get(ax)
        if lim is not None and not (lim.contains(pts[0]) and lim.contains(pts[-1])):
            raise TravelLimitError(f"compare positions {pts[0]:.3f}..{pts[-1]:.3f} um outside {ax} travel "
                                   f"limits [{lim.min_um:.3f}, {lim.max_um:.3f}] um", device=self.url)
        if len(pts) > 1:
            step = (pts[-1] - pts[0]) / (len(pts) - 1)
            dev = max(abs(p - (pts[0] + i * step)) for i, p in enumerate(pts))
            if step <= 0 or dev > 1e-3:
                raise ValueError(f"position compare needs equally spaced positions (deviation {dev:.4g} um)")
        else:
            step = 1.0
        if pos not in self._pco_params_set:
            self.call(f"PositionerPositionComparePulseParametersSet({pos},1,0.075)")
            self._pco_params_set.add(pos)
        if pos in self._pco_armed:
            self.call(f"PositionerPositionCompareDisable({pos})")
            self._pco_armed.remove(pos)
        # max = last + step/2, not last: the controller fires at min + k*step <= max, and the step is
        # sent rounded to 1e-9 mm, so (last - min)/step can come out just below n-1 and the last disc
        # of the row would be lost (non-round pitch, rotated samples). Half a step of margin keeps the
        # count exact whichever way the step rounds; clamped to the travel limit (the controller
        # refuses a max outside it), where a tolerant controller still counts the last position.
        hi = pts[-1] + 0.5 * step
        if lim is not None:
            hi = max(pts[-1], min(hi, lim.max_um))
        self.call(f"PositionerPositionCompareSet({pos},{self._to_units(pts[0])},{self._to_units(hi)},"
                  f"{self._to_units(step)})")
        if self.capture:
            self._start_capture(len(pts))
        self.call(f"PositionerPositionCompareEnable({pos})")
        self._pco_armed.append(pos)
        return LineFiring(ax, pts)

    def _start_capture(self, n: int) -> None:
        """External gathering of every positioner's latched encoder position, one line per pulse."""
        types = ",".join(f"{p}.ExternalLatchPosition" for p in self.positioners)
        for attempt in (0, 1):
            try:
                if self._capture_types != types:
                    self.call(f"GatheringExternalConfigurationSet({types})")
                    self._capture_types = types
                self._configure_event("Immediate,0,0,0,0", f"ExternalGatheringRun,{n},1,0,0")
                self.call("EventExtendedStart(int *)", 1)
                break
            except CommandError as exc:
                if exc.code != -43 or attempt:
                    raise
                # a gathering left running (a row cut short, another process): end it, start ours
                self.call("GatheringExternalStopAndSave()")
        self._capturing = n

    def _read_capture(self) -> None:
        if not self._capturing:
            return
        self._capturing = 0
        cur, most = (int(v) for v in self.call("GatheringExternalCurrentNumberGet(int *,int *)", 2))
        for i in range(cur):
            line = self.call(f"GatheringExternalDataGet({i},char *)", text_out=True)[0]
            try:
                vals = tuple(float(v) * self.um_per_unit for v in line.strip(", ").split(";") if v.strip())
            except ValueError:
                raise ProtocolError("gathered line is not numbers", device=self.url,
                                    command=f"GatheringExternalDataGet({i},char *)", reply=line) from None
            if len(vals) != len(self.positioners):
                raise ProtocolError(f"gathered line has {len(vals)} values, not {len(self.positioners)}",
                                    device=self.url, command=f"GatheringExternalDataGet({i},char *)", reply=line)
            self._captured.append(vals)
        if cur < most:  # fewer pulses than compare positions: the gathering still runs, end it
            self.call("GatheringExternalStopAndSave()")

    def captured_positions(self) -> list[tuple[float, ...]]:
        """Encoder positions (um, one tuple per compare pulse, axes order) latched by the controller
        since the last call; empty when capture is off or nothing was latched."""
        out, self._captured = self._captured, []
        return out

    def disarm_compare(self, all_positioners: bool = False) -> None:
        """Disable the position compare this process armed (all_positioners: every one of the group,
        including compare left armed by another, possibly killed, process)."""
        if all_positioners:
            for pos in self.positioners:
                self.call(f"PositionerPositionCompareDisable({pos})")
            self._pco_armed.clear()
            return
        while self._pco_armed:
            pos = self._pco_armed[0]
            self.call(f"PositionerPositionCompareDisable({pos})")
            self._pco_armed.pop(0)
        self._read_capture()  # after the disable: no pulse can be latched any more


class XpsGate:
    """A `PulseSource` that is only the XPS gate/trigger (no attenuator, no energy readout)."""

    def __init__(self, stage: XpsStage, *, own: bool, url: str):
        self.stage = stage
        self._own = own
        self.url = url
        self._armed = False

    @classmethod
    def from_url(cls, u, trigger: XpsStage | None = None, timeout_s: float | None = None) -> XpsGate:
        if trigger is not None:
            return cls(trigger, own=False, url=u.raw)
        return cls(XpsStage.from_url(u, timeout_s=timeout_s), own=True, url=u.raw)

    def connect(self) -> XpsGate:
        if self._own:
            self.stage.connect()
        self.stage.set_gate(False)
        return self

    def close(self) -> None:
        self.disarm()
        if self._own:
            self.stage.close()

    def __enter__(self) -> XpsGate:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def armed(self) -> bool:
        return self._armed

    def arm(self) -> None:
        self.stage.set_gate(True)
        self._armed = True

    def disarm(self) -> None:
        self._armed = False
        try:
            self.stage.set_gate(False)
        except DeviceError:
            pass
        try:
            self.stage.disarm_compare()
        except DeviceError:
            pass

    def fire(self, n: int = 1) -> None:
        if not self._armed:
            raise DeviceError("not armed: call arm() first", device=self.url, command="fire")
        self.stage.fire_pulses(n)

    def set_attenuation(self, percent: float) -> None:
        if percent != 100.0:
            raise CommandError("an xps:// gate has no attenuator; open the laser with pharos://",
                               device=self.url, command=f"set_attenuation({percent})")

    def attenuation(self) -> float:
        return 100.0

    def pulse_energy_uj(self) -> float:
        return math.nan

    def arm_line(self, axis: str, positions_um: Sequence[float]) -> LineFiring:
        return self.stage.arm_compare(axis, positions_um)

    def disarm_line(self) -> None:
        self.stage.disarm_compare()


register_scheme("xps", stage=XpsStage.from_url, laser=XpsGate.from_url)
