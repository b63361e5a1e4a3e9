"""Newport ESP301/ESP300 motion controller over a serial port (pyserial).

RS-232: 19200 baud 8N1 with RTS/CTS; USB virtual COM: 921600. Commands end "\\r"; replies end
"\\r\\n" (a bare "\\r" or "\\n" is accepted). Every exchange holds one lock so threads cannot
interleave replies, and every command is followed on the same line by "TB?" so the error queue is
read in the same round trip ("1PA10;TB?" -> "0, 451322, NO ERROR DETECTED").
Axes 1..3 are X, Y, Z; positions are read from the controller's units (SN?) and exposed in um.
The port may be any pyserial URL: `esp301:///dev/ttyUSB0`, `esp301://?port=rfc2217://host:4001`,
`esp301://?port=esp301sim://lab1` (the emulator without a pty).
"""

from __future__ import annotations

import math
import threading
import time

import serial

from stage_drivers.protocols import (
    AxisLimits,
    CommandError,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    EmergencyStop,
    FollowingError,
    MotionParams,
    NotReadyError,
    ProtocolError,
    StageStatus,
    TravelLimitError,
    fmt_num,
)
from stage_drivers.urls import register_scheme, spy_transport

# SN? displacement-unit codes, ESP301 user manual (EDH0235En1030, section 3 "SN - set axis displacement
# units"): 0 encoder count, 1 motor step, 2 millimeter, 3 micrometer, 4 inches, 5 milli-inches,
# 6 micro-inches, 7 degree, 8 gradian, 9 radian, 10 milliradian, 11 microradian. The manual says the unit
# is a label the controller reports positions in, so every length unit converts exactly (1 in = 25.4 mm).
UNIT_NAMES = {0: "encoder count", 1: "motor step", 2: "millimeter", 3: "micrometer", 4: "inch",
              5: "milli-inch", 6: "micro-inch", 7: "degree", 8: "gradian", 9: "radian", 10: "milliradian",
              11: "microradian"}
UM_PER_UNIT = {2: 1000.0, 3: 1.0, 4: 25400.0, 5: 25.4, 6: 0.0254}


class UnitError(DeviceError):
    """An axis reports a displacement unit a linear stage cannot be driven in (SN? code)."""


def um_per_unit(code: int, axis: str, number: int, *, device: str = "esp301") -> float:
    """um per controller unit for SN? `code` of `axis` (controller axis `number`), or UnitError."""
    if code in UM_PER_UNIT:
        return UM_PER_UNIT[code]
    name = UNIT_NAMES.get(code)
    if name is None:
        why = "which is not a unit code the ESP301 manual lists (0-11)"
    elif code in (0, 1):
        why = f"({name}s): no length resolution the driver can rely on"
    else:
        why = f"({name}): angular, a linear stage cannot be driven in it"
    raise UnitError(f"axis {axis} (controller axis {number}) reports displacement unit SN?={code} {why}; "
                    f"refusing to drive it. Configure the axis in millimeters ({number}SN2) or micrometers "
                    f"({number}SN3) with matching SU/FR resolution, then reconnect",
                    device=device, command=f"{number}SN?", reply=str(code), code=code)


def error_class(code: int) -> type[DeviceError]:
    """Exception class for an ESP error code (axis errors are axis*100 + code)."""
    if code >= 100:
        sub = code % 100
        if sub == 3:
            return FollowingError
        if sub in (4, 5, 6, 7):
            return TravelLimitError
        if sub == 13:
            return NotReadyError
        return CommandError
    return EmergencyStop if code == 4 else CommandError


