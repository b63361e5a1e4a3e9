"""The time estimate of what will actually be fired (--only / --skip, and a resume's remaining shots).

The oracle is an independent route: a second design that lists only the selected discs, in the
first plan's firing order (`ordering: as-listed`), planned from scratch by the planner. Its plan
header's estimate must equal the selection's estimate of the first plan, in step and fly mode.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from exec_designs import SLOW_MOTION, lattice_design

from fabplan.cli import main
from fabplan.design import load_design, loads_design
from fabplan.execute.journal import read_journal
from fabplan.execute.selection_estimate import session_estimate
from fabplan.planning import build_plan
from fabplan.planning.estimate import estimate_selection
from fabplan.planning.kinematics import move_time
from fabplan.planning.plan import Plan

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("total_s", "moves_s", "settle_s", "pulses_s", "attenuator_s", "turnarounds_s")


def _lattice(mode: str, rows: int = 4, cols: int = 6) -> Plan:
    return build_plan(loads_design(lattice_design("sel", "A", rows, cols, mode=mode)))


def _only_these(plan: Plan, seqs: np.ndarray, mode: str) -> Plan:
    """The independent route: a design of just these discs (sample positions), fired as listed, with
    the lattice's own motion (`_lattice` plans `lattice_design` at SLOW_MOTION)."""
    s = plan.shots
    discs = "\n".join(f"      - {{x: {float(s.sample_x_um[k])!r}, y: {float(s.sample_y_um[k])!r}}}" for k in seqs.tolist())
    text = f"""schema_version: 1
name: only-these
sample:
  film: {{thickness: 100 nm}}
  region: {{rect: [-50 um, -50 um, 300 um, 300 um]}}
laser:
  max_pulse_energy: 5 uJ
  repetition_rate: 10 kHz
beam:
  profile: {{model: lg01, ring_diameter: 12 um}}
  threshold_fluence: 40 mJ/cm^2
  damage_fluence: 400 mJ/cm^2
arrays:
  - id: B
    disc: {{diameter: 6 um, pulses: 1}}
    discs:
{discs}
process:
  mode: {mode}
  ordering: as-listed
  motion: {SLOW_MOTION}
"""
    return build_plan(loads_design(text))


def _same(a: dict, b: dict) -> None:
    for k in PARTS:
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-9), k


@pytest.mark.parametrize("name", ["hex_sweep", "dose_matrix", "demo_array"])
@pytest.mark.parametrize("mode", ["step", "fly"])
def test_the_whole_plan_selected_is_the_plans_own_estimate(name, mode):
    design = load_design(ROOT / "designs" / f"{name}.yaml")
    design = design.model_copy(update={"process": design.process.model_copy(update={"mode": mode})})
    plan = build_plan(design)
    # shots.csv holds positions to 0.1 nm, the plan estimate was made before rounding: 1e-6 relative
    est = session_estimate(plan, np.ones(len(plan.shots), bool))
    for k in PARTS:
        assert est[k] == pytest.approx(plan.estimate[k], rel=1e-6, abs=1e-9), k
    assert est["n_shots"] == len(plan.shots) and est["approach_s"] == 0.0


def test_step_selection_equals_a_plan_of_only_those_discs():
    plan = _lattice("step")
    seqs = np.array([1, 2, 3, 7, 11, 12, 17, 20, 22])  # scattered, in firing order
    mask = np.zeros(len(plan.shots), bool)
    mask[seqs] = True
    other = _only_these(plan, seqs, "step")
    assert np.allclose(other.shots.x_um, plan.shots.x_um[seqs]) and np.allclose(other.shots.y_um, plan.shots.y_um[seqs])
    _same(estimate_selection(plan, mask), other.estimate)
    _same(session_estimate(plan, mask), other.estimate)  # the executor's route gives the same
    assert estimate_selection(plan, mask)["total_s"] < plan.estimate["total_s"]


def test_fly_selection_of_whole_rows_equals_a_plan_of_only_those_rows():
    plan = _lattice("fly")
    rows = [ln for ln in sorted(plan.lines, key=lambda ln: ln["first_seq"]) if ln["line"] in (0, 2, 3)]
    seqs = np.concatenate([np.arange(ln["first_seq"], ln["last_seq"] + 1) for ln in rows])
    mask = np.zeros(len(plan.shots), bool)
    mask[seqs] = True
    other = _only_these(plan, seqs, "fly")
    assert len(other.lines) == 3  # the independent plan finds the same rows
    est = session_estimate(plan, mask)
    assert est["n_lines_flown"] == 3 and est["turnarounds_s"] > 0
    _same(est, other.estimate)
    _same(estimate_selection(plan, mask), other.estimate)


def test_fly_partial_row_is_stepped_as_the_executor_fires_it():
    """The executor steps a row with only some of its discs to fire (fabplan.execute.fly.row_plan), so
    those discs cost what a step plan of them costs (moves, settle, pulses), not a fly line."""
    plan = _lattice("fly")
    line = sorted(plan.lines, key=lambda ln: ln["first_seq"])[1]
    seqs = np.arange(line["first_seq"] + 1, line["last_seq"])  # the row without its two ends
    mask = np.zeros(len(plan.shots), bool)
    mask[seqs] = True
    est = session_estimate(plan, mask)
    assert est["n_lines_flown"] == 0
    _same(est, _only_these(plan, seqs, "step").estimate)


