"""Station profiles: named lab set-ups (stage and laser URLs, journal folder, logbook) in a per-user file.

    # ~/.config/fabplan/stations.toml   (`fabplan station path` prints where it is on this system)
    [stations.xps-lab1]
    stage = "xps://192.168.0.254:5001?group=XYZ"
    laser = "pharos://192.168.0.20:20020"
    journal_dir = "~/runs"
    logbook = "postgresql://labdb.example/fablog"
    description = "femto line 1"

`fabplan run DESIGN --station xps-lab1` takes the URLs and the journal folder from there; options
given on the command line win, and environment variables win over the file (FABPLAN_STAGE,
FABPLAN_LASER, FABPLAN_JOURNAL_DIR, FABPLAN_DB), read with pydantic-settings. FABPLAN_CONFIG names
another file; FABPLAN_STATION picks a station when --station is not given.

Credentials never live here: a password, token or secret (a key named so, a `user:password@` in a
URL, or such a query parameter) is refused with the place it came from; the XPS credentials come from
FABPLAN_XPS_USER/FABPLAN_XPS_PASSWORD or the devices ini, the logbook's from ~/.pgpass or PGPASSWORD.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fabplan.errors import UserError

CONFIG_ENV = "FABPLAN_CONFIG"
STATION_ENV = "FABPLAN_STATION"
FILE_NAME = "stations.toml"
FIELDS = ("stage", "laser", "journal_dir", "logbook", "description")
ENV_OF = {"stage": "FABPLAN_STAGE", "laser": "FABPLAN_LASER", "journal_dir": "FABPLAN_JOURNAL_DIR",
          "logbook": "FABPLAN_DB"}
_SECRET_KEY = re.compile(r"(?i)(pass(word|wd)?|pwd|token|secret|api[_-]?key|credential)")


def config_path() -> Path:
    """The station file: $FABPLAN_CONFIG, else the platform's per-user config folder (platformdirs)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_path

    return user_config_path("fabplan", appauthor=False) / FILE_NAME


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


def check_no_credentials(where: str, key: str, value: Any) -> None:
    """Refuse a secret in a station file or a station's environment (they end up in journals and logs)."""
    if _SECRET_KEY.search(key):
        raise UserError(f"{where}: '{key}': credentials never go in the station file (use FABPLAN_XPS_PASSWORD, "
                        "the devices ini named by FABPLAN_DEVICES_CONFIG, or ~/.pgpass for the logbook)")
    if not isinstance(value, str):
        return
    try:
        parts = urlsplit(value)
    except ValueError:
        return
    if parts.password:
        raise UserError(f"{where}: {key} carries a password in its URL (user:password@): keep credentials out "
                        "of the station file (FABPLAN_XPS_PASSWORD, ~/.pgpass or PGPASSWORD)")
    for name, _ in parse_qsl(parts.query):
        if _SECRET_KEY.search(name):
            raise UserError(f"{where}: {key} carries a '{name}' parameter: keep credentials out of the station file")


def _settings_class():
    """pydantic-settings model of one station: file values, overridden by the environment."""
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

    class StationSettings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="FABPLAN_", extra="forbid")
        stage: str | None = None
        laser: str | None = None
        journal_dir: str | None = None
        logbook: str | None = None
        description: str | None = None

        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                       file_secret_settings):
            return (EnvOverrides(settings_cls), init_settings)  # the environment wins over the file

    class EnvOverrides(PydanticBaseSettingsSource):
        def get_field_value(self, field, field_name):  # pragma: no cover - __call__ does the work
            return None, field_name, False

        def __call__(self) -> dict[str, Any]:
            return {k: os.environ[env] for k, env in ENV_OF.items() if os.environ.get(env)}

    return StationSettings


def load_file(path: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """(path, {"default": name|None, "stations": {name: {...}}}) from the station file (empty if absent)."""
    path = path or config_path()
    if not path.is_file():
        return path, {"default": None, "stations": {}}
    try:
        doc = _toml().loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    except Exception as exc:  # tomllib.TOMLDecodeError carries line and column
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"default", "stations"})
    if unknown:
        raise UserError(f"{path}: unknown top-level key '{unknown[0]}' (expected 'default' and [stations.NAME])")
    stations = doc.get("stations") or {}
    if not isinstance(stations, dict):
        raise UserError(f"{path}: 'stations' must be tables [stations.NAME]")
    for name, table in stations.items():
        where = f"{path}: [stations.{name}]"
        if not isinstance(table, dict):
            raise UserError(f"{where}: must be a table of keys ({', '.join(FIELDS)})")
        for key, value in table.items():
            check_no_credentials(where, key, value)
            if key not in FIELDS:
                raise UserError(f"{where}: unknown key '{key}' (expected {', '.join(FIELDS)})")
            if not isinstance(value, str):
                raise UserError(f"{where}: '{key}' must be a string")
    default = doc.get("default")
    if default is not None and default not in stations:
        raise UserError(f"{path}: default = '{default}' names no [stations.{default}]")
    return path, {"default": default, "stations": stations}


def station_names(path: Path | None = None) -> list[str]:
    return sorted(load_file(path)[1]["stations"])


def get_station(name: str | None = None, path: Path | None = None) -> dict[str, Any]:
    """One station's settings after environment overrides, with `name`, `file` and `sources`.

    name None: $FABPLAN_STATION, else the file's `default`."""
    path, doc = load_file(path)
    name = name or os.environ.get(STATION_ENV) or doc["default"]
    if not name:
        raise UserError(f"no station named: give --station NAME (stations in {path}: "
                        f"{', '.join(sorted(doc['stations'])) or 'none yet'})")
    table = doc["stations"].get(name)
    if table is None:
        raise UserError(f"--station {name}: no [stations.{name}] in {path} (known: "
                        f"{', '.join(sorted(doc['stations'])) or 'none; `fabplan station path` shows the file'})")
    for key, env in ENV_OF.items():
        if os.environ.get(env):
            check_no_credentials(f"${env}", key, os.environ[env])
    from pydantic import ValidationError

    try:
        settings = _settings_class()(**table)
    except ValidationError as exc:
        raise UserError(f"{path}: [stations.{name}]: {exc.errors()[0]['msg']}") from None
    values = settings.model_dump()
    sources = {k: ("env " + ENV_OF[k]) if k in ENV_OF and os.environ.get(ENV_OF[k]) else
               ("file" if k in table else None) for k in FIELDS}
    return {"name": name, "file": str(path), **values, "sources": sources}
