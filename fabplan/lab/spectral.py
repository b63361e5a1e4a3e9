"""Spectral analysis, vectorised over a batch of spectra sharing one wavelength axis.

Two layers. The multimode layer (`fit_lines`, `find_lines`, `offset`) fits every cavity mode together
with its neighbours: a sum of Voigt profiles whose Gaussian part is the spectrometer's instrument
function (known resolution FWHM) and whose Lorentzian part is the cavity line, on a quadratic local
background (the spontaneous band under the comb), weighted by the detector noise (Poisson + read).
A single-peak Lorentzian in a +-12 pixel window took in the neighbouring modes (0.3 nm lines in a
1.1 nm comb came out 0.09 nm; issue 18). The quick layer below (`analyse`) keeps the batched
single-Lorentzian FWHM for whole-window summaries.

Per spectrum: baseline (`offset`: unbiased, see there), integrated emission in a window,
dominant peak, FWHM by a Lorentzian fit (batched Levenberg-Marquardt, so 40,000 spectra fit in
seconds) and its deconvolution from a Gaussian instrument function of stated FWHM (Olivero &
Longbothum 1977 Voigt-width approximation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HALF_WINDOW = 12  # Lorentzian fit uses 2*HALF_WINDOW+1 samples around the peak (strided if broad)


@dataclass
class SpectralBatch:
    baseline: np.ndarray
    integrated: np.ndarray  # counts*nm (per second when integration times are known)
    peak_nm: np.ndarray
    peak_height: np.ndarray
    fwhm_nm: np.ndarray  # Lorentzian FWHM as measured (instrument included)
    fwhm_err_nm: np.ndarray


def baseline(y: np.ndarray) -> np.ndarray:
    """Detector offset per spectrum (see `offset`)."""
    return offset(y)


SMOOTH_PX = 31  # running-mean length for choosing the dark region


def offset(y: np.ndarray, dark: np.ndarray | None = None) -> np.ndarray:
    """Detector offset per spectrum (rows of `y`), unbiased by the noise.

    With a dark frame, its mean. Otherwise the darkest region is chosen on a running mean of the EVEN
    pixels and the ODD pixels there are averaged: the noise that decided the choice is not the noise
    averaged, so (for pixel-independent read and shot noise) the estimate is unbiased. "Mean of the
    darkest 5 % of pixels" sat ~2 sigma_read low (it selects noise minima; issue 18). Emission left in
    the dark region is a common offset that the mode fits' background absorbs.
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if dark is not None:
        return np.full(y.shape[0], float(np.mean(dark)))
    ev, od = y[:, 0::2], y[:, 1::2]
    m = od.shape[1]
    ev = ev[:, :m]
    w = min(SMOOTH_PX // 2 + 1, max(1, m // 10))
    c = np.cumsum(np.pad(ev, ((0, 0), (1, 0))), axis=1)
    sm = (c[:, w:] - c[:, :-w]) / w  # (n, m - w + 1)
    k = max(1, sm.shape[1] // 20)
    idx = np.argpartition(sm, k, axis=1)[:, :k]  # window starts of the darkest 5 % of windows
    mask = np.zeros(od.shape, bool)
    rows = np.repeat(np.arange(y.shape[0]), k)
    for j in range(w):
        mask[rows, (idx + j).ravel()] = True
    return (od * mask).sum(axis=1) / mask.sum(axis=1)


def read_noise(y: np.ndarray, base: np.ndarray) -> float:
    """Read-noise estimate (counts) from pixel-to-pixel differences near the offset."""
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    d = np.diff(y, axis=1)
    lvl = y[:, 1:] - np.asarray(base, dtype=np.float64)[:, None]
    near = lvl <= np.percentile(lvl, 10, axis=1)[:, None] + 5.0  # the darkest pixels of each frame
    v = d[near] if near.sum() > 20 else d.ravel()
    mad = float(np.median(np.abs(v - np.median(v)))) * 1.4826
    return max(mad / np.sqrt(2.0), 0.5)


def analyse(wl: np.ndarray, y: np.ndarray, window_nm: tuple[float, float] | None = None) -> SpectralBatch:
    """Analyse spectra `y` (n x m) on axis `wl` (m,), ascending nm."""
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    n, m = y.shape
    base = baseline(y)
    ys = y - base[:, None]
    lo, hi = window_nm if window_nm else (wl[0], wl[-1])
    inwin = (wl >= lo) & (wl <= hi)
    if inwin.sum() < 3:
        raise ValueError(f"integration window {lo}-{hi} nm holds fewer than 3 pixels")
    dx = np.gradient(wl)
    integrated = ys @ np.where(inwin, dx, 0.0)
    # Dominant peak in the window, on a 3-pixel running mean (robust to single-pixel noise).
    sm = ys.copy()
    sm[:, 1:-1] = (ys[:, :-2] + ys[:, 1:-1] + ys[:, 2:]) / 3.0
    masked = np.where(inwin[None, :], sm, -np.inf)
    p = masked.argmax(axis=1)
    height = sm[np.arange(n), p]
    fw_px = _halfmax_width_px(sm, p, height)
    x0, gamma, gerr, amp = lorentz_fit(wl, ys, p, fw_px)
    return SpectralBatch(base, integrated, x0, amp, 2 * gamma, 2 * gerr)


def _halfmax_width_px(y: np.ndarray, p: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Full width at half maximum in pixels from the half-max crossings either side of the peak."""
    n, m = y.shape
    j = np.arange(m)[None, :]
    below = y < (h / 2)[:, None]
    left = np.where(below & (j < p[:, None]), j, -1).max(axis=1)
    right = np.where(below & (j > p[:, None]), j, m).min(axis=1)
    left = np.where(left < 0, 0, left)
    right = np.where(right >= m, m - 1, right)
    return np.maximum(right - left - 1, 1).astype(np.float64)


def lorentz_fit(wl, ys, p, fw_px, iterations: int = 30):
    """Batched LM fit of B + A / (1 + ((x - x0)/g)^2) on 2K+1 samples around each peak.

    Returns x0, g (HWHM), sigma(g), A. Wavelength axis need not be uniform.
    """
    n, m = ys.shape
    stride = np.maximum(1, np.ceil(1.5 * fw_px / HALF_WINDOW)).astype(np.int64)
    offs = np.arange(-HALF_WINDOW, HALF_WINDOW + 1)[None, :]
    idx = p[:, None] + offs * stride[:, None]
    valid = (idx >= 0) & (idx < m)
    idx = np.clip(idx, 0, m - 1)
    x = wl[idx]
    yy = np.take_along_axis(ys, idx, axis=1)
    w = valid.astype(np.float64)
    dwl = np.gradient(wl)[p]
    # Start: peak position, half-max half-width, height, zero offset.
    th = np.stack([np.zeros(n), ys[np.arange(n), p], wl[p], np.maximum(0.5 * fw_px * dwl, 0.3 * dwl)], axis=1)
    lam = np.full(n, 1e-3)

    def resid_jac(th):
        b, a, x0, g = th.T
        t = (x - x0[:, None]) / g[:, None]
        L = 1.0 / (1.0 + t * t)
        r = (b[:, None] + a[:, None] * L - yy) * w
        J = (
            np.stack(
                [
                    np.ones_like(L),
                    L,
                    a[:, None] * L * L * 2 * t / g[:, None],
                    a[:, None] * L * L * 2 * t * t / g[:, None],
                ],
                axis=2,
            )
            * w[:, :, None]
        )
        return r, J

    r, J = resid_jac(th)
    cost = (r * r).sum(axis=1)
    for _ in range(iterations):
        Jt = J.transpose(0, 2, 1)
        JTJ = Jt @ J
        g = (Jt @ r[:, :, None])[:, :, 0]
        D = np.einsum("nii->ni", JTJ)
        A = JTJ + (lam[:, None] * np.maximum(D, 1e-30))[:, :, None] * np.eye(4)[None]
        try:
            step = np.linalg.solve(A, -g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = np.zeros_like(th)
        new = th + step
        new[:, 3] = np.maximum(np.abs(new[:, 3]), 1e-4 * dwl)
        r2, J2 = resid_jac(new)
        c2 = (r2 * r2).sum(axis=1)
        ok = np.isfinite(c2) & (c2 < cost)
        th = np.where(ok[:, None], new, th)
        r = np.where(ok[:, None], r2, r)
        J = np.where(ok[:, None, None], J2, J)
        cost = np.where(ok, c2, cost)
        lam = np.where(ok, lam * 0.3, lam * 10.0)
    dof = np.maximum(w.sum(axis=1) - 4, 1)
    JTJ = np.einsum("nki,nkj->nij", J, J)
    with np.errstate(all="ignore"):
        try:
            cov = np.linalg.inv(JTJ) * (cost / dof)[:, None, None]
            gerr = np.sqrt(np.abs(cov[:, 3, 3]))
        except np.linalg.LinAlgError:
            gerr = np.full(n, np.nan)
    return th[:, 2], th[:, 3], gerr, th[:, 1]


def deconvolve_fwhm(measured_nm, resolution_nm):
    """Lorentzian FWHM from a measured (Voigt) FWHM and a Gaussian instrument FWHM.

    Olivero & Longbothum: f_V ~ 0.5346 f_L + sqrt(0.2166 f_L^2 + f_G^2), solved for f_L.
    Returns (f_L, limited) where limited marks widths within 5 % of the resolution (f_L is then
    only an upper bound and is reported as the resolution).
    """
    fv = np.asarray(measured_nm, dtype=np.float64)
    fg = float(resolution_nm or 0.0)
    limited = fv <= 1.05 * fg
    a, b, c = 0.0692, -1.0692 * fv, fv * fv - fg * fg
    with np.errstate(invalid="ignore"):
        fl = (-b - np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / (2 * a)
    return np.where(limited, fg, fl), limited


def find_modes(wl: np.ndarray, y: np.ndarray, rel_prominence: float = 0.05) -> np.ndarray:
    """Sub-pixel wavelengths of the lasing peaks in one spectrum (parabolic interpolation)."""
    from scipy.signal import find_peaks

    y = np.asarray(y, dtype=np.float64) - baseline(y[None, :])[0]
    top = float(y.max())
    if top <= 0:
        return np.empty(0)
    idx, _ = find_peaks(y, prominence=rel_prominence * top, distance=2)
    idx = idx[(idx > 0) & (idx < len(y) - 1)]
    ym, y0, yp = y[idx - 1], y[idx], y[idx + 1]
    den = ym - 2 * y0 + yp
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(den != 0, 0.5 * (ym - yp) / den, 0.0)
    d = np.clip(d, -0.5, 0.5)
    return np.interp(idx + d, np.arange(len(wl)), wl)


def mode_spacing(peaks_nm: np.ndarray) -> float:
    """Free spectral range from adjacent peaks: median of the gaps near the smallest consistent gap.

    Gaps that are ~2x or 3x the FSR (a weak mode missing) are folded back; NaN with < 2 peaks.
    """
    pk = np.sort(np.asarray(peaks_nm))
    if pk.size < 2:
        return float("nan")
    gaps = np.diff(pk)
    base = float(np.median(gaps[gaps <= 1.5 * gaps.min()]))
    k = np.maximum(np.round(gaps / base), 1)
    return float(np.median(gaps / k))


# --- multimode line fits -------------------------------------------------------------------------

_RT2 = np.sqrt(2.0)
_RT2PI = np.sqrt(2.0 * np.pi)


def voigt(x: np.ndarray, fwhm_l, fwhm_g: float, deriv: bool = False):
    """Area-normalised Voigt (Faddeeva w), Lorentzian FWHM `fwhm_l`, Gaussian FWHM `fwhm_g`.

    With `deriv`, also d/dx0 (centre) and d/dfwhm_l, from w'(z) = -2 z w(z) + 2i/sqrt(pi).
    """
    from scipy.special import wofz

    sig = max(float(fwhm_g), 1e-6) / 2.3548200450309493
    z = (x + 0.5j * np.asarray(fwhm_l)) / (sig * _RT2)
    wz = wofz(z)
    v = wz.real / (sig * _RT2PI)
    if not deriv:
        return v
    return (v, *_voigt_derivs(z, wz, sig))


def _voigt_derivs(z: np.ndarray, wz: np.ndarray, sig: float) -> tuple[np.ndarray, np.ndarray]:
    """d/dx0 and d/dfwhm_l of `voigt` from its Faddeeva argument z and value w(z)."""
    dw = -2.0 * z * wz + 2j / np.sqrt(np.pi)
    k = 1.0 / (sig * _RT2 * sig * _RT2PI)
    return -dw.real * k, -0.5 * dw.imag * k


@dataclass
class LineFit:
    centre_nm: np.ndarray
    fwhm_nm: np.ndarray  # Lorentzian (cavity) FWHM, instrument removed
    fwhm_err_nm: np.ndarray  # 1 sigma
    area: np.ndarray  # per mode, in y units x nm
    area_err: np.ndarray
    chi2_red: float
    ok: bool


W_MIN_NM, W_MAX_NM = 2e-4, 20.0  # Lorentzian FWHM range of a fitted line
# A cavity line is narrower than this (the spontaneous band is ~38 nm, the paper's lasing line 0.3 nm;
# fitting.NARROW_NM is this number): wider bumps are not modes.
MAX_LINE_NM = 2.0


def fit_lines(
    wl: np.ndarray,
    y: np.ndarray,
    var: np.ndarray,
    centres_nm,
    fwhm0_nm,
    resolution_nm: float,
    fix_centres: bool = False,
    pad_nm: float | None = None,
) -> LineFit:
    """Fit all modes at once: sum of Voigts (instrument FWHM `resolution_nm`) + quadratic background.

    `var` is the per-pixel variance of `y`. Centres move within +-0.5 of the local line spacing unless
    fixed; Lorentzian widths stay in [W_MIN_NM, W_MAX_NM]; both through smooth maps (tanh, logistic
    in ln w) so the fit is an unconstrained Levenberg-Marquardt (MINPACK), ~5x faster than a bounded
    trust region. Areas are unconstrained so weak modes are not biased upwards. Returns 1-sigma
    errors from the weighted Jacobian, scaled by the reduced chi-square when it exceeds 1.
    """
    from scipy.optimize import leastsq
    from scipy.special import expit

    c0 = np.sort(np.atleast_1d(np.asarray(centres_nm, dtype=np.float64)))
    k = c0.size
    w0 = np.broadcast_to(np.asarray(fwhm0_nm, dtype=np.float64), (k,)).copy()
    gap = np.diff(c0)
    spacing = float(np.median(gap)) if k > 1 else 4.0 * max(float(w0.max()), resolution_nm)
    pad = pad_nm if pad_nm is not None else max(1.5 * spacing, 4.0 * float(w0.max()), 6 * resolution_nm)
    sel = (wl >= c0[0] - pad) & (wl <= c0[-1] + pad)
    x, yy = wl[sel], y[sel]
    sd = np.sqrt(np.maximum(var[sel], 1e-300))
    nan = np.full(k, np.nan)
    if x.size < 3 * k + 4:
        return LineFit(c0, nan, nan, nan, nan, float("nan"), False)
    xm = 0.5 * (x[0] + x[-1])
    half = max(0.5 * (x[-1] - x[0]), 1e-9)
    u = (x - xm) / half
    B = np.vstack([np.ones_like(u), u, u * u])
    near = np.minimum(np.concatenate([[spacing], gap]), np.concatenate([gap, [spacing]]))
    cmove = 0.5 * near
    L0, L1 = np.log(W_MIN_NM), np.log(W_MAX_NM)

    def shape(qc, qw):
        c = c0 + (0.0 if fix_centres else cmove * np.tanh(qc))
        sg = expit(qw)
        lw = np.exp(L0 + (L1 - L0) * sg)
        return c, lw, sg

    def split(p):
        if fix_centres:
            return np.zeros(k), p[:k], p[k : 2 * k], p[2 * k :]
        return p[:k], p[k : 2 * k], p[2 * k : 3 * k], p[3 * k :]

    # The Faddeeva function dominates the cost: MINPACK asks for the Jacobian at the point whose
    # residuals it has just evaluated, so `fun` keeps w(z) for `jac` (same numbers, half the wofz calls).
    from scipy.special import wofz

    sig = max(float(resolution_nm), 1e-6) / 2.3548200450309493
    zs, vs = sig * _RT2, sig * _RT2PI
    last: dict = {}

    def faddeeva(p, qc, qw):
        if last and np.array_equal(last["p"], p):
            return last["c"], last["lw"], last["sg"], last["z"], last["wz"]
        c, lw, sg = shape(qc, qw)
        z = ((x[None, :] - c[:, None]) + 0.5j * lw[:, None]) / zs
        wz = wofz(z)
        last.update(p=p.copy(), c=c, lw=lw, sg=sg, z=z, wz=wz)
        return c, lw, sg, z, wz

    def fun(p):
        qc, qw, a, b = split(p)
        _, _, _, _, wz = faddeeva(p, qc, qw)
        v = wz.real / vs
        return (a @ v + b @ B - yy) / sd

    def jac(p):
        qc, qw, a, _ = split(p)
        c, lw, sg, z, wz = faddeeva(p, qc, qw)
        v = wz.real / vs
        dc, dw = _voigt_derivs(z, wz, sig)
        cols = []
        if not fix_centres:
            cols.append((a[:, None] * dc * (cmove * (1 - np.tanh(qc) ** 2))[:, None]).T)
        cols.append((a[:, None] * dw * (lw * (L1 - L0) * sg * (1 - sg))[:, None]).T)
        cols += [v.T, B.T]
        return np.hstack(cols) / sd[:, None]

    # Start: areas and background by linear least squares at the starting shape.
    t0 = np.clip((np.log(np.clip(w0, W_MIN_NM * 1.01, W_MAX_NM * 0.99)) - L0) / (L1 - L0), 1e-6, 1 - 1e-6)
    qw0 = np.log(t0 / (1 - t0))
    V = voigt(x[None, :] - c0[:, None], w0[:, None], resolution_nm)
    M = np.vstack([V, B]).T / sd[:, None]
    lin = np.linalg.lstsq(M, yy / sd, rcond=None)[0]
    p0 = np.concatenate(([] if fix_centres else [np.zeros(k)]) + [qw0, lin])
    # MINPACK lmder through `leastsq` with least_squares(method="lm", x_scale="jac", max_nfev=100)'s
    # settings (same iterates; without its per-call wrapper overhead, which cost as much as the model).
    try:
        with np.errstate(all="ignore"):
            px, _, info, _, ier = leastsq(fun, p0, Dfun=jac, full_output=True, ftol=1e-8, xtol=1e-8, gtol=1e-8,
                                          maxfev=100, factor=100.0, diag=None)
            J = np.atleast_2d(jac(px))
    except (ValueError, TypeError, np.linalg.LinAlgError):
        return LineFit(c0, nan, nan, nan, nan, float("nan"), False)
    if not np.all(np.isfinite(px)):
        return LineFit(c0, nan, nan, nan, nan, float("nan"), False)
    fv = info["fvec"]
    qc, qw, a, _ = split(px)
    c, lw, sg = shape(qc, qw)
    dof = max(x.size - px.size, 1)
    chi2 = float(np.dot(fv, fv) / dof)
    try:
        cov = np.linalg.pinv(J.T @ J) * max(chi2, 1.0)
    except np.linalg.LinAlgError:
        return LineFit(c, nan, nan, nan, nan, chi2, False)
    d = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    off = 0 if fix_centres else k
    w_err = d[off : off + k] * lw * (L1 - L0) * sg * (1 - sg)
    return LineFit(c, lw, w_err, a, d[off + k : off + 2 * k], chi2, ier in (1, 2, 3, 4))


def find_lines(wl: np.ndarray, y: np.ndarray, sd: np.ndarray, max_lines: int = 10,
               rel_height: float = 0.03, n_sigma: float = 6.0) -> np.ndarray:
    """Pixel indices of cavity lines in one spectrum: peaks standing out of the local band by
    `n_sigma` noise and by `rel_height` of the strongest line, strongest first (<= `max_lines`)."""
    from scipy.ndimage import median_filter
    from scipy.signal import find_peaks

    m = y.size
    # Broad band: running median over ~3 nm (wider than any cavity line, narrower than the 38 nm band).
    px = float(np.median(np.diff(wl)))
    size = int(min(max(3.0 / px, 15), m // 2 * 2 - 1)) | 1
    band = median_filter(y, size=size, mode="nearest")
    r = y - band
    sm = np.convolve(r, np.ones(3) / 3.0, mode="same")
    idx, props = find_peaks(sm, prominence=n_sigma * np.median(sd) / np.sqrt(3.0), distance=2)
    if idx.size == 0:
        return idx
    from scipy.signal import peak_widths

    # Cavity lines are narrow: a bump wider than MAX_LINE_NM is what the running median left of the
    # broad band's curvature, not a mode.
    wid = peak_widths(sm, idx, rel_height=0.5)[0] * px
    idx = idx[wid <= 2.0 * MAX_LINE_NM]  # generous: merged neighbours; the line fit checks widths
    # Height above the band, against the LOCAL noise (prominence is peak-to-trough: ~2x a noise spike).
    idx = idx[sm[idx] >= n_sigma * sd[idx] / np.sqrt(3.0)]
    if idx.size == 0:
        return idx
    h = sm[idx]
    keep = h >= rel_height * h.max()
    idx, h = idx[keep], h[keep]
    return idx[np.argsort(-h)][:max_lines]
