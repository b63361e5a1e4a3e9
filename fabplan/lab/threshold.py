"""Lasing threshold from a light-in/light-out series, by two independent methods.

(a) `two_segment`: continuous two-line (hinge) weighted least squares with a free breakpoint,
    searched on a fine grid; the threshold is the breakpoint and its 95 % interval comes from the profile of the
    residual sum of squares (F-test on one parameter, Hudson 1966 / Seber & Wild ch. 9).
(b) `s_curve`: the rate-equation S-curve (`ratemodel.light_out_bg`: lasing-mode output plus the
    carrier-clamped spontaneous emission collected from the other modes) fitted on log-log axes
    with free threshold, beta, kappa and scale; interval from the Jacobian covariance of ln F_th.

Neither forces a threshold: a series whose kink is not significant (F-test against one straight
line), too weak (slope ratio), or outside the measured range is returned with has_threshold False
and a flag saying why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from fabplan.physics.ratemodel import light_out_bg, photon_number

# Constants that decide outcomes, with why (issue 18 asked that none be hidden):
# MIN_POINTS: a threshold fit has 5 free parameters (F_th, beta, scale, background, offset); 6 spectra is
#   the least that leaves a residual degree of freedom. Fewer: "insufficient data", never "dead".
MIN_POINTS = 6
# MIN_SLOPE_RATIO: slope far above / slope at low pump (~1/beta_apparent). Below threshold the mode
#   output rises ~beta x the lasing slope; under 2 (beta_apparent > 0.5) the curve is a bend, not a
#   threshold one can place: "undetermined (kink too weak)", not dead. (4 made 3 % of the generator's
#   beta ~0.08-0.1 lasers undetermined although their intervals covered the truth.) Used by the
#   two-segment hinge too.
MIN_SLOPE_RATIO = 2.0
# P_KINK: p-value needed to prefer the S-curve (a kink) over one straight line. 1e-3 (~3.3 sigma) rather
#   than 0.05 because a logbook holds hundreds of discs: at 0.05 one straight line in 20 would be given a
#   threshold. Above it the series is "none" (no threshold in the measured range).
P_KINK = 1e-3
# MAX_BETA: apparent beta (jump height 1/beta on log-log axes) beyond which the S-curve has no visible
#   threshold (a jump < 2x; beta -> 1 is the "thresholdless" laser of Bjork & Yamamoto): undetermined.
MAX_BETA = 0.5
KAPPA_MIN = 1e-3  # lower bound of the collected-spontaneous term in the log-log fit (0 would be log(0))


# Tail probabilities and quantiles straight from scipy.special, the functions scipy.stats' chi2 and f
# distributions evaluate (same numbers; importing scipy.stats cost ~1 s per process and each frozen
# call ~0.1 ms of argument checking). Negative statistics (rounding) have tail probability 1.


def _chi2_sf(x: float, df: float) -> float:
    return float(special.chdtrc(df, np.maximum(x, 0.0)))


def _f_sf(x: float, dfn: float, dfd: float) -> float:
    return float(special.fdtrc(dfn, dfd, np.maximum(x, 0.0)))


def _chi2_ppf(q: float, df: float) -> float:
    return float(2.0 * special.gammaincinv(df / 2, q))


def _f_ppf(q: float, dfn: float, dfd: float) -> float:
    return float(special.fdtri(dfn, dfd, q))


@dataclass
class ThresholdFit:
    method: str
    has_threshold: bool
    flag: str = ""
    threshold: float = float("nan")
    lo: float = float("nan")
    hi: float = float("nan")
    slope_efficiency: float = float("nan")  # output per uJ/cm^2 above threshold
    beta: float = float("nan")
    params: dict = field(default_factory=dict)


def two_segment(f: np.ndarray, y: np.ndarray, grid: int = 400) -> ThresholdFit:
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(f)
    f, y = f[order], y[order]
    n = f.size
    if n < MIN_POINTS:
        return ThresholdFit("two-segment", False, f"too few points ({n} < {MIN_POINTS})")
    # Shot-noise-like weights, sigma^2 ~ y + 1 % of max: near-threshold points (small counts, small
    # noise) pin the kink instead of being swamped by the bright points far above it.
    w = 1.0 / np.sqrt(np.abs(y) + 0.01 * np.abs(y).max() + 1e-300)
    yw = y * w
    # Breakpoints leaving >= 2 points below (with continuity a line through 2 points is determined,
    # the sweep's common case of a short pre-threshold part) and >= 3 above.
    cand = np.linspace(f[1], f[-3], grid)
    X = np.empty((grid, n, 3))
    X[:, :, 0] = 1.0
    X[:, :, 1] = f[None, :]
    X[:, :, 2] = np.maximum(f[None, :] - cand[:, None], 0.0)
    X *= w[None, :, None]
    Xt = X.transpose(0, 2, 1)
    XtX = Xt @ X
    Xty = Xt @ yw
    coef = np.linalg.solve(XtX + 1e-12 * np.eye(3), Xty[:, :, None])[:, :, 0]
    rss = (((X @ coef[:, :, None])[:, :, 0] - yw[None, :]) ** 2).sum(axis=1)
    k = int(np.argmin(rss))
    a, b1, db = coef[k]
    b2 = b1 + db
    fb = float(cand[k])
    line = np.linalg.lstsq(np.column_stack([w, f * w]), yw, rcond=None)[0]
    rss_line = float(((np.column_stack([w, f * w]) @ line - yw) ** 2).sum())
    rss_min = max(float(rss[k]), 1e-300)
    dof = n - 4
    fstat = ((rss_line - rss_min) / 2) / (rss_min / dof)
    p = _f_sf(fstat, 2, dof)
    crit = _f_ppf(0.95, 1, dof)
    lo_ci, hi_ci = _profile_interval(cand, rss, k, rss_min * (1 + crit / dof))
    x_int = fb - (a + b1 * fb) / b2 if b2 > 0 else float("nan")
    params = {
        "intercept": float(a),
        "slope_below": float(b1),
        "slope_above": float(b2),
        "x_intercept_above": float(x_int),
        "p_kink": p,
        "rss": rss_min,
        "rss_line": rss_line,
        "n": n,
    }
    fit = ThresholdFit("two-segment", True, "", fb, lo_ci, hi_ci, float(b2), params=params)
    ratio = b2 / b1 if b1 > 0 else np.inf if b2 > 0 else 0.0
    params["slope_ratio"] = float(ratio)
    if not (p < P_KINK):
        fit.has_threshold, fit.flag = False, f"no significant kink (p={p:.2g})"
    elif b2 <= 0 or ratio < MIN_SLOPE_RATIO:
        fit.has_threshold, fit.flag = False, f"kink too weak (slope ratio {ratio:.3g} < {MIN_SLOPE_RATIO:g})"
    elif k == 0 or k == grid - 1:
        fit.has_threshold, fit.flag = False, "breakpoint at the edge of the measured range"
    return fit


def _profile_interval(x: np.ndarray, rss: np.ndarray, k: int, level: float) -> tuple[float, float]:
    """Where the RSS profile crosses `level` either side of its minimum (linear interpolation)."""

    def edge(step: int) -> float:
        i = k
        while 0 <= i + step < x.size and rss[i + step] <= level:
            i += step
        j = i + step
        if not 0 <= j < x.size:
            return float(x[i])
        t = (level - rss[i]) / (rss[j] - rss[i]) if rss[j] != rss[i] else 0.0
        return float(x[i] + t * (x[j] - x[i]))

    return edge(-1), edge(+1)


def _starts(f: np.ndarray, y: np.ndarray, start: ThresholdFit | None) -> list[np.ndarray]:
    """Initial (ln scale, ln F_th, ln beta, ln kappa) guesses from the data and the hinge fit."""
    fmin, fmax = float(f.min()), float(f.max())
    if start is not None and start.has_threshold:
        th0 = start.threshold
        b0 = start.params["slope_below"] / start.params["slope_above"]
        s0 = start.params["slope_above"] * th0
    else:
        th0 = float(np.sqrt(fmin * fmax))
        b0, s0 = 0.01, float(y.max()) / (fmax / th0)
    b0 = float(np.clip(b0, 1e-6, 0.2)) if np.isfinite(b0) else 0.01
    s0 = s0 if np.isfinite(s0) and s0 > 0 else float(y.max())
    guesses = [(b0, KAPPA_MIN * 10), (b0 / 21, 20.0)]
    if start is None or not start.has_threshold:
        guesses += [(1e-2, KAPPA_MIN * 10), (1e-4, KAPPA_MIN * 10)]
    return [np.log([s0 / (1 + k), th0, b, k]) for b, k in guesses]


def s_curve_batch(
    fs: list[np.ndarray], ys: list[np.ndarray], starts: list[ThresholdFit | None], iterations: int = 200
) -> list[ThresholdFit]:
    """`s_curve` for many series at once: one vectorised Levenberg-Marquardt over all series and
    all starting points (forward-difference Jacobian), then the best start per series."""
    out: list[ThresholdFit | None] = [None] * len(fs)
    rows, owner, data = [], [], []
    for i, (f, y, st) in enumerate(zip(fs, ys, starts, strict=True)):
        f = np.asarray(f, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        keep = (f > 0) & (y > 0) & np.isfinite(y)
        f, y = f[keep], y[keep]
        if f.size < MIN_POINTS:
            out[i] = ThresholdFit("s-curve", False, f"too few positive points ({f.size} < {MIN_POINTS})")
            continue
        data.append((f, y))
        for t0 in _starts(f, y, st):
            rows.append(t0)
            owner.append(len(data) - 1)
    if not rows:
        return out  # type: ignore[return-value]
    m = max(f.size for f, _ in data)
    n = len(rows)
    F = np.ones((n, m))
    LY = np.zeros((n, m))
    W = np.zeros((n, m))
    for r, o in enumerate(owner):
        f, y = data[o]
        F[r, : f.size], LY[r, : f.size], W[r, : f.size] = f, np.log(y), 1.0
    fmin = np.where(W > 0, F, np.inf).min(axis=1)
    fmax = np.where(W > 0, F, -np.inf).max(axis=1)
    lo = np.stack(
        [np.full(n, -700.0), np.log(fmin / 10), np.full(n, np.log(1e-8)), np.full(n, np.log(KAPPA_MIN))], 1
    )
    hi = np.stack(
        [np.full(n, 700.0), np.log(fmax * 10), np.full(n, np.log(0.99)), np.full(n, np.log(1e4))], 1
    )
    t = np.clip(np.asarray(rows), lo, hi)

    def resid(t):
        with np.errstate(all="ignore"):
            e = np.exp(t)
            mod = light_out_bg(F, e[:, 1:2], e[:, 2:3], e[:, 0:1], e[:, 3:4])
            r = (np.log(np.maximum(mod, 1e-300)) - LY) * W
        return np.where(np.isfinite(r), r, 1e3)

    def jac(t, r):
        J = np.empty((n, m, 4))
        for k in range(4):
            h = 1e-6 * np.maximum(1.0, np.abs(t[:, k]))
            tk = t.copy()
            tk[:, k] += h
            J[:, :, k] = (resid(tk) - r) / h[:, None]
        return J

    r = resid(t)
    cost = (r * r).sum(axis=1)
    J = jac(t, r)
    lam = np.full(n, 1e-2)
    active = np.ones(n, bool)
    for _ in range(iterations):
        Jt = J.transpose(0, 2, 1)
        A = Jt @ J
        g = (Jt @ r[:, :, None])[:, :, 0]
        D = np.einsum("nii->ni", A)
        M = A + (lam[:, None] * np.maximum(D, 1e-12))[:, :, None] * np.eye(4)
        step = np.linalg.solve(M, -g[:, :, None])[:, :, 0]
        new = np.clip(t + np.where(active[:, None], step, 0.0), lo, hi)
        r2 = resid(new)
        c2 = (r2 * r2).sum(axis=1)
        ok = active & (c2 < cost)
        small = ok & ((cost - c2) < 1e-12 * np.maximum(cost, 1e-300) + 1e-14)
        t = np.where(ok[:, None], new, t)
        r = np.where(ok[:, None], r2, r)
        cost = np.where(ok, c2, cost)
        lam = np.where(ok, np.maximum(lam / 3, 1e-9), lam * 4)
        active &= ~small & (lam < 1e10)
        if not active.any():
            break
        if ok.any():
            J = np.where(ok[:, None, None], jac(t, r), J)
    J = jac(t, r)
    best: dict[int, int] = {}
    for row, o in enumerate(owner):
        if o not in best or cost[row] < cost[best[o]]:
            best[o] = row
    k = 0
    for i in range(len(fs)):
        if out[i] is not None:
            continue
        row = best[k]
        out[i] = _scurve_result(t[row], cost[row], J[row], data[k][0])
        k += 1
    return out  # type: ignore[return-value]


def _scurve_result(t: np.ndarray, cost: float, J: np.ndarray, f: np.ndarray) -> ThresholdFit:
    n = f.size
    fmin, fmax = float(f.min()), float(f.max())
    th, beta, scale, kappa = (float(np.exp(t[i])) for i in (1, 2, 0, 3))
    dof = max(n - 4, 1)
    s2 = cost / dof
    cov = np.linalg.pinv(J[:n].T @ J[:n]) * s2
    sd = float(np.sqrt(max(cov[1, 1], 0.0)))
    half = 1.96 * sd if np.isfinite(sd) and sd < 50 else np.inf
    fit = ThresholdFit(
        "s-curve",
        True,
        "",
        th,
        th * np.exp(-half),
        th * np.exp(half),
        scale / th,
        beta,
        params={
            "scale": scale,
            "kappa": kappa,
            "beta_apparent": beta * (1 + kappa),
            # Bjork-Yamamoto threshold (mean photon number 1 in the lasing mode), for comparison.
            "threshold_photon_number_one": th * (1 + beta) / (2 * (1 - beta)),
            "rms_log_resid": float(np.sqrt(s2)),
            "n": n,
        },
    )
    if beta * (1 + kappa) > MAX_BETA:
        fit.has_threshold, fit.flag = (
            False,
            f"jump 1/beta_apparent = {1 / (beta * (1 + kappa)):.2g}: no threshold",
        )
    elif not (fmin < th < fmax):
        fit.has_threshold, fit.flag = False, f"threshold {th:.3g} outside the measured range"
    elif not np.isfinite(sd) or sd > 0.5:
        fit.has_threshold, fit.flag = False, "threshold not constrained by the data"
    return fit


def s_curve(f: np.ndarray, y: np.ndarray, start: ThresholdFit | None = None) -> ThresholdFit:
    """Rate-equation S-curve fit of one series (see `s_curve_batch`)."""
    return s_curve_batch([f], [y], [start])[0]


def fit_threshold(f: np.ndarray, y: np.ndarray) -> tuple[ThresholdFit, ThresholdFit]:
    a = two_segment(f, y)
    return a, s_curve(f, y, a)


def damage_onset(y: np.ndarray, drop: float = 0.3) -> int | None:
    """Index (in fluence order) where the output collapses for good, or None.

    A disc burnt during the sweep emits less at every higher fluence: the first point below `drop`
    times the maximum so far, with no later point recovering above it. The threshold is then fitted
    on the points before it.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.size < 3:
        return None
    peak = np.maximum.accumulate(y)
    for k in range(1, y.size):
        level = drop * peak[k - 1]
        if peak[k - 1] > 0 and y[k] < level and np.all(y[k:] < level):
            return k
    return None


