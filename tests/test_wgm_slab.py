"""Asymmetric slab TE/TM modes: REFERENCE.md section 4, the paper's Lumerical values, closed forms."""

import numpy as np
import pytest

from fabplan.wgm import estimate_slab
from fabplan.wgm.slab import dispersion_residual, slab_confinement, slab_neff


@pytest.mark.parametrize(
    ("d_nm", "n_eff", "gamma"),
    # REFERENCE.md section 4 (Ermolaev-o at 540 nm, n_s = 1.45, n_c = 1): TE0 N and Gamma.
    [(70.0, 1.83, 0.59), (100.0, 2.01, 0.76), (250.0, 2.33, 0.96)],
)
def test_te0_matches_reference(d_nm, n_eff, gamma):
    s = estimate_slab(d_nm, 540.0, substrate=1.45)
    assert s.n_eff == pytest.approx(n_eff, abs=0.005)
    assert s.confinement == pytest.approx(gamma, abs=0.005)


def test_te0_confinement_matches_paper_lumerical():
    # Seed paper section 2.2 (Lumerical FDE, TE0, 540 nm, quartz n = 1.45 / air): 0.75 (100 nm), 0.96 (250 nm).
    assert estimate_slab(100.0, 540.0, substrate=1.45).confinement == pytest.approx(0.75, abs=0.02)
    assert estimate_slab(250.0, 540.0, substrate=1.45).confinement == pytest.approx(0.96, abs=0.01)


@pytest.mark.parametrize("b", [0.1, 0.5, 0.9])
def test_symmetric_slab_te0_closed_form(b):
    # Symmetric slab, normalised b = (N^2 - n_s^2)/(n_f^2 - n_s^2): V = 2 atan(sqrt(b/(1-b))) / sqrt(1-b)
    # is explicit, and Gamma = (V sqrt(b) + 2b) / (V sqrt(b) + 2) (e.g. Coldren & Corzine, appendix 3).
    nf, ns, wl = 2.4, 1.45, 540.0
    na = np.sqrt(nf**2 - ns**2)
    V = 2 * np.arctan(np.sqrt(b / (1 - b))) / np.sqrt(1 - b)
    d = V / (2 * np.pi / wl * na)
    N = slab_neff(wl, d, nf, ns, ns, "te")
    assert N**2 == pytest.approx(ns**2 + b * na**2, rel=1e-12)
    gamma = slab_confinement(N, wl, d, nf, ns, ns, "te")
    assert gamma == pytest.approx((V * np.sqrt(b) + 2 * b) / (V * np.sqrt(b) + 2), rel=1e-10)


def test_symmetric_slab_tm0_closed_form():
    # TM: V sqrt(1-b) = 2 atan((n_f/n_s)^2 sqrt(b/(1-b))).
    nf, ns, wl, b = 2.4, 1.45, 540.0, 0.4
    na = np.sqrt(nf**2 - ns**2)
    V = 2 * np.arctan((nf / ns) ** 2 * np.sqrt(b / (1 - b))) / np.sqrt(1 - b)
    d = V / (2 * np.pi / wl * na)
    assert slab_neff(wl, d, nf, ns, ns, "tm") ** 2 == pytest.approx(ns**2 + b * na**2, rel=1e-12)


@pytest.mark.parametrize("pol", ["te", "tm"])
def test_confinement_equals_numerical_integral_of_e_squared(pol):
    # |E|^2 = E_y^2 (TE) or (N^2 H_y^2 + (dH_y/dk0x)^2)/n^4 (TM), integrated on a fine grid.
    nf, ns, nc, wl, d = 2.46503, 1.46, 1.0, 540.0, 100.0
    N = float(slab_neff(wl, d, nf, ns, nc, pol))
    k0 = 2 * np.pi / wl
    ka, gs, gc = np.sqrt(nf**2 - N**2), np.sqrt(N**2 - ns**2), np.sqrt(N**2 - nc**2)
    phs = np.arctan((1.0 if pol == "te" else (nf / ns) ** 2) * gs / ka)
    x = np.linspace(-2500.0, 2500.0 + d, 400001)
    H = np.where(x < 0, np.cos(phs) * np.exp(k0 * gs * x),
                 np.where(x <= d, np.cos(k0 * ka * x - phs), np.cos(k0 * ka * d - phs) * np.exp(-k0 * gc * (x - d))))
    n = np.where(x < 0, ns, np.where(x <= d, nf, nc))
    intensity = H**2 if pol == "te" else (N**2 * H**2 + (np.gradient(H, x) / k0) ** 2) / n**4
    numeric = intensity[(x >= 0) & (x <= d)].sum() / intensity.sum()
    assert slab_confinement(N, wl, d, nf, ns, nc, pol) == pytest.approx(numeric, abs=2e-4)


def test_te_and_tm_are_distinct_and_ordered():
    # TE0 is always above TM0 (the TM boundary terms are weighted by (n_f/n_j)^2 > 1).
    te = estimate_slab(100.0, 540.0, polarization="te")
    tm = estimate_slab(100.0, 540.0, polarization="tm")
    assert te.n_eff > tm.n_eff + 0.3
    assert te.confinement > tm.confinement
    for s in (te, tm):
        r = dispersion_residual(s.n_eff, 540.0, 100.0, s.n_film, s.n_substrate, s.n_cover, s.polarization)
        assert abs(r) < 1e-9
        r_other = dispersion_residual(s.n_eff, 540.0, 100.0, s.n_film, s.n_substrate, s.n_cover,
                                      "tm" if s.polarization == "te" else "te")
        assert abs(r_other) > 1e-2


def test_higher_order_and_cutoff():
    te1 = estimate_slab(250.0, 540.0, order=1)
    assert 1.46 < te1.n_eff < estimate_slab(250.0, 540.0).n_eff
    from fabplan.errors import UserError

    with pytest.raises(UserError, match="below cutoff"):
        estimate_slab(30.0, 540.0, order=1)


def test_group_index_includes_material_dispersion():
    # n_g = N - lambda dN/dlambda, checked against a finite difference of full solves.
    h = 0.01
    lo, mid, hi = (estimate_slab(100.0, w) for w in (540.0 - h, 540.0, 540.0 + h))
    fd = mid.n_eff - 540.0 * (hi.n_eff - lo.n_eff) / (2 * h)
    assert mid.n_group == pytest.approx(fd, rel=1e-5)
    assert mid.n_group > 3 * mid.n_eff  # the exciton's dispersion dominates (REFERENCE.md section 4)
