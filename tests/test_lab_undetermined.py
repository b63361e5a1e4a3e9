"""A series the analysis calls 'undetermined' (a kink, threshold not pinned) is stored as disc status
'undetermined' (logbook schema v6), and list/export/report handle it.

The sweep starts above the simulated disc's threshold (sim/lasing.py truth for designs/
seed_single_disc.yaml: 14.6 uJ/cm^2, printed in truth.json), so the L-L line extrapolates to zero
below the first fluence: the threshold cannot be placed (tests/test_lab_fits_synth.py checks the same
verdict against the independent generator)."""

import json
from pathlib import Path

import pytest

from fabplan.cli import main
from tests import lab_pg

lab_url, pg_url = lab_pg.lab_url, lab_pg.pg_url  # fixtures: SQLite and PostgreSQL

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def above_only(tmp_path_factory):
    d = tmp_path_factory.mktemp("undet")
    rc = main(["lab", "simulate", "--design", str(ROOT / "designs" / "seed_single_disc.yaml"), "--out",
               str(d / "sp"), "--dead-fraction", "0", "--points", "12", "--fluence-range", "20:45"])
    assert rc == 0
    truth = json.loads((d / "sp" / "truth.json").read_text())["S-r00c00"]["threshold_uj_cm2"]
    assert truth < 20.0  # every point above threshold
    return d


def test_fit_stores_undetermined_status(above_only, tmp_path, capsys, lab_url):
    db = lab_url
    design = ROOT / "designs" / "seed_single_disc.yaml"
    assert run(capsys, "lab", "add-design", design, "--db", db, "--sample", "seed")[0] == 0
    assert run(capsys, "lab", "import", above_only / "sp" / "manifest.csv", "--db", db, "--sample", "seed")[0] == 0
    rc, out, _ = run(capsys, "lab", "fit", "--db", db, "--json")
    (fit,) = json.loads(out)
    assert rc == 0 and fit["verdict"] == "undetermined" and fit["status"] == "undetermined"
    assert not fit["has_threshold"] and fit["flag"].startswith("undetermined: ")
    rc, out, _ = run(capsys, "lab", "list", "--db", db, "--status", "undetermined", "--json")
    assert rc == 0 and [r["disc_id"] for r in json.loads(out)] == ["S-r00c00"]
    rc, out, _ = run(capsys, "lab", "list", "--db", db)
    assert rc == 0 and "1 discs: 1 undetermined" in out
    rc, out, _ = run(capsys, "lab", "export", "--db", db, "--format", "csv")
    head, row = out.splitlines()
    assert dict(zip(head.split(","), row.split(","), strict=False))["status"] == "undetermined"
    rc, out, _ = run(capsys, "lab", "show", "--db", db, "S-r00c00")
    assert rc == 0 and "undetermined" in out
    # a hand-set status still wins over the fit, and 'auto' hands the disc back to it
    def stored():
        rc, out, _ = run(capsys, "lab", "list", "--db", db, "--json")
        return json.loads(out)[0]["status"]

    assert run(capsys, "lab", "set-status", "--db", db, "S-r00c00", "dead")[0] == 0
    assert run(capsys, "lab", "fit", "--db", db)[0] == 0
    assert stored() == "dead"
    assert run(capsys, "lab", "set-status", "--db", db, "S-r00c00", "auto")[0] == 0
    assert run(capsys, "lab", "fit", "--db", db)[0] == 0
    assert stored() == "undetermined"


def test_report_figures_include_undetermined(above_only, tmp_path, capsys):
    from fabplan.lab.db import STATUSES
    from fabplan.lab.figures import STATUS_COLORS
    from fabplan.lab.overview import STATUS_COLORS as OVERVIEW_COLORS

    assert set(STATUS_COLORS) == set(OVERVIEW_COLORS) == set(STATUSES)
    db = tmp_path / "lab.sqlite"
    design = ROOT / "designs" / "seed_single_disc.yaml"
    assert run(capsys, "lab", "add-design", design, "--db", db, "--sample", "seed")[0] == 0
    assert run(capsys, "lab", "import", above_only / "sp" / "manifest.csv", "--db", db, "--sample", "seed")[0] == 0
    assert run(capsys, "lab", "fit", "--db", db)[0] == 0
    rc, out, err = run(capsys, "lab", "report", "--db", db, "--out", tmp_path / "rep")
    assert rc == 0, err
    assert any((tmp_path / "rep").rglob("*.*"))
