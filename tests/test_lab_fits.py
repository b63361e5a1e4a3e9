"""Threshold, linewidth and mode-spacing analysis on synthetic data with known answers.

Expected numbers come from the generating models: the steady-state rate equations
(`fabplan.lab.ratemodel`, closed-form photon number) and an exact Lorentzian. 3 % multiplicative
noise and the 5 % tolerance are the issue's acceptance criterion; beta 1e-2..1e-4 spans microdisc
lasers (Ning 2013 gives 1e-2..1e-5 for non-nano cavities).
"""

import numpy as np
import pytest

from fabplan.lab import spectral, threshold
from fabplan.lab.ratemodel import light_out, light_out_bg, photon_number

F = np.linspace(3.0, 45.0, 20)  # uJ/cm^2, threshold 15 (paper: D = 10 um lased at 14-16)


def test_rate_model_closed_form():
    beta = 1e-3
    # Photon number one at u = (1+beta)/(2 beta) (Bjork & Yamamoto), i.e. F = F_th (1+beta)/(2(1-beta)).
    f1 = 15.0 * (1 + beta) / (2 * (1 - beta))
    assert photon_number(f1, 15.0, beta) == pytest.approx(1.0, rel=1e-9)
    # Above threshold: beta s ~ (1 - beta)(F/F_th - 1), a line through zero at F_th.
    far = np.array([60.0, 90.0])
    y = light_out(far, 15.0, beta, scale=1.0)
    slope = np.diff(y)[0] / 30.0
    assert slope == pytest.approx((1 - beta) / 15.0, rel=1e-3)
    assert far[0] - y[0] / slope == pytest.approx(15.0, rel=2e-3)
    # Jump between the linear branches: slope below / slope above = beta.
    lo = light_out(np.array([0.01, 0.02]), 15.0, beta)
    assert (np.diff(lo)[0] / 0.01) / slope == pytest.approx(beta, rel=2e-2)
    assert np.allclose(light_out_bg(F, 15.0, beta, 2.0, 0.0), light_out(F, 15.0, beta, 2.0))


@pytest.mark.parametrize("beta,kappa", [(1e-2, 0.0), (1e-3, 0.0), (1e-4, 0.0), (2.4e-4, 20.0)])
def test_both_methods_recover_threshold_at_3pct_noise(beta, kappa):
    rng = np.random.default_rng(int(beta * 1e6) + int(kappa))
    worst_a = worst_b = 0.0
    for _ in range(8):
        y = light_out_bg(F, 15.0, beta, 1e4, kappa) * (1 + 0.03 * rng.standard_normal(F.size))
        a, b = threshold.fit_threshold(F, y)
        assert a.has_threshold and b.has_threshold, (a.flag, b.flag)
        assert threshold.verdict(a, b)[0]
        assert a.lo <= a.threshold <= a.hi and b.lo <= b.threshold <= b.hi
        worst_a = max(worst_a, abs(a.threshold / 15.0 - 1))
        worst_b = max(worst_b, abs(b.threshold / 15.0 - 1))
    assert worst_a < 0.05 and worst_b < 0.05


def test_series_without_threshold_is_flagged_not_forced():
    rng = np.random.default_rng(7)
    linear = 500.0 * F * (1 + 0.03 * rng.standard_normal(F.size))
    a, b = threshold.fit_threshold(F, linear)
    assert not a.has_threshold and a.flag
    assert not b.has_threshold and b.flag
    ok, why = threshold.verdict(a, b)
    assert not ok and "two-segment" in why
    # All points below threshold (superlinear onset only): no threshold in range.
    below = light_out(np.linspace(2, 12, 20), 15.0, 1e-3, 1e4) * (1 + 0.03 * rng.standard_normal(20))
    assert not threshold.verdict(*threshold.fit_threshold(np.linspace(2, 12, 20), below))[0]
    # Too few points.
    assert threshold.two_segment(F[:4], linear[:4]).flag.startswith("too few")


def test_lorentzian_fwhm_recovered():
    rng = np.random.default_rng(3)
    wl = np.linspace(490.0, 590.0, 1024)  # 0.098 nm pixels, the simulated spectrometer
    fwhm = np.array([0.3, 0.6, 1.5, 5.0, 20.0])
    x0 = np.array([535.2, 531.05, 540.4, 528.0, 530.0])
    y = 50 + 2e4 / (1 + ((wl - x0[:, None]) / (fwhm[:, None] / 2)) ** 2)
    y = y + rng.normal(0, 40, y.shape)
    b = spectral.analyse(wl, y)
    assert np.allclose(b.fwhm_nm, fwhm, rtol=0.05)
    assert np.allclose(b.peak_nm, x0, atol=0.02)
    assert np.all(b.fwhm_err_nm < 0.05 * fwhm)


