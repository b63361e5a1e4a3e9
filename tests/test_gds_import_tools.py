"""import-gds on layouts written by the tools the lab uses: KLayout (klayout.db, Basic.CIRCLE PCells,
GDSII and OASIS) and gdsfactory (its `circle` component, `grid`, GDSII and OASIS).

Expected diameters are the nominal values given to the tools: KLayout's Basic.CIRCLE puts its
vertices on the circumscribed polygon (r / cos(pi/n), n = npoints = 64 by default), gdsfactory's
`circle` puts them on the circle itself (radius * (cos t, sin t), gdsfactory/components/shapes/circle.py).
"""

import json
import math

import numpy as np
import pytest

from fabplan.cli import main
from fabplan.errors import UserError
from fabplan.export.gds_import import circles_from_polygons, fit_circles, import_circles

pytest.importorskip("gdstk")

DIAMETERS = [5.0, 7.5, 10.0]  # the example


@pytest.fixture(scope="module")
def klayout_files(tmp_path_factory):
    kdb = pytest.importorskip("klayout.db")
    import klayout.lib  # noqa: F401  (registers the Basic library with its CIRCLE PCell)

    d = tmp_path_factory.mktemp("klayout")
    ly = kdb.Layout()
    ly.dbu = 0.001
    top = ly.create_cell("TOP")
    for i, dia in enumerate(DIAMETERS):
        pc = ly.create_cell("CIRCLE", "Basic", {"actual_radius": dia / 2, "layer": kdb.LayerInfo(1, 0)})
        assert pc.is_pcell_variant()
        top.insert(kdb.DCellInstArray(pc.cell_index(), kdb.DTrans(kdb.DVector(30.0 * i, 10.0))))
    top.shapes(ly.layer(1, 0)).insert(kdb.DBox(100, 0, 104, 4))  # not a circle
    top.shapes(ly.layer(2, 0)).insert(kdb.DPolygon(kdb.DBox(0, 0, 1, 1)))  # other layer
    files = {}
    for ext in ("gds", "oas"):
        files[ext] = d / f"circles.{ext}"
        ly.write(str(files[ext]))
    return files


