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
evaluation; above Q ~ 1e8 the Newton iteration evaluates at real x and takes Im x from the linearised
step (first-order perturbation, relative error ~1/Q, carried to the final Re x with d ln(Im x)/dx),
where Im H'/H = 2/(pi z |H|^2) is exact. Above Q ~ 1e300 (discs of ~100 um in air) Q is reported as
Q_RAD_MAX. Roots are labelled by radial order from the Bessel phase (zeros of J_m inside the disc).
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


def _derivs(L, m, z):
    """dL/dz and d2L/dz2 from Bessel's equation: L' = -L/z - (1 - m^2/z^2) - L^2."""
    dL = -L / z - (1.0 - (m / z) ** 2) - L * L
    d2L = -dL / z + L / z**2 - 2 * m * m / z**3 - 2 * L * dL
    return dL, d2L


def _log_derivs(m: np.ndarray, z: np.ndarray, func):
    """L = C_m'/C_m, dL/dz, d2L/dz2 for a Bessel-type function C (jv or hankel1)."""
    c = func(np.stack([m - 1, m]), np.stack([z, z]))
    L = c[0] / c[1] - m / z
    return (L, *_derivs(L, m, z))


def _log_derivs_h_real(m: np.ndarray, z: np.ndarray):
    """L = H_m'/H_m at real z with Im L exact: Im(H_{m-1}/H_m) = 2 / (pi z |H_m|^2) (cross product
    J_{m-1} Y_m - J_m Y_{m-1} = -2/(pi z)). A plain complex division would carry an absolute error
    ~eps |Y| on the tiny J parts, swamping the Im x of high-Q modes. Where |H_m| overflows (discs
    of ~100 um), Re L comes from an upward recurrence of Y ratios and Im L = 0 (Q beyond 1e300)."""
    c = hankel1(np.stack([m - 1, m]), np.stack([z, z]))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        a = np.abs(c[1])
        ratio = c[0] / c[1]
        im = (2.0 / (np.pi * z) / a) / a
    big = ~(np.isfinite(ratio) & (a < 1e300))
    if np.any(big):
        ratio = np.array(ratio, dtype=complex)
        ratio[big] = _y_ratio_upward(m[big], z[big])
        im = np.where(big, 0.0, im)
    L = ratio.real + 1j * im - m / z
    return (L, *_derivs(L, m, z))


