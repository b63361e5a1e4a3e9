"""A Newport ESP301 emulator on a pseudo-terminal: pyserial opens `.port` like a real serial port.

Lines end "\\r" (accepts "\\n" too); replies end "\\r\\n"; ";" joins commands on one line.
Implements PA PR TP? MD? MO MF MO? OR ST AB VA AC AG SL SR (and their ? forms), TE? TB? ID? VE? SN SN?
WS (wait for stop: later commands wait), DH (define home), DP? (desired position), TS (status byte),
as the ESP301 user manual (EDH0235En1030) describes them, with the ESP error queue: axis errors
are axis*100 + code (e.g. 103 = axis 1 following error), general errors 6 (unknown command, e.g.
SCPI's *IDN?), 7 (parameter out of range), 9 (axis out of range), 37 (axis number missing),
38 (parameter missing), 4 (emergency stop: AB; MO turns the motor on again). Units: per axis
(`units=(2, 2, 2)`: mm; SN sets only the label, as the manual says).
Moves are jerk-limited profiles on the shared simulated clock (instant with speedup=inf).
"""

from __future__ import annotations

import os
import re
import select
import threading
import time
import tty
from dataclasses import dataclass

import numpy as np
import serial

from sim.clock import SimClock
from sim.faults import FaultPlan
from sim.motion import Profile, jerk_time_for

ERRORS = {
    0: "NO ERROR DETECTED", 4: "EMERGENCY STOP ACTIVATED", 6: "COMMAND DOES NOT EXIST",
    7: "PARAMETER OUT OF RANGE", 9: "AXIS NUMBER OUT OF RANGE", 37: "AXIS NUMBER MISSING",
    38: "COMMAND PARAMETER MISSING",
}
AXIS_ERRORS = {
    1: "PARAMETER OUT OF RANGE", 3: "FOLLOWING ERROR THRESHOLD EXCEEDED", 4: "POSITIVE HARDWARE LIMIT DETECTED",
    5: "NEGATIVE HARDWARE LIMIT DETECTED", 6: "POSITIVE SOFTWARE LIMIT DETECTED",
    7: "NEGATIVE SOFTWARE LIMIT DETECTED", 13: "MOTOR NOT ENABLED",
}
if "sim" not in serial.protocol_handler_packages:  # esp301sim:// (sim/protocol_esp301sim.py)
    serial.protocol_handler_packages.append("sim")

_CMD = re.compile(r"^\s*(\d*)\s*([A-Za-z]{2})(\??)\s*(.*?)\s*$")


@dataclass
class Axis:
    position: float = 0.0
    target: float = 0.0
    velocity: float = 5.0
    acceleration: float = 50.0
    deceleration: float = 50.0
    left: float = -25.0
    right: float = 25.0
    motor_on: bool = True
    profile: Profile | None = None
    unit: int = 2  # SN code; positions and limits are numbers in this unit (the manual: a label only)