@pytest.mark.parametrize("ext", ["gds", "oas"])
def test_klayout_pcell_circles_come_back_nominal(klayout_files, ext, tmp_path, capsys):
    path = klayout_files[ext]
    if ext == "gds":
        assert b"$$$CONTEXT_INFO$$$" in path.read_bytes()  # the hidden cell is really there
    out = tmp_path / "discs.csv"
    assert main(["import-gds", str(path), "--layer", "1/0", "-o", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["cell"] == "TOP" and s["circles"] == 3 and s["diameter_rules"] == {"edges": 3}
    assert s["rejected_polygons"] == 1 and s["rejected_at_um"] == [[102.0, 2.0]]
    rows = out.read_text().splitlines()[1:]
    assert rows == ["0.000,10.000,5.000", "30.000,10.000,7.500", "60.000,10.000,10.000"]


def test_klayout_circle_by_the_vertex_rule_is_one_over_cos_larger(klayout_files):
    c = import_circles(klayout_files["oas"], 1, 0, rule="vertices")
    # the 5.006 / 7.509 / 10.012: vertices at r / cos(pi/64), snapped to the 1 nm grid
    expect = np.array(DIAMETERS) / math.cos(math.pi / 64)
    assert np.allclose(c.diameter_um, expect, atol=0.002)
    assert np.round(c.diameter_um, 3).tolist() == [5.006, 7.509, 10.012]


@pytest.fixture(scope="module")
def gdsfactory_files(tmp_path_factory):
    gf = pytest.importorskip("gdsfactory")
    gf.gpdk.PDK.activate()
    d = tmp_path_factory.mktemp("gdsfactory")
    c = gf.Component("discs_e14")
    for i, dia in enumerate(DIAMETERS):
        c.add_ref(gf.components.circle(radius=dia / 2, layer=(1, 0))).move((20.0 * i, -5.0))
    files = {}
    for ext in ("gds", "oas"):
        files[ext] = d / f"discs.{ext}"
        c.write_gds(files[ext])
    # gf.grid: the "2 top cells ($$$CONTEXT_INFO$$$, gf_grid...)" case, with a stray rectangle
    g = gf.grid(
        [gf.components.circle(radius=2.5, layer=(1, 0)), gf.components.rectangle(size=(3, 3), layer=(1, 0))]
    )
    files["grid"] = d / "grid.gds"
    g.write_gds(files["grid"])
    return files


@pytest.mark.parametrize("ext", ["gds", "oas"])
def test_gdsfactory_circles_come_back_nominal(gdsfactory_files, ext):
    c = import_circles(gdsfactory_files[ext], 1, 0)
    assert c.cell == "discs_e14" and c.rules == {"vertices": 3} and c.rejected == 0
    assert np.round(c.diameter_um, 3).tolist() == DIAMETERS
    assert np.round(c.x_um, 3).tolist() == [0.0, 20.0, 40.0] and np.round(c.y_um, 3).tolist() == [-5.0] * 3


def test_gdsfactory_grid_has_one_real_top_cell(gdsfactory_files, tmp_path, capsys):
    out = tmp_path / "g.csv"
    assert main(["import-gds", str(gdsfactory_files["grid"]), "--layer", "1/0", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 circles" in text and "1 polygon(s)" in text and "not circles" in text
    assert out.read_text().splitlines()[1].endswith(",5.000")


def test_vectorised_fit_keeps_order_and_mixed_vertex_counts():
    rng = np.random.default_rng(1)
    polys, expect = [], []
    for k in range(50):
        n = int(rng.choice([8, 16, 64, 145]))
        cx, cy, r = rng.uniform(-1e4, 1e4), rng.uniform(-1e4, 1e4), rng.uniform(1, 10)
        t = np.linspace(0, 2 * np.pi, n, endpoint=(n == 145))  # 145: closing vertex repeated
        polys.append(np.column_stack([cx + r * np.cos(t), cy + r * np.sin(t)]))
        expect.append((cx, cy, 2 * r))
        if k % 10 == 0:
            polys.append(np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]]) + (cx, cy))  # square: rejected
    f = fit_circles(polys)
    assert np.allclose(np.column_stack([f.x, f.y, f.d]), expect, atol=1e-6)
    assert len(f.bad_xy) == 5
    c = circles_from_polygons(polys, rule="edges")
    assert c.diameter_um[0] < expect[0][2]


def test_bad_rule_and_not_a_layout(tmp_path):
    bad = tmp_path / "x.oas"
    bad.write_bytes(b"%SEMI-OASIS\r\n garbage")
    with pytest.raises(UserError, match="OASIS"):
        import_circles(bad, 1, 0)
    with pytest.raises(UserError, match="circle-rule"):
        import_circles(bad, 1, 0, rule="mean")


def test_rotated_reflected_magnified_arrays_match_gdstk_flattening(tmp_path):
    """References and arrays with rotation, x-reflection and magnification: circle centres agree
    with the polygons gdstk itself flattens (an independent transform implementation)."""
    import gdstk

    lib = gdstk.Library(unit=1e-6, precision=1e-9)
    leaf = lib.new_cell("LEAF")
    leaf.add(gdstk.ellipse((3, 1), 1.0, tolerance=1e-3, layer=1))
    leaf.add(gdstk.rectangle((5, 5), (6, 6), layer=1))  # not a circle, reported where it lands
    mid = lib.new_cell("MID")
    mid.add(gdstk.Reference(leaf, (10, 0), rotation=np.pi / 3, x_reflection=True, magnification=2))
    top = lib.new_cell("TOP")
    top.add(gdstk.Reference(mid, (-50, 20), rotation=np.pi / 2, columns=3, rows=2, spacing=(40, 30)))
    top.add(gdstk.Reference(leaf, (100, 100), magnification=0.5))
    path = tmp_path / "t.gds"
    lib.write_gds(str(path))
    c = import_circles(path, 1, 0)
    flat = [p.points for p in gdstk.read_gds(str(path)).top_level()[0].get_polygons(layer=1, datatype=0)]
    ref = fit_circles(flat)
    assert len(c.x_um) == 7 and c.rejected == 7
    got = sorted(zip(np.round(c.x_um, 4), np.round(c.y_um, 4), np.round(c.diameter_um, 4), strict=True))
    exp = sorted(zip(np.round(ref.x, 4), np.round(ref.y, 4), np.round(ref.d, 4), strict=True))
    assert got == exp and sorted({round(float(d), 2) for *_, d in got}) == [1.0, 4.0]  # 2 x 2 and 2 x 0.5
    bad = sorted(map(tuple, np.round(c.rejected_xy_um, 3).tolist()))
    assert bad == sorted(map(tuple, np.round(ref.bad_xy, 3).tolist()))
