"""Fly shots' positions read back from the controller: the XPS latches every encoder at each
position-compare pulse (external gathering, ExternalLatchPosition; the PCO output wired to TRIG IN),
the executor records them (`row_captured` journal events, fired positions) and its out-of-tolerance
rule uses them when there is no other read-back (real hardware). Ground truth: the emulator's pulse
log (where each pulse really landed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fabplan.execute.context import Options
from fabplan.execute.journal import FIRED, read_journal
from fabplan.execute.pulselog import read_pulse_log
from fabplan.execute.runner import RunSpec, execute
from sim.lab import start_lab
from stage_drivers import open_laser, open_stage
from tests.exec_designs import lattice_design

LEAD_S = 2.55e-6  # the emulated trigger delay: 50 ns latency + half a 200 kHz period (test_exec_kill)


@pytest.fixture(scope="module")
def plan():
    from fabplan.design import loads_design
    from fabplan.planning import build_plan

    return build_plan(loads_design(lattice_design("capture", "C", 3, 8, mode="fly")))


def events(path, what):
    with open(path) as fh:
        return [r for r in map(json.loads, fh) if r.get("k") == "event" and r.get("what") == what]


def run(plan, tmp_path, *, wrap=None, readback=None):
    j = tmp_path / "j.jsonl"
    with start_lab(tmp_path / "p.csv", max_pulse_energy_uj=5.0) as lab:
        with open_stage(lab.stage_url) as stage, open_laser(lab.laser_url, stage=stage) as laser:
            if wrap is not None:
                wrap(stage)
            res = execute(plan, stage, laser, RunSpec(j, options=Options(home=True, fly_lead_s=LEAD_S)),
                          readback=readback)
        lab.laser.log.flush()
        truth = read_pulse_log(lab.pulse_log_path)
    return res, read_journal(j), j, truth


def test_without_other_readback_the_journal_holds_the_controllers_positions(plan, tmp_path):
    res, st, j, truth = run(plan, tmp_path)
    assert res.status == "completed", res.message
    fired = st.state == FIRED
    assert fired.all()
    # every fired shot has a position, and it is the controller's: one row_captured event per row
    assert np.isfinite(st.encoder[fired]).all()
    caps = events(j, "row_captured")
    assert len(caps) == len(plan.lines) and sum(len(c["positions_um"]) for c in caps) == len(plan.shots)
    cap = np.array([p for c in caps for p in c["positions_um"]])
    assert np.isin(np.round(st.encoder[:, 0], 4), np.round(cap[:, 0], 4)).all()
    # captured (trigger position + v * lead) agrees with where the pulses really landed (pulse log)
    d, _ = cKDTree(truth[:, 1:3]).query(st.encoder[:, :2])
    assert d.max() < 0.1, d.max()  # um; the laser waits 0-5 us for its next pulse: +-2.5 us x 20 mm/s = +-50 nm
    assert res.stats.out_of_tolerance == 0


def test_the_out_of_tolerance_rule_uses_the_captured_positions(plan, tmp_path):
    def wrap(stage):
        get = stage.captured_positions

        def shifted():
            rows = get()
            if rows:  # the controller saw the first pulse of each row 0.5 um off in Y
                rows[0] = (rows[0][0], rows[0][1] + 0.5, rows[0][2])
            return rows
        stage.captured_positions = shifted

    res, st, j, truth = run(plan, tmp_path, wrap=wrap)
    flagged = events(j, "row_out_of_tolerance")
    assert len(flagged) == len(plan.lines) and all(f["n_out_of_tolerance"] == 1 for f in flagged)
    assert res.stats.out_of_tolerance == len(plan.lines)
    assert not any(f["excused"] for f in flagged)  # no lead to measure: nothing is excused


def test_dry_runs_record_the_capture_too(plan, tmp_path):
    from fabplan.execute.pulselog import PulseLogReader

    j = tmp_path / "j.jsonl"
    with start_lab(tmp_path / "p.csv", max_pulse_energy_uj=5.0) as lab:
        with open_stage(lab.stage_url) as stage, open_laser(lab.laser_url, stage=stage) as laser:
            res = execute(plan, stage, laser, RunSpec(j, options=Options(home=True, fly_lead_s=LEAD_S)),
                          readback=PulseLogReader(lab.pulse_log_path, flush=lab.laser.log.flush))
    assert res.status == "completed"
    assert sum(len(c["positions_um"]) for c in events(j, "row_captured")) == len(plan.shots)


def test_capture_off_keeps_confirm_at_target(plan, tmp_path):
    j = tmp_path / "j.jsonl"
    with start_lab(tmp_path / "p.csv", max_pulse_energy_uj=5.0) as lab:
        with open_stage(lab.stage_url + "&capture=0") as stage, open_laser(lab.laser_url, stage=stage) as laser:
            res = execute(plan, stage, laser, RunSpec(j, options=Options(home=True, fly_lead_s=LEAD_S)))
    assert res.status == "completed" and not events(j, "row_captured")
    assert np.isnan(read_journal(j).encoder).all()
