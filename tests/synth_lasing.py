"""Independent generator of microdisc lasing measurements (L-L sweeps as spectrometer frames).

Shares no code with fabplan (nor sim/lasing.py): its own rate equations, its own line shapes
(Voigt through the Faddeeva function `scipy.special.wofz`), its own detector. Used by the analysis
tests and bench/bench_analysis.py as an outside oracle.

Physics, per cavity mode k (modes treated as independent lasers sharing one pump; the mode nearest
the gain peak has the lowest threshold, its neighbours lase later: the second-mode kink of a
multimode disc), in units of the spontaneous lifetime and photon lifetime (tau_p = 1):
    dn/dt = p - n - beta (n - n_tr) s                 carriers (n_tr: transparency)
    ds/dt = beta (n - n_tr) s + beta n - s            photons in the mode
Steady state: n = c s / (1 + s) with c = 1/beta + n_tr, and p = (1 - beta) n + s, a quadratic in s.
Far above threshold s = p - c (1 - beta) exactly on the asymptote: the threshold (the pump where the
above-threshold line extrapolates to zero output, the one experimentalists quote) is p_th = c (1 - beta).
Mode output ~ s (photon escape); the broad spontaneous band (38 nm-class PL, paper section 2.3)
~ carrier density of the first mode (linear below threshold, clamped above).

Measurement: nominal fluences (8-20 points, linear or geometric), actual pump jittered 3 % (1 sigma),
exposure chosen from a ladder per frame (some series deliberately misjudged so bright frames clip at
65,535), dark offset + Poisson shot noise + Gaussian read noise, integer ADC. An averaged dark frame is
supplied for about half the series.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import wofz

FULL_SCALE = 65535


@dataclass
class Synth:
    wl: np.ndarray  # (m,) nm, ascending
    fluence: np.ndarray  # (n,) nominal pump fluence, uJ/cm^2
    counts: np.ndarray  # (n, m) ADC counts
    exposure_s: np.ndarray  # (n,)
    resolution_nm: float  # Gaussian instrument FWHM
    dark: np.ndarray | None  # (m,) averaged dark frame (counts) or None
    truth: dict = field(default_factory=dict)


def photons(p: np.ndarray, beta: float, n_tr: float) -> tuple[np.ndarray, np.ndarray]:
    """Steady-state (s, n) for pump p: s^2 + b s - p = 0, b = 1 + c (1 - beta) - p."""
    c = 1.0 / beta + n_tr
    b = 1.0 + c * (1.0 - beta) - p
    root = np.sqrt(b * b + 4.0 * p)
    s = np.where(b > 0, 2.0 * p / (b + root), (root - b) / 2.0)
    return s, c * s / (1.0 + s)


def voigt(x: np.ndarray, fwhm_gauss: float, fwhm_lorentz: np.ndarray) -> np.ndarray:
    """Area-normalised Voigt profile (Faddeeva function)."""
    sig = fwhm_gauss / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    gam = fwhm_lorentz / 2.0
    z = (x + 1j * gam) / (sig * np.sqrt(2.0))
    return wofz(z).real / (sig * np.sqrt(2.0 * np.pi))


def make_series(rng: np.random.Generator, lasing: bool | None = None, **over) -> Synth:
    """One random series; keyword overrides fix any drawn parameter (see the names below)."""
    g = dict(
        lasing=bool(rng.random() > 0.15) if lasing is None else lasing,
        n_points=int(rng.integers(8, 21)),
        threshold=float(np.exp(rng.uniform(np.log(6.0), np.log(40.0)))),
        beta=float(np.exp(rng.uniform(np.log(1e-3), np.log(1e-1)))),
        n_tr_frac=float(rng.uniform(0.0, 0.6)),
        q=float(np.exp(rng.uniform(np.log(800.0), np.log(6000.0)))),
        fsr=float(rng.uniform(0.8, 2.0)),
        resolution=float(rng.uniform(0.05, 0.15)),
        gain_peak=float(rng.uniform(533.0, 538.0)),
        broad_ratio=float(np.exp(rng.uniform(np.log(0.05), np.log(1.0)))),
        geometric=bool(rng.random() < 0.5),
        lo_frac=float(rng.uniform(0.3, 0.75)),
        hi_frac=float(rng.uniform(1.8, 4.0)),
        jitter=0.03,
        dispersion=float(rng.uniform(0.025, 0.045)),
        pixels=int(rng.choice([1024, 1600])),
        read_noise=float(rng.uniform(2.0, 10.0)),
        dark_level=float(rng.uniform(90.0, 600.0)),
        with_dark=bool(rng.random() < 0.5),
        clip=bool(rng.random() < 0.2),
        faint=float(np.exp(rng.uniform(np.log(300.0), np.log(5000.0)))),
    )
    g.update(over)
    th1 = g["threshold"]
    beta, n_tr = g["beta"], g["n_tr_frac"] / g["beta"]
    c = 1.0 / beta + n_tr
    # Sweep: threshold inside, >= 2 points below and >= 3 above for most draws.
    f_lo, f_hi = th1 * g["lo_frac"], th1 * g["hi_frac"]
    n = g["n_points"]
    nominal = np.geomspace(f_lo, f_hi, n) if g["geometric"] else np.linspace(f_lo, f_hi, n)
    nominal = np.round(nominal, 3)
    actual = nominal * (1.0 + g["jitter"] * rng.standard_normal(n))
    # Comb around the gain peak; mode 0 (nearest the peak) lases first.
    centre = g["gain_peak"]
    k = np.arange(-6, 7)
    modes = centre + (k + rng.uniform(-0.5, 0.5)) * g["fsr"]
    order = np.argsort(np.abs(modes - centre))
    modes = modes[order]
    env = 3.0  # nm, gain-envelope width: threshold rises as 1 + ((lambda - peak)/env)^2 (log scale)
    rel = np.exp(((modes - centre) / env) ** 2)
    rel = rel / rel[0]
    if not g["lasing"]:
        rel = rel * 20.0  # thresholds far beyond the sweep: spontaneous emission only
    th_modes = th1 * rel
    q_modes = g["q"] * np.exp(0.1 * rng.standard_normal(modes.size))
    q_modes[0] = g["q"]
    # Photon numbers per mode (independent lasers, same beta).
    pth = c * (1.0 - beta)
    S = np.empty((n, modes.size))
    for j in range(modes.size):
        S[:, j], nj = photons(actual / th_modes[j] * pth, beta, n_tr)
        if j == 0:
            carriers = nj
    # Wavelength axis and line shapes.
    m = g["pixels"]
    wl = centre + 1.0 + (np.arange(m) - m / 2) * g["dispersion"]
    lw0 = modes / q_modes  # nm, far above threshold
    # Below threshold the lines are broader (cold cavity, absorption): logistic narrowing at F_k.
    x = actual[:, None] / th_modes[None, :]
    lw = lw0[None, :] * (1.0 + 2.0 / (1.0 + np.exp((x - 1.0) / 0.05)))
    # Rates (photo-electrons per second): mode output A s, broad band B n; A set so the mode area
    # at 2 x threshold is comparable to broad_ratio^-1 x the broad band's area at threshold.
    A = 1.0
    B = g["broad_ratio"] * A * pth / c
    band_c = float(rng.uniform(520.0, 528.0))
    band_w = float(rng.uniform(30.0, 40.0)) / 2.3548
    band = np.exp(-0.5 * ((wl - band_c) / band_w) ** 2) / (band_w * np.sqrt(2 * np.pi))
    dx = g["dispersion"]
    rate = B * carriers[:, None] * band[None, :]
    for j in range(modes.size):
        rate += A * S[:, [j]] * voigt(wl[None, :] - modes[j], g["resolution"], lw[:, [j]])
    rate *= dx
    # Absolute scale: the broad band at the lowest fluence gives `faint` counts/s at its peak.
    rate *= g["faint"] / max(rate[0].max(), 1e-300)
    # Exposure ladder, per frame: longest exposure keeping the peak under target.
    ladder = np.array([1.0, 0.1, 0.01, 0.001])
    target = 40_000.0 * (4.0 if g["clip"] else 1.0)
    peak = rate.max(axis=1)
    okx = peak[:, None] * ladder[None, :] <= target
    t = np.where(okx.any(axis=1), ladder[np.argmax(okx, axis=1)], ladder[-1])
    sig = rate * t[:, None]
    counts = rng.poisson(sig).astype(float) + g["dark_level"] + g["read_noise"] * rng.standard_normal(sig.shape)
    counts = np.clip(np.round(counts), 0, FULL_SCALE)
    dark = None
    if g["with_dark"]:
        dark = g["dark_level"] + g["read_noise"] / 4.0 * rng.standard_normal(m)  # 16 frames averaged
    below = int((nominal < th1).sum())
    above = int((nominal > th1).sum())
    truth = dict(
        g,
        modes_nm=modes,
        thresholds=th_modes,
        q_modes=q_modes,
        linewidth_nm=float(lw0[0]),
        mode_nm=float(modes[0]),
        resolved=bool(lw0[0] >= g["resolution"]),
        clipped=(counts >= FULL_SCALE).any(axis=1),
        evaluable=bool(g["lasing"] and below >= 2 and above >= 3),
    )
    return Synth(wl, nominal, counts, t, g["resolution"], dark, truth)