def test_fly_mixed_rows_add_up():
    """Whole rows flown + a stepped part row: flown rows as the fly estimator times them, the stepped
    shots as the step estimator does, and the hops between them as moves (turnarounds only line to line)."""
    plan = _lattice("fly")
    lines = sorted(plan.lines, key=lambda ln: ln["first_seq"])
    whole = np.arange(lines[0]["first_seq"], lines[0]["last_seq"] + 1)
    part = np.arange(lines[1]["first_seq"], lines[1]["first_seq"] + 2)
    mask = np.zeros(len(plan.shots), bool)
    mask[whole] = mask[part] = True
    est = session_estimate(plan, mask)
    fly_only = _only_these(plan, whole, "fly").estimate
    step_only = _only_these(plan, part, "step").estimate
    s = plan.shots
    ln = lines[0]
    hop = max(float(move_time(s.x_um[part[0]] - ln["stop_um"], 2e4, 1e6, 1e8)),
              float(move_time(s.y_um[part[0]] - ln["y_um"], 2e4, 1e6, 1e8)))
    assert est["total_s"] == pytest.approx(fly_only["total_s"] + step_only["total_s"] + hop, rel=1e-9)
    assert est["turnarounds_s"] == pytest.approx(fly_only["turnarounds_s"], abs=1e-12)


def test_the_move_from_the_stage_start_is_included():
    plan = _lattice("step")
    mask = np.ones(len(plan.shots), bool)
    x0, y0 = float(plan.shots.x_um[0]), float(plan.shots.y_um[0])
    est = estimate_selection(plan, mask, start_um=(x0 - 3000.0, y0 + 500.0, float("nan")))
    # 20 mm/s, 1 m/s^2, 100 m/s^3: the 3 mm x move is the slower axis (closed form in kinematics.py)
    expect = float(move_time(3000.0, 2e4, 1e6, 1e8))
    assert est["approach_s"] == pytest.approx(expect, rel=1e-12)
    assert est["total_s"] == pytest.approx(plan.estimate["total_s"] + expect, rel=1e-6)


def test_a_resume_estimates_what_is_left_and_the_run_reports_it(tmp_path, capsys):
    """End to end through the CLI: a cut dry run, resumed twice; each session's estimate (journal session
    record, start message, --json) is the estimate of its remaining shots, shrinking as shots are done."""
    design = tmp_path / "d.yaml"
    design.write_text(lattice_design("sel", "A", 5, 6, mode="step"))
    j = tmp_path / "cut.jsonl"
    assert main(["dry-run", str(design), "--only", "A-r0[0-3]*", "--fault", "xps=drop@60", "--journal", str(j)]) == 1
    first = capsys.readouterr()
    assert "firing 24 of 30 shot(s): estimated" in first.err  # the start message, before the first move
    assert main(["dry-run", "--resume", str(j), "--json"]) == 0  # the saved selection: rows 0-3 only
    second = json.loads(capsys.readouterr().out)
    assert main(["dry-run", "--resume", str(j), "--only", "*", "--json"]) == 0  # and now the rest
    third = json.loads(capsys.readouterr().out)
    state = read_journal(j)
    est = [s["estimate"] for s in state.sessions]
    plan = Plan.load(state.header["plan_dir"])
    assert est[0]["n_shots"] == 24
    assert 0 < est[1]["n_shots"] < 24 and est[2]["n_shots"] == 6
    assert est[0]["total_s"] > est[1]["total_s"]
    assert all(e["plan_total_s"] == pytest.approx(plan.estimate["total_s"]) for e in est)
    assert second["estimate_s"] == pytest.approx(est[1]["total_s"])
    assert second["plan_estimate_s"] == pytest.approx(plan.estimate["total_s"])
    assert second["estimate_s"] < second["plan_estimate_s"]
    assert third["estimate_s"] == pytest.approx(est[2]["total_s"])
    assert third["estimated_real_duration_s"] == pytest.approx(est[2]["total_s"])
    # the last session's: the estimator on the shots it had left, from where pre-flight found the stage
    start = state.sessions[2]["devices"]["stage_info"]["position_um"]
    todo3 = np.char.startswith(plan.shots.disc_id.astype(str), "A-r04")
    again = estimate_selection(plan, todo3, start_um=tuple(start))
    assert again["total_s"] == pytest.approx(est[2]["total_s"], rel=1e-9)


def test_plan_estimates_a_selection(tmp_path, capsys):
    """`fabplan plan --only/--skip`: the selection's estimate beside the whole plan's (plan files unchanged)."""
    hex_ = str(ROOT / "designs" / "hex_sweep.yaml")
    skip = tmp_path / "skip.txt"
    skip.write_text("H-r00c00  # cracked\nH-r01c01\n")
    assert main(["plan", hex_, "--only", "H-r00*,H-r01*", "--skip", str(skip), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    plan = build_plan(load_design(hex_))
    ids = plan.shots.disc_id.astype(str)
    mask = (np.char.startswith(ids, "H-r00") | np.char.startswith(ids, "H-r01")) & ~np.isin(ids, ["H-r00c00", "H-r01c01"])
    sel = out["selection"]
    assert sel["n_shots"] == int(mask.sum()) and out["n_shots"] == 63
    _same(sel["estimate"], estimate_selection(plan, mask))
    assert sel["estimate"]["total_s"] < out["estimate"]["total_s"]
    assert main(["plan", hex_, "--only", "H-r00*"]) == 0
    assert "selection (--only H-r00*): 8 shots, estimated time" in capsys.readouterr().out
    assert main(["plan", hex_, "--only", "Q-*"]) == 2
    assert capsys.readouterr().err.strip() == "error: --only 'Q-*' matches no disc of the plan"
