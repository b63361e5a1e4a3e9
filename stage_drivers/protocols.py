"""What the executor may rely on from a stage and a pulse source, whatever the controller.

Units on this interface follow the project: um for positions, um/s, um/s^2, s, uJ, percent.
Drivers convert to the controller's own units (XPS and ESP301 positioners are usually configured
in mm) so nothing above this layer ever sees a controller unit.

Every call is bounded by a timeout and raises a `DeviceError` subclass naming the device, the
command sent and the reply received; nothing here returns an error code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# --------------------------------------------------------------------------- errors


class DeviceError(RuntimeError):
    """A device refused, failed or stopped answering.

    `device` is the URL/name of the device, `command` the exact command sent (without
    credentials), `reply` the raw reply (may be '' when nothing came back), `code` the controller's
    numeric error code when it has one.
    """

    def __init__(self, message: str, *, device: str = "", command: str = "", reply: str = "",
                 code: int | None = None):
        self.message = message
        self.device = device
        self.command = command
        self.reply = reply
        self.code = code
        super().__init__(self._text())

    def _text(self) -> str:
        parts = [f"{self.device}: {self.message}" if self.device else self.message]
        if self.code is not None:
            parts.append(f"code {self.code}")
        if self.command:
            parts.append(f"command {self.command!r}")
            parts.append(f"reply {self.reply!r}")
        return "; ".join(parts)

    def __reduce__(self):  # picklable across processes despite keyword-only arguments
        return (_rebuild, (type(self), self.message, self.device, self.command, self.reply, self.code))


def _rebuild(cls, message, device, command, reply, code):
    return cls(message, device=device, command=command, reply=reply, code=code)


class DeviceUrlError(DeviceError, ValueError):
    """A device URL that names no registered driver, is malformed, or carries credentials."""


class DeviceTimeout(DeviceError):
    """No complete reply within the call's timeout (the connection is dropped and reopened)."""


class ConnectionLost(DeviceError):
    """The transport closed or failed (socket reset, port vanished, HTTP connection refused)."""


class ProtocolError(DeviceError):
    """A reply that does not parse (garbled, wrong field count, wrong type)."""


class CommandError(DeviceError):
    """The controller answered with an error code for this command."""


class AuthenticationError(CommandError):
    """Wrong user or password (XPS -106)."""


class NotReadyError(CommandError):
    """Action not allowed in the current state: not initialised / not homed / busy (-22, -109, -21)."""


class FollowingError(CommandError):
    """The servo loop lost track of the setpoint (XPS -25, status 3/4/21/22; ESP axis code 3)."""


class TravelLimitError(CommandError):
    """A target outside the travel limits; raised *before* sending when the driver knows the limits."""


class EmergencyStop(CommandError):
    """Emergency stop / emergency brake signal (XPS -26, status 40/7)."""


class MotionAborted(CommandError):
    """A move ended by stop/abort (XPS -27) rather than reaching its target."""


class InterlockOpen(DeviceError):
    """The laser safety interlock is open: the laser cannot (and must not) fire."""


class NotInPosition(DeviceError):
    """Refused to fire: the stage has not reported the last move as finished and in position."""


def fmt_num(v: float) -> str:
    """A number for a controller's ASCII protocol: plain decimal, no exponent, trailing zeros trimmed
    (1.5 -> '1.5', 2.0 -> '2', 1e-5 -> '0.00001'); the XPS and ESP301 parsers take no exponents."""
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {v!r}")
    s = f"{v:.9f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class StageStatus:
    """A controller's state in portable terms, plus its raw code and text for the log."""

    code: int
    text: str
    initialized: bool
    homed: bool
    ready: bool  # accepts a move now
    moving: bool
    fault: bool  # following error, emergency stop, disabled by a fault
    position_um: tuple[float, ...] = ()
    axes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MotionParams:
    """Jerk-limited (SGamma) profile parameters of one axis."""

    velocity_um_s: float
    acceleration_um_s2: float
    min_jerk_time_s: float = 0.005
    max_jerk_time_s: float = 0.05


@dataclass(frozen=True)
class AxisLimits:
    """Travel range of one axis (user limits inside the hardware range), um."""

    min_um: float
    max_um: float

    def contains(self, value_um: float) -> bool:
        return self.min_um <= value_um <= self.max_um


