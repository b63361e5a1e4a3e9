"""QA findings on `lab fit` / `lab simulate` input limits: a series too short to fit is 'untested'
with an 'insufficient data' flag (not 'dead'), and a pump sweep running backwards is refused."""

import json
from pathlib import Path

import pytest

from fabplan.cli import main
from fabplan.lab.threshold import MIN_POINTS

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("points", [1, MIN_POINTS - 1])
def test_series_too_short_to_fit_is_insufficient_data_not_dead(tmp_path, capsys, points):
    design = ROOT / "designs" / "seed_single_disc.yaml"  # one 10 um disc, S-r00c00
    db = tmp_path / "lab.sqlite"
    assert run(capsys, "lab", "add-design", design, "--db", db, "--sample", "seed")[0] == 0
    # a sweep through the lasing threshold (sim/lasing.py): with enough points this disc lases
    rc, _, err = run(capsys, "lab", "simulate", "--design", design, "--out", tmp_path / "sp", "--dead-fraction", "0",
                     "--points", points, "--fluence-range", "30:60")
    assert rc == 0, err
    rc, _, err = run(capsys, "lab", "import", tmp_path / "sp" / "manifest.csv", "--db", db, "--sample", "seed")
    assert rc == 0, err
    rc, out, _ = run(capsys, "lab", "fit", "--db", db, "--json")
    (fit,) = json.loads(out)
    assert rc == 0 and fit["n_points"] == points
    assert fit["status"] == "untested" and "insufficient data" in fit["flag"]
    rc, out, _ = run(capsys, "lab", "fit", "--db", db)
    assert "untested" in out and "insufficient data" in out and "dead" not in out


@pytest.mark.parametrize("rng", ["60:2", "5:5", "60", "-1:5"])
def test_simulate_refuses_a_backwards_or_malformed_fluence_range(tmp_path, capsys, rng):
    rc, out, err = run(capsys, "lab", "simulate", "--ids", "A-r00c00", "--out", tmp_path / "sp",
                       f"--fluence-range={rng}")
    assert rc == 2 and "--fluence-range" in err and "Traceback" not in err
    assert not (tmp_path / "sp").exists()


def test_simulate_refuses_zero_points(tmp_path, capsys):
    rc, _, err = run(capsys, "lab", "simulate", "--ids", "A-r00c00", "--out", tmp_path / "sp", "--points", "0")
    assert rc == 2 and "--points" in err
