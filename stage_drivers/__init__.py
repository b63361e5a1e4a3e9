"""Device drivers: Newport XPS (TCP), Newport ESP301 (serial), Light Conversion Pharos (HTTP).

A driver knows its wire protocol and nothing about microdiscs. Open devices from URLs, pyserial
style (each driver module registers its scheme: `stage_drivers.urls`; prefix any URL with `spy+` to
log every byte exchanged to the logger `fabplan.device.<scheme>`):

    xps://192.168.0.254:5001?group=XYZ          Newport XPS group (positioners XYZ.X, XYZ.Y, XYZ.Z)
    esp301:///dev/ttyUSB0?baud=19200            Newport ESP301/ESP300 axes 1-3
    pharos://192.168.0.20:20020                 Light Conversion Pharos (output, attenuator)
    sim://NAME?speedup=inf&pulse_log=FILE       in-process emulated lab (XPS + Pharos), see sim.start_lab

Per-shot gating comes from the stage controller (XPS GPIO pulse / position compare), so
`open_laser(url, stage=stage)` takes the stage whose controller triggers the laser.
What every stage / pulse source must do is `Stage` / `PulseSource`; what some can do beyond that
(position compare, burst trigger, interlock check, ...) are the ability protocols in
`stage_drivers.protocols`, which the executor asks with isinstance.
Credentials: FABPLAN_XPS_USER / FABPLAN_XPS_PASSWORD, or the file named by FABPLAN_DEVICES_CONFIG
(default ~/.config/fabplan/devices.ini), section = the URL's host. Never in URLs or design files.
"""

from __future__ import annotations

from stage_drivers.protocols import (
    ABILITIES,
    AuthenticationError,
    AxisLimits,
    CommandError,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    DeviceUrlError,
    EmergencyStop,
    FollowingError,
    InterlockOpen,
    Laser,
    LineFiring,
    MotionAborted,
    MotionParams,
    NotInPosition,
    NotReadyError,
    ProtocolError,
    PulseSource,
    Stage,
    StageStatus,
    TravelLimitError,
    abilities,
)
from stage_drivers.urls import open_device, open_laser, open_stage, parse_device_url, register_scheme

__all__ = [
    "ABILITIES", "AuthenticationError", "AxisLimits", "CommandError", "ConnectionLost", "DeviceError", "DeviceTimeout",
    "DeviceUrlError", "EmergencyStop", "FollowingError", "InterlockOpen", "Laser", "LineFiring", "MotionAborted",
    "MotionParams", "NotInPosition", "NotReadyError", "ProtocolError", "PulseSource", "Stage",
    "StageStatus", "TravelLimitError", "abilities", "open_device", "open_laser", "open_stage", "parse_device_url",
    "register_scheme",
]
