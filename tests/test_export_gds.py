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


def test_cell_names_are_legal_gdsii_and_lattices_are_arrays_klayout_sees(tmp_path, capsys):
    """KLayout (klayout.db, an independent reader) sees every disc once, placed by arrays."""
    kdb = pytest.importorskip("klayout.db")
    import re

    from fabplan.design import expand, load_design

    for name in ("hex_sweep.yaml", "dose_matrix.yaml"):
        out = tmp_path / name.replace(".yaml", ".gds")
        assert main(["export-gds", str(DESIGNS / name), "-o", str(out), "--json"]) == 0
        info = __import__("json").loads(capsys.readouterr().out)
        discs = expand(load_design(DESIGNS / name))
        ly = kdb.Layout()
        ly.read(str(out))
        (top,) = ly.top_cells()
        for c in ly.each_cell():
            assert re.fullmatch(r"[A-Za-z0-9_?$]{1,32}", c.name), c.name  # GDSII structure name characters
        insts = list(top.each_inst())
        assert sum(i.size() for i in insts) == len(discs.ids) == info["discs"]
        assert len(insts) == info["arrays"] + info["single_references"] < len(discs.ids) / 2
        placed = []
        for inst in insts:
            for k in range(inst.size() if inst.is_regular_array() else 1):
                a, b = divmod(k, inst.nb) if inst.is_regular_array() else (0, 0)
                v = inst.dcplx_trans.disp + (
                    inst.da * a + inst.db * b if inst.is_regular_array() else kdb.DVector()
                )
                placed.append((round(v.x, 3), round(v.y, 3)))
        expect = sorted(zip(np.round(discs.x_um, 3).tolist(), np.round(discs.y_um, 3).tolist(), strict=True))
        assert sorted(placed) == expect


def test_labels_by_row_for_large_designs(tmp_path, capsys):
    out = tmp_path / "dm.gds"
    assert (
        main(["export-gds", str(DESIGNS / "dose_matrix.yaml"), "-o", str(out), "--labels", "rows", "--json"])
        == 0
    )
    info = __import__("json").loads(capsys.readouterr().out)
    (top,) = gdstk.read_gds(str(out)).top_level()
    texts = [lb.text for lb in top.get_labels() if lb.layer == 100 and "-r" in lb.text]
    assert info["labels"] == "rows" and len(texts) == info["disc_labels"] > 0
    assert all(t.endswith("c00") for t in texts)  # the first disc of each row


def test_lattice_blocks_cover_every_point_once():
    from fabplan.export.lattice import find_blocks

    rng = np.random.default_rng(3)
    gx, gy = np.meshgrid(np.arange(30) * 700, np.arange(20) * 600)
    hx = np.where((gy // 600) % 2 == 1, gx + 350, gx) + 50_000  # hexagonal: two blocks
    pts = np.concatenate(
        [
            np.column_stack([gx.ravel(), gy.ravel()]),
            np.column_stack([hx.ravel(), gy.ravel()]),
            rng.integers(-90_000, -1000, (40, 2)),  # scattered
        ]
    )
    blocks = find_blocks(pts[:, 0], pts[:, 1])
    members = np.concatenate([b.members for b in blocks])
    assert sorted(members.tolist()) == list(range(len(pts)))
    for b in blocks:
        i, j = np.meshgrid(np.arange(b.columns), np.arange(b.rows))
        grid = np.column_stack([(b.x0 + i * b.dx).ravel(), (b.y0 + j * b.dy).ravel()])
        assert sorted(map(tuple, grid.tolist())) == sorted(map(tuple, pts[b.members].tolist()))
    assert sum(b.columns * b.rows > 1 for b in blocks) >= 3 and len(blocks) < 60
