"""Exact 2-D disc roots against an independent mpmath evaluation, family mapping, dispersion.

Characteristic equations from REFERENCE.md section 4:
  E_z: N J_m'(N x)/J_m(N x) = n_o H_m'(n_o x)/H_m(n_o x);  H_z: J_m'/(N J_m) = H_m'/(n_o H_m).
"""

import mpmath as mp
import numpy as np
import pytest

from fabplan.wgm import disc
from fabplan.wgm.api import IndexModel, make_stack


def _mp_root(x0: complex, m: int, n_in: float, n_out: float, family: str):
    """Root of the characteristic function in 40-digit arithmetic (mpmath Bessel/Hankel), from x0."""
    with mp.workdps(40):
        N, no = mp.mpf(n_in), mp.mpf(n_out)

        def f(x):
            lj = mp.besselj(m, N * x, 1) / mp.besselj(m, N * x)
            h = mp.hankel1(m, no * x)
            lh = (mp.hankel1(m - 1, no * x) - mp.hankel1(m + 1, no * x)) / 2 / h
            return N * lj - no * lh if family == "Ez" else lj / N - lh / no

        r = mp.findroot(f, mp.mpc(x0.real, x0.imag), tol=mp.mpf(10) ** -34)
        return complex(r)


CASES = [
    # (family, m, radial order, N, n_o): air and substrate outside, Q from ~10 to ~1e35.
    ("Hz", 12, 1, 2.01, 1.46),
    ("Hz", 40, 1, 2.01, 1.46),
    ("Hz", 30, 2, 2.01, 1.0),
    ("Hz", 100, 1, 2.01, 1.0),
    ("Ez", 12, 1, 2.01, 1.46),
    ("Ez", 60, 1, 1.61, 1.0),
    ("Ez", 30, 3, 2.01, 1.0),
]


@pytest.mark.parametrize(("family", "m", "q", "n_in", "n_out"), CASES)
def test_roots_match_mpmath(family, m, q, n_in, n_out):
    x = complex(disc.solve_fixed(np.array([m]), np.array([q]), n_in, n_out, family)[0])
    ref = _mp_root(x, m, n_in, n_out, family)
    assert abs(x - ref) / abs(ref) < 1e-10
    # Q = Re x / (2 |Im x|) to 1e-6 relative, also where Im x is ~1e-35 of Re x.
    assert float(disc.q_rad(np.array([x]))[0]) == pytest.approx(ref.real / (2 * abs(ref.imag)), rel=1e-6)


def test_seed_converges_to_the_requested_radial_order():
    # Radial order q has q-1 zeros of J_m inside the disc: j_{m,q-1} < N Re x < j_{m,q}.
    from scipy.special import jn_zeros

    m, n_in = 25, 2.01
    for family in disc.FAMILIES:
        x = disc.solve_fixed(np.full(4, m), np.arange(1, 5), n_in, 1.0, family)
        zeros = np.concatenate([[0.0], jn_zeros(m, 5)])
        for q, xq in enumerate(x, start=1):
            assert zeros[q - 1] < n_in * xq.real < zeros[q]


def test_families_are_not_mixed_up():
    # Asymptotics (Lam, Leung & Young 1992): n x = m + a m^(1/3) - P n/sqrt(n^2-1) + ..., P = 1 for E_z,
    # 1/n^2 for H_z. At m = 300 each exact root sits on its own series, far from the other's.
    m, n_in, n_out = 300, 2.01, 1.0
    for family, other in (("Ez", "Hz"), ("Hz", "Ez")):
        x = disc.solve_fixed(np.array([m]), np.array([1]), n_in, n_out, family)[0].real
        own = disc.asymptotic_x(np.array([m]), np.array([1]), n_in, n_out, family)[0]
        wrong = disc.asymptotic_x(np.array([m]), np.array([1]), n_in, n_out, other)[0]
        assert abs(x - own) < 1e-3 < 0.1 < abs(x - wrong)
    # Same m: E_z (outward normal E, continuous dE/dr) resonates at longer wavelength than H_z.
    xe, xh = (disc.solve_fixed(np.array([m]), np.array([1]), n_in, n_out, f)[0].real for f in disc.FAMILIES)
    assert xe < xh
    assert disc.family_for("te") == "Hz" and disc.family_for("tm") == "Ez"


def test_q_grows_with_m_and_falls_with_outside_index():
    m = np.array([10, 20, 40])
    q_air = disc.q_rad(disc.solve_fixed(m, 1, 2.01, 1.0, "Hz"))
    q_sub = disc.q_rad(disc.solve_fixed(m, 1, 2.01, 1.46, "Hz"))
    assert np.all(np.diff(q_air) > 0) and np.all(np.diff(q_sub) > 0)
    assert np.all(q_sub < q_air)


def test_dispersive_roots_are_self_consistent():
    # The root with N(lambda) re-evaluated must be an exact fixed-index root at its own wavelength.
    stack = make_stack(100.0)
    model = IndexModel(stack, 520.0, 560.0)
    R_um = np.array([5.0, 5.0])
    m, q = np.array([110.0, 112.0]), np.array([1, 1])
    x, wl, n_in, ok = disc.solve_dispersive(m, q, R_um, model, "Hz", np.array([537.0, 535.0]))
    assert ok.all()
    for i in range(2):
        ref = _mp_root(complex(x[i]), int(m[i]), float(n_in[i]), 1.0, "Hz")
        assert abs(x[i] - ref) / abs(ref) < 1e-9
        assert wl[i] == pytest.approx(2 * np.pi * R_um[i] * 1000 / ref.real, rel=1e-9)


def test_radial_order_from_bessel_phase_matches_zero_count():
    from scipy.special import jn_zeros

    for m in (1, 5, 30, 500):
        z = jn_zeros(m, 6)
        pts = np.concatenate([z - 1e-6, z + 1e-6, [0.5 * m + 0.1, m + 0.1]])
        expected = np.concatenate([np.arange(1, 7), np.arange(2, 8), [1, 1]])
        assert np.array_equal(disc.radial_order(np.full(pts.size, m), pts), expected)


def test_leaky_higher_radial_orders_are_labelled_by_zero_count():
    # Substrate outside, radial orders 1..5 at small D (Q ~ 10 for the highest): each root sits between
    # its own J_m zeros, and no root is reported twice (one (m, q) may resonate at two wavelengths on
    # either side of the exciton, where N(lambda)/lambda is not monotonic).
    from scipy.special import jn_zeros

    from fabplan.wgm.api import _batch

    d = np.arange(1.5, 6.0, 0.7)
    _, _, (row, m, q, wl, _, n_in), _, _ = _batch(d, make_stack(outside="substrate"), (530.0, 545.0), 5)
    assert len(set(zip(row, m, q, np.round(wl, 2), strict=True))) == len(row) > 30
    for r, mi, qi, wi, ni in zip(row, m, q, wl, n_in, strict=True):
        z = np.concatenate([[0.0], jn_zeros(int(mi), int(qi))])
        assert z[qi - 1] < ni * np.pi * d[r] * 1000 / wi < z[qi]