def _y_ratio_upward(m: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Y_{m-1}(z)/Y_m(z) for z < m where Y_m overflows: start at an order m0 whose Y is finite and
    recur upwards, 1/r_{k+1} = 2k/z - r_k (stable: Y is the dominant solution)."""
    m0 = np.maximum(np.floor(z) + 1.0, 1.0)
    # Largest order with |Y| < 1e280: bisection on k between z and m (Y grows monotonically there).
    lo, hi = m0.copy(), m.copy()
    for _ in range(40):
        mid = np.floor(0.5 * (lo + hi))
        with np.errstate(over="ignore"):
            ok = np.abs(yv(mid, z)) < 1e280
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    k = lo
    with np.errstate(over="ignore", invalid="ignore"):
        r = yv(k - 1, z) / yv(k, z)
    for _ in range(int(np.max(m - k))):
        step = k < m
        r = np.where(step, 1.0 / (2 * k / z - r), r)
        k = np.where(step, k + 1, k)
    return r + 0j


def char_terms(x, m, n_in, n_out, family: str):
    """f, df/dx, df/dn_in, df/dn_out, d2f/dx2 of the log-derivative equation."""
    zi = n_in * x
    zo = n_out * x
    Lj, dLj, d2Lj = _log_derivs(m, zi, jv)
    Lh, dLh, d2Lh = _log_derivs_h_real(m, zo) if np.isrealobj(zo) else _log_derivs(m, zo, hankel1)
    if family == "Ez":
        f = n_in * Lj - n_out * Lh
        fx = n_in**2 * dLj - n_out**2 * dLh
        fxx = n_in**3 * d2Lj - n_out**3 * d2Lh
        fn = Lj + zi * dLj
        fo = -(Lh + zo * dLh)
    else:
        f = Lj / n_in - Lh / n_out
        fx = dLj - dLh
        fxx = n_in * d2Lj - n_out * d2Lh
        fn = -Lj / n_in**2 + x * dLj / n_in
        fo = Lh / n_out**2 - x * dLh / n_out
    return f, fx, fn, fo, fxx


IndexFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
"""lambda_nm -> (n_in, dn_in/dlambda, n_out, dn_out/dlambda), vectorised."""

Q_REAL_AXIS = 1e8  # above this Q, evaluate on the real axis and get Im x by linearisation


def _newton(m, x, indices, family: str, max_iter: int = 40, rtol: float = 1e-8):
    """2x2 real Newton on (Re x, Im x) for F(x) = f(x, n_in(Re x), n_out(Re x)).

    `indices(rows, x_r)` -> (n_in, dn_in/dx_r, n_out, dn_out/dx_r). f is holomorphic in x, so
    dF/dRe x = f_x + f_n dn/dx_r + f_o dn_o/dx_r and dF/dIm x = i f_x.
    Rows whose Q exceeds Q_REAL_AXIS are evaluated at real x: the Newton step's imaginary part is then
    Im x itself (first order in Im x, relative error ~1/Q), and Im H'/H stays accurate far below the
    rounding level of a complex Bessel evaluation. Iteration stops one step after |dx| < rtol |x|
    (quadratic convergence: the last applied step leaves an error ~rtol^2). Non-converged rows: NaN.
    """
    x = np.array(x, dtype=complex)
    todo = np.nonzero(np.isfinite(x))[0]
    done = np.zeros(x.shape, bool)
    for _ in range(max_iter):
        if not todo.size:
            break
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN rows are dropped
            todo = _newton_step(x, todo, done, m, indices, family, rtol)
    x[~done] = np.nan
    return x


def _newton_step(x, todo, done, m, indices, family, rtol):
    """One iteration of `_newton` on rows `todo` (updates x, done in place; returns rows left)."""
    xa = x[todo]
    ni, dni, no, dno = indices(todo, xa.real)
    real_axis = np.abs(xa.real) > 2 * Q_REAL_AXIS * np.abs(xa.imag)
    f = np.empty(todo.size, complex)
    fx = np.empty_like(f)
    g = np.empty_like(f)
    fxx = np.empty_like(f)
    for sel, xe in ((real_axis, xa.real), (~real_axis, xa)):
        if np.any(sel):
            fs, fxs, fns, fos, fxx[sel] = char_terms(xe[sel], m[todo][sel], ni[sel], no[sel], family)
            f[sel], fx[sel], g[sel] = fs, fxs, fxs + fns * dni[sel] + fos * dno[sel]
    # [[Re g, Re(i fx)], [Im g, Im(i fx)]] [dxr, dxi] = -[Re f, Im f]
    a11, a12, a21, a22 = g.real, -fx.imag, g.imag, fx.real
    det = a11 * a22 - a12 * a21
    dxr = (-f.real * a22 + a12 * f.imag) / det
    dxi = (-a11 * f.imag + a21 * f.real) / det
    step = _limit(dxr + 1j * dxi, ni)
    # Real-axis rows: Im x = -Im f / Re f_x at this Re x (first order; the 2x2 step's Im part would
    # add Im g dxr without the matching change of Re f_x, an O(dxr) relative error). Carry it to the
    # new Re x with d ln(Im x)/dx = Im g / Im f - Re f_xx / Re f_x (f holomorphic: on the real
    # axis d Im F/dx = Im g).
    kappa = g.imag / f.imag - fxx.real / fx.real
    xi_here = -f.imag / fx.real
    kappa = np.where(np.isfinite(kappa), kappa, 0.0)
    new_i = np.where(real_axis, xi_here * np.exp(np.clip(kappa * step.real, -50, 50)),
                     xa.imag + step.imag)
    xn = (xa.real + step.real) + 1j * new_i
    bad = ~np.isfinite(xn) | (xn.real <= 0)
    x[todo] = np.where(bad, np.nan, xn)
    conv = np.abs(step.real) < rtol * np.abs(xa)
    conv &= real_axis | (np.abs(step.imag) < rtol * np.abs(xa))
    done[todo[conv & ~bad]] = True
    return todo[~conv & ~bad]


def solve_fixed(m, q, n_in, n_out, family: str, x0=None, max_iter: int = 40) -> np.ndarray:
    """Complex roots x for fixed (non-dispersive) indices; vectorised over broadcast arguments."""
    m, q, n_in, n_out = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (m, q, n_in, n_out)))
    x = asymptotic_x(m, q.astype(int), n_in, n_out, family) if x0 is None else x0
    zeros = np.zeros(m.shape)

    def indices(rows, _xr):
        return n_in[rows], zeros[rows], n_out[rows], zeros[rows]

    return _newton(m, np.broadcast_to(np.asarray(x, complex), m.shape), indices, family, max_iter)


def _limit(step, n_in):
    """Cap a Newton step at a quarter of the inside zero spacing (pi / N) to stay on one branch."""
    cap = 0.25 * np.pi / n_in
    mag = np.abs(step)
    return np.where(mag > cap, step * cap / np.maximum(mag, 1e-300), step)


def solve_dispersive(m, q, radius_um: np.ndarray, index_model: IndexFn, family: str,
                     wl0_nm: np.ndarray, max_iter: int = 40):
    """Self-consistent roots with N(lambda), n_o(lambda) evaluated at lambda = 2 pi R / Re x.

    Seeded by the Airy series at the indices of `wl0_nm`. Returns (x, lambda_nm, n_in at resonance,
    converged mask); non-converged rows are NaN.
    """
    m = np.asarray(m, dtype=float)
    q = np.asarray(q, dtype=int)
    R_nm = np.asarray(radius_um, dtype=float) * 1000.0
    n_in, _, n_out, _ = index_model(np.asarray(wl0_nm, dtype=float))
    x0 = asymptotic_x(m, q, n_in, n_out, family)

    def indices(rows, xr):
        lam = 2 * np.pi * R_nm[rows] / xr
        ni, dni, no, dno = index_model(lam)
        dlam_dx = -lam / xr
        return ni, dni * dlam_dx, no, dno * dlam_dx

    x = _newton(m, x0, indices, family, max_iter)
    ok = np.isfinite(x)
    lam = np.full(m.shape, np.nan)
    lam[ok] = 2 * np.pi * R_nm[ok] / x.real[ok]
    ni = np.full(m.shape, np.nan)
    if np.any(ok):
        ni[ok] = index_model(lam[ok])[0]
    return x, lam, ni, ok


def radial_order(m, z) -> np.ndarray:
    """Radial order of a resonance = 1 + number of zeros of J_m in (0, z), z = N Re x.

    From the Bessel phase theta = atan2(Y_m, J_m), which rises monotonically from -pi/2 and passes
    -pi/2 + k pi at the k-th zero; the branch of atan2 is fixed by the Debye phase
    sqrt(z^2 - m^2) - m arccos(m/z) - pi/4 (error < 0.3 rad even at the turning point).
    """
    m = np.asarray(m, dtype=float)
    z = np.asarray(z, dtype=float)
    with np.errstate(invalid="ignore"):
        debye = np.where(z > m, np.sqrt(np.maximum(z * z - m * m, 0.0)) - m * np.arccos(np.minimum(m / z, 1.0)),
                         0.0) - np.pi / 4
    theta = np.arctan2(yv(m, z), jv(m, z))
    theta = theta + 2 * np.pi * np.round((debye - theta) / (2 * np.pi))
    return (np.floor((theta + np.pi / 2) / np.pi) + 1).astype(int)


def q_rad(x: np.ndarray) -> np.ndarray:
    """Radiative Q = Re x / (2 |Im x|), capped at Q_RAD_MAX."""
    x = np.asarray(x, dtype=complex)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = x.real / (2 * np.abs(x.imag))
    return np.where(np.isnan(x.real), np.nan, np.minimum(q, Q_RAD_MAX))
