"""The lab report's one-page overview: every measured disc's L-L curve in one figure (issue 17)."""

from __future__ import annotations

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
    with plt.rc_context(STYLE):  # a cap keeps huge logbooks to one page and says so
        capped = overview_sheet(plt, logbook, rows, tmp_path / "capped.svg", max_panels=2)
    assert "first 2 of" in capped.read_text()  # the title line (wrapped), kept as an SVG comment


def test_nothing_measured_makes_no_sheet(tmp_path):
    plt = _plt()
    assert overview_sheet(plt, None, [{"disc_id": "A-r00c00", "series_id": None}], tmp_path / "x.png") is None