def fit_many(fs: list[np.ndarray], ys: list[np.ndarray]) -> list[tuple[ThresholdFit, ThresholdFit]]:
    """`fit_threshold` for many series (the S-curve fits run as one batch)."""
    a = [two_segment(f, y) for f, y in zip(fs, ys, strict=True)]
    return list(zip(a, s_curve_batch(fs, ys, a), strict=True))


def verdict(a: ThresholdFit, b: ThresholdFit) -> tuple[bool, str]:
    """Series-level call: a threshold only when both methods find one and they agree (intervals
    overlap or within 15 %)."""
    if a.has_threshold and b.has_threshold:
        if (a.lo <= b.hi and b.lo <= a.hi) or abs(a.threshold - b.threshold) < 0.15 * b.threshold:
            return True, ""
        return False, f"methods disagree ({a.threshold:.3g} vs {b.threshold:.3g} uJ/cm^2)"
    why = "; ".join(f"{x.method}: {x.flag}" for x in (a, b) if not x.has_threshold)
    return False, why


# --- calibrated threshold of one (mode-resolved) light-in/light-out curve ----------------------------

PUMP_JITTER = 0.03  # relative 1-sigma shot-to-shot pump fluence noise assumed when none is given
N_BELOW_MIN = 2  # points below the threshold needed to call it (a line through 2 points + continuity)
N_ABOVE_MIN = 2  # points above it
_TH_GRID = 160
# Shape grid: beta (log) x transparency beta N_tr (the gain's transparency density makes the mode's
# output superlinear below threshold; perovskite films have N_th ~1e18 cm^-3, paper Table 1). Only 0 is
# used: on the 300-series benchmark, transparency {0, .15, .3, .5} gave p90 7.8 % but found 94.1 %,
# {0, .2} 95.3 % / 8.2 %, {0} 96.1 % / 8.0 % (bench/RESULTS.md); the extra freedom widens the profile.
_B, _T = np.meshgrid(np.geomspace(1e-5, 0.6, 28), np.array([0.0]), indexing="ij")
_BETA_GRID, _TR_GRID = _B.ravel(), _T.ravel()


