"""Pre-flight gives the controller the plan's motion (the time estimate assumes it)."""

import numpy as np
import pytest

from fabplan.design import loads_design
from fabplan.planning import build_plan
from sim.lab import start_lab
from stage_drivers import open_stage
from tests.test_exec_emulator import _run, small_design


def test_preflight_sets_plan_motion_on_the_controller(tmp_path):
    text = small_design("step", 1).replace(
        "motion: {velocity: 20 mm/s, acceleration: 1 m/s^2, jerk: 100 m/s^3}",
        "motion: {velocity: 50 mm/s, acceleration: 0.5 m/s^2, jerk: 50 m/s^3}",
    )
    assert "50 mm/s" in text
    plan = build_plan(loads_design(text))
    with start_lab(tmp_path / "pulses.csv", max_pulse_energy_uj=5.0) as lab:
        res = _run(plan, lab, tmp_path / "j.jsonl")
        assert res.status == "completed", res.message
        with open_stage(lab.stage_url + "&reset=0") as stage:
            for axis in ("X", "Y"):
                p = stage.motion_params(axis)
                assert p.velocity_um_s == pytest.approx(50_000)
                assert p.acceleration_um_s2 == pytest.approx(500_000)
                # SGamma jerk time = acceleration / jerk = 0.5 / 50 s
                assert p.min_jerk_time_s == pytest.approx(0.01) and p.max_jerk_time_s == pytest.approx(0.01)


def test_settle_time_reaches_the_controller_as_its_motion_done_criterion(tmp_path):
    """Every step move then lasts its S-curve plus the plan's settle time, on the emulated clock too,
    so the emulated duration of a step run matches the estimate (which counts settle per shot)."""
    plan = build_plan(loads_design(small_design("step", 1)))
    with start_lab(tmp_path / "pulses.csv", max_pulse_energy_uj=5.0) as lab:
        res = _run(plan, lab, tmp_path / "j.jsonl")
        assert res.status == "completed", res.message
        lab.laser.log.flush()
        rows = (tmp_path / "pulses.csv").read_text().splitlines()[1:]
    t = sorted(float(r.split(",")[0]) for r in rows)
    gaps = np.diff(t)
    settle = plan.header["settle_time_s"]  # 0.02 s, the design default
    assert min(gaps) >= settle  # each shot waited at least the settle time after its move
    assert t[-1] - t[0] == pytest.approx(plan.header["estimate"]["total_s"], rel=0.15)
