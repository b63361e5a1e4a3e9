"""Every shipped design plans; `fabplan plan` is byte-deterministic; plans reload exactly."""

import json
from pathlib import Path

import numpy as np
import pytest

from fabplan.cli import main
from fabplan.design import load_design
from fabplan.planning import Plan, build_plan

DESIGNS = Path(__file__).resolve().parents[1] / "designs"
SHIPPED = sorted(p.name for p in DESIGNS.glob("*.yaml"))


@pytest.fixture(scope="module")
def plans():
    return {name: build_plan(load_design(DESIGNS / name)) for name in SHIPPED}


def test_shipped_designs_are_listed():
    assert {"seed_single_disc.yaml", "dose_matrix.yaml", "dense_cm2.yaml", "hex_sweep.yaml"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_design_plans(plans, name):
    plan = plans[name]
    h = plan.header
    assert h["n_shots"] == len(plan.shots) > 0
    assert sorted(plan.shots.seq.tolist()) == list(range(len(plan.shots)))
    assert len(set(plan.shots.disc_id.tolist())) == len(plan.shots)  # a permutation of all discs
    assert h["path_length_um"] >= h["path_lower_bound_um"] - 1e-6
    e = h["estimate"]
    parts = e["moves_s"] + e["settle_s"] + e["pulses_s"] + e["attenuator_s"] + e["turnarounds_s"]
    assert e["total_s"] == pytest.approx(parts) and e["total_s"] > 0
    if h["mode"] == "fly":
        assert plan.lines and plan.lines[-1]["last_seq"] == len(plan.shots) - 1
        assert (plan.shots.line >= 0).all()


def test_dense_cm2_is_an_exact_serpentine(plans):
    plan = plans["dense_cm2.yaml"]
    assert plan.header["n_shots"] == 250_000 and plan.header["n_lines"] == 500
    # 500 rows of 499 steps of 20 um plus 499 row changes of 20 um: optimal, equal to the bound
    assert plan.header["path_length_um"] == pytest.approx(250_000 * 20.0 - 20.0)
    assert plan.shots.disc_id[499] == "D-r000c499" and plan.shots.disc_id[500] == "D-r001c499"
    ln = plan.lines[1]
    assert ln["pitch_um"] == -20.0 and ln["start_um"] > ln["stop_um"]


def test_hex_sweep_applies_alignment_and_focus(plans):
    s = plans["hex_sweep.yaml"].shots
    assert not np.allclose(s.x_um, s.sample_x_um)  # alignment: ~10 mm offset and 0.2 deg
    assert s.z_um.min() > 11 and s.z_um.max() < 13  # tilted plane through 11.6-12.8 um
    assert plans["hex_sweep.yaml"].header["attenuator"] == "percent"


@pytest.mark.parametrize("name", ["dose_matrix.yaml", "hex_sweep.yaml", "seed_single_disc.yaml"])
def test_cli_plan_is_byte_deterministic(tmp_path, capsys, name):
    for out in ("a", "b"):
        assert main(["plan", str(DESIGNS / name), "-o", str(tmp_path / out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\n}\n")[0] + "\n}")
    assert summary["ok"] and len(summary["plan_hash"]) == 64
    for f in ("plan.json", "shots.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    plan = Plan.load(tmp_path / "a")
    assert plan.plan_hash == summary["plan_hash"]
    again = build_plan(load_design(DESIGNS / name))
    assert again.shots.equals(plan.shots)
    assert again.header == plan.header and again.lines == plan.lines  # the loaded plan is the built one


def test_human_summary_mentions_the_numbers(tmp_path, capsys):
    assert main(["plan", str(DESIGNS / "dose_matrix.yaml")]) == 0
    out = capsys.readouterr().out
    for word in ("72 discs", "lower bound", "estimated time", "attenuator", "plan hash"):
        assert word in out
