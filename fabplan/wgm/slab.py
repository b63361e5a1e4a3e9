"""Guided modes of an asymmetric three-layer slab (substrate / film / cover), TE and TM, any order.

Dispersion relation (REFERENCE.md section 4; Kogelnik), with kappa = sqrt(n_f^2 - N^2),
gamma_j = sqrt(N^2 - n_j^2), r_j = 1 (TE) or (n_f/n_j)^2 (TM):

    k0 d kappa = nu pi + atan(r_s gamma_s / kappa) + atan(r_c gamma_c / kappa)

The left side falls and the right side rises with N, so a vectorised bisection on
N in (max(n_s, n_c), n_f) is unconditionally robust; a mode below cutoff gives NaN.

Confinement is the paper's definition (seed section 2.2): the fraction of the electric-field
intensity |E|^2 inside the film, in closed form. Group index n_g = N - lambda dN/dlambda includes the
material dispersion of all three layers through implicit differentiation of the dispersion relation
(complex-step derivatives, so no step-size tuning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fabplan.errors import UserError

POLARIZATIONS = ("te", "tm")


def _check_pol(polarization: str) -> str:
    pol = polarization.lower()
    if pol not in POLARIZATIONS:
        raise UserError(f"polarization must be 'te' or 'tm', got {polarization!r}")
    return pol


def dispersion_residual(n_eff, wavelength_nm, thickness_nm, n_film, n_sub, n_cover, polarization="te", order=0):
    """k0 d kappa - nu pi - atan(..) - atan(..); zero on a guided mode. Accepts complex inputs."""
    pol = _check_pol(polarization)
    k0d = 2.0 * np.pi * thickness_nm / wavelength_nm
    n2 = n_eff * n_eff
    kappa = np.sqrt(n_film * n_film - n2)
    gs = np.sqrt(n2 - n_sub * n_sub)
    gc = np.sqrt(n2 - n_cover * n_cover)
    rs = 1.0 if pol == "te" else (n_film / n_sub) ** 2
    rc = 1.0 if pol == "te" else (n_film / n_cover) ** 2
    return k0d * kappa - order * np.pi - np.arctan(rs * gs / kappa) - np.arctan(rc * gc / kappa)


def slab_neff(wavelength_nm, thickness_nm, n_film, n_sub, n_cover, polarization="te", order=0) -> np.ndarray:
    """Effective index N (NaN where the mode is cut off); all arguments broadcast."""
    wl, d, nf, ns, nc = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (wavelength_nm, thickness_nm, n_film, n_sub, n_cover))
    )
    lo = np.maximum(ns, nc)
    hi = nf.copy()
    if np.any(hi <= lo):
        raise UserError("the film index must exceed both substrate and cover indices for a guided mode")
    span = hi - lo
    a = lo + span * 1e-12
    b = hi - span * 1e-12
    fa = dispersion_residual(a, wl, d, nf, ns, nc, polarization, order)
    guided = fa > 0  # residual decreases with N; positive at the bottom means a root exists
    for _ in range(60):
        mid = 0.5 * (a + b)
        fm = dispersion_residual(mid, wl, d, nf, ns, nc, polarization, order)
        pos = fm > 0
        a = np.where(pos, mid, a)
        b = np.where(pos, b, mid)
    n_eff = 0.5 * (a + b)
    return np.where(guided, n_eff, np.nan)


def slab_confinement(n_eff, wavelength_nm, thickness_nm, n_film, n_sub, n_cover, polarization="te") -> np.ndarray:
    """Fraction of integral |E|^2 inside the film (closed form for the exponential tails)."""
    pol = _check_pol(polarization)
    N = np.asarray(n_eff, dtype=float)
    D = 2.0 * np.pi * np.asarray(thickness_nm, float) / np.asarray(wavelength_nm, float)  # k0 d
    kappa = np.sqrt(n_film**2 - N**2)
    gs = np.sqrt(N**2 - n_sub**2)
    gc = np.sqrt(N**2 - n_cover**2)
    rs = 1.0 if pol == "te" else (n_film / n_sub) ** 2
    rc = 1.0 if pol == "te" else (n_film / n_cover) ** 2
    phs = np.arctan(rs * gs / kappa)
    phc = np.arctan(rc * gc / kappa)
    S = np.sin(2 * phs) + np.sin(2 * phc)
    # Field (E_y for TE, H_y for TM) = cos(k0 kappa x - phs) in the film, lengths in units of 1/k0.
    if pol == "te":
        film = D / 2 + S / (4 * kappa)
        sub = np.cos(phs) ** 2 / (2 * gs)
        cov = np.cos(phc) ** 2 / (2 * gc)
    else:
        # |E|^2 = (N^2 H^2 + (dH/dx)^2) / n^4 from E_x = beta H / (w eps), E_z ~ dH/dx / (w eps).
        film = (N**2 * (D / 2 + S / (4 * kappa)) + kappa**2 * (D / 2 - S / (4 * kappa))) / n_film**4
        sub = np.cos(phs) ** 2 * (N**2 + gs**2) / (2 * gs) / n_sub**4
        cov = np.cos(phc) ** 2 * (N**2 + gc**2) / (2 * gc) / n_cover**4
    return film / (film + sub + cov)


def slab_dneff_dwl(n_eff, wavelength_nm, thickness_nm, n_film, n_sub, n_cover, dn_film, dn_sub, dn_cover,
                   polarization="te", order=0) -> np.ndarray:
    """dN/dlambda (1/nm) including material dispersion dn_j/dlambda, by implicit differentiation."""
    h = 1e-20
    args = [n_eff, wavelength_nm, thickness_nm, n_film, n_sub, n_cover]

    def partial(i: int) -> np.ndarray:
        shifted = list(args)
        shifted[i] = np.asarray(args[i], dtype=complex) + 1j * h
        return dispersion_residual(*shifted, polarization, order).imag / h

    f_n = partial(0)
    total = partial(1) + partial(3) * dn_film + partial(4) * dn_sub + partial(5) * dn_cover
    return -total / f_n


@dataclass(frozen=True)
class SlabMode:
    """One slab mode at one wavelength."""

    wavelength_nm: float
    thickness_nm: float
    polarization: str
    order: int
    n_eff: float
    n_group: float
    confinement: float
    n_film: float
    n_substrate: float
    n_cover: float


def slab_arrays(wavelength_nm, thickness_nm, film, substrate, cover, polarization="te", order=0):
    """(N, n_g, Gamma, dN/dlambda) arrays for Material objects over an array of wavelengths."""
    wl = np.asarray(wavelength_nm, dtype=float)
    nf, ns, nc = film.n(wl), substrate.n(wl), cover.n(wl)
    N = slab_neff(wl, thickness_nm, nf, ns, nc, polarization, order)
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN rows: mode cut off
        dN = slab_dneff_dwl(N, wl, thickness_nm, nf, ns, nc, film.dn_dwl(wl), substrate.dn_dwl(wl),
                            cover.dn_dwl(wl), polarization, order)
        gamma = slab_confinement(N, wl, thickness_nm, nf, ns, nc, polarization)
    return N, N - wl * dN, gamma, dN