@dataclass
class LLFit:
    """Outcome of `fit_ll`: verdict is 'threshold', 'undetermined' or 'none' (no kink in range)."""

    verdict: str
    flag: str
    threshold: float = float("nan")
    lo: float = float("nan")
    hi: float = float("nan")
    beta: float = float("nan")
    slope_efficiency: float = float("nan")
    p_kink: float = float("nan")
    chi2_red: float = float("nan")
    params: dict = field(default_factory=dict)

    @property
    def has_threshold(self) -> bool:
        return self.verdict == "threshold"

    def as_threshold_fit(self, method: str = "s-curve") -> ThresholdFit:
        return ThresholdFit(method, self.has_threshold, self.flag, self.threshold, self.lo, self.hi,
                            self.slope_efficiency, self.beta, params={**self.params, "verdict": self.verdict,
                                                                        "p_kink": self.p_kink,
                                                                        "chi2_red": self.chi2_red})


def _grid_chi2(f, y, sd, th, beta, tr=None, basis=None):
    """chi^2 over a (threshold x beta) grid with the linear parameters (lasing scale, clamped
    spontaneous background kappa, constant offset) solved exactly per grid point.

    Model (ratemodel.light_out_bg plus an offset): y = a1 beta s + a2 beta s/(1+s) + c, s = s(F; F_th, beta).
    """
    b1, b2 = _grid_basis(f, th, beta, tr) if basis is None else basis
    # Normal equations from the three weighted basis functions (elementwise sums over the points: the
    # same numbers as stacking X and contracting it, without the 4-d einsum that dominated the cost).
    u1 = b1 / sd
    u2 = b2 / sd
    u3 = 1.0 / sd
    yw = y / sd
    dot = "tbn,tbn->tb"
    s11, s12, s13 = np.einsum(dot, u1, u1), np.einsum(dot, u1, u2), u1 @ u3
    s22, s23, s33 = np.einsum(dot, u2, u2), u2 @ u3, float(u3 @ u3)
    XtX = np.empty(b1.shape[:2] + (3, 3))
    XtX[..., 0, 0], XtX[..., 1, 1], XtX[..., 2, 2] = s11, s22, s33
    XtX[..., 0, 1] = XtX[..., 1, 0] = s12
    XtX[..., 0, 2] = XtX[..., 2, 0] = s13
    XtX[..., 1, 2] = XtX[..., 2, 1] = s23
    XtX += 1e-12 * np.eye(3)
    Xty = np.stack([u1 @ yw, u2 @ yw, np.broadcast_to(u3 @ yw, s11.shape)], axis=-1)
    coef = np.linalg.solve(XtX, Xty[..., None])[..., 0]
    # kappa >= 0 (collected spontaneous emission is not negative; a free sign lets the model mimic
    # any curve): where the free solution has a2 < 0, solve again without that basis function.
    neg = coef[..., 1] < 0
    if neg.any():  # (only those grid points: each system is solved on its own either way)
        A = XtX[neg][:, [0, 2], :][:, :, [0, 2]]
        c2 = np.linalg.solve(A, Xty[neg][:, [0, 2], None])[..., 0]
        coef[neg] = np.stack([c2[:, 0], np.zeros_like(c2[:, 0]), c2[:, 1]], axis=-1)
    r = coef[..., 0:1] * u1 + coef[..., 1:2] * u2 + coef[..., 2:3] * u3 - yw
    return (r * r).sum(axis=-1), coef


