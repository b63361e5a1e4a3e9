"""Donut-beam fluence profiles and the ablation model (see `base.BeamModel` for the contract).

    beam = make_beam(design.beam, design.laser)
    beam.disc_diameter_um(fluence_mj_cm2, pulses); beam.fluence_for_diameter(diameter_um, pulses)

"Peak fluence" is the maximum of F(r) over r for every model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fabplan.beam.annular import AnnularBeam
from fabplan.beam.base import BeamModel, TabulatedBeam
from fabplan.beam.lg01 import Lg01Beam
from fabplan.beam.measured import MeasuredBeam, read_profile_csv
from fabplan.errors import UserError

__all__ = [
    "AnnularBeam",
    "BeamModel",
    "Lg01Beam",
    "MeasuredBeam",
    "TabulatedBeam",
    "expected_diameters",
    "make_beam",
]


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def make_beam(beam: Any, laser: Any = None, base_dir: str | Path | None = None) -> BeamModel:
    """BeamModel from the design's `beam` (and `laser`) sections (pydantic objects or plain dicts).

    `laser` supplies the wavelength (annular image; default 515 nm) and max_pulse_energy (bounds the
    achievable diameter range). A relative measured-profile CSV path is resolved against `base_dir`.
    A whole Design may be passed instead (`make_beam(design)`): its beam, laser and file folder are used.
    """
    if laser is None and _get(beam, "beam") is not None and _get(beam, "laser") is not None:
        design = beam
        path = _get(design, "path")
        beam, laser = _get(design, "beam"), _get(design, "laser")
        if base_dir is None and path is not None:
            base_dir = Path(path).parent
    profile = _get(beam, "profile")
    if profile is None:
        raise UserError("design beam section has no 'profile'")
    threshold = _get(beam, "threshold_fluence")
    if threshold is None:
        raise UserError(
            "beam.threshold_fluence is required (calibrate it from a dose matrix: `fabplan calibrate`)"
        )
    common = {
        "threshold_fluence_mj_cm2": float(threshold),
        "incubation_exponent": float(_get(beam, "incubation_exponent", 0.8) or 0.8),
        "damage_fluence_mj_cm2": _opt_float(_get(beam, "damage_fluence")),
        "max_pulse_energy_uj": _opt_float(_get(laser, "max_pulse_energy")) if laser is not None else None,
        "fluence_definition": str(_get(beam, "fluence_definition", "peak") or "peak"),
    }
    model = _get(profile, "model")
    if model == "lg01":
        return Lg01Beam(ring_diameter_um=float(_get(profile, "ring_diameter")), **common)
    if model == "annular":
        wavelength = _get(laser, "wavelength", 515.0) if laser is not None else 515.0
        return AnnularBeam(
            inner_diameter_um=float(_get(profile, "inner_diameter")),
            outer_diameter_um=float(_get(profile, "outer_diameter")),
            na=float(_get(profile, "na")),
            wavelength_nm=float(wavelength),
            **common,
        )
    if model == "measured":
        path = Path(str(_get(profile, "csv")))
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        r, v = read_profile_csv(
            path,
            _get(profile, "radius_column", "r_um") or "r_um",
            _get(profile, "value_column", "intensity") or "intensity",
        )
        return MeasuredBeam(r_um=r, intensity=v, source=str(path), **common)
    raise UserError(f"unknown beam model {model!r} (expected lg01, annular or measured)")


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def expected_diameters(design: Any, discs: Any) -> np.ndarray:
    """Each disc's diameter: its target where the design gives one, else the beam model's
    prediction for its fluence and pulses (NaN where nothing is ablated or the model cannot be built).

    Summaries, the WGM annotation and the logbook all need a diameter for fluence-specified discs."""
    d = np.asarray(discs.diameter_um, dtype=np.float64).copy()
    todo = ~np.isfinite(d) & np.isfinite(discs.fluence_mj_cm2)
    if todo.any():
        try:
            beam = make_beam(design)
        except UserError:  # e.g. a measured profile that cannot be read: validate reports it elsewhere
            return d
        d[todo] = beam.disc_diameter_um(discs.fluence_mj_cm2[todo], discs.pulses[todo])
    return d
