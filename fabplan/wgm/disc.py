"""Whispering-gallery resonances of a 2-D disc (effective-index model): exact complex roots.

A disc of radius R, index N inside (the slab effective index) and n_o outside, x = k0 R, H = H^(1):

    E_z family:  N J_m'(N x)/J_m(N x) = n_o H_m'(n_o x)/H_m(n_o x)
    H_z family:  J_m'(N x)/(N J_m(N x)) = H_m'(n_o x)/(n_o H_m(n_o x))

(REFERENCE.md section 4). Slab TE (E in the film plane) maps to H_z, slab TM to E_z.
Resonance wavelength lambda = 2 pi R / Re x, radiative Q = Re x / (2 |Im x|).

The equations are written with logarithmic derivatives L(z) = C'(z)/C(z), whose z-derivative comes free
from Bessel's equation, L' = -L/z - (1 - m^2/z^2) - L^2, so Newton needs only C_{m-1}, C_m.
Seeds come from the Airy-zero asymptotic series (Lam, Leung & Young, JOSA B 9, 1585 (1992)).

With dispersive indices, N = N(lambda) and n_o = n_o(lambda) are re-evaluated at lambda = 2 pi R / Re x
inside the Newton iteration (a 2x2 real Newton on Re x, Im x), so the root is self-consistent.

For high Q the imaginary part of x falls below double-precision resolution of a complex Bessel
evaluation; above Q ~ 1e7 Im x is taken from one Newton step at real x (first-order perturbation),
where Im H'/H is computed without cancellation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import hankel1, jv, yv

# Negative zeros of Ai: a_q, q = 1..10 (Abramowitz & Stegun table 10.13).
AIRY_ZEROS = np.array([
    -2.338107410459767, -4.087949444130971, -5.520559828095551, -6.786708090071759,
    -7.944133587120853, -9.022650853340980, -10.04017434155809, -11.00852430373326,
    -11.93601556323626, -12.82877675286576,
])
FAMILIES = ("Ez", "Hz")
Q_RAD_MAX = 1e300  # beyond double range: radiation loss is nil for any practical purpose


def family_for(polarization: str) -> str:
    """Slab TE (in-plane E) -> H_z; slab TM -> E_z."""
    return "Hz" if polarization.lower() == "te" else "Ez"


def airy_zero(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=int)
    small = AIRY_ZEROS[np.clip(q - 1, 0, len(AIRY_ZEROS) - 1)]
    t = 3 * np.pi / 8 * (4 * q - 1)
    large = -(t ** (2 / 3)) * (1 + 5 / 48 / t**2)  # A&S 10.4.94
    return np.where(q <= len(AIRY_ZEROS), small, large)


def asymptotic_x(m, q, n_in, n_out, family: str) -> np.ndarray:
    """Seed k0 R from the Airy-zero series to O(m^-2/3), n = n_in/n_out (P = 1 for E_z, 1/n^2 for H_z)."""
    m = np.asarray(m, dtype=float)
    n = np.asarray(n_in, dtype=float) / np.asarray(n_out, dtype=float)
    # Lam et al. write the series with P' = n P: n (E_z, like sphere TE) or 1/n (H_z, like TM).
    Pp = n if family == "Ez" else 1.0 / n
    alpha = -airy_zero(q)
    s = np.sqrt(np.maximum(n**2 - 1, 1e-6))  # guard: n < 1 only in transient extrapolations
    nx = (
        m
        + 2 ** (-1 / 3) * alpha * m ** (1 / 3)
        - Pp / s
        + 0.3 * 2 ** (-2 / 3) * alpha**2 * m ** (-1 / 3)
        - 2 ** (-1 / 3) * Pp * (n**2 - 2 * Pp**2 / 3) * alpha * m ** (-2 / 3) / s**3
    )
    return nx / (n * np.asarray(n_out, dtype=float))


def _log_derivs(m: np.ndarray, z: np.ndarray, func) -> tuple[np.ndarray, np.ndarray]:
    """L = C_m'/C_m and dL/dz for a Bessel-type function C (jv or hankel1)."""
    c = func(np.stack([m - 1, m]), np.stack([z, z]))
    L = c[0] / c[1] - m / z
    dL = -L / z - (1.0 - (m / z) ** 2) - L * L
    return L, dL


def _hankel1_real(m, z):
    """H^(1) = J + iY at real z from separate real evaluations: keeps the tiny J accurate (a complex
    H^(1) evaluation carries an absolute error ~eps |Y| on it, which would swamp high-Q Im parts)."""
    return jv(m, z) + 1j * yv(m, z)


def char_terms(x, m, n_in, n_out, family: str):
    """f and its partials (f, df/dx, df/dn_in, df/dn_out) of the log-derivative equation."""
    zi = n_in * x
    zo = n_out * x
    Lj, dLj = _log_derivs(m, zi, jv)
    Lh, dLh = _log_derivs(m, zo, _hankel1_real if np.isrealobj(zo) else hankel1)
    if family == "Ez":
        f = n_in * Lj - n_out * Lh
        fx = n_in**2 * dLj - n_out**2 * dLh
        fn = Lj + zi * dLj
        fo = -(Lh + zo * dLh)
    else:
        f = Lj / n_in - Lh / n_out
        fx = dLj - dLh
        fn = -Lj / n_in**2 + x * dLj / n_in
        fo = Lh / n_out**2 - x * dLh / n_out
    return f, fx, fn, fo