_BASIS_CACHE: dict = {}
_BASIS_CACHE_SIZE = 4


def _grid_basis(f, th, beta, tr=None):
    """The model's two shape functions beta s and beta s/(1+s) over the (threshold x beta) grid: they do
    not depend on the weights, so `fit_ll_once`'s reweighting passes share them, and so do the modes of
    one series measured at the same fluences (a few recent grids are kept; the arrays are read-only)."""
    trg = np.zeros_like(beta) if tr is None else tr
    key = (f.tobytes(), th.tobytes(), beta.tobytes(), np.asarray(trg).tobytes())
    hit = _BASIS_CACHE.get(key)
    if hit is not None:
        return hit
    s = photon_number(f[None, None, :], th[:, None, None], beta[None, :, None], trg[None, :, None])  # (T, B, n)
    b1 = beta[None, :, None] * s
    b2 = beta[None, :, None] * s / (1.0 + s)
    b1.flags.writeable = b2.flags.writeable = False
    try:  # oldest out; a concurrent thread's eviction may win the race (harmless)
        while len(_BASIS_CACHE) >= _BASIS_CACHE_SIZE:
            _BASIS_CACHE.pop(next(iter(_BASIS_CACHE)), None)
    except (RuntimeError, StopIteration):
        pass
    _BASIS_CACHE[key] = (b1, b2)
    return b1, b2