class Esp301Emulator:
    """`start()` opens the pty pair; `.port` is the device path for pyserial; `close()` stops it."""

    def __init__(self, *, n_axes: int = 3, speedup: float = 1.0, faults=None, seed: int = 0,
                 encoder_noise_mm: float = 2e-6, units: tuple[int, ...] = ()):
        self.axes = [Axis() for _ in range(n_axes)]
        for ax, code in zip(self.axes, units, strict=False):
            ax.unit = code
        self.clock = SimClock(speedup)
        self.faults = faults if isinstance(faults, FaultPlan) else FaultPlan(faults)
        self.rng = np.random.default_rng(seed)
        self.noise = encoder_noise_mm
        self.errors: list[tuple[int, float]] = []
        self.estop = False
        self.lock = threading.RLock()
        self._master = self._slave = -1
        self.port = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending_move_fault = ""
        self.t0 = time.monotonic()

    def start(self) -> Esp301Emulator:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="esp301-emu")
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"esp301://{self.port}?baud=19200"

    def __enter__(self):
        return self.start() if self._thread is None else self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1

    def inject(self, kind: str, at: int | None = None, arg: str = "") -> None:
        self.faults.add(kind, at, arg)

    # ------------------------------------------------------------------ serial loop

    def _loop(self):
        buf = b""
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self._master], [], [], 0.1)
                if not r:
                    continue
                data = os.read(self._master, 4096)
            except OSError:
                return
            if not data:
                continue
            buf += data
            while True:
                m = re.search(rb"[\r\n]", buf)
                if m is None:
                    break
                line, buf = buf[:m.start()], buf[m.end():]
                if line.strip():
                    if not self._handle_line(line.decode("ascii", "replace")):
                        return

    def _write(self, data: bytes, split: bool = False):
        try:
            if split:
                for i in range(0, len(data), 2):
                    os.write(self._master, data[i:i + 2])
                    time.sleep(0.0003)
            else:
                os.write(self._master, data)
        except OSError:
            pass

    def _handle_line(self, line: str) -> bool:
        is_move = bool(re.search(r"(PA|PR)", line))
        hits = self.faults.next_command(is_move=is_move)
        kinds = {f.kind: f for f in hits}
        if "drop" in kinds:  # the USB adapter vanished: the port stops answering and closes
            self._stop.set()
            for fd in (self._master, self._slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._master = self._slave = -1
            return False
        if "estop" in kinds:
            self._emergency_stop()
        for k in ("following", "limit"):
            if k in kinds:
                self._pending_move_fault = k
        replies = []
        for part in line.split(";"):
            if part.strip():
                out = self.execute(part)
                if out is not None:
                    replies.append(out)
        if not replies:
            return True
        data = "".join(r + "\r\n" for r in replies).encode("ascii")
        if "garble" in kinds:
            data = b"\x15?%" + data[::-1]
        if "slow" in kinds:
            self._stop.wait(float(kinds["slow"].arg or 10.0))
        self._write(data, split="split" in kinds)
        return True

    # ------------------------------------------------------------------ commands

    def _error(self, code: int):
        self.errors.append((code, time.monotonic() - self.t0))

    def _emergency_stop(self):
        with self.lock:
            now = self.clock.now()
            for ax in self.axes:
                self._settle(ax, now, stop=True)
                ax.motor_on = False
            self.estop = True
            self._error(4)

    def _settle(self, ax: Axis, now: float, stop: bool = False):
        if ax.profile is not None and (stop or now >= ax.profile.t_end):
            ax.position = float(ax.profile.position(min(now, ax.profile.t_end)))
            if not stop:
                ax.position = ax.target
            ax.target = ax.position
            ax.profile = None

    def execute(self, cmd: str) -> str | None:
        """Run one command; the reply line for queries, None otherwise (errors go to the queue)."""
        m = _CMD.match(cmd)
        if m is None:
            self._error(6)
            return None
        axis_s, name, query, arg = m.groups()
        name = name.upper()
        with self.lock:
            moving = [ax.profile.t_end for ax in self.axes if ax.profile is not None]
            if (query or name in ("TP", "MD", "TS", "DP")) and moving and self.clock.instant:
                self.clock.wait_until(max(moving))  # instant mode: every pending move has finished
            now = self.clock.now()
            for ax in self.axes:
                self._settle(ax, now)
            if name == "TE" and query:
                code = self.errors.pop(0)[0] if self.errors else 0
                return str(code)
            if name == "TB" and query:
                code, ts = self.errors.pop(0) if self.errors else (0, time.monotonic() - self.t0)
                text = AXIS_ERRORS.get(code % 100, "UNKNOWN") if code >= 100 else ERRORS.get(code, "UNKNOWN")
                return f"{code}, {int(ts * 1000)}, {text}"
            if name == "VE" and query:
                return "ESP301 Version 3.0.2 fabplan emulator"
            if name == "TS" and not axis_s:
                # status byte as one ASCII character: bits 0-2 axis 1-3 in motion, bit 4 motor power of
                # at least one axis on, bit 6 set (the manual's example '[' / 'P' characters)
                bits = sum(1 << k for k, ax in enumerate(self.axes[:3]) if ax.profile is not None)
                bits |= 0x10 if any(ax.motor_on for ax in self.axes) else 0
                return chr(0x40 | bits)
            if name == "WS" and not axis_s:
                return self._wait_stop(self.axes, arg)
            if not axis_s:
                if name in ("PA", "PR", "TP", "MD", "MO", "MF", "OR", "VA", "AC", "AG", "SL", "SR", "ST", "SN", "ID"):
                    self._error(37)
                    return None
                if name == "AB":
                    self._emergency_stop()
                    return None
                self._error(6)
                return None
            i = int(axis_s)
            if not 1 <= i <= len(self.axes):
                self._error(9)
                return None
            ax = self.axes[i - 1]
            handler = getattr(self, f"_x_{name}", None)
            if handler is None:
                self._error(6)
                return None
            return handler(i, ax, bool(query), arg, now)

    def _num(self, arg: str) -> float | None:
        if not arg:
            self._error(38)
            return None
        try:
            return float(arg)
        except ValueError:
            self._error(7)
            return None

    def _x_TP(self, i, ax, q, arg, now):
        pos = float(ax.profile.position(now)) if ax.profile is not None else ax.position
        return f"{pos + float(self.rng.normal(0.0, self.noise)):.6f}"

    def _x_MD(self, i, ax, q, arg, now):
        return "0" if ax.profile is not None else "1"

    def _x_DP(self, i, ax, q, arg, now):
        return f"{ax.target:.6f}"  # desired position: the target of the last motion command

    def _x_DH(self, i, ax, q, arg, now):
        """Define home: the current position becomes `arg` (0 when missing); refused while moving."""
        if q:
            return f"{0.0:.6f}"
        v = 0.0 if not arg else self._num(arg)
        if v is None:
            return None
        if ax.profile is not None:
            self._error(i * 100 + 1)
            return None
        ax.position = ax.target = v
        return None

    def _x_WS(self, i, ax, q, arg, now):
        return self._wait_stop([ax], arg)

    def _wait_stop(self, axes, arg: str):
        """WS: command execution waits until the axes have stopped, then `arg` ms more."""
        try:
            delay = float(arg) / 1000.0 if arg else 0.0
        except ValueError:
            self._error(7)
            return None
        ends = [ax.profile.t_end for ax in axes if ax.profile is not None]
        if ends or delay:
            self.clock.wait_until(max(ends, default=self.clock.now()) + delay)
            now = self.clock.now()
            for ax in axes:
                self._settle(ax, now)
        return None

    def _x_VU(self, i, ax, q, arg, now):
        return "300.000000" if q else None

    def _x_AU(self, i, ax, q, arg, now):
        return "2000.000000" if q else None

    def _x_ID(self, i, ax, q, arg, now):
        return "XMS100, 123456"

    def _x_SN(self, i, ax, q, arg, now):
        if q:
            return str(ax.unit)
        v = self._num(arg)
        if v is None:
            return None
        if v != int(v) or not 0 <= v <= 11:
            self._error(i * 100 + 1)
            return None
        ax.unit = int(v)  # a label: the manual leaves converting positions/speeds to the user
        return None

    def _x_MO(self, i, ax, q, arg, now):
        if q:
            return "1" if ax.motor_on else "0"
        # MO re-enables the motor, also after AB/emergency stop (the stop is an event, not a latch:
        # a controller nothing can clear would need a power cycle the manual does not ask for)
        self.estop = False
        ax.motor_on = True
        return None

    def _x_MF(self, i, ax, q, arg, now):
        self._settle(ax, now, stop=True)
        ax.motor_on = False
        return None

    def _x_ST(self, i, ax, q, arg, now):
        self._settle(ax, now, stop=True)
        return None

    def _param(self, attr, lo, hi):
        def handler(i, ax, q, arg, now):
            if q:
                return f"{getattr(ax, attr):.6f}"
            v = self._num(arg)
            if v is None:
                return None
            if not lo <= v <= hi:
                self._error(i * 100 + 1)
                return None
            setattr(ax, attr, v)
            return None
        return handler

    def __getattr__(self, name):
        table = {"_x_VA": ("velocity", 1e-6, 300.0), "_x_AC": ("acceleration", 1e-6, 2000.0),
                 "_x_AG": ("deceleration", 1e-6, 2000.0), "_x_SL": ("left", -1e4, 1e4), "_x_SR": ("right", -1e4, 1e4)}
        if name in table:
            return self._param(*table[name])
        raise AttributeError(name)

    def _x_OR(self, i, ax, q, arg, now):
        return self._start_move(i, ax, 0.0, now, homing=True)

    def _x_PA(self, i, ax, q, arg, now):
        v = self._num(arg)
        return None if v is None else self._start_move(i, ax, v, now)

    def _x_PR(self, i, ax, q, arg, now):
        v = self._num(arg)
        return None if v is None else self._start_move(i, ax, ax.target + v, now)

    def _start_move(self, i, ax: Axis, target: float, now: float, homing: bool = False):
        if self.estop:
            self._error(4)
            return None
        if not ax.motor_on:
            self._error(i * 100 + 13)
            return None
        if not homing and target > ax.right:
            self._error(i * 100 + 6)
            return None
        if not homing and target < ax.left:
            self._error(i * 100 + 7)
            return None
        if ax.profile is not None:
            self._settle(ax, now, stop=True)
        accel = min(ax.acceleration, ax.deceleration)
        prof = Profile(ax.position, target, now, ax.velocity, accel, jerk_time_for(ax.velocity, accel, 0.005, 0.05))
        fault, self._pending_move_fault = self._pending_move_fault, ""
        if fault:
            # the axis stops halfway, motor off; the error is queued for TE?/TB?
            ax.position = ax.target = float(prof.position(now + 0.5 * prof.duration))
            ax.motor_on = False
            self._error(i * 100 + (3 if fault == "following" else (4 if target >= ax.position else 5)))
            return None
        ax.profile, ax.target = prof, target
        return None