IndexModel = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
"""lambda_nm -> (n_in, dn_in/dlambda, n_out, dn_out/dlambda), vectorised."""


def solve_fixed(m, q, n_in, n_out, family: str, x0=None, tol: float = 1e-13, max_iter: int = 50) -> np.ndarray:
    """Complex roots x for fixed (non-dispersive) indices; vectorised over broadcast arguments."""
    m, q, n_in, n_out = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (m, q, n_in, n_out)))
    x = np.asarray(asymptotic_x(m, q.astype(int), n_in, n_out, family) if x0 is None else x0, complex)
    x = x + 0j
    active = np.ones(x.shape, bool)
    for _ in range(max_iter):
        idx = np.nonzero(active)
        if not idx[0].size:
            break
        xa = x[idx]
        f, fx, _, _ = char_terms(xa, m[idx], n_in[idx], n_out[idx], family)
        step = -f / fx
        step = _limit(step, xa, n_in[idx])
        x[idx] = xa + step
        active[idx] = np.abs(step) > tol * np.abs(xa)
    return _polish_imag(x, m, n_in, n_out, family)


def _limit(step, x, n_in):
    """Cap a Newton step at a quarter of the inside zero spacing (pi / N) to stay on one branch."""
    cap = 0.25 * np.pi / n_in
    mag = np.abs(step)
    return np.where(mag > cap, step * cap / np.maximum(mag, 1e-300), step)


def _polish_imag(x, m, n_in, n_out, family: str, q_switch: float = 1e7):
    """Replace Im x of high-Q roots by the first-order value from a real-axis evaluation."""
    x = np.array(x, dtype=complex)
    hi = np.abs(x.real) > 2 * q_switch * np.abs(x.imag)
    hi &= np.isfinite(x)
    if np.any(hi):
        xr = x.real[hi]  # real dtype: J real, H = J + iY with Im H'/H free of rounding noise
        f, fx, _, _ = char_terms(xr, m[hi], n_in[hi], n_out[hi], family)
        x[hi] = x.real[hi] + 1j * (-f / fx).imag
    return x


def solve_dispersive(m, q, radius_um: np.ndarray, index_model: IndexModel, family: str,
                     wl0_nm: np.ndarray, tol: float = 1e-12, max_iter: int = 60):
    """Self-consistent roots with N(lambda), n_o(lambda) evaluated at the resonance wavelength.

    2x2 real Newton on (Re x, Im x) of F(x) = f(x, N(2 pi R / Re x), n_o(2 pi R / Re x)).
    Returns (x, lambda_nm, n_in at resonance, converged mask). Non-converged rows are NaN.
    """
    m = np.asarray(m, dtype=float)
    q = np.asarray(q, dtype=int)
    R_nm = np.asarray(radius_um, dtype=float) * 1000.0
    wl = np.asarray(wl0_nm, dtype=float)
    n_in, _, n_out, _ = index_model(wl)
    x = asymptotic_x(m, q, n_in, n_out, family).astype(complex)
    # The seed's lambda is not wl0 when wl0 was itself rough: one fixed-point pass brings them together.
    x = solve_fixed(m, q, n_in, n_out, family, x0=x, tol=1e-6, max_iter=8)
    active = np.isfinite(x)
    done = np.zeros(x.shape, bool)
    for _ in range(max_iter):
        idx = np.nonzero(active & ~done)[0]
        if not idx.size:
            break
        xa = x[idx]
        lam = 2 * np.pi * R_nm[idx] / xa.real
        ni, dni, no, dno = index_model(lam)
        f, fx, fn, fo = char_terms(xa, m[idx], ni, no, family)
        g = fx + (fn * dni + fo * dno) * (-lam / xa.real)
        # [[Re g, Re(i fx)], [Im g, Im(i fx)]] [dxr, dxi] = -[Re f, Im f]
        a11, a12, a21, a22 = g.real, -fx.imag, g.imag, fx.real
        det = a11 * a22 - a12 * a21
        dxr = (-f.real * a22 + a12 * f.imag) / det
        dxi = (-a11 * f.imag + a21 * f.real) / det
        step = _limit(dxr + 1j * dxi, xa, ni)
        xn = xa + step
        bad = ~np.isfinite(xn) | (xn.real <= 0)
        x[idx] = np.where(bad, np.nan, xn)
        active[idx[bad]] = False
        done[idx] = np.abs(step) <= tol * np.abs(xa)
    ok = done & np.isfinite(x)
    x = np.where(ok, x, np.nan + 0j)
    lam = np.where(ok, 2 * np.pi * R_nm / np.where(ok, x.real, 1.0), np.nan)
    ni = np.full(x.shape, np.nan)
    if np.any(ok):
        ni_ok, _, no_ok, _ = index_model(lam[ok])
        ni[ok] = ni_ok
        x[ok] = _polish_imag(x[ok], m[ok], ni_ok, no_ok, family)
    return x, lam, ni, ok


def q_rad(x: np.ndarray) -> np.ndarray:
    """Radiative Q = Re x / (2 |Im x|), capped at Q_RAD_MAX."""
    x = np.asarray(x, dtype=complex)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = x.real / (2 * np.abs(x.imag))
    return np.where(np.isnan(x.real), np.nan, np.minimum(q, Q_RAD_MAX))