def test_resolution_deconvolution():
    # Olivero & Longbothum: a Lorentzian of 0.3 nm through a 0.1 nm Gaussian instrument measures
    # 0.5346*0.3 + sqrt(0.2166*0.09 + 0.01) = 0.3317 nm; inverting must return 0.3.
    fl, lim = spectral.deconvolve_fwhm(np.array([0.5346 * 0.3 + np.sqrt(0.2166 * 0.09 + 0.01)]), 0.1)
    assert fl[0] == pytest.approx(0.3, rel=1e-3) and not lim[0]
    fl, lim = spectral.deconvolve_fwhm(np.array([0.1]), 0.1)
    assert lim[0] and fl[0] == 0.1
    fl, _ = spectral.deconvolve_fwhm(np.array([0.4]), 0.0)
    assert fl[0] == pytest.approx(0.4, rel=1e-3)


def test_mode_spacing_from_comb_with_a_missing_mode():
    wl = np.linspace(525, 545, 2048)
    centres = 530.0 + 1.2 * np.array([0, 1, 2, 4, 5, 6])  # 1.2 nm FSR, mode 3 absent
    y = sum(1e3 / (1 + ((wl - c) / 0.1) ** 2) for c in centres)
    peaks = spectral.find_modes(wl, y)
    assert np.allclose(peaks, centres, atol=0.01)
    assert spectral.mode_spacing(peaks) == pytest.approx(1.2, abs=0.01)
    assert np.isnan(spectral.mode_spacing(peaks[:1]))


def test_simulated_disc_threshold_and_linewidth():
    from sim.lasing import LasingDisc, simulate_series

    s = simulate_series(LasingDisc(10.0, 1.0), np.linspace(2, 60, 20), seed=1)
    b = spectral.analyse(s.wavelength_nm, s.counts / s.integration_s[:, None])
    a, c = threshold.fit_threshold(s.fluence_uj_cm2, b.integrated)
    # Truth: the simulator's physics prediction (fabplan.physics.lasing; ~14.5 uJ/cm^2 peak fluence for
    # D = 10 um, inside the paper's measured 14-16), apparent beta 5e-3.
    th = s.truth["threshold_uj_cm2"]
    assert 13.0 < th < 17.0
    assert a.threshold == pytest.approx(th, rel=0.05)
    assert c.threshold == pytest.approx(th, rel=0.05)
    assert c.params["beta_apparent"] == pytest.approx(5e-3, rel=0.3)
    # Below threshold: the 38 nm spontaneous band; far above: a mode ~ lambda/Q (predicted Q ~3e3) wide.
    assert 30 < b.fwhm_nm[0] < 50
    assert b.fwhm_nm[-1] < 0.5


def test_damage_onset_found_and_threshold_fitted_before_it():
    from sim.lasing import LasingDisc, simulate_series

    s = simulate_series(LasingDisc(10.0, 1.0, damage_uj_cm2=45.0), np.linspace(2, 60, 20), seed=4)
    y = spectral.analyse(s.wavelength_nm, s.counts / s.integration_s[:, None]).integrated
    k = threshold.damage_onset(y)
    assert k is not None and s.fluence_uj_cm2[k] >= 45.0 > s.fluence_uj_cm2[k - 1]
    a, b = threshold.fit_threshold(s.fluence_uj_cm2[:k], y[:k])
    th = s.truth["threshold_uj_cm2"]  # physics prediction (see above)
    assert a.threshold == pytest.approx(th, rel=0.05) and b.threshold == pytest.approx(th, rel=0.05)
    assert threshold.damage_onset(np.array([1.0, 2.0, 0.1, 3.0])) is None  # a dip that recovers


def test_analysis_on_the_simulator_dead_and_lasing_discs():
    # sim/lasing.py discs (physics-predicted truth): a lasing disc's threshold within 5 % and Q within
    # 10 % of the truth; a disc that never lases (spontaneous band only) is 'none', its band's curvature
    # is not taken for cavity lines (the demo called such a disc ASE-only at 42.8 uJ/cm^2).
    from fabplan.lab.analysis import analyse_series
    from sim.lasing import LasingDisc, simulate_series

    f = np.linspace(2, 60, 20)
    s = simulate_series(LasingDisc(10.0, 1.0), f, seed=1)
    a = analyse_series(s.wavelength_nm, s.counts, s.integration_s, s.fluence_uj_cm2, 0.1)
    assert a.verdict == "threshold" and a.lo <= s.truth["threshold_uj_cm2"] <= a.hi
    assert a.threshold == pytest.approx(s.truth["threshold_uj_cm2"], rel=0.05)
    assert a.q == pytest.approx(s.truth["q"], rel=0.1)
    assert a.clipped and "clipped" in a.flag  # the simulator's bright frames saturate the 16-bit ADC
    dead = simulate_series(LasingDisc(10.0, 0.1), f, seed=1)
    b = analyse_series(dead.wavelength_nm, dead.counts, dead.integration_s, dead.fluence_uj_cm2, 0.1)
    assert b.verdict == "none" and not b.peaks_nm