SATURATION_DROP_MAX = 3  # top points that may be set aside as saturated (gain roll-off, heating)


def fit_ll(
    f: np.ndarray,
    y: np.ndarray,
    sy: np.ndarray | None = None,
    jitter: float = PUMP_JITTER,
    level: float = 0.95,
) -> LLFit:
    """`fit_ll_once`, then, when the fit is poor (reduced chi^2 > 2) and the highest points fall below
    it, again without the top 1..SATURATION_DROP_MAX points: a saturating output (gain saturation,
    heating) bends the line down and drags the threshold low. A refit is kept if it halves the reduced
    chi^2 or brings it to <= 1.5, keeping N_ABOVE_MIN + 1 points above threshold; the flag says what
    was set aside."""
    first = fit_ll_once(f, y, sy, jitter, level)
    if not (first.chi2_red > 2.0) or not math.isfinite(first.threshold):
        return first
    f = np.asarray(f, dtype=np.float64)
    o = np.argsort(f)
    f_s, y_s = f[o], np.asarray(y, dtype=np.float64)[o]
    sy_s = np.asarray(sy, dtype=np.float64)[o] if sy is not None else None
    # Only a top that bends DOWN is saturation: the last three points rise at < 80 % of the fitted
    # lasing slope (a poor fit for other reasons is left alone).
    top_slope = float(np.polyfit(f_s[-3:], y_s[-3:], 1)[0]) if f_s.size >= 3 else float("nan")
    if not top_slope < 0.8 * first.slope_efficiency:
        return first
    best, drop = first, 0
    for k in range(1, SATURATION_DROP_MAX + 1):
        if f_s.size - k < MIN_POINTS:
            break
        r = fit_ll_once(f_s[:-k], y_s[:-k], sy_s[:-k] if sy_s is not None else None, jitter, level)
        if r.params.get("n_above", 0) < N_ABOVE_MIN + 1:
            break
        if r.chi2_red < 0.5 * best.chi2_red or (r.chi2_red <= 1.5 < best.chi2_red):
            best, drop = r, k
        if best.chi2_red <= 1.5:
            break
    if drop:
        best.params["saturated_points"] = drop
        note = f"saturation: top {drop} point(s) from {f_s[-drop]:.3g} set aside"
        best.flag = "; ".join(x for x in (best.flag, note) if x)
    return best


