"""A dry run's summary does not contradict itself (issue 17, "Numbers that agree").

- One wall time, printed once; the JSON's `achieved_wall_s` is the run's `duration_s`.
- The emulated time is homing/approach (before the first pulse) + first to last pulse, and says so.
- The planner's estimate (fabplan/planning/estimate.py: moves + settle + pulses + attenuator moves,
  first shot to last) agrees with the emulated first-to-last-pulse time once the attenuator moves,
  which the emulated Pharos makes instantly, are taken out. Tolerance 5 %: the estimate counts a
  settle and a pulse burst for each of the n shots, the pulse log's span has n-1 intervals
  (1/63 = 1.6 % for hex_sweep), plus the emulator's controller lag per move.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fabplan.cli import main

HEX = Path(__file__).resolve().parent.parent / "designs" / "hex_sweep.yaml"


def _seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+) (s|min|h)", text).groups()
    return float(value) * {"s": 1.0, "min": 60.0, "h": 3600.0}[unit]


def test_dry_run_summary_numbers_agree(tmp_path, capsys):
    assert main(["dry-run", str(HEX), "--journal", str(tmp_path / "j.jsonl"), "--lab-process", "no"]) == 0
    out = capsys.readouterr().out
    wall_lines = [ln for ln in out.splitlines() if " wall" in ln and re.search(r"[0-9] s wall", ln)]
    assert len(wall_lines) == 1, out  # one wall time, from one place
    emu = re.search(r"emulated ([0-9.]+ (?:s|min|h)) = ([0-9.]+ (?:s|min|h)) before the first pulse "
                    r"\(homing, approach, pre-flight\) \+ ([0-9.]+ (?:s|min|h)) first to last pulse", out)
    assert emu, out
    total, before, span = (_seconds(g) for g in emu.groups())
    assert abs(total - (before + span)) <= 0.1 + 1e-9  # each printed to 0.1 s
    est = re.search(r"estimated real duration ([0-9.]+ (?:s|min|h)) first to last shot = ([0-9.]+ (?:s|min|h)) "
                    r"moves, settle and pulses \+ ([0-9.]+ (?:s|min|h)) attenuator moves \(not emulated", out)
    assert est, out
    est_total, est_motion, est_att = (_seconds(g) for g in est.groups())
    assert est_att > 0 and abs(est_total - est_motion - est_att) <= 0.1 + 1e-9
    assert "compare: estimated" in out


def test_dry_run_json_times_are_one_and_comparable(tmp_path, capsys):
    assert main(["dry-run", str(HEX), "--journal", str(tmp_path / "j.jsonl"), "--lab-process", "no", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["achieved_wall_s"] == s["duration_s"]
    assert s["emulated_duration_s"] == pytest.approx(s["emulated_before_first_pulse_s"] + s["emulated_first_to_last_pulse_s"])
    parts = s["estimate_parts_s"]
    assert parts["total_s"] == s["estimated_real_duration_s"] and parts["attenuator_s"] > 0
    # the session's estimate includes the approach from where pre-flight left the stage (issue 17 leftover)
    comparable = parts["total_s"] - parts["attenuator_s"] - parts["approach_s"]
    assert abs(s["emulated_first_to_last_pulse_s"] - comparable) <= 0.05 * comparable


def test_selection_and_finite_speedup_are_labelled(tmp_path, capsys):
    assert main(["dry-run", str(HEX), "--journal", str(tmp_path / "j.jsonl"), "--lab-process", "no",
                 "--only", "H-r0[0-3]*", "--speedup", "50"]) == 0
    out = capsys.readouterr().out
    # the estimate is the selection's (32 of 63 shots), the whole plan's given beside it
    assert "for this session's shots only (whole plan 6.2 s)" in out
    assert "at speedup 50 the emulated clock is wall time x 50" in out
    assert "compare: estimated" not in out
