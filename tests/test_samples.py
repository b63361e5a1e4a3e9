"""The tour's sample inputs (designs/samples) are what their generator makes, and they work.

measured_diameters.csv is synthetic: the LG01 closed form evaluated with scipy's Lambert W in
designs/samples/make_samples.py (not fabplan's beam code) with F_th(1) 36 mJ/cm^2, S 0.85, ring
11.6 um and 2.5 % noise; `fabplan calibrate` must give those values back within 3 of its own sigmas.
drawn.gds holds KLayout Basic.CIRCLE PCells (klayout's own writer): 4 diameters x 3 rows.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from fabplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "designs" / "samples"


def _generator():
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_measured_csv_is_what_the_generator_makes(tmp_path):
    _generator().measured_csv(tmp_path / "m.csv")
    assert (tmp_path / "m.csv").read_bytes() == (SAMPLES / "measured_diameters.csv").read_bytes()


def test_calibrate_recovers_the_generating_parameters(capsys):
    assert main(["calibrate", str(SAMPLES / "measured_diameters.csv"), "--beam", "lg01", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    gen = _generator()
    for key, true in (("threshold_fluence_mj_cm2", gen.F_TH1), ("incubation_exponent", gen.S),
                      ("ring_diameter_um", gen.RING_D)):
        value, sigma = res["parameters"][key]["value"], res["parameters"][key]["stderr"]
        assert abs(value - true) < 3 * sigma, (key, value, sigma, true)


def test_drawn_gds_imports_as_the_drawn_circles(tmp_path, capsys):
    pytest.importorskip("klayout.db")
    _generator().drawn_gds(tmp_path / "again.gds")
    for gds in (SAMPLES / "drawn.gds", tmp_path / "again.gds"):
        out = tmp_path / f"{gds.stem}.csv"
        assert main(["import-gds", str(gds), "--layer", "1/0", "-o", str(out)]) == 0
        with open(out) as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 12
        assert sorted({float(r["diameter_um"]) for r in rows}) == [5.0, 6.5, 8.0, 9.5]
    assert "12 circles" in capsys.readouterr().out
