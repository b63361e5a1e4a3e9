"""Open a device from a URL: a registry of URL schemes that each driver module fills, and credentials.

pyserial's `serial_for_url` is the model: `DRIVER_PACKAGES` plays its `protocol_handler_packages`.
For a scheme not yet registered, each package is imported and then its module named like the
scheme (`stage_drivers.xps` for xps://); that module registers itself at import:

    register_scheme("xps", stage=XpsStage.from_url, laser=XpsGate.from_url)

A factory takes the parsed `DeviceUrl` (and `timeout_s`, and for a laser `trigger`, the stage whose
controller triggers it) and returns the device, not yet connected. `sim://` is registered by the
`sim` package. Append a package of your own to DRIVER_PACKAGES for out-of-tree drivers.

Any URL may carry the prefix `spy+` (e.g. `spy+xps://192.168.0.254:5001`): every byte the driver
sends and receives is logged (INFO) to the logger `fabplan.device.<scheme>`, for bring-up on real
hardware (`fabplan -v`, or any logging configuration, shows it). Errors here are `DeviceUrlError`
(a `DeviceError`): drivers know nothing of the application's error types.
"""

from __future__ import annotations

import configparser
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from stage_drivers.protocols import DeviceUrlError

SPY_PREFIX = "spy+"
DRIVER_PACKAGES = ["stage_drivers", "sim"]


@dataclass(frozen=True)
class DeviceUrl:
    scheme: str  # without the spy+ prefix
    host: str
    port: int | None
    path: str
    params: dict[str, str] = field(default_factory=dict)
    raw: str = ""  # the URL as given (spy+ prefix included)
    spy: bool = False

    def float_param(self, name: str, default: float) -> float:
        try:
            return float(self.params.get(name, default))
        except ValueError:
            raise DeviceUrlError(f"{name}={self.params[name]!r} is not a number", device=self.raw) from None


@dataclass(frozen=True)
class Driver:
    """What a URL scheme opens: factories for a stage and/or a laser (pulse source)."""

    scheme: str
    stage: Callable[..., Any] | None = None  # (DeviceUrl, timeout_s=None) -> Stage, not connected
    laser: Callable[..., Any] | None = None  # (DeviceUrl, trigger=None, timeout_s=None) -> PulseSource
    module: str = ""


_REGISTRY: dict[str, Driver] = {}


def register_scheme(scheme: str, *, stage: Callable[..., Any] | None = None,
                    laser: Callable[..., Any] | None = None) -> None:
    """Declare what `scheme://` URLs open (called by a driver module at import)."""
    module = getattr(stage or laser, "__module__", "")
    _REGISTRY[scheme.lower()] = Driver(scheme.lower(), stage, laser, module)


def driver_for(scheme: str) -> Driver:
    """The registered driver of `scheme`, importing its module on first use."""
    scheme = scheme.lower()
    if scheme not in _REGISTRY and scheme.isidentifier():
        for pkg in DRIVER_PACKAGES:
            for name in (pkg, f"{pkg}.{scheme}"):
                _import_if_present(name)
            if scheme in _REGISTRY:
                break
    if scheme not in _REGISTRY:  # an alias (esp300) or a mistake: load every driver module to be sure
        _import_all()
    try:
        return _REGISTRY[scheme]
    except KeyError:
        raise DeviceUrlError(f"unknown device scheme {scheme!r} (expected one of {', '.join(schemes())})") from None


def schemes() -> list[str]:
    """Every registered scheme (after loading the driver modules)."""
    _import_all()
    return sorted(_REGISTRY)


def _import_if_present(name: str) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the module exists but needs something missing: say so
            raise


def _import_all() -> None:
    """Import every driver package and its modules (a package's `__driver_modules__`, when it has
    one, names the modules to import: `sim` registers in its __init__ and names none)."""
    for pkg in DRIVER_PACKAGES:
        _import_if_present(pkg)
        mod = sys.modules.get(pkg)
        if mod is None or not hasattr(mod, "__path__"):
            continue
        names = getattr(mod, "__driver_modules__", None)
        if names is None:
            names = [m.name for m in pkgutil.iter_modules(mod.__path__) if not m.name.startswith("_")]
        for name in names:
            _import_if_present(f"{pkg}.{name}")


def parse_device_url(url: str) -> DeviceUrl:
    """Split a device URL; reject credentials in it (they belong in the environment or a config file)."""
    text = str(url)
    spy = text.lower().startswith(SPY_PREFIX)
    try:
        parts = urlsplit(text[len(SPY_PREFIX):] if spy else text)
    except ValueError as exc:  # e.g. "xps://[::1" (unbalanced IPv6 brackets)
        raise DeviceUrlError(f"not a device URL ({exc})", device=repr(text)) from None
    scheme = parts.scheme.lower()
    if not scheme or "://" not in text:
        raise DeviceUrlError("not a device URL (expected SCHEME://...)", device=repr(text))
    if parts.username or parts.password:
        raise DeviceUrlError(f"{scheme}:// URL must not contain credentials; use FABPLAN_{scheme.upper()}_USER/"
                             f"FABPLAN_{scheme.upper()}_PASSWORD or the devices config file")
    try:
        port = parts.port
    except ValueError:
        raise DeviceUrlError("bad port", device=repr(text)) from None
    driver_for(scheme)  # an unknown scheme is refused here, naming the known ones
    return DeviceUrl(scheme, parts.hostname or "", port, parts.path, dict(parse_qsl(parts.query)), text, spy)


