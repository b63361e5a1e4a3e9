"""The lab report's one-page overview: every measured disc's L-L curve in one figure (issue 17)."""

from __future__ import annotations

from collections import Counter

import pytest

from fabplan import lab
from fabplan.lab.figures import STYLE, _plt
from fabplan.lab.overview import overview_sheet
from fabplan.lab.queries import disc_rows


@pytest.fixture(scope="module")
def logbook(tmp_path_factory):
    d = tmp_path_factory.mktemp("overview")
    manifest = lab.simulate_series({"A-r00c00": 6.0, "A-r00c01": 10.0, "A-r00c02": 14.0}, d / "sp", seed=3)
    con = lab.open_db(d / "lab.sqlite")
    lab.import_manifest(con, manifest, allow_unknown=True)
    lab.fit_all(con)
    yield con
    con.close()


@pytest.mark.parametrize("suffix", ["png", "svg", "pdf"])
def test_sheet_of_every_measured_disc(logbook, tmp_path, suffix):
    plt = _plt()
    rows = disc_rows(logbook)
    with plt.rc_context(STYLE):
        path = overview_sheet(plt, logbook, rows, tmp_path / f"overview.{suffix}")
    assert path is not None and path.stat().st_size > 1000
    if suffix == "svg":
        text = path.read_text()
        assert all(d in text for d in ("A-r00c00", "A-r00c01", "A-r00c02"))
        # the title counts the measured discs by status (its line is wrapped: compare word by word)
        statuses = Counter(r["status"] or "untested" for r in rows if r["series_id"])
        flat = " ".join(text.split())
        assert sum(statuses.values()) == 3 and all(f"{st} {n}" in flat for st, n in statuses.items()), statuses
    with plt.rc_context(STYLE):  # a cap keeps huge logbooks to one page and says so
        capped = overview_sheet(plt, logbook, rows, tmp_path / "capped.svg", max_panels=2)
    assert "first 2 of" in capped.read_text()  # the title line (wrapped), kept as an SVG comment


def test_nothing_measured_makes_no_sheet(tmp_path):
    plt = _plt()
    assert overview_sheet(plt, None, [{"disc_id": "A-r00c00", "series_id": None}], tmp_path / "x.png") is None


def test_lab_report_writes_the_overview_and_disc_figures_on_request(logbook, tmp_path, capsys):
    from fabplan.cli import main

    db = logbook.execute("PRAGMA database_list").fetchone()[2]
    assert main(["lab", "report", "--db", db, "--out", str(tmp_path / "r"), "--json"]) == 0
    res = __import__("json").loads(capsys.readouterr().out)
    assert res["disc_figures"] == 0 and res["overview"].endswith("overview.png")
    assert sorted(p.name for p in (tmp_path / "r").glob("*.png")) == [
        "mode_spacing.png", "overview.png", "threshold_map.png", "threshold_vs_diameter.png", "yield_by_array.png"]
    assert main(["lab", "report", "--db", db, "--out", str(tmp_path / "s"), "--disc", "A-r00c01",
                 "--format", "svg"]) == 0
    assert [p.name for p in (tmp_path / "s" / "discs").iterdir()] == ["default_A-r00c01.svg"]
    yield_svg = (tmp_path / "s" / "yield_by_array.svg").read_text()
    assert "<!-- 1 -->" in yield_svg and "<!-- 0.5 -->" not in yield_svg  # whole discs on the count axis
    with pytest.raises(SystemExit) as exc:  # argparse refuses it, usage on stderr
        main(["lab", "report", "--db", db, "--out", str(tmp_path / "t"), "--format", "jpg"])
    assert exc.value.code == 2
