"""Every output that shows fluences names their definition (issue 18 leftover: preview, export-gds,
run / dry-run summaries; calibrate's dose definition is in test_calibrate_fluence_definition.py).

The outside readers are the oracles: the preview is read back as SVG text (matplotlib writes text as
<text> elements with svg.fonttype "none", parsed here with xml.etree), the GDS file with KLayout's own
reader (klayout.db). Expected areas are closed forms: the seed design's 10/16 um mask annulus is
pi (8^2 - 5^2) = 39 pi um^2 (geometric-annulus definition).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from fabplan.beam.base import plan_fluence_definition
from fabplan.cli import main

SEED = Path(__file__).resolve().parents[1] / "designs" / "seed_single_disc.yaml"


def _design_with(tmp_path: Path, definition: str) -> Path:
    text = SEED.read_text().replace(
        "  damage_fluence: 400 mJ/cm^2\n", f"  damage_fluence: 400 mJ/cm^2\n  fluence_definition: {definition}\n"
    )
    assert f"fluence_definition: {definition}" in text
    path = tmp_path / f"seed_{definition}.yaml"
    path.write_text(text)
    return path


def _svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return ["".join(el.itertext()) for el in root.iter() if el.tag.endswith("}text")]


@pytest.mark.parametrize("definition", ["geometric-annulus", "peak"])
def test_preview_figure_and_text_name_the_definition(tmp_path, capsys, definition):
    import matplotlib

    design = _design_with(tmp_path, definition)
    out = tmp_path / "preview.svg"
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text in the SVG
        assert main(["preview", str(design), "-o", str(out), "--color", "fluence"]) == 0
    printed = capsys.readouterr().out
    assert f"fluence: {definition} (" in printed
    texts = _svg_texts(out)
    assert any(t.endswith(f"(fluences: {definition})") for t in texts), texts  # the title
    label = "peak fluence (mJ/cm^2)" if definition == "peak" else f"{definition} fluence (mJ/cm^2)"
    assert label in texts  # the colour bar
    box = "\n".join(texts)
    assert f"fluence definition: {definition} (" in box
    if definition == "geometric-annulus":
        assert f"E = F x {39 * np.pi:.4g} um^2" in box  # 122.5 um^2
        assert "peak fluence (mJ/cm^2)" not in texts  # the old, wrong label
    assert main(["preview", str(design), "-o", str(tmp_path / "p.png"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["fluence_definition"]
    assert info["name"] == definition


def test_export_gds_carries_the_definition_klayout_reads_back(tmp_path, capsys):
    kdb = pytest.importorskip("klayout.db")
    design = _design_with(tmp_path, "geometric-annulus")
    out = tmp_path / "seed.gds"
    assert main(["export-gds", str(design), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fluence (disc sizes follow from these; written on 101/0): geometric-annulus (" in printed
    ly = kdb.Layout()
    ly.read(str(out))
    (top,) = ly.top_cells()
    shapes = list(top.shapes(ly.find_layer(101, 0)).each())
    assert len(shapes) == 1 and shapes[0].is_text()
    note = shapes[0]
    assert note.text_string.startswith("fluences: geometric-annulus (")
    assert note.property(1) == "fluence_definition=geometric-annulus"
    area = float(note.property(2).split("=")[1])
    assert area == pytest.approx(39 * np.pi, rel=1e-5)
    assert note.property(3).startswith("peak_over_fluence=")
    # The note sits below the film region (not on a disc) and is not a disc id label (layer 100).
    assert note.text_dpos.y < -500 and all(s.text_string != note.text_string
                                            for s in top.shapes(ly.find_layer(100, 0)).each())
    assert main(["export-gds", str(SEED), "-o", str(tmp_path / "p.gds"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["fluence_definition"]["name"] == "peak" and info["layers"]["info"] == "101/0"


def test_dry_run_summary_names_the_definition(tmp_path, capsys):
    design = _design_with(tmp_path, "ring-fwhm-average")
    args = ["dry-run", str(design), "--lab-process", "no"]
    assert main(args + ["--journal", str(tmp_path / "a.jsonl")]) == 0
    assert "  fluence: ring-fwhm-average (" in capsys.readouterr().out
    assert main(args + ["--journal", str(tmp_path / "b.jsonl"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["fluence_definition"]["name"] == "ring-fwhm-average"
    assert summary["fluence_definition"]["peak_over_fluence"] > 1  # the ring average is below the peak


def test_a_plan_from_before_definitions_is_peak_fluence():
    header = {"model": {"beam": {"model": "annular", "effective_area_um2": 94.5}}}
    info = plan_fluence_definition(header)
    assert info["name"] == "peak" and info["fluence_area_um2"] == 94.5 and info["peak_over_fluence"] == 1.0
    assert info["uj_per_mj_cm2"] == pytest.approx(94.5e-5)
