"""Attenuator setting for a wanted pulse energy, from the design's calibration.

Waveplate + polariser (Malus through a rotated half-wave plate):
    E(theta) = E_min + (E_max - E_min) sin^2(2 (theta - theta0)),  theta in degrees;
the inverse used is the branch theta0 .. theta0 + 45 deg (E rising from E_min to E_max).
Pharos attenuator percentage, linear above an offset where the output vanishes:
    E(p) = energy_at_100 (p - offset) / (100 - offset),  p in offset .. 100 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fabplan.errors import UserError


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute of a pydantic model / namespace, or key of a plain dict."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _out_of_range(energy: np.ndarray, lo: float, hi: float, what: str) -> None:
    tol = 1e-9 * max(abs(hi), 1e-12)
    bad = (energy < lo - tol) | (energy > hi + tol) | ~np.isfinite(energy)
    if np.any(bad):
        vals = ", ".join(f"{v:.4g}" for v in np.unique(energy[bad])[:5])
        raise UserError(f"pulse energy {vals} uJ outside the {what} range {lo:.4g} - {hi:.4g} uJ")


def waveplate_angle_deg(energy_uj, energy_min_uj: float, energy_max_uj: float, theta0_deg: float = 0.0):
    """Half-wave-plate angle (deg) giving this pulse energy."""
    e = np.asarray(energy_uj, dtype=float)
    if not energy_max_uj > energy_min_uj >= 0:
        raise UserError(
            f"waveplate attenuator needs 0 <= energy_min < energy_max, got {energy_min_uj}, {energy_max_uj} uJ"
        )
    _out_of_range(e, energy_min_uj, energy_max_uj, "waveplate attenuator")
    frac = np.clip((e - energy_min_uj) / (energy_max_uj - energy_min_uj), 0.0, 1.0)
    return theta0_deg + np.degrees(np.arcsin(np.sqrt(frac))) / 2.0


def waveplate_energy_uj(theta_deg, energy_min_uj: float, energy_max_uj: float, theta0_deg: float = 0.0):
    """Forward model, for checks and emulators."""
    t = np.radians(2.0 * (np.asarray(theta_deg, dtype=float) - theta0_deg))
    return energy_min_uj + (energy_max_uj - energy_min_uj) * np.sin(t) ** 2


def percent_setting(energy_uj, energy_at_100_uj: float, offset_percent: float = 0.0):
    """Pharos attenuator percentage giving this pulse energy."""
    e = np.asarray(energy_uj, dtype=float)
    if not energy_at_100_uj > 0 or not 0 <= offset_percent < 100:
        raise UserError(
            f"percent attenuator needs energy_at_100 > 0 and 0 <= offset_percent < 100, got "
            f"{energy_at_100_uj} uJ, {offset_percent} %"
        )
    _out_of_range(e, 0.0, energy_at_100_uj, "percent attenuator")
    return offset_percent + np.clip(e / energy_at_100_uj, 0.0, 1.0) * (100.0 - offset_percent)


def percent_energy_uj(percent, energy_at_100_uj: float, offset_percent: float = 0.0):
    """Forward model, for checks and emulators."""
    p = np.asarray(percent, dtype=float)
    return energy_at_100_uj * np.clip(p - offset_percent, 0.0, None) / (100.0 - offset_percent)


def attenuator_setting(attenuator: Any, energy_uj) -> np.ndarray:
    """Setting for each pulse energy: degrees (waveplate), percent (Pharos), NaN without attenuator.

    `attenuator` is the design's `laser.attenuator` (WaveplateAttenuator | PercentAttenuator | None),
    or an equivalent dict. Raises UserError if any energy is outside the attenuator's range.
    """
    e = np.asarray(energy_uj, dtype=float)
    if attenuator is None:
        return np.full(e.shape, np.nan)
    kind = _get(attenuator, "type")
    if kind == "waveplate":
        return waveplate_angle_deg(
            e,
            float(_get(attenuator, "energy_min", 0.0)),
            float(_get(attenuator, "energy_max")),
            float(_get(attenuator, "theta0", 0.0)),
        )
    if kind == "percent":
        return percent_setting(
            e, float(_get(attenuator, "energy_at_100")), float(_get(attenuator, "offset_percent", 0.0) or 0.0)
        )
    raise UserError(f"unknown attenuator type {kind!r} (expected 'waveplate' or 'percent')")
