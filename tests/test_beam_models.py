"""Beam models against closed forms.

Sources of expected numbers:
- LG01 table D/(2 r_p) vs F_pk/F_th: REFERENCE.md section 2 (Lambert-W radii r_p sqrt(-W0(-s/e))).
- Gaussian limit: Liu, Opt. Lett. 7, 196 (1982): D^2 = 2 w0^2 ln(F0/F_th), F0 = 2E/(pi w0^2).
- Coherent edge: 1-D edge imaged with cutoff fc = NA/lambda has amplitude 1/2 + Si(2 pi fc x)/pi
  (Goodman, Introduction to Fourier Optics, coherent edge response); REFERENCE section 2 quotes the
  10-90 % rise ~0.57 um and edge shifts ~+0.4 um (F/F_th = 1.1) and ~-0.15 um (F/F_th = 10).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.special import j0, j1, sici

from fabplan.beam import AnnularBeam, Lg01Beam, MeasuredBeam, TabulatedBeam
from fabplan.beam.annular import annular_field
from fabplan.errors import UserError

FTH = 40.0  # mJ/cm^2, arbitrary: every test states results relative to it


def lg01(**kw):
    return Lg01Beam(ring_diameter_um=10.0, threshold_fluence_mj_cm2=FTH, incubation_exponent=0.8, **kw)


@pytest.mark.parametrize(
    "ratio, expected",
    [(1.1, 0.79), (1.5, 0.59), (2, 0.48), (3, 0.38), (5, 0.28), (10, 0.20), (20, 0.14)],
)
def test_lg01_disc_diameter_matches_reference_table(ratio, expected):
    beam = lg01()
    d = float(beam.disc_diameter_um(ratio * FTH, 1))
    assert d / 10.0 == pytest.approx(expected, abs=0.006)  # table is given to 2 decimals


def test_lg01_edges_are_the_level_set_on_both_branches():
    beam = lg01()
    f = np.array([41.0, 55.0, 80.0, 200.0, 4000.0])
    s = FTH / f
    r_in = beam.disc_diameter_um(f) / 2
    r_out = beam.trench_outer_diameter_um(f) / 2
    assert np.all(r_in < 5.0) and np.all(r_out > 5.0)
    np.testing.assert_allclose(beam.shape(r_in), s, rtol=1e-10)
    np.testing.assert_allclose(beam.shape(r_out), s, rtol=1e-10)


def test_lg01_energy_is_peak_fluence_times_e_pi_rp2():
    beam = lg01()
    # F_pk = E/(e pi r_p^2); 1 mJ/cm^2 = 1e-5 uJ/um^2.
    assert float(beam.pulse_energy_uj(100.0)) == pytest.approx(100.0 * np.e * np.pi * 25.0 * 1e-5)
    r = np.linspace(0, 60, 200_001)
    numeric = np.trapezoid(beam.fluence_at(r, 100.0) * 2 * np.pi * r, r) * 1e-5
    assert numeric == pytest.approx(float(beam.pulse_energy_uj(100.0)), rel=1e-6)
    assert float(beam.fluence_from_energy(beam.pulse_energy_uj(123.0))) == pytest.approx(123.0)


def test_below_threshold_nothing_ablates():
    beam = lg01()
    assert np.isnan(beam.disc_diameter_um(0.99 * FTH))
    assert np.isnan(beam.trench_outer_diameter_um(0.0))
    assert np.isfinite(beam.disc_diameter_um(1.0001 * FTH))


def test_incubation_scales_the_threshold():
    beam = lg01()
    n = np.array([1, 10, 100])
    np.testing.assert_allclose(beam.threshold_mj_cm2(n), FTH * n ** (0.8 - 1.0))
    np.testing.assert_allclose(
        beam.disc_diameter_um(90.0, n), beam.disc_diameter_um(90.0 / n ** (0.8 - 1.0), 1), rtol=1e-12
    )
    # more pulses ablate more: the disc shrinks at fixed fluence
    d = beam.disc_diameter_um(90.0, n)
    assert d[0] > d[1] > d[2]


def _models():
    lg = lg01(damage_fluence_mj_cm2=2000.0)
    ann = AnnularBeam(
        inner_diameter_um=10.0,
        outer_diameter_um=16.0,
        na=0.32,
        wavelength_nm=515.0,
        threshold_fluence_mj_cm2=FTH,
        damage_fluence_mj_cm2=1000.0,
    )
    r = np.linspace(0, 15, 301)
    meas = MeasuredBeam(r_um=r, intensity=r**2 * np.exp(-(r**2) / 16.0), threshold_fluence_mj_cm2=FTH)
    return [lg, ann, meas]


@pytest.mark.parametrize("beam", _models(), ids=lambda b: b.model)
def test_peak_fluence_is_the_maximum_of_the_profile(beam):
    r = np.linspace(0, 30, 300_001)
    assert beam.fluence_at(r, 77.0).max() == pytest.approx(77.0, rel=1e-6)
    assert beam.fluence_at(beam.peak_radius_um, 77.0) == pytest.approx(77.0, rel=1e-9)


@pytest.mark.parametrize("beam", _models(), ids=lambda b: b.model)
def test_inverse_round_trip_and_range(beam):
    for pulses in (1, 5):
        lo, hi = beam.diameter_range_um(pulses)
        assert 0 <= lo < hi
        d = np.linspace(lo, hi, 25)[1:-1]
        f = beam.fluence_for_diameter(d, pulses)
        assert np.all(f >= beam.threshold_mj_cm2(pulses))
        np.testing.assert_allclose(beam.disc_diameter_um(f, pulses), d, atol=2e-3)
        assert np.isnan(beam.fluence_for_diameter([np.nan, d[0]], pulses)).tolist() == [True, False]
        with pytest.raises(UserError, match=r"achievable range is .* um") as exc:
            beam.fluence_for_diameter([d[0], hi + 1.0], pulses)
        assert f"{lo:.4g} - {hi:.4g}" in str(exc.value)


@pytest.mark.parametrize("beam", _models(), ids=lambda b: b.model)
def test_vectorised_matches_elementwise(beam):
    rng = np.random.default_rng(1)
    f = rng.choice([30.0, 45.0, 60.0, 90.0, np.nan], size=5000)
    n = rng.choice([1, 3], size=5000)
    d = beam.disc_diameter_um(f, n)
    for k in rng.integers(0, 5000, 40):
        assert np.array_equal(d[k], beam.disc_diameter_um(f[k], n[k]), equal_nan=True)
    assert d.shape == (5000,)


def test_range_is_bounded_by_damage_and_laser_energy():
    free = lg01()
    dmg = lg01(damage_fluence_mj_cm2=5 * FTH)
    lo_dmg, hi = dmg.diameter_range_um(1)
    assert hi == pytest.approx(10.0)
    assert lo_dmg == pytest.approx(float(free.disc_diameter_um(5 * FTH)))
    energy = float(free.pulse_energy_uj(3 * FTH))
    las = lg01(max_pulse_energy_uj=energy)
    assert las.diameter_range_um(1)[0] == pytest.approx(float(free.disc_diameter_um(3 * FTH)))
    with pytest.raises(UserError, match="cannot make a disc"):
        lg01(max_pulse_energy_uj=0.5 * float(free.pulse_energy_uj(FTH))).diameter_range_um(1)


def test_gaussian_profile_follows_liu():
    w0 = 4.0
    r = np.linspace(0, 12, 2401)
    beam = MeasuredBeam(r_um=r, intensity=np.exp(-2 * r**2 / w0**2), threshold_fluence_mj_cm2=FTH)
    assert beam.effective_area_um2 == pytest.approx(np.pi * w0**2 / 2, rel=1e-4)  # F0 = 2E/(pi w0^2)
    f0 = np.array([1.2, 2.0, 5.0, 20.0]) * FTH
    d = beam.trench_outer_diameter_um(f0)
    np.testing.assert_allclose(d**2, 2 * w0**2 * np.log(f0 / FTH), rtol=2e-3)
    assert np.all(beam.disc_diameter_um(f0) == 0)  # no dark centre: no disc


def test_tabulated_lg01_reproduces_the_closed_form():
    exact = lg01()
    r = np.linspace(0, 20, 401)  # 0.05 um samples, PCHIP in between
    tab = MeasuredBeam(
        r_um=r, intensity=exact.shape(r), threshold_fluence_mj_cm2=FTH, incubation_exponent=0.8
    )
    f = np.array([1.1, 2, 5, 20]) * FTH
    np.testing.assert_allclose(tab.disc_diameter_um(f), exact.disc_diameter_um(f), atol=0.01)
    np.testing.assert_allclose(tab.trench_outer_diameter_um(f), exact.trench_outer_diameter_um(f), atol=0.01)
    assert tab.effective_area_um2 == pytest.approx(exact.effective_area_um2, rel=1e-3)


def test_crossing_jumps_across_a_dip():
    # f rises to 0.5 at r=1, dips to 0.1 at r=2, then rises to the peak 1 at r=4.
    r = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    f = np.array([0.0, 0.5, 0.1, 0.7, 1.0, 0.0])
    beam = TabulatedBeam(r, f, threshold_fluence_mj_cm2=1.0)
    # level 0.3 is first reached at r=0.6 (not inside the dip); 0.6 between r=2 and 3 on the rising flank
    np.testing.assert_allclose(beam._inner_radius(np.array([0.3, 0.6, 1.0])), [0.6, 2 + 0.5 / 0.6, 4.0])
    np.testing.assert_allclose(beam._outer_radius(np.array([0.5, 1.0])), [4.5, 4.0])


def _edge_shift_1d(ratio: float, fc: float) -> float:
    """Position where a coherent edge image (plateau 1) reaches 1/ratio: (1/2 + Si(2 pi fc x)/pi)^2."""
    return brentq(lambda x: (0.5 + sici(2 * np.pi * fc * x)[0] / np.pi) ** 2 - 1 / ratio, -3, 1.5)


def test_annular_wide_ring_inner_edge_is_a_coherent_edge():
    fc = 0.32 / 0.515  # 0.62 um^-1 (REFERENCE section 2)
    assert _edge_shift_1d(0.9**-1, fc) - _edge_shift_1d(10.0, fc) == pytest.approx(0.57, abs=0.005)
    beam = AnnularBeam(inner_diameter_um=10.0, outer_diameter_um=60.0, na=0.32, threshold_fluence_mj_cm2=FTH)
    r, f = beam.radial_table()
    plateau = f[np.argmin(np.abs(r - 17.5))]  # mid-annulus, far from both edges
    for ratio, ref in [(1.1, 0.4), (10.0, -0.15)]:
        shift = float(beam.disc_diameter_um(ratio * FTH / plateau)) / 2 - 5.0
        assert shift == pytest.approx(_edge_shift_1d(ratio, fc), abs=0.03)  # curvature of a 5 um edge
        assert shift == pytest.approx(ref, abs=0.05)


def test_annular_paper_geometry_edge_near_mask_and_insensitive_to_fluence():
    beam = AnnularBeam(inner_diameter_um=10.0, outer_diameter_um=16.0, na=0.32, threshold_fluence_mj_cm2=FTH)
    f = np.array([1.1, 2.0, 5.0, 10.0, 20.0]) * FTH
    d = beam.disc_diameter_um(f)
    shift = d / 2 - 5.0  # inner edge relative to the mask edge, um
    assert np.all((shift > -0.3) & (shift < 0.6)), shift
    assert shift[0] - shift[-1] < 0.8
    # an LG01 ring of the same peak radius moves its edge > 3x more over the same fluence range
    lg = Lg01Beam(ring_diameter_um=2 * beam.peak_radius_um, threshold_fluence_mj_cm2=FTH)
    assert float(lg.disc_diameter_um(f[0]) - lg.disc_diameter_um(f[-1])) > 3 * (d[0] - d[-1])
    # the dark centre stays below ~1 % of the peak, so the centre survives up to ~100 x F_th
    assert beam.shape(0.0) < 0.02
    assert np.all(np.diff(d) < 0)


def test_annular_field_closed_forms():
    ri, ro, fc = 5.0, 8.0, 0.32 / 0.515
    # centre: integral_0^fc 2 pi [ro J1(2 pi ro rho) - ri J1(2 pi ri rho)] d rho = J0(2 pi ri fc) - J0(2 pi ro fc)
    assert float(annular_field(0.0, ri, ro, fc)) == pytest.approx(
        j0(2 * np.pi * ri * fc) - j0(2 * np.pi * ro * fc)
    )
    # Parseval: image power = mask spectrum power inside the pupil, integral |M|^2 2 pi rho d rho
    r = np.linspace(0, 60, 6001)
    power = np.trapezoid(annular_field(r, ri, ro, fc) ** 2 * 2 * np.pi * r, r)
    rho = np.linspace(1e-9, fc, 20001)
    m = (ro * j1(2 * np.pi * ro * rho) - ri * j1(2 * np.pi * ri * rho)) / rho
    assert power == pytest.approx(np.trapezoid(m**2 * 2 * np.pi * rho, rho), rel=3e-3)
    # a very wide pupil images the mask itself: 1 inside the annulus, 0 in the centre and outside
    np.testing.assert_allclose(annular_field([2.0, 6.5, 12.0], ri, ro, 20.0), [0, 1, 0], atol=0.01)


def test_annular_energy_normalisation_integrates_to_pulse_energy():
    beam = AnnularBeam(inner_diameter_um=10.0, outer_diameter_um=16.0, na=0.32, threshold_fluence_mj_cm2=FTH)
    r, f = beam.radial_table()
    energy = np.trapezoid(beam.fluence_at(r, 100.0) * 2 * np.pi * r, r) * 1e-5
    assert energy == pytest.approx(float(beam.pulse_energy_uj(100.0)), rel=1e-9)
    # the band-limited image carries at most the mask's transmitted power (Parseval), in peak units
    assert beam.effective_area_um2 < np.pi * (8.0**2 - 5.0**2) / float(f.max())


def test_bad_parameters_are_user_errors():
    with pytest.raises(UserError, match="threshold"):
        Lg01Beam(ring_diameter_um=10, threshold_fluence_mj_cm2=0)
    with pytest.raises(UserError, match="ring diameter"):
        Lg01Beam(ring_diameter_um=-1, threshold_fluence_mj_cm2=10)
    with pytest.raises(UserError, match="inner_diameter"):
        AnnularBeam(inner_diameter_um=10, outer_diameter_um=8, na=0.3, threshold_fluence_mj_cm2=10)
    with pytest.raises(UserError, match="strictly increasing"):
        MeasuredBeam(r_um=[0, 2, 1], intensity=[0, 1, 0], threshold_fluence_mj_cm2=10)
    with pytest.raises(UserError, match="pulses"):
        lg01().disc_diameter_um(50.0, 0)


@settings(max_examples=60, deadline=None)
@given(
    ring=st.floats(2.0, 50.0),
    fth=st.floats(1.0, 500.0),
    s_exp=st.floats(0.5, 1.0),
    pulses=st.integers(1, 1000),
    ratio=st.floats(1.001, 1000.0),
)
def test_lg01_properties(ring, fth, s_exp, pulses, ratio):
    beam = Lg01Beam(ring_diameter_um=ring, threshold_fluence_mj_cm2=fth, incubation_exponent=s_exp)
    f = ratio * float(beam.threshold_mj_cm2(pulses))
    d_in = float(beam.disc_diameter_um(f, pulses))
    d_out = float(beam.trench_outer_diameter_um(f, pulses))
    assert 0 < d_in < ring < d_out
    assert float(beam.shape(d_in / 2)) == pytest.approx(1 / ratio, rel=1e-9)
    assert float(beam.fluence_for_diameter(d_in, pulses)) == pytest.approx(f, rel=1e-6)
