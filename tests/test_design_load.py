"""Design loading: shipped designs, every error class with its exact file:line:col location."""

from pathlib import Path

import numpy as np
import pytest

from fabplan.cli import main
from fabplan.design import expand, load_design, loads_design
from fabplan.design.layout import layout_problems
from fabplan.design.schema import SCHEMA_FILE_NAME, design_json_schema_text
from fabplan.errors import ProblemsError

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = sorted((ROOT / "designs").glob("*.yaml"))

MINIMAL = """\
schema_version: 1
sample:
  region: {rect: [-100, -100, 100, 100]}
laser:
  max_pulse_energy: 5 uJ
beam:
  profile: {model: lg01, ring_diameter: 12 um}
  threshold_fluence: 40 mJ/cm^2
  damage_fluence: 400 mJ/cm^2
arrays:
  - id: A
    pitch: 20 um
    shape: [3, 4]
    disc: {diameter: 6 um}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ProblemsError) as info:
        loads_design(text, "d.yaml")
    return [str(p) for p in info.value.problems]


def test_shipped_designs_expected_and_all_listed():
    names = {p.stem for p in DESIGNS}
    assert {"seed_single_disc", "dose_matrix", "dense_cm2", "hex_sweep"} <= names


@pytest.mark.parametrize("path", DESIGNS, ids=lambda p: p.stem)
def test_shipped_design_round_trip(path):
    text = path.read_text()
    assert text.startswith(f"# yaml-language-server: $schema={SCHEMA_FILE_NAME}")
    design = load_design(path)
    discs = expand(design)
    assert len(discs) > 0
    assert layout_problems(design, discs) == []
    # Round trip: the validated model dumped and re-validated is the same design.
    again = type(design).model_validate(design.model_dump())
    assert again.model_dump() == design.model_dump()


def test_shipped_design_sizes():
    # Numbers from the product brief: one seed disc; dense_cm2 = 1 cm x 1 cm at 20 um = 250,000.
    assert len(expand(load_design(ROOT / "designs/seed_single_disc.yaml"))) == 1
    dense = expand(load_design(ROOT / "designs/dense_cm2.yaml"))
    assert len(dense) == 250_000
    xmin, ymin, xmax, ymax = dense.bounds()
    assert xmax - xmin == pytest.approx(9980.0) and ymax - ymin == pytest.approx(9980.0)


def test_schema_copy_in_designs_is_in_sync():
    assert (ROOT / "designs" / SCHEMA_FILE_NAME).read_text() == design_json_schema_text()


def test_minimal_design_defaults():
    d = loads_design(MINIMAL)
    assert d.laser.wavelength == 515.0 and d.laser.pulse_duration == 220.0
    assert d.process.position_tolerance == pytest.approx(0.1)  # 100 nm default
    discs = expand(d)
    assert len(discs) == 12
    assert discs.ids[5] == "A-r01c01"
    assert discs.x_um[5] == 20.0 and discs.y_um[5] == 20.0


def test_unknown_key_with_suggestion_located_on_the_key():
    text = MINIMAL.replace("    pitch: 20 um", "    pich: 20 um")
    assert problems_of(text) == [
        "d.yaml:11:5: arrays[0].pitch: missing required field 'pitch'",
        "d.yaml:12:5: arrays[0].pich: unknown key 'pich'; did you mean 'pitch'?",
    ]


def test_wrong_dimension_located_on_the_value():
    text = MINIMAL.replace("max_pulse_energy: 5 uJ", "max_pulse_energy: 5 um")
    assert problems_of(text) == ["d.yaml:5:21: laser.max_pulse_energy: expected an energy, got '5 um'"]


def test_all_problems_reported_at_once():
    text = (
        MINIMAL.replace("ring_diameter: 12 um", "ring_diameter: 12 mJ")
        .replace("threshold_fluence: 40 mJ/cm^2", "threshold_fluence: lots")
        .replace("shape: [3, 4]", "shape: [3, 4]\n    lattice: hexagon")
    )
    lines = problems_of(text)
    assert len(lines) == 3
    assert lines[0].startswith("d.yaml:7:41: beam.profile.ring_diameter: expected a length")
    assert lines[1].startswith("d.yaml:8:22: beam.threshold_fluence: cannot read 'lots'")
    assert lines[2].startswith("d.yaml:14:14: arrays[0].lattice: Input should be 'square', 'rect' or 'hex'")


def test_yaml_syntax_error_located():
    assert problems_of("schema_version: 1\nsample: [1,\n") == [
        "d.yaml:3:1: YAML syntax error: expected the node content, but found '<stream end>'"
    ]


def test_duplicate_key_is_an_error():
    text = MINIMAL.replace("laser:\n", "laser:\n  max_pulse_energy: 1 uJ\n")
    assert problems_of(text) == ["d.yaml:6:3: laser.max_pulse_energy: duplicate key 'max_pulse_energy'"]


def test_unsafe_yaml_tags_are_refused():
    lines = problems_of("!!python/object/apply:os.system ['true']\n")
    assert lines[0] == "d.yaml:1:1: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"
    lines = problems_of("schema_version: !!python/name:os.system ''\n")
    assert lines[0].startswith("d.yaml:1:17: schema_version: unsupported YAML tag")


def test_cross_field_problems_located():
    text = MINIMAL.replace("damage_fluence: 400 mJ/cm^2", "damage_fluence: 30 mJ/cm^2") + (
        "process:\n  alignment: {fiducials: {F9: [0, 0]}}\n"
    )
    assert problems_of(text) == [
        "d.yaml:9:19: beam.damage_fluence: damage_fluence (30 mJ/cm^2) must exceed threshold_fluence (40 mJ/cm^2)",
        "d.yaml:16:27: process.alignment.fiducials.F9: unknown fiducial 'F9' (known: none defined under sample.fiducials)",
    ]


def test_shape_disagreeing_with_sweep():
    text = MINIMAL.replace("disc: {diameter: 6 um}", "sweep: {cols: {diameter: [4, 5, 6]}}")
    assert problems_of(text) == [
        "d.yaml:13:12: arrays[0].shape: shape gives 4 cols but the sweep (with repeats) gives 3"
    ]


def test_dose_matrix_is_one_short_block():
    text = MINIMAL.replace(
        "    shape: [3, 4]\n    disc: {diameter: 6 um}\n",
        "    sweep:\n      cols: {fluence: {start: 60 mJ/cm^2, stop: 0.12 J/cm^2, step: 20 mJ/cm^2}}\n"
        "      rows: {pulses: [1, 3, 10]}\n    repeats: 2\n",
    ).replace("pitch: 20 um", "pitch: 30 um")
    discs = expand(loads_design(text))
    assert len(discs) == 4 * 3 * 2  # 4 fluences x 3 pulse counts x 2 repeats
    assert discs.fluence_mj_cm2[:4].tolist() == [60.0, 80.0, 100.0, 120.0]
    per_row = discs.row * 4 == np.arange(len(discs)) - discs.col
    assert per_row.all()
    first_col = discs.col == 0
    assert discs.pulses[first_col].tolist() == [1, 3, 10] * 2
    # a diameter sweep as well would be a second specification of the same discs (a located error)
    with pytest.raises(ProblemsError, match="sweep.cols.fluence: diameter and fluence are both swept"):
        loads_design(text.replace("rows: {pulses", "rows: {diameter: [6 um, 8 um], pulses"))


def test_hex_lattice_geometry_and_skip():
    text = MINIMAL.replace("    pitch: 20 um", "    lattice: hex\n    pitch: 20 um\n    skip: [r00c01]")
    discs = expand(loads_design(text))
    assert len(discs) == 11 and "A-r00c01" not in set(discs.ids)
    k = int(discs.index_of(["A-r01c00"])[0])
    assert discs.x_um[k] == pytest.approx(10.0) and discs.y_um[k] == pytest.approx(20 * np.sqrt(3) / 2)


def test_explicit_csv_array(tmp_path):
    (tmp_path / "pos.csv").write_text("x_um,y_um,diameter_um,pulses\n0,0,5,1\n30,0,6 um,2\n")
    text = MINIMAL.replace(
        "  - id: A\n    pitch: 20 um\n    shape: [3, 4]\n    disc: {diameter: 6 um}\n",
        "  - id: E\n    csv: pos.csv\n",
    )
    (tmp_path / "d.yaml").write_text(text)
    discs = expand(load_design(tmp_path / "d.yaml"))
    assert discs.ids.tolist() == ["E-r00c00", "E-r00c01"]
    assert discs.diameter_um.tolist() == [5.0, 6.0] and discs.pulses.tolist() == [1, 2]


def test_explicit_csv_bad_row_names_file_and_line(tmp_path):
    (tmp_path / "pos.csv").write_text("x_um,y_um,diameter_um\n0,0,5\n30,zz,6\n")
    text = MINIMAL.replace(
        "  - id: A\n    pitch: 20 um\n    shape: [3, 4]\n    disc: {diameter: 6 um}\n",
        "  - id: E\n    csv: pos.csv\n",
    )
    (tmp_path / "d.yaml").write_text(text)
    with pytest.raises(ProblemsError) as info:
        expand(load_design(tmp_path / "d.yaml"))
    assert (
        str(info.value)
        == f"{tmp_path / 'pos.csv'}:3:1: row 2: cannot read 'zz' as a quantity (UndefinedUnitError)"
    )


def test_layout_problems_name_disc_ids():
    text = MINIMAL.replace("pitch: 20 um", "pitch: 6.5 um").replace(
        "  region: {rect: [-100, -100, 100, 100]}",
        "  region: {rect: [-100, -100, 10, 100]}\n  keepouts: [{circle: {center: [0 um, 13 um], radius: 1 um}}]",
    )
    design = loads_design(text, "d.yaml")
    lines = [str(p) for p in layout_problems(design, expand(design))]
    assert lines[0].startswith(
        "d.yaml:12:5: arrays[0]: 17 disc pair(s) overlap or are closer than the margin (1 um): A-r00c00/A-r00c01"
    )
    assert (
        lines[1]
        == "d.yaml:12:5: arrays[0]: 6 disc(s) not inside the film region (sample.region): A-r00c02, A-r00c03, A-r01c02, A-r01c03, A-r02c02 (+1 more)"
    )
    assert lines[2] == "d.yaml:12:5: arrays[0]: 1 disc(s) inside a keep-out zone (sample.keepouts): A-r02c00"


def test_cli_validate_exit_codes(tmp_path, capsys):
    assert main(["validate", str(ROOT / "designs/hex_sweep.yaml")]) == 0
    assert "63 discs" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("pitch: 20 um", "pitch: 20 mJ"))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}:12:12: arrays[0].pitch: expected a length, got '20 mJ'")
    assert "Traceback" not in err


def test_parameter_swept_on_both_axes_is_an_error():
    text = MINIMAL.replace(
        "    shape: [3, 4]\n    disc: {diameter: 6 um}\n",
        "    sweep: {rows: {diameter: [4, 5]}, cols: {diameter: [6, 7]}}\n",
    )
    assert problems_of(text) == [
        "d.yaml:13:56: arrays[0].sweep.cols.diameter: diameter is swept along both rows and cols"
    ]
