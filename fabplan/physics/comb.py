"""WGM predictions for the logbook and the lasing simulator, through the estimator when present.

`fabplan.wgm.estimate_disc` is imported lazily: without it (or when it fails for a disc) we fall
back to the free spectral range lambda^2 / (pi D n_g) with n_g ~ 7 at 540 nm (group index of
CsPbBr3 on the red wing incl. material dispersion, Ermolaev-o data; REFERENCE.md section 4), and a
uniform comb. The source of every prediction is returned so reports can say which one was used.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# Fallback group index when the estimator is unavailable or fails for a disc: 7 is the TE0 slab group
# index of a 100 nm CsPbBr3 film at ~540 nm including material dispersion (Ermolaev-o data; REFERENCE.md
# section 4 gives material n_g 6.9 at 540 nm). It sets only the comb spacing (the FSR); it is wrong by
# ~1.6x at 533 nm and 1.4x at 547 nm, which is why every prediction carries its source.
FALLBACK_NG = 7.0
FALLBACK_SOURCE = "lambda^2/(pi D n_g), n_g=7"
DEFAULT_WINDOW_NM = (530.0, 545.0)


def _estimator():
    try:
        from fabplan.wgm import estimate_disc  # type: ignore[attr-defined]
    except ImportError:
        return None
    return estimate_disc


@lru_cache(maxsize=4096)
def _estimate(diameter_um: float, thickness_nm: float, window_nm: tuple[float, float]):
    est = _estimator()
    if est is None:
        return None
    try:
        with np.errstate(all="ignore"):
            return est(diameter_um, thickness_nm=thickness_nm, window_nm=window_nm)
    except Exception:  # the estimator is best-effort here; fall back rather than fail a fit
        return None


def predicted_fsr(
    diameter_um: float,
    wavelength_nm: float = 540.0,
    thickness_nm: float = 100.0,
    window_nm: tuple[float, float] = DEFAULT_WINDOW_NM,
    peaks_nm=None,
) -> tuple[float, str]:
    """(FSR in nm, source) for a disc of this diameter, comparable with a measured spacing.

    The one FSR definition shown to users: `fabplan.wgm.free_spectral_range` (the local spacing of
    the fundamental family from exact dispersive roots), the number `validate`, `plan` and `preview`
    print, evaluated here at the middle of the measured peaks (`peaks_nm`), else at `wavelength_nm`
    (the FSR changes by ~2x across 533-547 nm through material dispersion, so like must be compared
    with like). `window_nm` is kept for callers; the FSR does not depend on it.
    """
    if not (diameter_um and math.isfinite(diameter_um) and diameter_um > 0):
        return float("nan"), ""
    pk = np.sort(np.asarray(peaks_nm, dtype=np.float64)) if peaks_nm is not None and len(peaks_nm) else None
    centre = float(np.mean(pk)) if pk is not None else float(wavelength_nm)
    if math.isfinite(centre):
        fsr = _local_fsr(round(float(diameter_um), 3), round(centre, 3), float(thickness_nm))
        if fsr is not None:
            return fsr, "fabplan.wgm"
    return centre**2 / (math.pi * diameter_um * 1e3 * FALLBACK_NG), FALLBACK_SOURCE


@lru_cache(maxsize=4096)
def _local_fsr(diameter_um: float, wavelength_nm: float, thickness_nm: float) -> float | None:
    try:
        from fabplan.wgm import free_spectral_range  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        with np.errstate(all="ignore"):
            fsr = float(free_spectral_range(diameter_um, wavelength_nm, thickness_nm))
    except Exception:  # the estimator is best-effort here; fall back rather than fail a fit
        return None
    return fsr if math.isfinite(fsr) and fsr > 0 else None


def mode_wavelengths(dm) -> np.ndarray:
    """Sorted wavelengths of the first radial order from an estimator result (may be empty)."""
    modes = list(getattr(dm, "modes", []) or [])
    wl = [m.wavelength_nm for m in modes if getattr(m, "radial_order", 1) in (1, 0)]
    return np.sort(np.asarray(wl, dtype=np.float64))


def comb(
    diameter_um: float, window_nm: tuple[float, float] = DEFAULT_WINDOW_NM, thickness_nm: float = 100.0
) -> tuple[np.ndarray, str]:
    """Resonance wavelengths in the window: the estimator's, else a comb with the fallback FSR."""
    dm = _estimate(round(float(diameter_um), 3), float(thickness_nm), tuple(window_nm))
    if dm is not None:
        wl = mode_wavelengths(dm)
        wl = wl[(wl >= window_nm[0]) & (wl <= window_nm[1])]
        if wl.size:
            return wl, "fabplan.wgm"
    lo, hi = window_nm
    out = []
    lam = lo + 0.37 * predicted_fsr(diameter_um, lo)[0]  # arbitrary phase: the comb is not pinned
    while lam <= hi:
        out.append(lam)
        lam += predicted_fsr(diameter_um, lam)[0]
    return np.asarray(out), FALLBACK_SOURCE
