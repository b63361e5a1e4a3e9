"""make_beam on the design model objects and on the shipped designs (every beam must build and work)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fabplan.beam import AnnularBeam, Lg01Beam, MeasuredBeam, make_beam
from fabplan.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = sorted((ROOT / "designs").glob("*.yaml"))


def test_make_beam_from_plain_objects():
    beam = SimpleNamespace(
        profile=SimpleNamespace(model="lg01", ring_diameter=12.0),
        threshold_fluence=40.0,
        incubation_exponent=0.8,
        damage_fluence=400.0,
    )
    laser = SimpleNamespace(wavelength=515.0, max_pulse_energy=5.0)
    b = make_beam(beam, laser)
    assert isinstance(b, Lg01Beam) and b.ring_diameter_um == 12.0
    assert b.damage_fluence_mj_cm2 == 400.0 and b.max_pulse_energy_uj == 5.0
    ann = make_beam(
        {
            "profile": {"model": "annular", "inner_diameter": 10, "outer_diameter": 16, "na": 0.32},
            "threshold_fluence": 40.0,
        },
        {"wavelength": 515.0, "max_pulse_energy": 5.0},
    )
    assert isinstance(ann, AnnularBeam) and ann.cutoff_per_um == pytest.approx(0.6214, abs=1e-4)


def test_make_beam_measured_csv_relative_to_design(tmp_path):
    r = np.linspace(0, 12, 121)
    rows = "\n".join(f"{x:.3f},{x**2 * np.exp(-(x**2) / 18):.6f}" for x in r)
    (tmp_path / "spot.csv").write_text("# camera profile\nr_um,intensity\n" + rows + "\n")
    design = SimpleNamespace(
        beam=SimpleNamespace(
            profile=SimpleNamespace(
                model="measured", csv="spot.csv", radius_column="r_um", value_column="intensity"
            ),
            threshold_fluence=40.0,
            incubation_exponent=0.8,
            damage_fluence=400.0,
        ),
        laser=SimpleNamespace(wavelength=515.0, max_pulse_energy=5.0),
        path=tmp_path / "d.yaml",
    )
    b = make_beam(design)
    assert isinstance(b, MeasuredBeam)
    assert b.peak_radius_um == pytest.approx(18**0.5, abs=0.05)  # r^2 exp(-r^2/18) peaks at r^2 = 18
    (tmp_path / "bad.csv").write_text("r_um,intensity\n0,0\n1,x\n")
    design.beam.profile.csv = "bad.csv"
    with pytest.raises(UserError, match=r"bad\.csv:3:"):
        make_beam(design)


@pytest.mark.parametrize("path", DESIGNS, ids=lambda p: p.stem)
def test_shipped_design_beams_work(path):
    design_mod = pytest.importorskip("fabplan.design")
    design = design_mod.load_design(path)
    beam = make_beam(design.beam, design.laser)
    lo, hi = beam.diameter_range_um(1)
    assert 0 <= lo < hi
    f = beam.fluence_for_diameter((lo + hi) / 2, 1)
    assert beam.threshold_fluence_mj_cm2 < f <= design.beam.damage_fluence