class Esp301Stage:
    """ESP301 axes as a `Stage` (no laser gate: use an XPS for firing)."""

    def __init__(self, port: str, baud: int = 19200, *, axes: tuple[str, ...] = ("X", "Y", "Z"),
                 timeout_s: float | None = None, move_timeout_s: float = 60.0, rtscts: bool | None = None,
                 url: str | None = None, poll_interval_s: float = 0.002):
        self.port, self.baud = port, int(baud)
        self.axes = tuple(axes)
        self.timeout_s = 2.0 if timeout_s is None else float(timeout_s)
        self.move_timeout_s = move_timeout_s
        self.rtscts = (self.baud == 19200) if rtscts is None else rtscts
        self.url = url or f"esp301://{port}?baud={baud}"
        self.poll_interval_s = poll_interval_s
        self._ser: serial.Serial | None = None
        self._lock = threading.RLock()
        self._rx = b""
        self._um: list[float] = [1000.0] * len(self.axes)
        self._limits: dict[str, AxisLimits] = {}
        self._in_position = False
        self._homed = False
        self._target: list[float] | None = None

    @classmethod
    def from_url(cls, u, timeout_s: float | None = None) -> Esp301Stage:
        p = u.params
        rts = p.get("rtscts")
        return cls(p.get("port") or u.path or u.host, int(p.get("baud", 19200)),
                   axes=tuple(a for a in p.get("axes", "X,Y,Z").split(",") if a),
                   timeout_s=timeout_s if timeout_s is not None else u.float_param("timeout", 2.0),
                   move_timeout_s=u.float_param("move_timeout", 60.0),
                   rtscts=None if rts is None else rts in ("1", "true", "yes"), url=u.raw)

    # ------------------------------------------------------------------ transport

    def _open(self):
        if self.port.startswith("esp301sim://") and "sim" not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append("sim")  # the emulator's pyserial URL handler
        try:
            self._ser = spy_transport(self, serial.serial_for_url(
                self.port, baudrate=self.baud, bytesize=8, parity="N", stopbits=1, rtscts=self.rtscts, timeout=0.05,
                write_timeout=self.timeout_s))
        except (serial.SerialException, OSError) as exc:
            raise ConnectionLost(f"cannot open serial port: {exc}", device=self.url, command="open") from exc
        self._rx = b""

    def _drop(self):
        if self._ser is not None:
            try:
                self._ser.close()
            except (serial.SerialException, OSError):
                pass
        self._ser = None
        self._rx = b""

    def exchange(self, line: str, expect_reply: bool = True, timeout_s: float | None = None) -> str:
        """Write one line; return the reply line (or '' if none is expected)."""
        with self._lock:
            if self._ser is None:
                self._open()
            deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
            try:
                self._ser.write(line.encode("ascii") + b"\r")
                if not expect_reply:
                    return ""
                while True:
                    self._rx = self._rx.lstrip(b"\r\n")
                    for i, b in enumerate(self._rx):
                        if b in (10, 13):
                            reply, self._rx = self._rx[:i], self._rx[i + 1:]
                            return reply.decode("ascii", "replace").strip()
                    if time.monotonic() > deadline:
                        partial = self._rx.decode("ascii", "replace")
                        self._drop()  # a late reply would be taken for the next one
                        raise DeviceTimeout("no complete reply within the timeout", device=self.url, command=line,
                                            reply=partial)
                    self._rx += self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError) as exc:
                partial = self._rx.decode("ascii", "replace")
                self._drop()
                raise ConnectionLost(f"serial port failed: {exc}", device=self.url, command=line,
                                     reply=partial) from exc

    def command(self, cmd: str, timeout_s: float | None = None) -> None:
        """Send a command with 'TB?' appended; raise the mapped error if the queue holds one."""
        reply = self.exchange(f"{cmd};TB?", timeout_s=timeout_s)
        self._check_tb(reply, cmd)

    def _check_tb(self, reply: str, cmd: str):
        head = reply.split(",")
        try:
            code = int(head[0])
        except ValueError:
            self._resync()
            raise ProtocolError("error-queue reply does not start with a code", device=self.url,
                                command=f"{cmd};TB?", reply=reply) from None
        if code != 0:
            text = head[-1].strip() if len(head) >= 3 else reply
            self._in_position = False
            raise error_class(code)(text, device=self.url, command=cmd, reply=reply, code=code)

    def query(self, cmd: str) -> str:
        return self.exchange(cmd)

    def query_float(self, cmd: str) -> float:
        reply = self.exchange(cmd)
        try:
            v = float(reply)
        except ValueError:
            self._resync()
            raise ProtocolError("expected a number", device=self.url, command=cmd, reply=reply) from None
        if not math.isfinite(v):
            raise ProtocolError("non-finite number", device=self.url, command=cmd, reply=reply)
        return v

    def _resync(self):
        with self._lock:
            if self._ser is not None:
                try:
                    time.sleep(0.01)
                    self._ser.reset_input_buffer()
                except (serial.SerialException, OSError):
                    self._drop()
            self._rx = b""

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> Esp301Stage:
        try:
            return self._connect()
        except BaseException:
            self._drop()
            raise

    def _connect(self) -> Esp301Stage:
        self.exchange("VE?")
        for i in range(len(self.axes)):
            raw = self.query_float(f"{i + 1}SN?")
            if raw != int(raw):
                raise ProtocolError("SN? reply is not an integer unit code", device=self.url,
                                    command=f"{i + 1}SN?", reply=str(raw))
            self._um[i] = um_per_unit(int(raw), self.axes[i], i + 1, device=self.url)
        self._read_limits()
        err = self.exchange("TB?")  # clear anything left from before we connected
        del err
        return self

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> Esp301Stage:
        if self._ser is None:
            self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reconnect(self) -> None:
        self._drop()
        self._in_position = False

    # ------------------------------------------------------------------ state

    def position(self) -> tuple[float, ...]:
        return tuple(self.query_float(f"{i + 1}TP?") * self._um[i] for i in range(len(self.axes)))

    def in_position(self) -> bool:
        return self._in_position

    def status(self) -> StageStatus:
        moving = any(self.exchange(f"{i + 1}MD?").strip() == "0" for i in range(len(self.axes)))
        on = all(self.exchange(f"{i + 1}MO?").strip() == "1" for i in range(len(self.axes)))
        err = self.exchange("TE?").strip()
        fault = err not in ("0", "")
        code = 3 if fault else (1 if moving else (0 if on else 2))
        text = {0: "ready", 1: "moving", 2: "motor off", 3: f"error {err}"}[code]
        return StageStatus(code=code, text=text, initialized=True, homed=self._homed, ready=code == 0 and on,
                           moving=moving, fault=fault, position_um=self.position(), axes=self.axes)

    # ------------------------------------------------------------------ motion

    def _wait_done(self, axes_idx, timeout_s: float | None, cmd: str):
        deadline = time.monotonic() + (self.move_timeout_s if timeout_s is None else timeout_s)
        for i in axes_idx:
            while self.exchange(f"{i + 1}MD?").strip() != "1":
                if time.monotonic() > deadline:
                    self.stop()
                    raise DeviceTimeout("motion not done within the timeout (stopped)", device=self.url,
                                        command=cmd)
                time.sleep(self.poll_interval_s)
        self._check_tb(self.exchange("TB?"), cmd)

    def home(self, timeout_s: float | None = None) -> None:
        self._in_position = False
        idx = range(len(self.axes))
        self.command(";".join(f"{i + 1}MO" for i in idx))
        cmd = ";".join(f"{i + 1}OR" for i in idx)
        self.command(cmd)
        self._wait_done(idx, timeout_s if timeout_s is not None else 180.0, cmd)
        self._homed = True
        self._target = None
        self._in_position = True

    def check_limits(self, x_um: float, y_um: float, z_um: float | None = None) -> None:
        for ax, v in zip(self.axes, (x_um, y_um, z_um), strict=False):
            if v is None:
                continue
            lim = self._limits.get(ax)
            if not math.isfinite(v):
                raise TravelLimitError(f"{ax} target {v!r} is not finite", device=self.url)
            if lim is not None and not lim.contains(v):
                raise TravelLimitError(f"{ax} target {v:.4f} um outside travel limits [{lim.min_um:.4f}, "
                                       f"{lim.max_um:.4f}] um (not sent)", device=self.url)

    def move_to(self, x_um: float, y_um: float, z_um: float | None = None, timeout_s: float | None = None) -> None:
        values = [x_um, y_um, z_um][: len(self.axes)]
        self.check_limits(*values)
        idx = [i for i, v in enumerate(values) if v is not None]
        cmd = ";".join(f"{i + 1}PA{fmt_num(values[i] / self._um[i])}" for i in idx)
        self._in_position = False
        self.command(cmd)
        self._wait_done(idx, timeout_s, cmd)
        self._in_position = True

    def move_by(self, dx_um: float, dy_um: float, dz_um: float = 0.0, timeout_s: float | None = None) -> None:
        here = self.position()
        deltas = [dx_um, dy_um, dz_um][: len(self.axes)]
        self.check_limits(*[h + d for h, d in zip(here, deltas, strict=True)])
        idx = [i for i, d in enumerate(deltas) if d]
        if not idx:
            return
        cmd = ";".join(f"{i + 1}PR{fmt_num(deltas[i] / self._um[i])}" for i in idx)
        self._in_position = False
        self.command(cmd)
        self._wait_done(idx, timeout_s, cmd)
        self._in_position = True

    def stop(self) -> None:
        self._in_position = False
        self.exchange(";".join(f"{i + 1}ST" for i in range(len(self.axes))), expect_reply=False)

    def abort(self) -> None:
        self._in_position = False
        self.exchange("AB", expect_reply=False)

    # ------------------------------------------------------------------ parameters

    def _i(self, axis: str) -> int:
        if axis not in self.axes:
            raise ValueError(f"{self.url}: no axis {axis!r}")
        return self.axes.index(axis)

    def motion_params(self, axis: str) -> MotionParams:
        i = self._i(axis)
        v = self.query_float(f"{i + 1}VA?") * self._um[i]
        a = self.query_float(f"{i + 1}AC?") * self._um[i]
        return MotionParams(v, a, 0.0, 0.0)

    def set_motion_params(self, axis: str, params: MotionParams) -> None:
        i = self._i(axis)
        u = self._um[i]
        self.command(f"{i + 1}VA{fmt_num(params.velocity_um_s / u)};{i + 1}AC{fmt_num(params.acceleration_um_s2 / u)};"
                     f"{i + 1}AG{fmt_num(params.acceleration_um_s2 / u)}")

    def max_velocity_acceleration(self, axis: str) -> tuple[float, float]:
        i = self._i(axis)
        return self.query_float(f"{i + 1}VU?") * self._um[i], self.query_float(f"{i + 1}AU?") * self._um[i]

    def _read_limits(self):
        for i, ax in enumerate(self.axes):
            lo, hi = self.query_float(f"{i + 1}SL?"), self.query_float(f"{i + 1}SR?")
            self._limits[ax] = AxisLimits(lo * self._um[i], hi * self._um[i])

    def travel_limits(self) -> dict[str, AxisLimits]:
        return dict(self._limits)

    def set_travel_limits(self, axis: str, limits: AxisLimits) -> None:
        i = self._i(axis)
        u = self._um[i]
        self.command(f"{i + 1}SL{fmt_num(limits.min_um / u)};{i + 1}SR{fmt_num(limits.max_um / u)}")
        self._read_limits()


register_scheme("esp301", stage=Esp301Stage.from_url)
register_scheme("esp300", stage=Esp301Stage.from_url)
