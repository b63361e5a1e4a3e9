"""Units a newcomer gets wrong: common spellings accepted, unit slips warned with the likely value.

The slips are the ones a new lab member made (issue 17): `thickness: 0.1` (read as nm),
`threshold_fluence: 40 uJ/cm^2` (a pump-fluence unit for an ablation threshold), `max_pulse_energy:
5 mJ`, `lab add --fluence 12mJ/cm^2` for a pump fluence, `50 mJ/cm2` without a caret, and
`stage move URL -5um 0` / `100 mm 0 0`. The sensible ranges are this process's: ~100 nm films
ablated at tens to hundreds of mJ/cm^2 by sub-uJ pulses (seed paper section 2.3: 100 nm film,
~100 mJ/cm^2, 10 um disc), pumped for lasing at ~1-100 uJ/cm^2 (threshold 14-16 uJ/cm^2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabplan.cli import main
from fabplan.design import loads_design
from fabplan.errors import ProblemsError
from fabplan.units import implausible, parse_kind

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("50 mJ/cm2", "fluence_mj_cm2", 50.0),
        ("0.05 J/cm2", "fluence_mj_cm2", 50.0),
        ("50 mJ cm-2", "fluence_mj_cm2", 50.0),
        ("50 mJ/cm²", "fluence_mj_cm2", 50.0),
        ("12uJ/cm2", "fluence_mj_cm2", 0.012),
        ("5 micron", "length_um", 5.0),
        ("5 microns", "length_um", 5.0),
        ("5 µm", "length_um", 5.0),
        ("5 μm", "length_um", 5.0),  # Greek mu, as some keyboards type it
        ("1e3 um", "length_um", 1000.0),  # an exponent is not a power of a unit
        ("2 mm/s2", "accel_um_s2", 2000.0),
    ],
)
def test_common_spellings(text, kind, expected):
    assert parse_kind(text, kind) == pytest.approx(expected)


SLIPS = """\
schema_version: 1
sample:
  film: {thickness: 0.1}
  region: {rect: [-200 um, -200 um, 600 um, 600 um]}
laser: {max_pulse_energy: 5 mJ}
beam:
  profile: {model: lg01, ring_diameter: 12 um}
  threshold_fluence: 40 uJ/cm^2
  damage_fluence: 400 mJ/cm2
arrays:
  - id: A
    pitch: 40 um
    shape: [1, 2]
    disc: {fluence: 100 mJ/cm2}
"""


def test_unit_slips_are_located_warnings_with_the_likely_value(tmp_path, capsys):
    path = tmp_path / "slips.yaml"
    path.write_text(SLIPS)
    assert main(["validate", str(path)]) == 0  # valid: warnings, not errors
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert err[0].startswith(f"{path}:3:21: warning: sample.film.thickness: 0.1 nm is outside")
    assert "did you mean 100 nm?" in err[0] and "a bare number is read as nm" in err[0]
    assert err[1].startswith(f"{path}:5:27: warning: laser.max_pulse_energy: 5000 uJ")
    assert err[1].endswith("did you mean 5 uJ?")
    assert err[2].startswith(f"{path}:8:22: warning: beam.threshold_fluence: 0.04 mJ/cm^2")
    assert err[2].endswith("did you mean 40 mJ/cm^2?")
    assert main(["validate", str(path), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["warnings"]) == 3
    assert main(["plan", str(path), "--json"]) == 0
    out = capsys.readouterr()
    assert len(json.loads(out.out)["design_warnings"]) == 3 and out.err.count("warning:") == 3


def test_shipped_designs_raise_no_warning(capsys):
    for path in sorted((ROOT / "designs").glob("*.yaml")):
        assert main(["validate", str(path)]) == 0
        assert "warning" not in capsys.readouterr().err, path.name


def test_sweeps_are_checked_at_their_extreme():
    design = loads_design(SLIPS.replace("    shape: [1, 2]\n    disc: {fluence: 100 mJ/cm2}\n",
                                        "    sweep: {cols: {diameter: [0.005, 8, 10]}}\n"), file="s.yaml")
    from fabplan.design.checks import design_warnings

    (msg,) = [str(w) for w in design_warnings(design) if "sweep" in w.path]
    assert "arrays[0].sweep.cols.diameter: 0.005 um is outside" in msg and "did you mean 5 um?" in msg


def test_ranges_cover_the_paper_values():
    # seed paper section 2.3 and the shipped designs: none of these may warn
    for value, role in [(100, "film_thickness"), (40, "ablation_fluence"), (100, "ablation_fluence"),
                        (400, "ablation_fluence"), (5, "pulse_energy"), (10, "disc_diameter"),
                        (12, "ring_diameter"), (515, "wavelength"), (15, "pump_fluence"), (60, "pump_fluence")]:
        assert implausible(value, role) is None, (value, role)
    assert "did you mean 12 uJ/cm^2?" in implausible(12000.0, "pump_fluence")


def test_lab_add_warns_about_a_pump_fluence_in_mj(tmp_path, capsys):
    assert main(["lab", "simulate", "--out", str(tmp_path / "sp"), "--ids", "A-r00c00", "--diameter", "10",
                 "--points", "3", "--seed", "1"]) == 0
    spectrum = sorted((tmp_path / "sp").rglob("*.csv"))
    spectrum = next(p for p in spectrum if p.name != "manifest.csv")
    capsys.readouterr()
    rc = main(["lab", "add", "--db", str(tmp_path / "lab.sqlite"), "--disc", "A-r00c00", "--allow-unknown",
               "--fluence", "12mJ/cm^2", "--spectrum", str(spectrum)])
    err = capsys.readouterr().err
    assert rc == 0
    assert "warning: --fluence 12mJ/cm^2: 12000 uJ/cm^2 is outside" in err and "did you mean 12 uJ/cm^2?" in err


def test_diameter_and_fluence_for_one_disc_is_a_located_error():
    text = SLIPS.replace("disc: {fluence: 100 mJ/cm2}", "disc: {diameter: 10 um, fluence: 100 mJ/cm2}")
    with pytest.raises(ProblemsError) as exc:
        loads_design(text, file="both.yaml")
    (problem,) = exc.value.problems
    assert (problem.line, problem.path) == (14, "arrays[0].disc.fluence")
    assert "not both" in problem.message
    swept = SLIPS.replace("    shape: [1, 2]\n", "    sweep: {cols: {diameter: [6, 8]}}\n")
    with pytest.raises(ProblemsError) as exc:
        loads_design(swept, file="swept.yaml")
    assert "disc.fluence is given and diameter is swept" in str(exc.value)
    assert exc.value.problems[0].path == "arrays[0].sweep.cols.diameter"


def test_stage_move_takes_negative_quantities_and_separate_units(capsys):
    assert main(["stage", "move", "sim://newcomer", "-5um", "0", "--home", "--json"]) == 0
    x, y, _z = json.loads(capsys.readouterr().out)["position_um"]
    assert abs(x + 5.0) < 0.1 and abs(y) < 0.1  # emulator encoder noise is ~10 nm
    assert main(["stage", "move", "sim://newcomer", "0.1", "mm", "-20", "um", "--home", "--json"]) == 0
    x, y, _z = json.loads(capsys.readouterr().out)["position_um"]
    assert abs(x - 100.0) < 0.1 and abs(y + 20.0) < 0.1
    assert main(["stage", "move", "sim://newcomer", "1", "2", "3", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected a target X Y [Z]" in err and "got 4 value(s)" in err
