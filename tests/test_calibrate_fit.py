"""Calibration recovers known ablation parameters from synthetic noisy dose matrices.

Synthetic data are generated with the beam models themselves (LG01 closed form, REFERENCE section 2;
annular coherent image); the fit must return the generating parameters within a few of its own
1-sigma uncertainties, which must themselves be reasonable (a check of the covariance scaling).
"""

from __future__ import annotations

import numpy as np
import pytest

from fabplan.beam import AnnularBeam, Lg01Beam
from fabplan.beam.calibrate import calibrate
from fabplan.beam.dose_csv import DoseData
from fabplan.errors import UserError

TRUE = {"threshold_fluence_mj_cm2": 40.0, "incubation_exponent": 0.8, "ring_diameter_um": 12.0}


def _lg01_data(seed: int, noise_um: float = 0.1, pulses=(1, 5, 25)) -> DoseData:
    beam = Lg01Beam(ring_diameter_um=12.0, threshold_fluence_mj_cm2=40.0, incubation_exponent=0.8)
    energy = np.tile(np.geomspace(0.1, 1.5, 10), len(pulses))
    n = np.repeat(pulses, 10)
    d = beam.disc_diameter_um(beam.fluence_from_energy(energy), n)
    d = d + np.random.default_rng(seed).normal(0.0, noise_um, d.size)
    return DoseData("synthetic", "energy_uj", energy, n, d, np.arange(2, 2 + d.size))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lg01_energy_dose_matrix_recovers_threshold_incubation_and_ring(seed):
    data = _lg01_data(seed)
    assert (~data.ablated).sum() >= 1  # the lowest single-shot energy is below threshold
    res = calibrate(data, "lg01")
    for k, true in TRUE.items():
        assert res.stderr[k] is not None and 0 < res.stderr[k] < 0.1 * true
        assert abs(res.values[k] - true) < 4 * res.stderr[k], (k, res.values[k], res.stderr[k])
    assert res.rms_um == pytest.approx(0.1, rel=0.4)  # the noise that was added
    assert res.threshold_energy_uj == pytest.approx(40.0 * np.e * np.pi * 36.0 * 1e-5, rel=0.03)
    assert not res.warnings


def test_lg01_fixed_ring_and_fluence_input():
    beam = Lg01Beam(ring_diameter_um=12.0, threshold_fluence_mj_cm2=25.0, incubation_exponent=0.9)
    f = np.tile(np.geomspace(30, 400, 8), 2)
    n = np.repeat([1, 10], 8)
    d = beam.disc_diameter_um(f, n) + np.random.default_rng(5).normal(0, 0.05, f.size)
    res = calibrate(
        DoseData("s", "fluence_mj_cm2", f, n, d, np.arange(f.size)), "lg01", ring_diameter_um=12.0
    )
    assert res.stderr.get("ring_diameter_um") is None and "ring_diameter_um" not in res.values
    assert res.values["threshold_fluence_mj_cm2"] == pytest.approx(25.0, rel=0.03)
    assert res.values["incubation_exponent"] == pytest.approx(0.9, abs=0.02)


def test_annular_recovers_threshold_from_small_edge_shifts():
    beam = AnnularBeam(
        inner_diameter_um=10.0,
        outer_diameter_um=16.0,
        na=0.32,
        threshold_fluence_mj_cm2=40.0,
        incubation_exponent=0.8,
    )
    f = np.tile(np.geomspace(45, 600, 10), 3)
    n = np.repeat([1, 5, 25], 10)
    d = beam.disc_diameter_um(f, n) + np.random.default_rng(3).normal(0, 0.03, f.size)
    res = calibrate(
        DoseData("s", "fluence_mj_cm2", f, n, d, np.arange(f.size)),
        "annular",
        inner_diameter_um=10.0,
        outer_diameter_um=16.0,
        na=0.32,
    )
    for k in ("threshold_fluence_mj_cm2", "incubation_exponent"):
        assert abs(res.values[k] - TRUE[k]) < 4 * res.stderr[k]
    assert res.values["threshold_fluence_mj_cm2"] == pytest.approx(40.0, rel=0.1)


def test_single_pulse_count_holds_s_and_says_so():
    res = calibrate(_lg01_data(0, pulses=(1,)), "lg01")
    assert res.stderr["incubation_exponent"] is None and res.values["incubation_exponent"] == 0.8
    assert any("cannot be fitted" in w for w in res.warnings)
    assert "incubation_exponent: 0.8  # held fixed" in res.yaml_block(400.0)
    assert "  fluence_definition: peak  #" in res.yaml_block(400.0)  # the fit's fluences are peak fluences


def test_inconsistent_not_ablated_row_is_flagged_with_its_line():
    data = _lg01_data(0)
    d = data.diameter_um.copy()
    d[15] = np.nan  # an N=5 mid-energy site that certainly ablated, recorded as empty
    bad = DoseData(data.source, data.dose_kind, data.dose, data.pulses, d, data.line)
    res = calibrate(bad, "lg01")
    assert any("not ablated but above" in w and str(data.line[15]) in w for w in res.warnings)


def test_too_few_rows_is_a_user_error():
    data = _lg01_data(0)
    few = DoseData(
        "few.csv", data.dose_kind, data.dose[5:7], data.pulses[5:7], data.diameter_um[5:7], data.line[5:7]
    )
    with pytest.raises(UserError, match="few.csv: 2 ablated row.*need at least 3"):
        calibrate(few, "lg01")


def test_annular_needs_geometry():
    with pytest.raises(UserError, match="mask geometry"):
        calibrate(_lg01_data(0), "annular")


def test_undetermined_parameters_are_refused():
    # the same diameter at every dose: threshold and ring size cannot be separated
    f = np.array([50.0, 60.0, 70.0, 80.0])
    data = DoseData("flat.csv", "fluence_mj_cm2", f, np.ones(4, int), np.full(4, 5.0), np.arange(2, 6))
    with pytest.raises(UserError, match="flat.csv: calibration failed: .*not separately determined"):
        calibrate(data, "lg01")


def test_model_that_cannot_reproduce_the_data_is_refused():
    # 3-6 um discs cannot come from a 10/16 um annular mask (its discs are ~9.4-11.5 um)
    f = np.array([50.0, 60.0, 70.0, 80.0, 90.0])
    data = DoseData(
        "w.csv", "fluence_mj_cm2", f, np.array([1, 2, 1, 2, 1]), np.array([5, 5, 4, 6, 3.0]), np.arange(5)
    )
    with pytest.raises(UserError, match="cannot reproduce the measured diameters"):
        calibrate(data, "annular", inner_diameter_um=10.0, outer_diameter_um=16.0, na=0.32)
