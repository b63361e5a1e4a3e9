"""Fly-mode lines: straight PCO rows through every shot, split where spacing changes, run-ups
inside the travel, and a warning when rows break into single shots."""

from pathlib import Path

import numpy as np
import pytest

from fabplan.design import loads_design
from fabplan.planning import build_plan
from fabplan.planning.kinematics import accel_distance
from fabplan.planning.verify import PlanViolations

DESIGNS = Path(__file__).resolve().parents[1] / "designs"
SMALL = """
schema_version: 1
name: fly-small
sample:
  region: {rect: [-100, -100, 400, 400]}
  fiducials: {F1: [0, 0], F2: [200, 0]}
laser: {max_pulse_energy: 5 uJ, repetition_rate: 10 kHz}
beam:
  profile: {model: lg01, ring_diameter: 12 um}
  threshold_fluence: 40 mJ/cm^2
  damage_fluence: 400 mJ/cm^2
arrays:
  - id: D
    lattice: square
    pitch: 20 um
    shape: [5, 8]
    skip: [r02c04]
    disc: {diameter: 6 um, pulses: 1}
process:
  mode: fly
  ordering: serpentine
  motion: {velocity: 20 mm/s, acceleration: 1 m/s^2, jerk: 100 m/s^3}
  alignment:
    fiducials: {F1: [1000, 2000], F2: [1199.998782, 2000.698131]}   # 0.2 deg rotation
  travel: {x: [TRAVEL_MIN, 25000], y: [0, 25000], z: [-100, 100]}
"""


def _design(travel_min="0"):
    return loads_design(SMALL.replace("TRAVEL_MIN", travel_min))


def test_lines_are_straight_rows_through_every_shot():
    plan = build_plan(_design())
    s, lines = plan.shots, plan.lines
    assert len(lines) == 6  # 5 rows, the row with the skipped site split in two
    assert sorted(ln["n_shots"] for ln in lines) == [3, 4, 8, 8, 8, 8]
    slope = np.tan(np.radians(0.2))
    for ln in lines:
        seq = np.arange(ln["first_seq"], ln["last_seq"] + 1)
        assert (s.line[seq] == ln["line"]).all()
        if ln["n_shots"] > 1:
            assert ln["dy_dx"] == pytest.approx(slope, rel=1e-4)
        y_on_line = ln["y_um"] + ln["dy_dx"] * (s.x_um[seq] - ln["x_um"])
        assert np.abs(y_on_line - s.y_um[seq]).max() < 1e-3
        # 20 mm/s motion limit (pitch x rep rate allows 200 mm/s, tolerance / jitter 2 m/s)
        assert ln["velocity_um_s"] == pytest.approx(20000.0)
        direction = np.sign(ln["stop_um"] - ln["start_um"])
        run = float(accel_distance(20000.0, 1e6, 1e8))  # v Ta / 2 = 20000 (0.02 + 0.01) / 2 = 300 um
        assert run == pytest.approx(300.0)
        first, last = s.x_um[ln["first_seq"]], s.x_um[ln["last_seq"]]
        assert ln["start_um"] == pytest.approx(first - direction * (run + 20000.0 * 0.02))
        assert ln["stop_um"] == pytest.approx(last + direction * run)


def test_runup_beyond_travel_is_a_violation():
    with pytest.raises(PlanViolations) as exc:
        build_plan(_design(travel_min="900"))
    assert [v.kind for v in exc.value.violations] == ["runup_outside_travel"]
    assert "D-r00c00" in exc.value.violations[0].message


def test_fly_dose_matrix_warns_that_step_is_faster():
    text = (DESIGNS / "dose_matrix.yaml").read_text().replace("mode: step", "mode: fly")
    plan = build_plan(loads_design(text))
    assert plan.header["n_lines"] == 72  # the setting changes at every column
    assert any("step mode would take" in w for w in plan.header["warnings"])


@pytest.mark.parametrize("shape", ["[1, 1]", "[1, 2]", "[2, 1]"])
def test_tiny_fly_designs(shape):
    text = (
        SMALL.replace("TRAVEL_MIN", "0")
        .replace("shape: [5, 8]", f"shape: {shape}")
        .replace("skip: [r02c04]", "")
    )
    plan = build_plan(loads_design(text))
    assert sum(ln["n_shots"] for ln in plan.lines) == len(plan.shots)
    assert plan.header["estimate"]["total_s"] > 0


def test_as_listed_fly_still_forms_rows():
    text = SMALL.replace("TRAVEL_MIN", "0").replace("ordering: serpentine", "ordering: as-listed")
    plan = build_plan(loads_design(text))
    assert plan.shots.disc_id[:3].tolist() == ["D-r00c00", "D-r00c01", "D-r00c02"]
    assert plan.lines[0]["n_shots"] == 8  # equally spaced shots in a row are one line


def test_poor_alignment_fit_is_a_warning():
    text = (
        SMALL.replace("TRAVEL_MIN", "0")
        .replace(
            "fiducials: {F1: [0, 0], F2: [200, 0]}",
            "fiducials: {F1: [0, 0], F2: [200, 0], F3: [0, 200], F4: [200, 200]}",
        )
        .replace(
            "fiducials: {F1: [1000, 2000], F2: [1199.998782, 2000.698131]}",
            "fiducials: {F1: [1000, 2000], F2: [1200, 2000], F3: [1000, 2200], F4: [1205, 2200]}",
        )
    )
    plan = build_plan(loads_design(text))
    assert any(w.startswith("alignment:") for w in plan.header["warnings"])