@dataclass
class LineFiring:
    """What `arm_line` set up: pulses fire when `axis` crosses each of `positions_um`."""

    axis: str
    positions_um: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class Stage(Protocol):
    """A multi-axis positioning stage (XPS group of 3 positioners, ESP301 axes 1-3).

    Use as a context manager: `with open_stage(url) as stage: ...`; exiting closes the gate (when
    the stage controller gates the laser) and the connection on every path.
    """

    url: str
    axes: tuple[str, ...]  # ("X", "Y", "Z") in the order of every position tuple

    def connect(self) -> Stage: ...
    def close(self) -> None: ...
    def __enter__(self) -> Stage: ...
    def __exit__(self, *exc) -> None: ...

    def home(self, timeout_s: float | None = None) -> None:
        """Initialise (if needed) and home all axes; blocks until done."""

    def move_to(self, x_um: float, y_um: float, z_um: float | None = None,
                timeout_s: float | None = None) -> None:
        """Absolute move of all axes at once; returns when the controller reports motion done.

        Checks the travel limits first (TravelLimitError, nothing sent). `z_um=None` keeps Z.
        """

    def move_by(self, dx_um: float, dy_um: float, dz_um: float = 0.0, timeout_s: float | None = None) -> None:
        """Relative move, limits checked against the current setpoint first."""

    def position(self) -> tuple[float, ...]:
        """Encoder (actual) position of every axis, um."""

    def status(self) -> StageStatus: ...

    def in_position(self) -> bool:
        """True iff the last move finished normally and nothing moved since (no round trip)."""

    def motion_params(self, axis: str) -> MotionParams: ...
    def set_motion_params(self, axis: str, params: MotionParams) -> None: ...
    def max_velocity_acceleration(self, axis: str) -> tuple[float, float]:
        """Hardware maxima (um/s, um/s^2) read from the controller."""

    def travel_limits(self) -> dict[str, AxisLimits]: ...
    def set_travel_limits(self, axis: str, limits: AxisLimits) -> None: ...
    def check_limits(self, x_um: float, y_um: float, z_um: float | None = None) -> None:
        """Raise TravelLimitError if a target is outside the limits (no I/O after connect)."""

    def stop(self) -> None:
        """Decelerate and stop any motion (controlled)."""

    def abort(self) -> None:
        """Emergency: stop now and disable the motors (XPS GroupKill / ESP301 AB); closes the gate."""


@runtime_checkable
class PulseSource(Protocol):
    """Something that puts femtosecond pulses on the sample: the laser plus its per-shot gate.

    `arm()` opens the laser output (Pharos EnableOutput / stage controller gate enabled);
    `disarm()` closes it and never raises (safe to call from `finally`). `fire(n)` delivers exactly
    n pulses at the current position and refuses (NotInPosition) unless the stage reports its last
    move done. `arm_line` sets up position-synchronised firing for the next move along one axis.
    """

    url: str

    def connect(self) -> PulseSource: ...
    def close(self) -> None: ...  # disarms first
    def __enter__(self) -> PulseSource: ...
    def __exit__(self, *exc) -> None: ...

    @property
    def armed(self) -> bool: ...
    def arm(self) -> None: ...
    def disarm(self) -> None: ...

    def fire(self, n: int = 1) -> None:
        """Fire n pulses now, at the current position (one controller call)."""

    def set_attenuation(self, percent: float) -> None:
        """Attenuator transmission, 0-100 %."""

    def attenuation(self) -> float: ...

    def pulse_energy_uj(self) -> float:
        """Energy per pulse at the sample, as the laser reports it, uJ."""

    def arm_line(self, axis: str, positions_um: Sequence[float]) -> LineFiring:
        """Fire one pulse as `axis` crosses each position during the next move(s).

        Positions must be equally spaced (hardware position compare: start, stop, step) and
        inside the travel limits; the caller then moves past the last one and calls `disarm_line`.
        """

    def disarm_line(self) -> None: ...


# Back-compatible alias: the issue text calls it a Laser.
Laser = PulseSource


# --------------------------------------------------------------------------- abilities
#
# Optional abilities beyond Stage / PulseSource. A driver has one by having its methods (no base
# class to inherit); the executor asks `isinstance(device, Ability)` and pre-flight names the missing
# ability when a run needs it. Adding a driver: implement Stage or PulseSource, then whichever of
# these the hardware can do (CONTRIBUTING.md, "Adding a stage driver").


