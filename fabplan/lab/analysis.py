"""One lasing series from its spectra to a verdict: the analysis `lab fit` stores and the benchmark scores.

Steps (arrays in, one `SeriesAnalysis` out; no database here):
1. Detector: offset per frame (`spectral.offset`, or the dark frame when given), read noise, frames
   with any pixel at full scale flagged as clipped (excluded from line fits and mode L-L curves).
   Counts become rates (counts/s) with per-pixel variance (Poisson + read) / t^2.
2. Modes: lines found in the brightest unclipped frame, fitted all together (Voigt with the known
   instrument resolution + quadratic background, `spectral.fit_lines`).
3. Mode-resolved L-L: every unclipped frame is fitted with the centres held, widths and areas free;
   each mode's area against fluence is its own L-L curve (the spontaneous band under the comb is the
   background term, not part of the mode).
4. Per-mode thresholds (`threshold.fit_ll`, calibrated profile-likelihood interval) for the
   strongest modes; the disc's threshold is the first mode's (the lowest called threshold).
5. Linewidth and Q of that mode from the frames at F >= LW_ABOVE x F_th, with a 95 % interval;
   flagged resolution-limited when the Lorentzian width is below the instrument FWHM.

Verdict: 'threshold' | 'undetermined' (evidence of a kink but the number is not pinned, or too few
frames) | 'none' (a straight line explains every mode: no threshold in the measured range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fabplan.lab import spectral, threshold

FULL_SCALE = 65535  # 16-bit ADC
# Linewidth/Q from frames at >= LW_FAR x F_th when at least two exist, else >= LW_ABOVE x F_th: lines
# are still narrowing just above threshold (gain clamping completes over ~1.2-2 F_th), and Q is the
# cavity's only once they have stopped.
LW_ABOVE = 1.2
LW_FAR = 2.0
MAX_MODES = 8  # lines fitted together (the brightest ones)
MODES_FOR_THRESHOLD = 3  # strongest modes given their own L-L threshold fit
# A straight mode L-L line reaching zero at a positive fluence means "above threshold only" only if the
# mode carries a real share of the emission at the top of the sweep: far above threshold a lasing mode
# outshines the spontaneous band (~1/beta); below threshold a mode is a few % of it, and its output can
# also extrapolate to a positive fluence (absorption bleaching below transparency is superlinear).
MODE_FRACTION_LASING = 0.1
# Systematic relative uncertainty of a fitted Lorentzian width, added in quadrature to the statistical
# one: the local quadratic background takes up part of the far Lorentzian wings (and those of modes
# outside the fitted set), which made widths 0.2-2.4 % low on the independent generator.
LW_SYSTEMATIC = 0.015


@dataclass
class SeriesAnalysis:
    verdict: str
    flag: str
    threshold: float = float("nan")
    lo: float = float("nan")
    hi: float = float("nan")
    beta: float = float("nan")
    slope_efficiency: float = float("nan")
    mode_nm: float = float("nan")  # the first-lasing mode
    linewidth_nm: float = float("nan")
    linewidth_lo: float = float("nan")
    linewidth_hi: float = float("nan")
    q: float = float("nan")
    q_lo: float = float("nan")
    q_hi: float = float("nan")
    resolution_limited: bool = False
    peaks_nm: list = field(default_factory=list)
    mode_thresholds: list = field(default_factory=list)  # [{mode_nm, verdict, threshold, lo, hi, flag}]
    clipped: list = field(default_factory=list)  # fluences of frames with pixels at full scale
    integrated: np.ndarray | None = None  # whole-window rate x nm per frame (for plots)
    mode_ll: np.ndarray | None = None  # (frames, modes) areas
    fits: dict = field(default_factory=dict)  # first mode's LLFit ('s-curve') and hinge ('two-segment')
    first_mode_ll: list = field(default_factory=list)  # [[fluence, Voigt area]] of the first mode

    @property
    def has_threshold(self) -> bool:
        return self.verdict == "threshold"


def analyse_series(
    wl: np.ndarray,
    counts: np.ndarray,
    exposure_s,
    fluence,
    resolution_nm: float,
    dark: np.ndarray | None = None,
    full_scale: float = FULL_SCALE,
    window_nm: tuple[float, float] | None = None,
    pump_jitter: float = threshold.PUMP_JITTER,
    counts_are_rates: bool = False,
) -> SeriesAnalysis:
    """Analyse one sweep. `counts` (frames x pixels) are raw ADC counts with exposures `exposure_s`
    (or already rates when `counts_are_rates`: clipping then cannot be detected)."""
    wl = np.asarray(wl, dtype=np.float64)
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    f = np.asarray(fluence, dtype=np.float64)
    t = np.broadcast_to(np.asarray(exposure_s if exposure_s is not None else 1.0, dtype=np.float64), f.shape)
    o = np.argsort(f, kind="stable")
    f, c, t = f[o], c[o], np.asarray(t)[o]
    if wl[0] > wl[-1]:
        wl, c = wl[::-1], c[:, ::-1]
        dark = dark[::-1] if dark is not None else None
    n, m = c.shape
    if dark is not None:
        sub = c - np.asarray(dark, dtype=np.float64)[None, :]
        base = spectral.offset(c, dark)
    else:
        base = spectral.offset(c)
        sub = c - base[:, None]
    clipped = (c >= full_scale).any(axis=1) if not counts_are_rates else np.zeros(n, bool)
    sig_r = spectral.read_noise(c, base)
    y = sub / t[:, None]
    var = (np.maximum(sub, 0.0) + sig_r**2) / (t[:, None] ** 2)
    if counts_are_rates:
        var = np.maximum(np.abs(sub), 1.0) * 1.0  # no detector model: Poisson-like in rate units
    dx = np.gradient(wl)
    lo_w, hi_w = window_nm if window_nm else (wl[0], wl[-1])
    inwin = (wl >= lo_w) & (wl <= hi_w)
    integrated = y @ np.where(inwin, dx, 0.0)
    out = SeriesAnalysis("undetermined", "", integrated=integrated, clipped=[float(v) for v in f[clipped]])
    if n < threshold.MIN_POINTS:
        out.flag = f"insufficient data: {n} spectra, a threshold fit needs >= {threshold.MIN_POINTS}"
        return out
    good = ~clipped
    if good.sum() < threshold.MIN_POINTS:
        out.flag = f"{int(clipped.sum())} of {n} spectra clipped at {full_scale:g} counts: too few usable"
        return out
    # 2. lines in the brightest unclipped frame (restricted to the window)
    yw = np.where(inwin[None, :], y, np.nan)
    ref = int(np.nanargmax(np.where(good, np.nanmax(yw, axis=1), -np.inf)))
    sel = inwin
    idx = spectral.find_lines(wl[sel], y[ref, sel], np.sqrt(var[ref, sel]), max_lines=MAX_MODES)
    hinge = threshold.two_segment(f[good], integrated[good])
    out.fits["two-segment"] = hinge
    if idx.size == 0:
        ll = threshold.fit_ll(f[good], integrated[good], None, pump_jitter)
        out.fits["s-curve"] = ll
        out.verdict = "none" if ll.verdict == "none" else "undetermined"
        out.flag = "no cavity lines in any frame" + (f"; {ll.flag}" if ll.flag else "")
        return out
    px = float(np.median(np.diff(wl)))
    centres = wl[sel][idx]
    w0 = max(resolution_nm, 2 * px)
    bright = spectral.fit_lines(wl, y[ref], var[ref], centres, w0, resolution_nm)
    if not np.all(np.isfinite(bright.centre_nm)):
        bright = spectral.LineFit(np.sort(centres), np.full(centres.size, w0), np.full(centres.size, np.nan),
                                  np.full(centres.size, np.nan), np.full(centres.size, np.nan), np.nan, False)
    # The strongest feature found must fit as a cavity line (Lorentzian FWHM <= MAX_LINE_NM); if it is
    # wider it is the broad band's curvature and there are no modes (weak wide side 'lines' are kept:
    # dropping them moved the mode fits of real combs).
    strongest = int(np.argmin(np.abs(bright.centre_nm - centres[0]))) if np.all(np.isfinite(bright.centre_nm)) else 0
    if not (bright.fwhm_nm[strongest] <= spectral.MAX_LINE_NM) or not np.all(np.isfinite(bright.centre_nm)):
        ll = threshold.fit_ll(f[good], integrated[good], None, pump_jitter)
        out.fits["s-curve"] = ll
        out.verdict = "none" if ll.verdict == "none" else "undetermined"
        out.flag = "no cavity lines (only features wider than 2 nm)" + (f"; {ll.flag}" if ll.flag else "")
        return out
    cen = bright.centre_nm
    w_ref = np.where(np.isfinite(bright.fwhm_nm), bright.fwhm_nm, w0)
    out.peaks_nm = [float(v) for v in cen]
    # 3. mode-resolved L-L
    K = cen.size
    area = np.full((n, K), np.nan)
    aerr = np.full((n, K), np.nan)
    width = np.full((n, K), np.nan)
    werr = np.full((n, K), np.nan)
    for i in np.nonzero(good)[0]:
        lf = spectral.fit_lines(wl, y[i], var[i], cen, np.maximum(w_ref, w0), resolution_nm, fix_centres=True)
        area[i], aerr[i], width[i], werr[i] = lf.area, lf.area_err, lf.fwhm_nm, lf.fwhm_err_nm
    out.mode_ll = area
    # 4. per-mode thresholds, strongest modes first
    strength = np.nan_to_num(area[ref], nan=-np.inf)
    order = np.argsort(-strength)[: min(MODES_FOR_THRESHOLD, K)]
    fits = []
    top = int(np.nonzero(good)[0][-1])
    for k in order:
        ok = good & np.isfinite(area[:, k])
        r = threshold.fit_ll(f[ok], area[ok, k], aerr[ok, k], pump_jitter)
        frac = float(area[top, k] / integrated[top]) if integrated[top] > 0 else float("nan")
        r.params["mode_fraction_top"] = frac
        if r.flag.startswith("above threshold only") and not frac >= MODE_FRACTION_LASING:
            r.verdict = "none"
            r.threshold = float("nan")
            r.flag = (f"no kink; a straight line with a weak cavity line ({100 * frac:.2g} % of the emission at "
                      f"the top fluence): no threshold in the measured range")
        fits.append((k, r))
        out.mode_thresholds.append({"mode_nm": float(cen[k]), "verdict": r.verdict, "threshold": r.threshold,
                                    "lo": r.lo, "hi": r.hi, "flag": r.flag})
    # The first mode to lase is the one with the lowest threshold estimate among the modes with a
    # kink; when that one is not pinned the disc is undetermined (a later mode's threshold is not the
    # disc's). With no kink anywhere, the strongest mode's outcome is reported.
    # Undetermined modes weaker than the strongest called mode are ignored: a weak neighbour whose curve
    # only looks like an above-threshold line (bleaching, few points) must not veto a clear call.
    first_called = next((i for i, (_, r) in enumerate(fits) if r.has_threshold), len(fits))
    kinked = [(r.threshold, k, r) for i, (k, r) in enumerate(fits)
              if math.isfinite(r.threshold) and (r.has_threshold or (r.verdict != "none" and i < first_called))]
    if kinked:
        _, k1, first = min(kinked, key=lambda x: x[0])
    else:
        k1, first = fits[0]
    out.fits["s-curve"] = first
    ok1 = good & np.isfinite(area[:, k1])
    out.fits["two-segment"] = threshold.two_segment(f[ok1], area[ok1, k1])  # cross-check, same curve
    out.first_mode_ll = [[float(a), float(b)] for a, b in zip(f[ok1], area[ok1, k1], strict=True)]
    out.mode_nm = float(cen[k1])
    out.threshold, out.lo, out.hi, out.beta = first.threshold, first.lo, first.hi, first.beta
    out.slope_efficiency = first.slope_efficiency
    if first.has_threshold:
        out.verdict = "threshold"
    elif all(r.verdict == "none" for _, r in fits):
        out.verdict, out.flag = "none", first.flag
    else:
        out.verdict = "undetermined"
        out.flag = "; ".join(f"{cen[k]:.2f} nm: {r.flag}" for k, r in fits if r.flag)
    if clipped.any():
        out.flag = "; ".join(x for x in (out.flag, f"{int(clipped.sum())} clipped spectra excluded") if x)
    # 5. linewidth and Q of the first mode above threshold
    th_ref = out.threshold if out.has_threshold else float("nan")
    use = good & np.isfinite(width[:, k1]) & np.isfinite(werr[:, k1]) & (werr[:, k1] > 0)
    if math.isfinite(th_ref):
        use &= f >= (LW_FAR if (use & (f >= LW_FAR * th_ref)).sum() >= 2 else LW_ABOVE) * th_ref
    else:
        use &= np.arange(n) == ref
    if use.any():
        wv, ev = width[use, k1], werr[use, k1]
        wts = 1.0 / ev**2
        lw = float((wv * wts).sum() / wts.sum())
        se = float(np.sqrt(1.0 / wts.sum()))
        if use.sum() > 1:  # Birge ratio: frames scattering more than their fit errors say widen it
            birge = float(np.sqrt(((wv - lw) ** 2 * wts).sum() / (use.sum() - 1)))
            se *= max(birge, 1.0)
        se = float(np.hypot(se, LW_SYSTEMATIC * lw))
        lam = float(cen[k1])
        out.linewidth_nm = lw
        out.linewidth_lo, out.linewidth_hi = max(lw - 1.96 * se, 0.0), lw + 1.96 * se
        out.q = lam / lw if lw > 0 else float("nan")
        out.q_lo = lam / out.linewidth_hi
        out.q_hi = lam / out.linewidth_lo if out.linewidth_lo > 0 else float("inf")
        out.resolution_limited = bool(lw < resolution_nm)
    return out
