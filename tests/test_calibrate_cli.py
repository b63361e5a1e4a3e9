"""`fabplan calibrate`: dose-matrix CSV parsing, bad-row errors, pasteable YAML, --json, --plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from fabplan.beam import Lg01Beam, make_beam
from fabplan.beam.dose_csv import parse_dose_csv
from fabplan.cli import main
from fabplan.errors import ProblemsError, UserError


@pytest.fixture
def dose_csv(tmp_path):
    beam = Lg01Beam(ring_diameter_um=12.0, threshold_fluence_mj_cm2=40.0, incubation_exponent=0.8)
    energy = np.tile(np.geomspace(0.1, 1.5, 8), 2)
    n = np.repeat([1, 10], 8)
    d = beam.disc_diameter_um(beam.fluence_from_energy(energy), n)
    d = d + np.random.default_rng(0).normal(0, 0.05, d.size)
    rows = ["# dose matrix, SEM diameters", "site,pulse_energy_uj,pulses,diameter_um,notes"]
    for i, (e, k, dd) in enumerate(zip(energy, n, d, strict=True)):
        rows.append(f"DM-{i:02d},{e:.5f} uJ,{k},{'' if np.isnan(dd) else f'{dd:.3f}'},ok")
    path = tmp_path / "dose.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_parse_units_comments_and_not_ablated():
    data = parse_dose_csv(
        "# comment\nFluence_mJ_cm2,pulses,diameter_um\n50,1,8.1\n0.06 J/cm^2,2,7 um\n30,1,\n35,1,-\n", "m.csv"
    )
    assert data.dose_kind == "fluence_mj_cm2"
    np.testing.assert_allclose(data.dose, [50, 60, 30, 35])
    assert data.ablated.tolist() == [True, True, False, False]
    assert data.line.tolist() == [3, 4, 5, 6]


def test_every_bad_row_is_reported_with_file_and_line():
    text = "energy_uj,pulses,diameter_um\n0.2,1,5\nabc,1,5\n0.3,0,4\n0.3,2,-1\n0.4 mJ/cm^2,1,3\n0.5,1.5,3\n"
    with pytest.raises(ProblemsError) as exc:
        parse_dose_csv(text, "dm.csv")
    lines = [(p.line, p.path) for p in exc.value.problems]
    assert lines == [(3, "energy_uj"), (4, "pulses"), (5, "diameter_um"), (6, "energy_uj"), (7, "pulses")]
    assert "dm.csv:6: energy_uj: expected an energy" in str(exc.value)


@pytest.mark.parametrize(
    "text, match",
    [
        ("energy_uj,fluence,pulses,diameter_um\n1,2,1,3\n", "exactly one dose column"),
        ("energy_uj,diameter_um\n1,3\n", "missing pulses column"),
        ("energy_uj,pulses\n1,3\n", "missing disc diameter column"),
        ("energy_uj,pulses,diameter_um\n", "no data rows"),
        ("", "no header"),
    ],
)
def test_bad_headers(text, match):
    with pytest.raises(UserError, match=match):
        parse_dose_csv(text, "h.csv")


def test_cli_text_output_has_a_pasteable_beam_block(dose_csv, capsys):
    assert main(["calibrate", str(dose_csv), "--beam", "lg01", "--damage-fluence", "400 mJ/cm^2"]) == 0
    out = capsys.readouterr().out
    assert "F_th(1)" in out and "+/-" in out
    block = yaml.safe_load(out.split("Paste into the design:", 1)[1])
    models = pytest.importorskip("fabplan.design.models")
    beam = models.Beam.model_validate(block["beam"])
    assert beam.threshold_fluence == pytest.approx(40.0, rel=0.1)
    assert beam.profile.ring_diameter == pytest.approx(12.0, rel=0.05)
    assert beam.damage_fluence == 400.0


def test_cli_json_and_plot(dose_csv, tmp_path, capsys):
    png = tmp_path / "fit.png"
    assert main(["calibrate", str(dose_csv), "--json", "--plot", str(png), "--ring-diameter", "12 um"]) == 0
    doc = json.loads(capsys.readouterr().out)
    params = doc["parameters"]
    assert params["threshold_fluence_mj_cm2"]["value"] == pytest.approx(40.0, rel=0.05)
    assert params["threshold_fluence_mj_cm2"]["stderr"] > 0
    assert doc["geometry"] == {"ring_diameter_um": 12.0}
    assert doc["beam_yaml"].startswith("beam:\n")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_rows_exit_2_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("energy_uj,pulses,diameter_um\n0.2,1,5\n0.3,one,4\n")
    assert main(["calibrate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: pulses" in err and "Traceback" not in err


def test_cli_annular_geometry_from_design(tmp_path, capsys):
    design_mod = pytest.importorskip("fabplan.design")
    seed = Path(__file__).resolve().parents[1] / "designs" / "seed_single_disc.yaml"
    design = design_mod.load_design(seed)
    assert design.beam.profile.model == "annular"
    beam = make_beam(design.beam, design.laser)
    f = np.tile(np.geomspace(50, 350, 6), 2)
    n = np.repeat([1, 4], 6)
    d = beam.disc_diameter_um(f, n)
    csv = tmp_path / "ann.csv"
    csv.write_text(
        "fluence_mj_cm2,pulses,diameter_um\n"
        + "".join(f"{a},{b},{c:.4f}\n" for a, b, c in zip(f, n, d, strict=True))
    )
    assert main(["calibrate", str(csv), "--design", str(seed), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "annular"
    assert doc["parameters"]["threshold_fluence_mj_cm2"]["value"] == pytest.approx(
        design.beam.threshold_fluence, rel=0.02
    )
    assert "damage_fluence: 400 mJ/cm^2" in doc["beam_yaml"]


def test_cli_diameter_noise_selects_the_weighting(dose_csv, capsys):
    """--diameter-noise passes through to calibrate(diameter_noise=); relative is the default."""
    from fabplan.beam.calibrate import calibrate
    from fabplan.beam.dose_csv import read_dose_csv

    data = read_dose_csv(str(dose_csv))
    got = {}
    for opt in (None, "relative", "absolute"):
        argv = ["calibrate", str(dose_csv), "--json"] + ([] if opt is None else ["--diameter-noise", opt])
        assert main(argv) == 0
        got[opt] = json.loads(capsys.readouterr().out)["parameters"]["threshold_fluence_mj_cm2"]
    for opt in ("relative", "absolute"):
        want = calibrate(data, "lg01", diameter_noise=opt)
        assert got[opt]["value"] == pytest.approx(want.values["threshold_fluence_mj_cm2"], rel=1e-9)
        assert got[opt]["stderr"] == pytest.approx(want.stderr["threshold_fluence_mj_cm2"], rel=1e-9)
    assert got[None] == got["relative"]
    assert got["absolute"]["stderr"] != pytest.approx(got["relative"]["stderr"], rel=1e-6)


def test_cli_diameter_noise_rejects_other_values(dose_csv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", str(dose_csv), "--diameter-noise", "gaussian"])
    assert exc.value.code == 2
    assert "--diameter-noise" in capsys.readouterr().err
