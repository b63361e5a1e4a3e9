"""GDS export (layers, labels, references) and import of circles, round trip through a design."""

import sys
from pathlib import Path

import numpy as np
import pytest

from fabplan.cli import main
from fabplan.errors import UserError
from fabplan.export.gds import circles_from_polygons, parse_layer, require_gdstk

gdstk = pytest.importorskip("gdstk")
DESIGNS = Path(__file__).resolve().parents[1] / "designs"


def test_export_has_every_layer_and_id_labels(tmp_path, capsys):
    out = tmp_path / "hex.gds"
    assert main(["export-gds", str(DESIGNS / "hex_sweep.yaml"), "-o", str(out)]) == 0
    lib = gdstk.read_gds(str(out))
    (top,) = lib.top_level()
    layers = {(p.layer, p.datatype) for p in top.get_polygons()}
    assert {(1, 0), (2, 0), (10, 0), (11, 0), (12, 0)} <= layers
    labels = {lb.text for lb in top.get_labels() if lb.layer == 100}
    assert "H-r00c00" in labels and "H-r07c06" in labels and "H-r07c07" not in labels  # skipped site
    assert len(top.get_polygons(layer=1, datatype=0)) == 63
    again = tmp_path / "again.gds"
    main(["export-gds", str(DESIGNS / "hex_sweep.yaml"), "-o", str(again)])
    assert again.read_bytes() == out.read_bytes()  # fixed timestamp: deterministic


def test_import_round_trip_to_a_design_that_plans(tmp_path, capsys):
    gds = tmp_path / "hex.gds"
    main(["export-gds", str(DESIGNS / "hex_sweep.yaml"), "-o", str(gds)])
    out = tmp_path / "imported.yaml"
    code = main(
        [
            "import-gds",
            str(gds),
            "--layer",
            "1/0",
            "-o",
            str(out),
            "--template",
            str(DESIGNS / "hex_sweep.yaml"),
        ]
    )
    assert code == 0
    rows = (tmp_path / "imported.csv").read_text().splitlines()
    assert rows[0] == "x_um,y_um,diameter_um" and len(rows) == 64
    x, y, d = np.array([r.split(",") for r in rows[1:]], float).T
    assert set(np.round(d, 3)) == {4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0}
    assert main(["plan", str(out)]) == 0


def test_circle_fit_accepts_polygons_and_refuses_squares():
    t = np.linspace(0, 2 * np.pi, 33)[:-1]
    circle = np.column_stack([5 + 3 * np.cos(t), -2 + 3 * np.sin(t)])
    octagon = np.column_stack([np.cos(t[::4]), np.sin(t[::4])])
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]])
    ellipse = np.column_stack([2 * np.cos(t), np.sin(t)])
    c = circles_from_polygons([circle, octagon, square, ellipse])
    assert c.rejected == 2
    assert (
        c.x_um[0] == pytest.approx(5)
        and c.y_um[0] == pytest.approx(-2)
        and c.diameter_um[0] == pytest.approx(6)
    )
    assert c.diameter_um[1] == pytest.approx(2)


def test_layer_parsing_and_missing_gdstk(monkeypatch):
    assert parse_layer("5/2") == (5, 2) and parse_layer("7") == (7, 0)
    with pytest.raises(UserError):
        parse_layer("a/b")
    monkeypatch.setitem(sys.modules, "gdstk", None)
    with pytest.raises(UserError, match="fabplan\\[gds\\]"):
        require_gdstk()


def test_import_foreign_layout_in_nm_units(tmp_path, capsys):
    # a layout as gdsfactory would write it (1 nm database unit), circles and a stray box on 5/0
    lib = gdstk.Library(unit=1e-9, precision=1e-12)
    cell = lib.new_cell("TOP")
    for x, y, r in [(0, 0, 3000), (20000, 0, 3000), (10000, 15000, 4500)]:
        cell.add(gdstk.ellipse((x, y), r, tolerance=5, layer=5, datatype=0))
    cell.add(gdstk.rectangle((50000, 0), (52000, 2000), layer=5, datatype=0))
    cell.add(gdstk.ellipse((0, 50000), 3000, layer=6, datatype=0))  # other layer: ignored
    gds = tmp_path / "foreign.gds"
    lib.write_gds(str(gds))
    out = tmp_path / "discs.csv"
    assert main(["import-gds", str(gds), "--layer", "5/0", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 circles" in text and "1 polygon(s)" in text and "csv: discs.csv" in text
    rows = out.read_text().splitlines()
    assert rows[1:] == ["0.000,0.000,6.000", "20.000,0.000,6.000", "10.000,15.000,9.000"]
