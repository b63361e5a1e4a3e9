"""A Newport XPS emulator: the TCP function-call protocol, group state machine, motion and PCO.

Speaks the XPS wire protocol on 127.0.0.1 (any port): requests are bare function calls such as
`GroupMoveAbsolute(XYZ,1,2,0.5)` (no terminator), replies are `<code>,<outputs>,EndOfAPI`.
Implements the subset `stage_drivers.xps` uses, with the real error codes for wrong states,
parameters and travel limits; one group of positioners moving with jerk-limited profiles, encoder
noise, a following-error (servo lag) model, GPIO3.DO bit 0 as the laser gate, GPIO3.DO bit 1
pulsed by an Immediate extended event (DOPulse) as the laser trigger, and position compare (PCO)
firing a trigger each time a positioner's encoder crosses a compare position.

Controller units are mm, mm/s, mm/s^2; the pulse log is in um.

Calls answered as Newport's XPS Unified Programmer's Manual (EDH0373En1023) describes them and as
Newport's own Python class (`newportxps.XPS_C8_drivers.XPS`) sends them: positioner names where
the manual allows a positioner or a group (GroupPositionCurrentGet(XYZ.X,double *),
GroupMoveAbsolute(XYZ.X,1.5)), the list calls (ErrorListGet, GroupStatusListGet, ObjectsListGet),
extended events (trigger + action; unknown event/action names are refused with -40/-39; a
DOPulse is one pulse of about 1 us: its unused parameters carry no burst count), and external
gathering (GatheringExternalConfigurationSet + action ExternalGatheringRun): each position-compare
pulse, wired to TRIG IN, latches the encoder positions (`Group.Positioner.ExternalLatchPosition`).
"""

from __future__ import annotations

import math
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from sim.clock import SimClock
from sim.faults import FaultPlan
from sim.laser_model import LaserModel
from sim.motion import Profile, jerk_time_for, move_duration

ERRORS = {
    0: "Successful command",
    -1: "Busy socket: previous command not yet finished",
    -2: "TCP timeout",
    -3: "String command too long",
    -4: "Unknown command",
    -7: "Wrong format in the command string",
    -8: "Wrong object type for this command",
    -9: "Wrong number of parameters in the command",
    -17: "Parameter out of range or incorrect",
    -18: "Positioner Name doesn't exist or unknown command",
    -19: "GroupName doesn't exist or unknown command",
    -21: "Controller in initialization",
    -22: "Not allowed action",
    -25: "Following Error",
    -26: "Emergency signal",
    -27: "Move Aborted",
    -28: "Home search timeout",
    -33: "Motion done timeout",
    -35: "Position is outside of travel limits",
    -39: "Mnemonic action doesn't exist",
    -40: "Mnemonic event doesn't exist",
    -43: "Gathering running",
    -29: "Mnemonic gathering type doesn't exist",
    -80: "Event ID not defined",
    -106: "Wrong user name or password",
    -109: "Group need to be homed at least once to use this function (distance measured from home)",
}

STATUS = {
    0: "Not initialized state",
    1: "Not initialized state due to an emergency brake: see positioner status",
    2: "Not initialized state due to an emergency stop: see positioner status",
    3: "Not initialized state due to a following error during homing",
    4: "Not initialized state due to a following error",
    5: "Not initialized state due to a homing timeout",
    7: "Not initialized state due to a GroupKill or KillAll command",
    10: "Ready state due to an AbortMove command",
    11: "Ready state from homing",
    12: "Ready state from motion",
    13: "Ready State due to a MotionEnable command",
    20: "Disable state",
    21: "Disabled state due to a following error on ready state",
    22: "Disabled state due to a following error during motion",
    40: "Emergency braking",
    42: "Not referenced state",
    43: "Homing state",
    44: "Moving state",
    45: "Trajectory state",
    47: "Jogging state",
}

CONTROLLER_STATUS = {0: "Controller status OK"}
# Extended-event names (programmer's manual section 8.1); <P> a positioner, <G> the group.
EVENTS_GLOBAL = {"Immediate", "Always"} | {f"Timer{i}" for i in range(1, 6)}
EVENTS_POSITIONER = {f"SGamma.{k}{w}" for k in ("Motion", "ConstantVelocity", "ConstantAcceleration",
                                                 "ConstantDeceleration") for w in ("Start", "End", "State")}
EVENTS_GROUP = {f"PVT.{k}" for k in ("TrajectoryStart", "TrajectoryEnd", "TrajectoryState", "ElementNumberStart",
                                     "ElementNumberState", "TrajectoryPulse", "TrajectoryPulseState")}
GPIO_OUT = {"GPIO1.DO": 0, "GPIO2.DO": 0, "GPIO3.DO": 0, "GPIO4.DO": 0}
GPIO_IN = {"GPIO1.DI": 0, "GPIO2.DI": 0, "GPIO3.DI": 0, "GPIO4.DI": 0}
EXT_GATHER_TYPES = ("ExternalLatchPosition", "SetpointPosition", "CurrentPosition", "FollowingError")
GATE_MASK = 1  # GPIO3.DO bit 0: laser gate (level)
TRIGGER_MASK = 2  # GPIO3.DO bit 1: laser trigger (DOPulse)
PCO_WIDTHS_US = (0.2, 1.0, 2.5, 10.0)
PCO_SETTLING_US = (0.075, 1.0, 4.0, 12.0)
PCO_LATENCY_S = 50e-9


