"""Open a device from a URL (`xps://`, `esp301://`, `pharos://`, `sim://`) and find credentials."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from fabplan.errors import UserError

SCHEMES = ("xps", "esp301", "esp300", "pharos", "sim")


@dataclass(frozen=True)
class DeviceUrl:
    scheme: str
    host: str
    port: int | None
    path: str
    params: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    def float_param(self, name: str, default: float) -> float:
        try:
            return float(self.params.get(name, default))
        except ValueError as exc:
            raise UserError(f"{self.raw}: {name}={self.params[name]!r} is not a number") from exc


def parse_device_url(url: str) -> DeviceUrl:
    """Split a device URL; reject credentials in it (they belong in the environment or a config file)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. "xps://[::1" (unbalanced IPv6 brackets)
        raise UserError(f"{url!r}: not a device URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UserError(f"{url!r}: unknown device scheme {scheme!r} (expected one of {', '.join(SCHEMES)})")
    if parts.username or parts.password:
        raise UserError(f"{scheme}:// URL must not contain credentials; use FABPLAN_XPS_USER/"
                        "FABPLAN_XPS_PASSWORD or the devices config file")
    try:
        port = parts.port
    except ValueError as exc:
        raise UserError(f"{url!r}: bad port") from exc
    return DeviceUrl(scheme, parts.hostname or "", port, parts.path, dict(parse_qsl(parts.query)), url)


def credentials(host: str, scheme: str = "xps") -> tuple[str, str] | None:
    """(user, password) from the environment, else the devices config file, else None."""
    prefix = f"FABPLAN_{scheme.upper()}_"
    user, password = os.environ.get(prefix + "USER"), os.environ.get(prefix + "PASSWORD")
    if user is not None and password is not None:
        return user, password
    path = Path(os.environ.get("FABPLAN_DEVICES_CONFIG", Path.home() / ".config" / "fabplan" / "devices.ini"))
    if path.is_file():
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(path)
        for section in (f"{scheme}://{host}", host, scheme):
            if cfg.has_section(section) and cfg.has_option(section, "user"):
                return cfg.get(section, "user"), cfg.get(section, "password", fallback="")
    return None


def open_stage(url: str, *, timeout_s: float | None = None, connect: bool = True):
    """A connected `Stage` for `url` (use it as a context manager to close it)."""
    u = parse_device_url(url)
    if u.scheme == "xps":
        from stage_drivers.xps import XpsStage

        stage = XpsStage.from_url(u, timeout_s=timeout_s)
    elif u.scheme in ("esp301", "esp300"):
        from stage_drivers.esp301 import Esp301Stage

        stage = Esp301Stage.from_url(u, timeout_s=timeout_s)
    elif u.scheme == "sim":
        from sim.lab import lab_for_url

        lab = lab_for_url(u)
        return open_stage(lab.stage_url, timeout_s=timeout_s, connect=connect)
    else:
        raise UserError(f"{url!r} is not a stage (pharos:// is a laser)")
    return stage.connect() if connect else stage


def open_laser(url: str, *, stage=None, timeout_s: float | None = None, connect: bool = True):
    """A connected `PulseSource` for `url`.

    pharos:// gives the laser (output, attenuator, energy); its per-shot firing goes through
    `stage` (an XPS stage: GPIO pulse, position compare). xps:// gives a gate-only source on its
    own connection to the controller. sim:// gives the emulated lab's Pharos, gated by `stage`.
    """
    u = parse_device_url(url)
    if u.scheme == "pharos":
        from stage_drivers.pharos import PharosLaser

        laser = PharosLaser.from_url(u, trigger=stage, timeout_s=timeout_s)
    elif u.scheme == "xps":
        from stage_drivers.xps import XpsGate

        laser = XpsGate.from_url(u, trigger=stage, timeout_s=timeout_s)
    elif u.scheme == "sim":
        from sim.lab import lab_for_url

        lab = lab_for_url(u)
        return open_laser(lab.laser_url, stage=stage, timeout_s=timeout_s, connect=connect)
    else:
        raise UserError(f"{url!r} is not a laser")
    return laser.connect() if connect else laser


def open_device(url: str, **kwargs):
    """A stage for xps/esp301 URLs, a laser for pharos URLs (pyserial's serial_for_url, for devices)."""
    u = parse_device_url(url)
    if u.scheme == "pharos":
        return open_laser(url, **kwargs)
    return open_stage(url, **kwargs)
