"""Physical quantities from user input: "20 um", "0.1 J/cm^2", "515 nm", or a bare number.

Inside fabplan one unit system is used and named in variable names: um for lengths, nm for
wavelengths, mJ/cm^2 for fluence, uJ for pulse energy, s for time, Hz for rates. Parsing goes
through pint so any spelling pint knows ("µm", "micrometer", "kHz") works.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pint

from fabplan.errors import UserError


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """The one pint registry, built on first use (pint pulls in scipy; the CLI's --help should not)."""
    import pint

    return pint.UnitRegistry()

# Canonical internal unit per physical kind, and the word used in error messages.
KINDS: dict[str, tuple[str, str]] = {
    "length_um": ("um", "a length"),
    "wavelength_nm": ("nm", "a length"),
    "fluence_mj_cm2": ("mJ/cm^2", "a fluence (energy per area)"),
    "energy_uj": ("uJ", "an energy"),
    "time_s": ("s", "a time"),
    "duration_fs": ("fs", "a time"),
    "frequency_hz": ("Hz", "a frequency"),
    "velocity_um_s": ("um/s", "a velocity"),
    "accel_um_s2": ("um/s^2", "an acceleration"),
    "jerk_um_s3": ("um/s^3", "a jerk"),
    "angle_deg": ("deg", "an angle"),
    "dimensionless": ("dimensionless", "a number"),
}


class UnitError(UserError, ValueError):
    """A value that is not a number, or a quantity of the wrong dimension."""


@lru_cache(maxsize=64)
def _unit(unit: str) -> pint.Unit:
    return registry().Unit(unit)


def parse_quantity(value: object, unit: str, kind_word: str | None = None) -> float:
    """Return `value` as a finite float in `unit` (NaN and infinities are refused: no physical
    quantity in a design is meant to be one, and they break geometry downstream)."""
    result = _convert(value, unit, kind_word)
    if not math.isfinite(result):
        what = (kind_word or "quantity").removeprefix("an ").removeprefix("a ")
        raise UnitError(f"expected a finite {what}, got {value!r}")
    return result


def _convert(value: object, unit: str, kind_word: str | None) -> float:
    """`value` as a float in `unit`.

    A bare int/float (or a numeric string) is taken to be in `unit` already. A string with units is
    converted; a wrong dimension raises UnitError("expected a length, got '20 mJ'").
    """
    if isinstance(value, bool):
        raise UnitError(f"expected {kind_word or 'a quantity in ' + unit}, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise UnitError(f"expected {kind_word or 'a quantity in ' + unit}, got {value!r}")
    text = value.strip().replace("µ", "u").replace("μ", "u")
    try:
        return float(text)
    except ValueError:
        pass
    try:
        q = registry().Quantity(text)
    except Exception as exc:  # pint raises many types for garbage input
        raise UnitError(f"cannot read {value!r} as a quantity ({exc.__class__.__name__})") from None
    if not isinstance(q, registry().Quantity):
        return float(q)
    target = _unit(unit)
    if q.dimensionality != target.dimensionality:
        if q.dimensionless and not target.dimensionless:
            # e.g. "5 %" for a length: still wrong, say so.
            pass
        raise UnitError(f"expected {kind_word or 'a quantity in ' + unit}, got {value!r}")
    return float(f"{q.to(target).magnitude:.12g}")  # drop conversion noise (0.22 ps -> 220 fs)




def parse_kind(value: object, kind: str) -> float:
    """parse_quantity for one of the named KINDS (e.g. "length_um")."""
    unit, word = KINDS[kind]
    return parse_quantity(value, unit, word)


def format_quantity(magnitude: float, unit: str, digits: int = 4) -> str:
    """Compact human string, e.g. format_quantity(12.5, 'um') -> '12.5 um'."""
    return f"{magnitude:.{digits}g} {unit}"