@runtime_checkable
class BurstTrigger(Protocol):
    """A controller that gates the laser and fires n pulses now (XPS GPIO gate + DOPulse): the
    per-shot trigger of step-and-shoot. Needed by an externally triggered laser (Pharos)."""

    url: str

    def set_gate(self, open_: bool) -> None:
        """Laser gate output level: open (True) lets triggers through, closed (False) blocks them."""

    def fire_pulses(self, n: int = 1) -> None:
        """n trigger pulses now; refuses (NotInPosition) unless the last move ended in position."""


@runtime_checkable
class PositionCompare(Protocol):
    """Position-synchronised triggering (XPS position compare, PCO): a pulse as an axis crosses each
    of equally spaced positions during the next move. Needed by fly mode."""

    url: str

    def arm_compare(self, axis: str, positions_um: Sequence[float]) -> LineFiring: ...

    def disarm_compare(self, all_positioners: bool = False) -> None:
        """Disable what this process armed; `all_positioners`: every positioner of the controller,
        including compare left armed by a killed process (pre-flight does this first)."""


@runtime_checkable
class ExternallyTriggered(Protocol):
    """A pulse source whose per-shot firing comes from a stage controller (`trigger`, a
    BurstTrigger, and a PositionCompare for fly mode); None when no controller was given."""

    trigger: object


@runtime_checkable
class InterlockCheck(Protocol):
    """A laser that reports its safety interlock. `check_interlock` raises InterlockOpen (and
    closes the gate); `last_interlock_ok` is the time.monotonic() at which the last good check was
    sent (None: none yet), so shots fired after it are the ones that may have been dark;
    `interlock_check_s` is how often the laser checks on its own while firing."""

    interlock_check_s: float

    @property
    def last_interlock_ok(self) -> float | None: ...

    def check_interlock(self) -> None: ...


@runtime_checkable
class MotionProfile(Protocol):
    """Settable jerk-limited motion profile per axis, and the controller's maxima."""

    axes: tuple[str, ...]

    def motion_params(self, axis: str) -> MotionParams: ...
    def set_motion_params(self, axis: str, params: MotionParams) -> None: ...
    def max_velocity_acceleration(self, axis: str) -> tuple[float, float]: ...


@runtime_checkable
class MotionDoneCriterion(Protocol):
    """A settable motion-done criterion: a move is done once the position stayed within a window
    for a checking time (XPS PositionerMotionDoneSet); pre-flight gives it the plan's settle time."""

    def set_motion_done(self, axis: str, position_window_um: float, checking_time_s: float) -> None: ...


@runtime_checkable
class PositionCapture(Protocol):
    """The controller latches the encoder positions at each position-compare pulse (XPS external
    gathering on TRIG IN): `captured_positions()` returns them (um, one tuple per pulse, axes order)
    since the last call, empty when capture is off or nothing was latched. Fly mode then journals
    where each row's pulses really went (`row_captured`) and judges the tolerance from it."""

    def captured_positions(self) -> list[tuple[float, ...]]: ...


@runtime_checkable
class PulseReadback(Protocol):
    """Ground truth of where the light went: `read_new()` returns a (k, 4) array t_s, x_um, y_um, z_um
    of the pulses with light since the last call (with `expect`, waits up to `timeout_s` for that
    many). The emulator's pulse log in a dry run (`fabplan.execute.pulselog.PulseLogReader`)."""

    def read_new(self, expect: int | None = None, timeout_s: float = 1.0): ...


@runtime_checkable
class ClosedReadout(Protocol):
    """A laser that tells what it is set to with its output closed: `closed_readout()` returns a dict
    with at least `energy_at_100_uj` (the output's pulse energy at 100 % attenuator; NaN when it
    cannot be known while closed, `energy_unknown_why` says why), `attenuator_percent`,
    `output_frequency_hz` and `output_enabled`. Pre-flight compares it with the design before
    anything is armed (stage_drivers/pharos.py)."""

    def closed_readout(self) -> dict: ...


ABILITIES = (BurstTrigger, PositionCompare, ExternallyTriggered, InterlockCheck, MotionProfile,
             MotionDoneCriterion, PositionCapture, PulseReadback, ClosedReadout)


def abilities(device: object) -> list[str]:
    """Names of the optional abilities `device` has (for pre-flight messages and `fabplan stage`)."""
    return [a.__name__ for a in ABILITIES if isinstance(device, a)]
