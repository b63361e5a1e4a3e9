"""beam.fluence_definition: what a design's fluence numbers mean (issue 18, "Fluence definitions").

Closed forms the tests check against:
- annulus area pi (r_o^2 - r_i^2): for the seed design's 10/16 um mask, pi (8^2 - 5^2) = 39 pi
  = 122.522 um^2 (the issue's "122.5 um^2"), so 100 mJ/cm^2 = 0.1225 uJ by that definition;
- the annular image's peak-fluence area (integral of f 2 pi r dr) is the issue's 94.5 um^2;
- LG01, f = e x exp(-x), x = r^2/r_p^2, dA = pi r_p^2 dx: the FWHM ring is e x exp(-x) >= 1/2, i.e.
  x1 = -W0(-1/(2e)) <= x <= x2 = -W_-1(-1/(2e)) (Lambert W), and the area-weighted mean of f there is
  e [(1 + x1) exp(-x1) - (1 + x2) exp(-x2)] / (x2 - x1)   (integral of x exp(-x) = -(1 + x) exp(-x)).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import lambertw

from fabplan.beam import AnnularBeam, Lg01Beam, make_beam
from fabplan.cli import main
from fabplan.design import load_design
from fabplan.errors import UserError
from fabplan.planning import build_plan
from fabplan.planning.plan import compute_plan_hash

SEED = Path(__file__).resolve().parents[1] / "designs" / "seed_single_disc.yaml"
F_TH = 40.0


def annular(definition="peak"):
    return AnnularBeam(
        inner_diameter_um=10, outer_diameter_um=16, na=0.32, threshold_fluence_mj_cm2=F_TH,
        fluence_definition=definition,
    )


def lg01_fwhm_mean_closed_form() -> float:
    x1 = -lambertw(-0.5 / np.e, 0).real
    x2 = -lambertw(-0.5 / np.e, -1).real
    return float(np.e * ((1 + x1) * np.exp(-x1) - (1 + x2) * np.exp(-x2)) / (x2 - x1))


def test_lg01_ring_fwhm_average_matches_the_closed_form():
    beam = Lg01Beam(ring_diameter_um=10.0, threshold_fluence_mj_cm2=F_TH, fluence_definition="ring-fwhm-average")
    k = lg01_fwhm_mean_closed_form()
    assert k == pytest.approx(0.80480, abs=1e-5)
    assert beam.ring_fwhm_mean() == pytest.approx(k, rel=1e-5)
    peak_area = np.e * np.pi * 5.0**2  # E = F_pk e pi r_p^2 (lg01.py docstring)
    assert beam.fluence_area_um2 == pytest.approx(peak_area / k, rel=1e-5)
    # The same pulse: its ring-average fluence is k times its peak fluence.
    assert beam.fluence_from_energy(1.0) == pytest.approx(k * Lg01Beam(ring_diameter_um=10.0,
                                                                        threshold_fluence_mj_cm2=F_TH)
                                                          .fluence_from_energy(1.0), rel=1e-5)


def test_annular_definitions_span_the_issues_numbers():
    peak, ring, geo = annular(), annular("ring-fwhm-average"), annular("geometric-annulus")
    assert peak.fluence_area_um2 == pytest.approx(94.5, abs=0.05)  # the issue's effective area
    assert geo.fluence_area_um2 == pytest.approx(39 * np.pi, rel=1e-12)  # 122.52 um^2
    assert float(geo.pulse_energy_uj(100.0)) == pytest.approx(39 * np.pi * 1e-5 * 100, rel=1e-12)
    assert peak.fluence_area_um2 < ring.fluence_area_um2 < geo.fluence_area_um2
    # Numerical FWHM mean over the tabulated image agrees with a direct fine-grid integration.
    r = np.linspace(0, 30, 300_001)
    f = peak.shape(r)
    m = f >= 0.5
    direct = np.trapezoid(np.where(m, f, 0) * r, r) / np.trapezoid(np.where(m, 1.0, 0) * r, r)
    assert ring.ring_fwhm_mean() == pytest.approx(direct, rel=1e-3)
    # Geometry depends on F/F_th only: the same fluence numbers give the same discs in every definition.
    for b in (ring, geo):
        assert b.disc_diameter_um(100.0) == pytest.approx(peak.disc_diameter_um(100.0), rel=1e-12)
        assert b.fluence_for_diameter(10.0) == pytest.approx(peak.fluence_for_diameter(10.0), rel=1e-12)
    assert "geometric-annulus" in geo.fluence_definition_text()
    assert "122.5 um^2" in geo.fluence_definition_text()


def test_geometric_annulus_needs_an_annular_beam_and_unknown_names_are_refused():
    with pytest.raises(UserError, match="needs an annular beam"):
        Lg01Beam(ring_diameter_um=10.0, threshold_fluence_mj_cm2=F_TH, fluence_definition="geometric-annulus")
    with pytest.raises(UserError, match="unknown fluence definition"):
        annular("average")


def _design_with(tmp_path, definition: str | None) -> Path:
    text = SEED.read_text()
    if definition is not None:
        text = text.replace("  damage_fluence: 400 mJ/cm^2\n",
                            f"  damage_fluence: 400 mJ/cm^2\n  fluence_definition: {definition}\n")
        assert definition in text
    path = tmp_path / f"seed_{definition}.yaml"
    path.write_text(text)
    return path


def test_default_keeps_energies_and_plan_hash_and_the_header_states_the_definition(tmp_path):
    plan = build_plan(load_design(SEED))
    h = plan.header
    assert h["fluence_definition"]["name"] == "peak"
    assert "fluence_definition" not in h["model"]["beam"]  # the default adds nothing to the hashed model
    # The hash is what it was before the header described the definition.
    rest = {k: v for k, v in h.items() if k != "fluence_definition"}
    csv = plan.shots.to_csv_bytes()
    assert compute_plan_hash(h["design_hash"], h["model"], csv, rest, plan.lines) == plan.plan_hash
    assert plan.content_hash() == plan.plan_hash
    assert float(plan.shots.pulse_energy_uj[0]) == pytest.approx(100 * annular().fluence_area_um2 * 1e-5, rel=1e-5)
    plan.save(tmp_path / "p")
    saved = json.loads((tmp_path / "p" / "plan.json").read_text())
    assert saved["fluence_definition"]["name"] == "peak"


def test_a_chosen_definition_changes_energies_not_diameters(tmp_path):
    base = build_plan(load_design(SEED))
    geo_design = load_design(_design_with(tmp_path, "geometric-annulus"))
    geo = build_plan(geo_design)
    assert make_beam(geo_design).fluence_definition == "geometric-annulus"
    assert geo.header["fluence_definition"]["fluence_area_um2"] == pytest.approx(39 * np.pi)
    assert geo.header["model"]["beam"]["fluence_definition"] == "geometric-annulus"
    assert geo.plan_hash != base.plan_hash
    assert geo.shots.diameter_um[0] == pytest.approx(base.shots.diameter_um[0], rel=1e-12)
    assert float(geo.shots.pulse_energy_uj[0]) == pytest.approx(100 * 39 * np.pi * 1e-5, rel=1e-5)


def test_validate_and_plan_output_state_the_definition(tmp_path, capsys):
    path = _design_with(tmp_path, "ring-fwhm-average")
    assert main(["validate", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fluence_definition"]["name"] == "ring-fwhm-average"
    assert main(["validate", str(path)]) == 0
    assert "fluence: ring-fwhm-average" in capsys.readouterr().out
    assert main(["plan", str(SEED)]) == 0
    assert "fluence: peak (" in capsys.readouterr().out
    assert "fluences: ring-fwhm-average" in load_design(path)._repr_html_()  # notebooks show it too


def test_validate_refuses_geometric_annulus_on_an_lg01_beam(tmp_path, capsys):
    text = SEED.read_text().replace(
        "profile: {model: annular, inner_diameter: 10 um, outer_diameter: 16 um, na: 0.32}",
        "profile: {model: lg01, ring_diameter: 12 um}",
    ).replace("  damage_fluence: 400 mJ/cm^2\n", "  damage_fluence: 400 mJ/cm^2\n  fluence_definition: geometric-annulus\n")
    path = tmp_path / "lg.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    assert "needs an annular beam" in capsys.readouterr().err