PCO_COUNT_TOLERANCE = 1e-3  # in steps


def pco_count(lo: float, hi: float, step: float) -> int:
    """Number of compare positions lo + k*step up to hi: (hi-lo)/step rounded to the nearest whole
    number when within 0.1 % of a step of it, else rounded down (hi between two positions).

    Not floor((hi-lo)/step + 1e-9): hi and step arrive as 9-decimal mm strings, and a step rounded
    up by 5e-10 mm over 500 positions leaves (hi-lo)/step at n-1 - 1e-5, which dropped the last
    one. Both encodings of a row count n: max = last (rounded) and max = last + step/2 (the driver).
    """
    return int(math.floor((hi - lo) / step + PCO_COUNT_TOLERANCE)) + 1


class XpsError(Exception):
    def __init__(self, code: int):
        self.code = code


def _f(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise XpsError(-7) from None
    if not math.isfinite(v):
        raise XpsError(-17)
    return v


@dataclass
class Positioner:
    name: str
    position: float = 0.0  # true position at rest, mm
    target: float = 0.0
    velocity: float = 20.0
    acceleration: float = 200.0
    min_jerk: float = 0.005
    max_jerk: float = 0.05
    checking_time: float = 0.0  # PositionerMotionDoneSet: time in the window before "motion done", s
    motion_done: tuple = (0.001, 0.001, 0.0, 0.001, 1.0)  # PositionWindow, VelocityWindow, CheckingTime, ...
    pco_settling_us: float = 0.075
    max_velocity: float = 100.0
    max_acceleration: float = 1000.0
    hw_min: float = -50.0
    hw_max: float = 50.0
    user_min: float = -50.0
    user_max: float = 50.0
    pco: tuple[float, float, float] | None = None
    pco_enabled: bool = False
    pco_width_us: float = 1.0
    profile: Profile | None = None

    def actual(self, t: float | np.ndarray, lag: float) -> float | np.ndarray:
        if self.profile is None:
            return self.position if np.ndim(t) == 0 else np.full(np.shape(t), self.position)
        return self.profile.position(np.asarray(t) - lag)

    def setpoint(self, t: float) -> float:
        return self.target if self.profile is None else float(self.profile.position(t))


@dataclass
class Group:
    name: str
    positioners: list[Positioner]
    status: int = 0
    homed: bool = False
    estop: bool = False
    moving_until: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_code: int = -27
    pending_move_fault: str = ""


class XpsEmulator:
    """Threaded TCP server; `start()` then use `.url`; `close()` stops it and flushes the pulse log."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, group: str = "XYZ",
                 positioners=("X", "Y", "Z"), speedup: float = 1.0, laser: LaserModel | None = None,
                 pulse_log=None, faults=None, seed: int = 0, credentials: tuple[str, str] | None = None,
                 travel_mm: dict | None = None, encoder_noise_mm: float = 2e-6, rest_error_mm: float = 5e-6,
                 servo_lag_s: float = 2e-5, short_ok_reply: bool = False, initialized: bool = False):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the emulator listens on loopback only")
        self.host, self.port = host, port
        self.clock = SimClock(speedup)
        self.laser = laser or LaserModel(pulse_log, output_enabled=True, seed=seed)
        self._own_laser = laser is None
        self.faults = faults if isinstance(faults, FaultPlan) else FaultPlan(faults)
        self.rng = np.random.default_rng(seed + 1)
        self.prng = random.Random(seed + 2)  # scalar draws on the hot path
        self.credentials = credentials
        self.encoder_noise = encoder_noise_mm
        self.rest_error = rest_error_mm
        self.lag = servo_lag_s
        self.ok_reply = "0,EndOfAPI" if short_ok_reply else "0,,EndOfAPI"
        travel_mm = travel_mm or {}
        pos = []
        for p in positioners:
            lo, hi = travel_mm.get(p, (-5.0, 5.0) if p.upper() == "Z" else (-50.0, 50.0))
            slow = p.upper() == "Z"
            pos.append(Positioner(f"{group}.{p}", hw_min=lo, hw_max=hi, user_min=lo, user_max=hi,
                                  velocity=5.0 if slow else 20.0, acceleration=50.0 if slow else 200.0,
                                  max_velocity=10.0 if slow else 100.0, max_acceleration=100.0 if slow else 1000.0))
        self.group = Group(group, pos)
        if initialized:
            self.group.status, self.group.homed = 11, True
        self.gpio_do = 0
        self.event_trigger = ""
        self.event_action: tuple[str, int, int] | None = None
        self.event_ids = 0
        self.events: dict[int, tuple[str, tuple]] = {}
        self.gpio_in = dict(GPIO_IN)
        self.gpio_out = dict(GPIO_OUT)
        self.ext_types: list[tuple[Positioner, str]] = []
        self.ext_data: list[str] = []
        self.ext_max = 0
        self.ext_running = False
        self.lock = threading.RLock()
        self._sock: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.commands_seen = 0
        self._local = threading.local()

    # ------------------------------------------------------------------ server

    @property
    def url(self) -> str:
        return f"xps://{self.host}:{self.port}?group={self.group.name}"

    def start(self) -> XpsEmulator:
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(16)
        s.settimeout(0.2)
        self._sock = s
        self.port = s.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, daemon=True, name="xps-emu-accept")
        t.start()
        self._threads.append(t)
        return self

    def __enter__(self):
        return self.start() if self._sock is None else self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._stopping.set()
        self.group.cancel.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() at once
            except OSError:
                pass
            self._sock.close()
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for t in self._threads:
            t.join(timeout=1.0)
        if self._own_laser:
            self.laser.close()

    def inject(self, kind: str, at: int | None = None, arg: str = "") -> None:
        """Schedule a fault (see sim.faults) at command `at` (default: the next one)."""
        self.faults.add(kind, at, arg)

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.add(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True, name="xps-emu-conn")
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _serve(self, conn: socket.socket):
        buf = ""
        self._local.conn = conn
        state = {"logged_in": self.credentials is None}
        try:
            while not self._stopping.is_set():
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data.decode("ascii", "replace")
                while ")" in buf:
                    cmd, _, buf = buf.partition(")")
                    cmd = cmd.strip() + ")"
                    if not self._handle_one(conn, cmd, state):
                        return
        finally:
            self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _handle_one(self, conn: socket.socket, cmd: str, state: dict) -> bool:
        name = cmd.partition("(")[0]
        hits = self.faults.next_command(is_move=name in ("GroupMoveAbsolute", "GroupMoveRelative"), name=name)
        self.commands_seen += 1
        split = slow = garble = False
        slow_s = 0.0
        for f in hits:
            if f.kind == "drop":
                return False
            if f.kind == "garble":
                garble = True
            elif f.kind == "split":
                split = True
            elif f.kind == "slow":
                slow, slow_s = True, float(f.arg or 10.0)
            elif f.kind == "estop":
                self._emergency_stop()
            elif f.kind == "interlock":
                self.laser.interlock_open = True
            elif f.kind in ("following", "limit"):
                self.group.pending_move_fault = f.kind
        reply = self.execute(cmd, state)
        if garble:
            reply = "\x15#!" + reply[::-1][:12] + ",EndOfAPI"
        if slow:
            self._stopping.wait(slow_s)
        data = reply.encode("ascii", "replace")
        try:
            if split:
                i = 0
                while i < len(data):
                    k = 1 + (i % 3)
                    conn.sendall(data[i:i + k])
                    i += k
                    time.sleep(0.0003)
            else:
                conn.sendall(data)
        except OSError:
            return False
        return True

    # ------------------------------------------------------------------ dispatch

    def execute(self, cmd: str, state: dict | None = None) -> str:
        """Run one function call and return the full reply string."""
        state = state if state is not None else {"logged_in": True}
        name, paren, rest = cmd.partition("(")
        if not paren or not rest.endswith(")"):
            return self._err(-7, cmd)
        args = [a.strip() for a in rest[:-1].split(",")] if rest[:-1].strip() else []
        handler = getattr(self, "_c_" + name.strip(), None)
        if handler is None:
            return self._err(-4, cmd)
        if not state["logged_in"] and name != "Login":
            return self._err(-106, cmd)
        try:
            out = handler(args, state) if name == "Login" else handler(args)
        except XpsError as e:
            return self._err(e.code, cmd)
        if not out:
            return self.ok_reply
        return "0," + ",".join(out) + ",EndOfAPI"

    @staticmethod
    def _err(code: int, cmd: str) -> str:
        return f"{code},{cmd},EndOfAPI"

    def _group(self, name: str) -> Group:
        if name != self.group.name:
            raise XpsError(-19)
        return self.group

    def _members(self, name: str) -> list[Positioner]:
        """The positioners a group-or-positioner argument names (the manual allows either)."""
        if "." in name:
            return [self._pos(name)]
        return list(self._group(name).positioners)

    def _pos(self, name: str) -> Positioner:
        for p in self.group.positioners:
            if p.name == name:
                return p
        raise XpsError(-18)

    @staticmethod
    def _nargs(args, n_in: int, n_out: int = 0):
        if len(args) != n_in + n_out:
            raise XpsError(-9)
        if any("*" not in a for a in args[n_in:]) or any("*" in a for a in args[:n_in]):
            raise XpsError(-7)

    @staticmethod
    def _fmt(v: float) -> str:
        return repr(float(v))

    # ------------------------------------------------------------------ commands: session

    def _c_Login(self, args, state):
        self._nargs(args, 2)
        if self.credentials is not None and tuple(args) != tuple(self.credentials):
            raise XpsError(-106)
        state["logged_in"] = True

    def _c_CloseAllOtherSockets(self, args):
        self._nargs(args, 0)
        me = getattr(self._local, "conn", None)
        for c in list(self._conns):
            if c is not me:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _c_FirmwareVersionGet(self, args):
        self._nargs(args, 0, 1)
        return ["XPS-D-N13 fabplan emulator"]

    def _c_InstallerVersionGet(self, args):
        self._nargs(args, 0, 1)
        return ["XPS-D Installer fabplan emulator"]

    def _c_ControllerStatusGet(self, args):
        self._nargs(args, 0, 1)
        return ["0"]

    def _c_ControllerStatusStringGet(self, args):
        self._nargs(args, 1, 1)
        return [CONTROLLER_STATUS.get(self._int(args[0]), "Unknown controller status")]

    @staticmethod
    def _int(a: str) -> int:
        try:
            return int(a)
        except ValueError:
            raise XpsError(-7) from None

    def _c_ErrorListGet(self, args):
        self._nargs(args, 0, 1)
        return [";".join(f"{k} : {v}" for k, v in sorted(ERRORS.items(), reverse=True))]

    def _c_GroupStatusListGet(self, args):
        self._nargs(args, 0, 1)
        return [";".join(f"{k} : {v}" for k, v in sorted(STATUS.items()))]

    def _c_ControllerStatusListGet(self, args):
        self._nargs(args, 0, 1)
        return [";".join(f"{k} : {v}" for k, v in sorted(CONTROLLER_STATUS.items()))]

    def _c_ObjectsListGet(self, args):
        self._nargs(args, 0, 1)
        return [";".join([self.group.name] + [p.name for p in self.group.positioners]) + ";"]

    def _c_PositionerErrorGet(self, args):
        self._nargs(args, 1, 1)
        self._pos(args[0])
        return ["0"]

    _c_PositionerErrorRead = _c_PositionerErrorGet

    def _c_PositionerErrorStringGet(self, args):
        self._nargs(args, 1, 1)
        return ["No error" if self._int(args[0]) == 0 else f"Positioner error {args[0]}"]

    def _c_PositionerHardwareStatusGet(self, args):
        self._nargs(args, 1, 1)
        self._pos(args[0])
        return ["0"]

    def _c_PositionerHardwareStatusStringGet(self, args):
        self._nargs(args, 1, 1)
        return ["Hardware OK" if self._int(args[0]) == 0 else f"Hardware status {args[0]}"]

    def _c_ElapsedTimeGet(self, args):
        self._nargs(args, 0, 1)
        return [self._fmt(self.clock.now())]

    def _c_ErrorStringGet(self, args):
        self._nargs(args, 1, 1)
        try:
            code = int(args[0])
        except ValueError:
            raise XpsError(-7) from None
        return [ERRORS.get(code, f"Error {code}")]

    def _c_GroupStatusStringGet(self, args):
        self._nargs(args, 1, 1)
        try:
            code = int(args[0])
        except ValueError:
            raise XpsError(-7) from None
        return [STATUS.get(code, f"Status {code}")]

    # ------------------------------------------------------------------ commands: group state

    def _c_GroupStatusGet(self, args):
        self._nargs(args, 1, 1)
        g = self._group(args[0])
        return [str(g.status)]

    def _c_GroupInitialize(self, args):
        self._nargs(args, 1)
        with self.lock:
            g = self._group(args[0])
            if g.status >= 10:
                raise XpsError(-22)
            g.estop = False
            g.status = 42
            g.homed = False

    def _c_GroupHomeSearch(self, args):
        self._nargs(args, 1)
        with self.lock:
            g = self._group(args[0])
            if g.estop:
                raise XpsError(-26)
            if g.status != 42:
                raise XpsError(-22)
            g.status = 43
            t0 = self.clock.now()
            duration = max(
                (abs(p.position) / max(p.velocity, 1e-9) + 2 * p.velocity / p.acceleration for p in g.positioners),
                default=0.0) + 0.5
            g.cancel = threading.Event()
            cancel = g.cancel
        ok = self.clock.wait_until(t0 + duration, cancel)
        with self.lock:
            if not ok:
                raise XpsError(g.cancel_code)
            for p in g.positioners:
                p.position = p.target = float(self.rng.normal(0.0, self.rest_error))
                p.profile = None
            g.status, g.homed = 11, True

    def _c_GroupKill(self, args):
        self._nargs(args, 1)
        with self.lock:
            g = self._group(args[0])
            self._freeze(g, -27)
            g.status, g.homed = 7, False
            self.laser.gate = False
            self.gpio_do &= ~GATE_MASK

    def _c_KillAll(self, args):
        self._nargs(args, 0)
        return self._c_GroupKill([self.group.name])

    def _c_GroupMotionEnable(self, args):
        self._nargs(args, 1)
        with self.lock:
            g = self._group(args[0])
            if not 20 <= g.status <= 38:
                raise XpsError(-22)
            g.status = 13

    def _c_GroupMotionDisable(self, args):
        self._nargs(args, 1)
        with self.lock:
            g = self._group(args[0])
            if not 10 <= g.status <= 18:
                raise XpsError(-22)
            g.status = 20

    def _c_GroupMoveAbort(self, args):
        self._nargs(args, 1)
        with self.lock:
            g = self._group(args[0])
            if g.status != 44:
                raise XpsError(-22)
            self._freeze(g, -27)
            g.status = 10

    def _freeze(self, g: Group, code: int):
        """Stop every positioner where it is now (abort / kill / emergency stop)."""
        now = self.clock.now()
        g.cancel_code = code
        g.cancel.set()
        self._pco_fire(g, 0.0, now)  # compare positions crossed before the stop did fire
        for p in g.positioners:
            if p.profile is not None:
                p.position = p.target = float(p.actual(now, self.lag))
                p.profile = None

    def emergency_stop(self) -> None:
        """Press the emergency stop: motion stops, the gate drops, the group needs GroupInitialize."""
        self._emergency_stop()

    def _emergency_stop(self):
        with self.lock:
            g = self.group
            self._freeze(g, -26)
            g.estop = True
            g.status = 2
            g.homed = False
            self.gpio_do &= ~GATE_MASK
            self.laser.gate = False

    # ------------------------------------------------------------------ commands: motion

    def _c_GroupMoveAbsolute(self, args):
        return self._move(args, relative=False)

    def _c_GroupMoveRelative(self, args):
        return self._move(args, relative=True)

    def _move(self, args, relative: bool):
        if not args:
            raise XpsError(-9)
        with self.lock:
            g = self.group
            named = self._members(args[0])  # a positioner moves alone, the others keep their target
            self._nargs(args, 1 + len(named))
            given = {p.name: _f(a) for p, a in zip(named, args[1:], strict=True)}
            values = [given.get(p.name, 0.0 if relative else p.target) for p in g.positioners]
            if g.estop:
                raise XpsError(-26)
            if g.status == 42:
                raise XpsError(-109)
            if not 10 <= g.status <= 18:
                raise XpsError(-22)
            targets = [p.target + v if relative else v for p, v in zip(g.positioners, values, strict=True)]
            for p, x in zip(g.positioners, targets, strict=True):
                if not p.user_min - 1e-12 <= x <= p.user_max + 1e-12:
                    raise XpsError(-35)
            t0 = self.clock.now()
            if self.clock.instant and not g.pending_move_fault and not any(p.pco_enabled for p in g.positioners):
                # hot path: nothing can interrupt an instant move and nothing fires during it
                dur = max(move_duration(x - p.position, p.velocity, p.acceleration,
                                        jerk_time_for(p.velocity, p.acceleration, p.min_jerk, p.max_jerk))
                          for p, x in zip(g.positioners, targets, strict=True))
                settle = max(p.checking_time for p in g.positioners)
                self.clock.wait_until(t0 + dur + self.lag + settle)
                gauss, err = self.prng.gauss, self.rest_error
                for p, x in zip(g.positioners, targets, strict=True):
                    p.target = x
                    p.position = x + gauss(0.0, err)
                g.status = 12
                return None
            for p, x in zip(g.positioners, targets, strict=True):
                jt = jerk_time_for(p.velocity, p.acceleration, p.min_jerk, p.max_jerk)
                p.profile = Profile(p.position, x, t0, p.velocity, p.acceleration, jt)
                p.target = x
            t_end = max(p.profile.t_end for p in g.positioners) + self.lag + max(p.checking_time for p in g.positioners)
            fault, g.pending_move_fault = g.pending_move_fault, ""
            t_stop = t0 + 0.5 * (t_end - t0) if fault else t_end
            g.status = 44
            g.cancel = threading.Event()
            g.cancel_code = -27
            cancel = g.cancel
        finished = self.clock.wait_until(t_stop, cancel)
        with self.lock:
            now = min(self.clock.now(), t_stop) if finished else self.clock.now()
            self._pco_fire(g, t0, now)
            if not finished:
                raise XpsError(g.cancel_code)
            if fault:
                for p in g.positioners:
                    p.position = p.target = float(p.actual(now, self.lag))
                    p.profile = None
                if fault == "following":
                    g.status = 22
                    raise XpsError(-25)
                g.status = 20
                raise XpsError(-35)
            gauss, err = self.prng.gauss, self.rest_error
            for p in g.positioners:
                p.position = p.target + gauss(0.0, err)
                p.profile = None
            g.status = 12

    def _c_GroupPositionCurrentGet(self, args):
        g = SimpleNamespace(positioners=self._members(args[0] if args else ""))
        self._nargs(args, 1, len(g.positioners))
        now = self.clock.now()
        gauss, sd, lag = self.prng.gauss, self.encoder_noise, self.lag
        return [repr((p.position if p.profile is None else float(p.actual(now, lag))) + gauss(0.0, sd))
                for p in g.positioners]

    def _c_GroupPositionSetpointGet(self, args):
        g = SimpleNamespace(positioners=self._members(args[0] if args else ""))
        self._nargs(args, 1, len(g.positioners))
        now = self.clock.now()
        return [self._fmt(p.setpoint(now)) for p in g.positioners]

    def _c_GroupPositionTargetGet(self, args):
        g = SimpleNamespace(positioners=self._members(args[0] if args else ""))
        self._nargs(args, 1, len(g.positioners))
        return [self._fmt(p.target) for p in g.positioners]

    def _c_GroupCurrentFollowingErrorGet(self, args):
        g = SimpleNamespace(positioners=self._members(args[0] if args else ""))
        self._nargs(args, 1, len(g.positioners))
        now = self.clock.now()
        return [self._fmt(p.setpoint(now) - float(p.actual(now, self.lag))) for p in g.positioners]

    def _c_GroupVelocityCurrentGet(self, args):
        ps = self._members(args[0] if args else "")
        self._nargs(args, 1, len(ps))
        now = self.clock.now()
        return [self._fmt(0.0 if p.profile is None else float(p.profile.velocity_at(now - self.lag))) for p in ps]

    # ------------------------------------------------------------------ commands: positioner parameters

    def _c_PositionerSGammaParametersGet(self, args):
        self._nargs(args, 1, 4)
        p = self._pos(args[0])
        return [self._fmt(v) for v in (p.velocity, p.acceleration, p.min_jerk, p.max_jerk)]

    def _c_PositionerSGammaParametersSet(self, args):
        self._nargs(args, 5)
        with self.lock:
            p = self._pos(args[0])
            v, a, jmin, jmax = (_f(x) for x in args[1:])
            if not (0 < v <= p.max_velocity and 0 < a <= p.max_acceleration and 0.001 <= jmin <= jmax):
                raise XpsError(-17)
            p.velocity, p.acceleration, p.min_jerk, p.max_jerk = v, a, jmin, jmax

    def _c_PositionerMaximumVelocityAndAccelerationGet(self, args):
        self._nargs(args, 1, 2)
        p = self._pos(args[0])
        return [self._fmt(p.max_velocity), self._fmt(p.max_acceleration)]

    def _c_PositionerUserTravelLimitsGet(self, args):
        self._nargs(args, 1, 2)
        p = self._pos(args[0])
        return [self._fmt(p.user_min), self._fmt(p.user_max)]

    def _c_PositionerUserTravelLimitsSet(self, args):
        self._nargs(args, 3)
        with self.lock:
            p = self._pos(args[0])
            lo, hi = _f(args[1]), _f(args[2])
            if not (p.hw_min <= lo < hi <= p.hw_max):
                raise XpsError(-17)
            p.user_min, p.user_max = lo, hi

    def _c_PositionerMotionDoneSet(self, args):
        # (positioner, PositionWindow, VelocityWindow, CheckingTime, MeanPeriod, TimeOut): a move is
        # "done" once the position has stayed in its window for CheckingTime, so it adds to every move.
        self._nargs(args, 6)
        p = self._pos(args[0])
        values = [_f(a) for a in args[1:]]
        if any(v < 0 for v in values):
            raise XpsError(-17)
        with self.lock:
            p.checking_time = values[2]
            p.motion_done = tuple(values)

    def _c_PositionerMotionDoneGet(self, args):
        self._nargs(args, 1, 5)
        return [self._fmt(v) for v in self._pos(args[0]).motion_done]

    # ------------------------------------------------------------------ commands: GPIO, events, PCO

    def _c_GPIODigitalSet(self, args):
        self._nargs(args, 3)
        if args[0] in self.gpio_in:
            raise XpsError(-8)  # an input cannot be set
        if args[0] not in self.gpio_out:
            raise XpsError(-8)
        try:
            mask, value = int(args[1]), int(args[2])
        except ValueError:
            raise XpsError(-7) from None
        if not (0 <= mask <= 0xFFFF and 0 <= value <= 0xFFFF):
            raise XpsError(-17)
        with self.lock:
            if args[0] != "GPIO3.DO":
                self.gpio_out[args[0]] = (self.gpio_out[args[0]] & ~mask) | (value & mask)
                return
            self.gpio_do = (self.gpio_do & ~mask) | (value & mask)
            with self.laser.lock:
                self.laser.gate = bool(self.gpio_do & GATE_MASK)

    def _c_GPIODigitalGet(self, args):
        self._nargs(args, 1, 1)
        if args[0] == "GPIO3.DO":
            return [str(self.gpio_do)]
        if args[0] in self.gpio_out:
            return [str(self.gpio_out[args[0]])]
        if args[0] in self.gpio_in:
            return [str(self.gpio_in[args[0]])]
        raise XpsError(-8)

    def _event_known(self, name: str) -> bool:
        if name in EVENTS_GLOBAL:
            return True
        for p in self.group.positioners:
            if name.startswith(p.name + ".") and name[len(p.name) + 1:] in EVENTS_POSITIONER:
                return True
        if name.startswith(self.group.name + ".") and name[len(self.group.name) + 1:] in EVENTS_GROUP:
            return True
        gpio, _, edge = name.rpartition(".")
        return gpio in self.gpio_in and edge in ("DILowHigh", "DIHighLow", "DIToggled")

    def _c_EventExtendedConfigurationTriggerSet(self, args):
        if len(args) % 5 != 0 or not args:
            raise XpsError(-9)
        names = args[0::5]
        if not all(self._event_known(n) for n in names):
            raise XpsError(-40)
        self.event_trigger = ",".join(names)

    def _c_EventExtendedConfigurationTriggerGet(self, args):
        self._nargs(args, 0, 1)
        return [self.event_trigger]

    def _c_EventExtendedConfigurationActionSet(self, args):
        if len(args) % 5 != 0 or not args:
            raise XpsError(-9)
        actions = []
        for i in range(0, len(args), 5):
            name, params = args[i], args[i + 1:i + 5]
            gpio, _, act = name.rpartition(".")
            if act in ("DOPulse", "DOToggle", "DOSet") and gpio in self.gpio_out:
                try:
                    mask = int(params[0])
                    value = int(params[1] or 0) if act == "DOSet" else 0
                except ValueError:
                    raise XpsError(-7) from None
                if not 0 < mask <= 0xFFFF:
                    raise XpsError(-17)
                # DOPulse/DOToggle use parameter 1 only (the mask); the others are unused by the controller
                actions.append((gpio, act, mask, value))
            elif name == "ExternalGatheringRun":
                try:
                    n, div = int(params[0]), int(params[1] or 1)
                except ValueError:
                    raise XpsError(-7) from None
                if n < 1 or div < 1:
                    raise XpsError(-17)
                actions.append(("", name, n, div))
            elif name in ("GatheringOneData", "GatheringStop", "GatheringRunAppend"):
                actions.append(("", name, 0, 0))
            else:
                raise XpsError(-39)
        self.event_action = tuple(actions)

    def _c_EventExtendedConfigurationActionGet(self, args):
        self._nargs(args, 0, 1)
        return [",".join(f"{g}.{a}" if g else a for g, a, _, _ in (self.event_action or ()))]

    def _c_EventExtendedStart(self, args):
        self._nargs(args, 0, 1)
        if not self.event_trigger or not self.event_action:
            raise XpsError(-80)
        with self.lock:
            self.event_ids += 1
            if self.event_trigger == "Immediate":  # done at once: nothing stays configured
                for gpio, act, a, b in self.event_action:
                    self._run_action(gpio, act, a, b)
            else:
                self.events[self.event_ids] = (self.event_trigger, self.event_action)
            return [str(self.event_ids)]

    def _run_action(self, gpio: str, act: str, a: int, b: int):
        if act == "DOPulse":
            if gpio == "GPIO3.DO" and a & TRIGGER_MASK:
                self._fire_burst(1)  # one DOPulse is one trigger, so one laser pulse
        elif act == "DOSet":
            self._c_GPIODigitalSet([gpio, str(a), str(b)])
        elif act == "DOToggle":
            cur = self.gpio_do if gpio == "GPIO3.DO" else self.gpio_out[gpio]
            self._c_GPIODigitalSet([gpio, str(a), str(cur ^ a)])
        elif act == "ExternalGatheringRun":
            if not self.ext_types:
                raise XpsError(-17)
            if self.ext_running:
                raise XpsError(-43)
            self.ext_data, self.ext_max, self.ext_running = [], a, True

    def _c_EventExtendedRemove(self, args):
        self._nargs(args, 1)
        if self.events.pop(self._int(args[0]), None) is None:
            raise XpsError(-80)

    def _c_EventExtendedAllGet(self, args):
        self._nargs(args, 0, 1)
        return [";".join(str(k) for k in sorted(self.events))]

    # ------------------------------------------------------------------ commands: external gathering

    def _c_GatheringExternalConfigurationSet(self, args):
        if not args:
            raise XpsError(-9)
        with self.lock:
            if self.ext_running:
                raise XpsError(-43)
            types = []
            for a in args:
                pos, _, kind = a.rpartition(".")
                if kind not in EXT_GATHER_TYPES:
                    raise XpsError(-29)
                try:
                    types.append((self._pos(pos), kind))
                except XpsError:
                    raise XpsError(-29) from None
            self.ext_types = types

    def _c_GatheringExternalConfigurationGet(self, args):
        self._nargs(args, 0, 1)
        return [";".join(f"{p.name}.{k}" for p, k in self.ext_types)]

    def _c_GatheringExternalCurrentNumberGet(self, args):
        self._nargs(args, 0, 2)
        return [str(len(self.ext_data)), str(self.ext_max)]

    def _c_GatheringExternalDataGet(self, args):
        self._nargs(args, 1, 1)
        i = self._int(args[0])
        if not 0 <= i < len(self.ext_data):
            raise XpsError(-17)
        return [self.ext_data[i]]

    def _c_GatheringExternalStopAndSave(self, args):
        self._nargs(args, 0)
        self.ext_running = False

    def _latch(self, t: np.ndarray):
        """External gathering: each trigger at times t latches the configured values."""
        if not self.ext_running or not self.ext_types:
            return
        room = self.ext_max - len(self.ext_data)
        t = t[:max(room, 0)]
        cols = []
        for p, kind in self.ext_types:
            true = np.broadcast_to(np.asarray(p.actual(t, self.lag), dtype=float), t.shape)
            if kind in ("ExternalLatchPosition", "CurrentPosition"):
                cols.append(true + self.rng.normal(0.0, self.encoder_noise, len(t)))
            elif kind == "SetpointPosition":
                cols.append(np.array([p.setpoint(x) for x in t]))
            else:
                cols.append(np.array([p.setpoint(x) for x in t]) - true)
        for row in zip(*cols, strict=True):
            self.ext_data.append(";".join(repr(float(v)) for v in row))
        if len(self.ext_data) >= self.ext_max:
            self.ext_running = False

    def _fire_burst(self, n: int):
        now = self.clock.now()
        f = self.laser.output_frequency_hz
        ps = self.group.positioners[:3]
        if n == 1 and len(ps) == 3 and all(p.profile is None for p in ps):  # hot path: one shot at rest
            t = now + PCO_LATENCY_S + self.prng.uniform(0.0, 1.0 / self.laser.base_rate_hz)
            self.laser.fire_one(t, ps[0].position * 1000.0, ps[1].position * 1000.0, ps[2].position * 1000.0,
                                "gpio")
            self.clock.advance(1.0 / f)
            return
        t = self.laser.release_times(now + PCO_LATENCY_S + self.laser.trigger_jitter(1)[0] + np.arange(n) / f)
        xyz = self._true_xyz(t)
        self.laser.fire(t, *xyz, source="gpio")
        self.clock.advance(n / f)

    def _true_xyz(self, t: np.ndarray):
        """True stage position (um) of the first three positioners at times t (no encoder noise)."""
        cols = [np.broadcast_to(np.asarray(p.actual(t, self.lag), dtype=float) * 1000.0, t.shape)
                for p in self.group.positioners[:3]]
        while len(cols) < 3:
            cols.append(np.zeros(t.shape))
        return cols

    def _c_PositionerPositionComparePulseParametersSet(self, args):
        self._nargs(args, 3)
        p = self._pos(args[0])
        width, settling = _f(args[1]), _f(args[2])
        if not any(abs(width - w) < 1e-9 for w in PCO_WIDTHS_US) or not any(
                abs(settling - s) < 1e-9 for s in PCO_SETTLING_US):
            raise XpsError(-17)
        if p.pco_enabled:
            raise XpsError(-22)
        p.pco_width_us, p.pco_settling_us = width, settling

    def _c_PositionerPositionComparePulseParametersGet(self, args):
        self._nargs(args, 1, 2)
        p = self._pos(args[0])
        return [self._fmt(p.pco_width_us), self._fmt(p.pco_settling_us)]

    def _c_PositionerPositionCompareSet(self, args):
        self._nargs(args, 4)
        with self.lock:
            p = self._pos(args[0])
            lo, hi, step = _f(args[1]), _f(args[2]), _f(args[3])
            if step <= 0 or hi < lo or lo < p.user_min or hi > p.user_max:
                raise XpsError(-17)
            if p.pco_enabled:
                raise XpsError(-22)
            p.pco = (lo, hi, step)

    def _c_PositionerPositionCompareGet(self, args):
        self._nargs(args, 1, 4)
        p = self._pos(args[0])
        lo, hi, step = p.pco or (0.0, 0.0, 0.0)
        return [self._fmt(lo), self._fmt(hi), self._fmt(step), "1" if p.pco_enabled else "0"]

    def _c_PositionerPositionCompareEnable(self, args):
        self._nargs(args, 1)
        with self.lock:
            p = self._pos(args[0])
            if p.pco is None or not 10 <= self.group.status <= 18:
                raise XpsError(-22)
            p.pco_enabled = True

    def _c_PositionerPositionCompareDisable(self, args):
        self._nargs(args, 1)
        with self.lock:
            self._pos(args[0]).pco_enabled = False

    def _pco_fire(self, g: Group, t0: float, t_stop: float):
        """Fire a trigger wherever an enabled positioner's encoder crossed a compare position."""
        times, edges = [], []
        for p in g.positioners:
            if not p.pco_enabled or p.profile is None or p.pco is None:
                continue
            lo, hi, step = p.pco
            values = lo + np.arange(pco_count(lo, hi, step)) * step
            start = p.profile.start
            values = values[np.abs(values - start) > 1e-12]
            noise = self.rng.normal(0.0, self.encoder_noise, len(values))
            # the encoder reads true + noise, so it shows `value` when the true position is value - noise
            tc = p.profile.crossing_times(values - noise, lag=self.lag)
            tc = tc[np.isfinite(tc)]
            tc = tc[tc <= t_stop]
            if len(tc):
                edges.append(tc + PCO_LATENCY_S)
                times.append(edges[-1] + self.laser.trigger_jitter(len(tc)))
        if times:
            t = self.laser.release_times(np.sort(np.concatenate(times)))  # no closer than the picker's period
            self.laser.fire(t, *self._true_xyz(t), source="pco")
            # the PCO output is wired to TRIG IN too: the encoders are latched at the compare edge, not
            # when the laser's pulse leaves (its wait for the next amplified pulse is the laser's)
            self._latch(np.sort(np.concatenate(edges)))
