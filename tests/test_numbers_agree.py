"""One disc, one set of numbers: validate, plan and preview show the same diameter and predicted FSR.

Issue 17: the seed disc got three "predicted FSR" values (1.27 nm validate, 1.22 nm plan/preview,
1.15 nm lab report) because validate used the design's 10 um while plan fired the fluence and got the
beam model's 10.32 um, and the lab evaluated the FSR at the measured peaks. Now a disc is given by
diameter or by fluence (never both), validate and plan use the diameter the shot will make and quote
the FSR of fabplan.wgm at the window centre (saying so); the lab says its value is at the measured peaks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fabplan.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["seed_single_disc", "hex_sweep", "dose_matrix"])
def test_validate_and_plan_agree_on_diameters_and_fsr(name, tmp_path, capsys):
    design = str(ROOT / "designs" / f"{name}.yaml")
    assert main(["validate", design, "--json"]) == 0
    v = json.loads(capsys.readouterr().out)
    assert main(["plan", design, "--json", "-o", str(tmp_path / "p")]) == 0
    p = json.loads(capsys.readouterr().out)
    assert v["wgm"]["fsr_nm"] == pytest.approx(p["wgm"]["fsr_nm"], rel=1e-12)
    assert v["wgm"]["modes_in_window"] == p["wgm"]["modes_in_window"]
    from fabplan.planning.plan import Plan

    planned = Plan.load(tmp_path / "p").shots.diameter_um
    for a in v["arrays"]:
        used = a.get("predicted_diameter_um") or a["diameter_um"]
        assert used[0] == pytest.approx(float(np.min(planned)), rel=1e-4)  # shots.csv keeps 4 decimals


def test_text_outputs_say_which_diameter_and_where_the_fsr_is(tmp_path, capsys):
    design = str(ROOT / "designs" / "seed_single_disc.yaml")
    assert main(["validate", design]) == 0
    out = capsys.readouterr().out
    # seed design: 100 mJ/cm^2 on the annular beam; the beam model's disc (the number plan fires)
    assert "D 10.32 um predicted from F, F 100 mJ/cm^2" in out
    assert "FSR 1.23 nm at 537.5 nm" in out or "FSR 1.22 nm at 537.5 nm" in out
    assert main(["plan", design]) == 0
    plan_out = capsys.readouterr().out
    assert "FSR 1.2" in plan_out and "at 537.5 nm" in plan_out


def test_lab_predicted_fsr_is_the_validate_plan_fsr_at_the_same_wavelength(tmp_path, capsys):
    """The lab's stored "FSR predicted" (lab fit -> lab show/report) comes from fabplan.wgm's
    free_spectral_range, the estimator validate/plan quote; it used to be the gap between two discrete
    comb roots (1.256 vs 1.226 nm for the 10.32 um seed disc at 537.5 nm, ~2 %). Evaluated at the
    window centre they now agree to the substrate index: the logbook does not record the substrate, so
    the lab takes the estimator's fused silica (n ~1.46) where the seed design says 1.45 (~0.1 %)."""
    from fabplan.lab import fitting
    from fabplan.physics.comb import predicted_fsr

    design = str(ROOT / "designs" / "seed_single_disc.yaml")
    assert main(["validate", design, "--json"]) == 0
    v = json.loads(capsys.readouterr().out)
    assert main(["plan", design, "--json", "-o", str(tmp_path / "p")]) == 0
    p = json.loads(capsys.readouterr().out)
    centre = 0.5 * sum(v["wgm"]["window_nm"])
    assert centre == 537.5
    d_um = v["arrays"][0]["predicted_diameter_um"][0]
    assert d_um == pytest.approx(10.32, abs=0.01)
    assert fitting.predicted_fsr is predicted_fsr  # the function lab fit stores per series
    lab_at_centre, src = predicted_fsr(d_um, centre, 100.0)
    lab_at_peaks, src2 = predicted_fsr(d_um, 540.0, 100.0, peaks_nm=[533.0, 537.5, 542.0])  # peaks centred there
    assert src == src2 == "fabplan.wgm"
    assert lab_at_peaks == lab_at_centre
    for shown in (v["wgm"]["fsr_nm"][0], p["wgm"]["fsr_nm"][0]):
        assert lab_at_centre == pytest.approx(shown, rel=2e-3)
