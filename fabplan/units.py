"""Physical quantities from user input: "20 um", "0.1 J/cm^2", "515 nm", or a bare number.

Inside fabplan one unit system is used and named in variable names: um for lengths, nm for
wavelengths, mJ/cm^2 for fluence, uJ for pulse energy, s for time, Hz for rates. Parsing goes
through pint so any spelling pint knows ("µm", "micrometer", "kHz") works.
"""

from __future__ import annotations

import math
import re
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


# "cm2", "um/s2", "cm-2": a power written without '^' (pint reads "cm2" as an unknown unit name).
# The letters must start a word, so exponents of numbers ("1e3 um") are left alone.
_BARE_POWER = re.compile(r"\b([A-Za-z]+)(-?[23])\b")


def normalize_spelling(text: str) -> str:
    """The common ways people write units, in pint's spelling.

    >>> normalize_spelling("50 mJ/cm2"), normalize_spelling("3 µm"), normalize_spelling("1 mJ cm-2")
    ('50 mJ/cm^2', '3 um', '1 mJ cm^-2')
    >>> normalize_spelling("2 um/s²"), normalize_spelling("1e3 um")
    ('2 um/s^2', '1e3 um')
    """
    text = text.strip().replace("µ", "u").replace("μ", "u").replace("²", "^2").replace("³", "^3")
    return _BARE_POWER.sub(r"\1^\2", text)


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
    text = normalize_spelling(value)
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
    try:
        if q.dimensionality != target.dimensionality:
            raise UnitError(f"expected {kind_word or 'a quantity in ' + unit}, got {value!r}")
        converted = q.to(target).magnitude
    except UnitError:
        raise
    except Exception as exc:  # e.g. 'uJ/cm^nan': NaN exponents make pint raise DimensionalityError (a TypeError)
        raise UnitError(f"cannot convert {value!r} to {unit} ({exc.__class__.__name__})") from None
    return float(f"{converted:.12g}")  # drop conversion noise (0.22 ps -> 220 fs)




def parse_kind(value: object, kind: str) -> float:
    """parse_quantity for one of the named KINDS (e.g. "length_um")."""
    unit, word = KINDS[kind]
    return parse_quantity(value, unit, word)


def format_quantity(magnitude: float, unit: str, digits: int = 4) -> str:
    """Compact human string, e.g. format_quantity(12.5, 'um') -> '12.5 um'."""
    return f"{magnitude:.{digits}g} {unit}"


# Sensible ranges for this process (femtosecond donut-beam ablation of ~100 nm perovskite films,
# then optical pumping of the discs), in the internal unit of each quantity. Outside them a value is
# almost always a unit slip (a bare number read in the wrong unit, uJ for mJ): fabplan warns and
# names the value that the same digits give in the likely intended unit. Not errors: a real sample
# may legitimately sit outside, and the warning says what was assumed.
PLAUSIBLE: dict[str, tuple[float, float, str, str]] = {
    # role: (low, high, unit, what)
    "film_thickness": (10.0, 5_000.0, "nm", "a perovskite film thickness"),
    "ablation_fluence": (1.0, 5_000.0, "mJ/cm^2", "a femtosecond ablation fluence"),
    "pulse_energy": (0.001, 200.0, "uJ", "a pulse energy for a ~10 um ring through a microscope objective"),
    "disc_diameter": (0.5, 500.0, "um", "a microdisc diameter"),
    "ring_diameter": (0.5, 500.0, "um", "a donut ring diameter"),
    "wavelength": (150.0, 3_000.0, "nm", "a laser wavelength"),
    "pump_fluence": (0.01, 2_000.0, "uJ/cm^2", "a lasing pump fluence"),
}


def implausible(value: float, role: str) -> str | None:
    """A warning naming the likely intended value when `value` (internal unit) is far outside the
    sensible range for `role`, else None.

    >>> implausible(0.1, "film_thickness")
    '0.1 nm is outside 10-5000 nm, the usual range for a perovskite film thickness; did you mean 100 nm?'
    >>> implausible(0.04, "ablation_fluence")  # 40 uJ/cm^2 written for 40 mJ/cm^2
    '0.04 mJ/cm^2 is outside 1-5000 mJ/cm^2, the usual range for a femtosecond ablation fluence; did you mean 40 mJ/cm^2?'
    >>> implausible(100.0, "film_thickness") is None
    True
    """
    lo, hi, unit, what = PLAUSIBLE[role]
    if not math.isfinite(value) or lo <= value <= hi:
        return None
    msg = f"{value:g} {unit} is outside {lo:g}-{hi:g} {unit}, the usual range for {what}"
    for factor in (1000.0, 0.001, 1e6, 1e-6):  # a unit prefix off by one or two steps
        guess = float(f"{value * factor:.6g}")
        if lo <= guess <= hi:
            return f"{msg}; did you mean {guess:g} {unit}?"
    return msg
