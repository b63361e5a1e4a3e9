"""The x axis of a two-column spectrum export, from its header: nm, um, angstrom, eV, cm^-1 -> nm.

Counts stay as they are: each value is what one detector pixel collected, not a density per unit
of the axis, so converting the axis needs no Jacobian. Photon energy E (eV) -> lambda = hc/E with
hc = 1239.841984 eV nm (CODATA 2018: h c / e = 1.239841984e-6 eV m); absolute wavenumber
k (cm^-1) -> lambda = 1e7 / k nm. A Raman shift (cm^-1 relative to the laser line) or a pixel axis
is refused. A header naming no unit ("wavelength,counts", "x,y") means nm, as before.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fabplan.errors import UserError

HC_EV_NM = 1239.841984

_UNITS = [  # (pattern on the lower-cased first column name, unit)
    (re.compile(r"raman|shift"), "raman"),
    (re.compile(r"pixel|\bpx\b|channel"), "pixel"),
    (re.compile(r"cm\s*\^?\s*-\s*1|cm⁻¹|1\s*/\s*cm|wave\s*number|wavenumber"), "cm^-1"),
    (re.compile(r"(?<![a-z])(nm|nanomet)"), "nm"),
    (re.compile(r"(?<![a-z])(um|µm|μm|micron|micromet)"), "um"),
    (re.compile(r"(?<![a-z])(angstrom|å|ang)(?![a-z])"), "A"),
    (re.compile(r"(?<![a-z])(mev)(?![a-z])"), "meV"),
    (re.compile(r"(?<![a-z])(ev)(?![a-z])|energy"), "eV"),
]
_PER_SECOND = re.compile(r"/\s*s\b|per\s*s(ec(ond)?)?\b|\bcps\b|counts?\s*/\s*sec|hz")


def axis_unit(header: str) -> str | None:
    """Unit of the first column named in a header line (None: not named)."""
    first = re.split(r"[,;\t]|\s{2,}", header.strip().lstrip("#").strip(), maxsplit=1)[0].lower()
    for pat, unit in _UNITS:
        if pat.search(first):
            return unit
    return None


def counts_per_second(header: str) -> bool:
    parts = re.split(r"[,;\t]|\s{2,}", header.strip().lstrip("#").strip(), maxsplit=1)
    return len(parts) > 1 and bool(_PER_SECOND.search(parts[1].lower()))


def to_nm(p: Path, x: np.ndarray, unit: str | None) -> np.ndarray:
    if unit in (None, "nm"):
        return x
    if unit == "um":
        return x * 1e3
    if unit == "A":
        return x * 0.1
    if unit in ("eV", "meV"):
        e = x * (1e-3 if unit == "meV" else 1.0)
        if np.any(e <= 0):
            raise UserError(f"{p}: photon energies must be > 0 {unit}")
        return HC_EV_NM / e
    if unit == "cm^-1":
        if np.any(x <= 0):
            raise UserError(f"{p}: wavenumbers must be > 0 cm^-1 (a Raman shift needs the laser wavelength)")
        return 1e7 / x
    if unit == "raman":
        raise UserError(
            f"{p}: the x axis is a Raman shift (relative to the laser line): export absolute wavelength "
            "or wavenumber"
        )
    raise UserError(
        f"{p}: the x axis is in pixels (no wavelength calibration): export calibrated wavelengths"
    )