def credentials(host: str, scheme: str = "xps") -> tuple[str, str] | None:
    """(user, password) from the environment, else the devices config file, else None."""
    prefix = f"FABPLAN_{scheme.upper()}_"
    user, password = os.environ.get(prefix + "USER"), os.environ.get(prefix + "PASSWORD")
    if user is not None and password is not None:
        return user, password
    path = Path(os.environ.get("FABPLAN_DEVICES_CONFIG", Path.home() / ".config" / "fabplan" / "devices.ini"))
    if path.is_file():
        cfg = configparser.ConfigParser(interpolation=None)
        try:
            cfg.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as exc:
            # configparser's messages quote the offending line, e.g. 'password S3cr3tPW' (no '='):
            # name the file and line only, never the text, which may hold a secret.
            lines = getattr(exc, "errors", None) or [(getattr(exc, "lineno", None), None)]
            at = f"line {lines[0][0]}: " if lines[0][0] else ""
            raise DeviceUrlError(
                f"{at}cannot read the devices config ({type(exc).__name__}; expected "
                "'[section]' headers and 'key = value' lines; the line is not shown, it may hold a password)",
                device=str(path),
            ) from None
        for section in (f"{scheme}://{host}", host, scheme):
            if cfg.has_section(section) and cfg.has_option(section, "user"):
                return cfg.get(section, "user"), cfg.get(section, "password", fallback="")
    return None


def _as_url(url: str | DeviceUrl) -> DeviceUrl:
    return url if isinstance(url, DeviceUrl) else parse_device_url(url)


def make_stage(url: str | DeviceUrl, *, timeout_s: float | None = None):
    """The `Stage` for `url`, not connected."""
    u = _as_url(url)
    driver = driver_for(u.scheme)
    if driver.stage is None:
        raise DeviceUrlError(f"{u.scheme}:// is not a stage", device=u.raw)
    return driver.stage(u, timeout_s=timeout_s)


def make_laser(url: str | DeviceUrl, *, stage=None, timeout_s: float | None = None):
    """The `PulseSource` for `url`, not connected; `stage` triggers it when the laser needs one."""
    u = _as_url(url)
    driver = driver_for(u.scheme)
    if driver.laser is None:
        raise DeviceUrlError(f"{u.scheme}:// is not a laser", device=u.raw)
    return driver.laser(u, trigger=stage, timeout_s=timeout_s)


def open_stage(url: str, *, timeout_s: float | None = None, connect: bool = True):
    """A connected `Stage` for `url` (use it as a context manager to close it)."""
    stage = make_stage(url, timeout_s=timeout_s)
    return stage.connect() if connect else stage


def open_laser(url: str, *, stage=None, timeout_s: float | None = None, connect: bool = True):
    """A connected `PulseSource` for `url`.

    pharos:// gives the laser (output, attenuator, energy); its per-shot firing goes through
    `stage` (an XPS stage: GPIO pulse, position compare). xps:// gives a gate-only source on its
    own connection to the controller. sim:// gives the emulated lab's Pharos, gated by `stage`.
    """
    laser = make_laser(url, stage=stage, timeout_s=timeout_s)
    return laser.connect() if connect else laser


def open_device(url: str, **kwargs):
    """A stage when the scheme opens one, else a laser (pyserial's serial_for_url, for devices)."""
    u = parse_device_url(url)
    if driver_for(u.scheme).stage is None:
        return open_laser(url, **kwargs)
    return open_stage(url, **kwargs)


# ---------------------------------------------------------------------- spy+ transports


def spy_logger(scheme: str) -> logging.Logger:
    return logging.getLogger(f"fabplan.device.{scheme}")


def spy_transport(owner, transport):
    """`transport` (a socket, a pyserial port, an http.client connection) logging every byte when
    its driver was opened from a spy+ URL (`owner.url`, as drivers keep the URL they were given);
    else `transport` itself."""
    name = str(getattr(owner, "url", ""))
    if not name.lower().startswith(SPY_PREFIX):
        return transport
    log = spy_logger(name[len(SPY_PREFIX):].split(":", 1)[0].lower())
    import http.client

    if isinstance(transport, http.client.HTTPConnection):
        connect = transport.connect

        def spied_connect() -> None:
            connect()
            transport.sock = _Spy(transport.sock, log, name)

        transport.connect = spied_connect  # type: ignore[method-assign]
        return transport
    return _Spy(transport, log, name)


class _Spy:
    """Forwards everything to the wrapped transport; logs what goes out (>) and comes in (<)."""

    def __init__(self, inner, log: logging.Logger, name: str):
        self._inner, self._log, self._name = inner, log, name

    def __getattr__(self, attr):
        return getattr(self._inner, attr)

    def _out(self, data) -> None:
        self._log.info("%s > %r", self._name, bytes(data))

    def _in(self, data) -> None:
        if data:
            self._log.info("%s < %r", self._name, bytes(data))

    def sendall(self, data, *a):
        self._out(data)
        return self._inner.sendall(data, *a)

    def send(self, data, *a):
        n = self._inner.send(data, *a)
        self._out(bytes(data)[:n])
        return n

    def write(self, data):
        self._out(data)
        return self._inner.write(data)

    def recv(self, *a):
        data = self._inner.recv(*a)
        self._in(data)
        return data

    def read(self, *a):
        data = self._inner.read(*a)
        self._in(data)
        return data

    def readline(self, *a):
        data = self._inner.readline(*a)
        self._in(data)
        return data

    def readinto(self, b):
        n = self._inner.readinto(b)
        if n:
            self._in(memoryview(b)[:n])
        return n

    def makefile(self, *a, **k):
        return _Spy(self._inner.makefile(*a, **k), self._log, self._name)