def fit_ll_once(
    f: np.ndarray,
    y: np.ndarray,
    sy: np.ndarray | None = None,
    jitter: float = PUMP_JITTER,
    level: float = 0.95,
) -> LLFit:
    """Threshold of one L-L curve: rate-equation S-curve with background, profile-likelihood interval.

    Weighted least squares with sigma^2 = sy^2 + (jitter F dy/dF)^2: the pump jitter enters as an
    error in the fluence, carried through the model's slope (three passes re-estimate the slope).
    The threshold's interval is where the chi^2 profile (minimised over beta and the linear
    parameters) rises by the chi^2_1 quantile, or by F(1, dof) x reduced chi^2 when that exceeds 1.
    Verdicts: 'threshold'; 'undetermined' (kink significant but the threshold is not pinned: fewer than
    N_BELOW_MIN points below or N_ABOVE_MIN above it, interval open, weak kink, no visible jump);
    'none' (a straight line explains the data: no threshold in the measured range).
    """
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(f) & np.isfinite(y) & (f > 0)
    sy = np.asarray(sy, dtype=np.float64)[ok] if sy is not None else None
    f, y = f[ok], y[ok]
    o = np.argsort(f)
    f, y = f[o], y[o]
    sy = sy[o] if sy is not None else None
    n = f.size
    if n < MIN_POINTS:
        return LLFit("undetermined", f"insufficient data ({n} < {MIN_POINTS} points)")
    if sy is None or not np.all(np.isfinite(sy)) or not np.any(sy > 0):
        sy = 0.01 * np.abs(y).max() + 0.03 * np.abs(y)
    sy = np.maximum(sy, 1e-6 * np.abs(y).max() + 1e-300)
    th = np.geomspace(f[0] * 0.5, f[-1] * 1.5, _TH_GRID)
    beta = _BETA_GRID
    slope = np.gradient(y, f)
    sd = sy
    basis = _grid_basis(f, th, beta, _TR_GRID)
    for it in range(3):
        sd = np.sqrt(sy**2 + (jitter * f * slope) ** 2) if it else sy
        chi, coef = _grid_chi2(f, y, sd, th, beta, _TR_GRID, basis)
        # model slope at the best grid point, for the next pass's jitter term
        i, j = np.unravel_index(int(np.argmin(chi)), chi.shape)
        fine = np.linspace(f[0] * 0.98, f[-1] * 1.02, 400)
        s_f = photon_number(fine, th[i], beta[j], _TR_GRID[j])
        mod = coef[i, j, 0] * beta[j] * s_f + coef[i, j, 1] * beta[j] * s_f / (1 + s_f)
        slope = np.interp(f, fine[1:], np.diff(mod) / np.diff(fine))
    prof = chi.min(axis=1)
    jb = chi.argmin(axis=1)
    i = int(np.argmin(prof))
    cmin = float(prof[i])
    dof = max(n - 5, 1)
    chi2_red = cmin / dof
    # straight line (no threshold) with the same weights
    Xl = np.column_stack([np.ones(n), f]) / sd[:, None]
    cl = np.linalg.lstsq(Xl, y / sd, rcond=None)[0]
    chi_line = float(((Xl @ cl - y / sd) ** 2).sum())
    # Kink significance: likelihood ratio of the S-curve against the line (3 more parameters), with
    # the noise scale taken from the S-curve fit when it is worse than the stated errors.
    p = _chi2_sf((chi_line - cmin) / max(cmin / dof, 1.0), 3)
    # refine the minimum (parabola in ln F_th) and the interval
    lt = np.log(th)
    best = lt[i]
    if 0 < i < th.size - 1:
        a, b, c = prof[i - 1], prof[i], prof[i + 1]
        den = a - 2 * b + c
        if den > 0:
            best = lt[i] + 0.5 * (a - c) / den * (lt[1] - lt[0])
    # Known noise scale (chi^2_red <= 1): chi^2_1 quantile. Noise scale estimated from the residuals:
    # the F(1, dof) quantile times chi^2_red (the profile-likelihood analogue of a t interval).
    if chi2_red <= 1.0:
        crit = _chi2_ppf(level, 1)
    else:
        crit = _f_ppf(level, 1, dof) * chi2_red
    lo_i, hi_i = _profile_interval(lt, prof, i, cmin + crit)
    th_best = float(np.exp(best))
    lo, hi = float(np.exp(lo_i)), float(np.exp(hi_i))
    bj = float(beta[jb[i]])
    a1, a2, c0 = coef[i, jb[i]]
    eff = a1 * (1 - bj) / th_best  # output per uJ/cm^2 far above threshold
    n_below = int((f < th_best).sum())
    n_above = int((f > th_best).sum())
    # slope far above / slope at low pump: a1 (1-beta)/F_th over (a1 + a2) beta (1-beta)/F_th
    ratio = a1 / ((a1 + a2) * bj) if (a1 + a2) > 0 else np.inf
    params = {"kappa": float(a2 / a1) if a1 else float("nan"), "offset": float(c0), "scale": float(a1),
              "transparency": float(_TR_GRID[jb[i]]),
              "n": n, "n_below": n_below, "n_above": n_above, "slope_ratio": float(ratio),
              "chi2_line": chi_line, "jitter": jitter,
              "threshold_photon_number_one": th_best * (1 + bj) / (2 * (1 - bj))}
    out = LLFit("threshold", "", th_best, lo, hi, bj, float(eff), p, float(chi2_red), params)
    open_lo = lo_i <= lt[0] + 1e-12 or lo <= f[0] * 0.5 * 1.0001
    open_hi = hi_i >= lt[-1] - 1e-12
    # A straight line that extrapolates to zero output at a clearly positive fluence is a lasing
    # branch seen from above threshold (spontaneous emission is proportional to the pump), not "no
    # threshold": the sweep started above it.
    cov_l = np.linalg.pinv(Xl.T @ Xl) * max(chi_line / max(n - 2, 1), 1.0)
    x0 = -cl[0] / cl[1] if cl[1] > 0 else float("nan")
    g = np.array([-1.0 / cl[1], cl[0] / cl[1] ** 2]) if cl[1] > 0 else np.zeros(2)
    x0_sd = float(np.sqrt(max(g @ cov_l @ g, 0.0)))
    params["line_x_intercept"] = float(x0)
    if not (p < P_KINK) and math.isfinite(x0) and x0 - 2 * x0_sd > 0.1 * f[0] and x0 - x0_sd <= f[0]:
        out.verdict, out.threshold, out.lo, out.hi = "undetermined", float(x0), float("nan"), float("nan")
        out.flag = (f"above threshold only: the curve is a straight line reaching zero at {x0:.3g} "
                    f"(+-{x0_sd:.2g}), below the first fluence {f[0]:.3g}: lower the start fluence")
    elif not (p < P_KINK):
        out.verdict, out.flag = "none", f"no significant kink (p={p:.2g})"
    elif a1 <= 0:
        out.verdict, out.flag = "undetermined", "no rising lasing branch"
    elif n_below < N_BELOW_MIN:
        out.verdict, out.flag = "undetermined", (
            f"only {n_below} point(s) below the threshold: the sweep starts above it (lower the start fluence)")
    elif n_above < N_ABOVE_MIN:
        out.verdict, out.flag = "undetermined", f"only {n_above} point(s) above the threshold (sweep higher)"
    elif bj * (1 + max(a2 / a1, 0)) > MAX_BETA:
        out.verdict, out.flag = "undetermined", f"no visible jump (beta_apparent {bj * (1 + a2 / a1):.2g} > {MAX_BETA:g})"
    elif ratio < MIN_SLOPE_RATIO:
        out.verdict, out.flag = "undetermined", f"kink too weak (slope ratio {ratio:.3g} < {MIN_SLOPE_RATIO:g})"
    elif open_lo or open_hi:
        out.verdict, out.flag = "undetermined", "threshold interval open: not constrained by the data"
    return out
