"""The executor against the XPS + Pharos emulators, through the real drivers over loopback.
Ground truth is the emulator's pulse log: every planned disc lit exactly once (its N pulses) at the
right place and energy; after a fault and a resume, exactly once except listed uncertain discs."""

from __future__ import annotations

import json
import math
import time
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fabplan.execute.context import Options
from fabplan.execute.journal import FIRED, PENDING, UNCERTAIN, read_journal
from fabplan.execute.pulselog import PulseLogReader
from fabplan.execute.runner import RunSpec, execute
from sim.lab import start_lab
from stage_drivers import open_laser, open_stage
from tests.exec_designs import lattice_design

ROOT = Path(__file__).resolve().parents[1]

def small_design(mode: str, pulses: int) -> str:
    return lattice_design(f"small-{mode}", "D", 4, 10, mode=mode, pulses=pulses, tolerance="100 nm")


ROTATED = lattice_design(
    "rotated-fly", "R", 4, 10, mode="fly", tolerance="100 nm",
    extra_sample="  fiducials: {F1: [0 um, 0 um], F2: [1000 um, 0 um], F3: [0 um, 1000 um]}\n",
    # the sample sits rotated by 0.2 deg on the stage: rows are not parallel to x
    extra_process="  alignment:\n    fiducials: {F1: [5000, 3000], F2: [5999.99391, 3003.49065], "
    "F3: [4996.50935, 3999.99391]}\n",
)


@cache
def _plan(name: str):
    from fabplan.design import load_design, loads_design
    from fabplan.planning import build_plan

    if name == "dose_matrix":
        return build_plan(load_design(ROOT / "designs" / "dose_matrix.yaml"))
    if name == "rotated":
        return build_plan(loads_design(ROTATED))
    mode, pulses = name.split("-")
    return build_plan(loads_design(small_design(mode, pulses)))


def _pulses(path) -> np.ndarray:
    """(k, 5) t, x, y, z, energy of pulses with light."""
    rows = [ln.split(",") for ln in Path(path).read_text().splitlines()[1:] if ln]
    arr = np.array([r[:6] for r in rows], float).reshape(-1, 6)
    return arr[arr[:, 5] == 1][:, :5]


def check_ground_truth(plan, lab, journal) -> dict:
    """Each disc's pulse count from the pulse log vs the journal's verdict; returns the counts."""
    lab.laser.log.flush()
    p = _pulses(lab.pulse_log_path)
    s = plan.shots
    tree = cKDTree(np.column_stack([s.x_um, s.y_um]))
    d, idx = tree.query(p[:, 1:3])
    # 150 nm, not the 100 nm tolerance: a fly run's first row fires before the trigger-to-pulse delay
    # (0-5 us at the emulated 200 kHz, ~v x 5 us = 100 nm at 20 mm/s) is measured, and the executor
    # flags that row rather than failing it; later rows are held to the tolerance by `flagged_rows[1:]`.
    assert d.max(initial=0) <= 0.15, f"a pulse landed {d.max() * 1e3:.0f} nm from any disc"
    count = np.bincount(idx, minlength=len(s))
    st = read_journal(journal)
    n = s.pulses
    fired, unc, pend = st.state == FIRED, st.state == UNCERTAIN, st.state == PENDING
    assert np.array_equal(count[fired], n[fired]), "a disc the journal calls fired was not lit exactly N times"
    # one trigger per pulse (the XPS DOPulse has no burst count): an interlock opening mid-shot leaves the
    # disc partly lit, which is what "uncertain" is for; never more than planned
    assert np.all(count[unc] <= n[unc]), "an uncertain disc was lit more than planned"
    assert np.all(count[pend] == 0), "a pending disc was lit"
    assert st.counts()["double_fired"] == 0
    if len(p):  # energy: the emulator's 1 % rms noise around the planned pulse energy
        e_plan = s.pulse_energy_uj[idx]
        assert np.all(np.abs(p[:, 4] - e_plan) <= 0.06 * e_plan)
    return {"fired": int(fired.sum()), "uncertain": int(unc.sum()), "pending": int(pend.sum()),
            "lit_uncertain": int((count[unc] > 0).sum())}


def _run(plan, lab, journal, *, stage_params="", resume=False, **kw):
    with open_stage(lab.stage_url + stage_params) as stage, open_laser(lab.laser_url, stage=stage) as laser:
        return execute(plan, stage, laser, RunSpec(journal, resume=resume, options=kw.pop("options", Options(home=True)), **kw), readback=PulseLogReader(lab.pulse_log_path, flush=lab.laser.log.flush))


@pytest.mark.parametrize("name", ["dose_matrix", "fly-1", "fly-3", "rotated"])
def test_dry_run_fires_every_disc_once_at_position_and_energy(tmp_path, name):
    plan = _plan(name)
    with start_lab(tmp_path / "pulses.csv", max_pulse_energy_uj=5.0) as lab:
        res = _run(plan, lab, tmp_path / "j.jsonl")
        assert res.status == "completed", res.message
        got = check_ground_truth(plan, lab, tmp_path / "j.jsonl")
    assert got == {"fired": len(plan.shots), "uncertain": 0, "pending": 0, "lit_uncertain": 0}
    if plan.lines:  # fly: every disc fired by position compare in one pass per row, none by step fallback
        assert res.stats.fired == len(plan.shots) and not res.stats.flagged_rows[1:]


FAULTS = [
    ("drop", "drop@{k}", ""),
    ("timeout", "slow@{k}:1.0", "&timeout=0.3"),
    ("following", "following@{k}", ""),
    ("limit", "limit@{k}", ""),
    ("estop", "estop@{k}", ""),
    ("interlock", "interlock@{k}", ""),
]


@pytest.mark.parametrize("mode", ["step", "fly"])
@pytest.mark.parametrize("label,spec,params", FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_stops_safely_and_resume_is_exactly_once(tmp_path, label, spec, params, mode):
    plan = _plan("dose_matrix" if mode == "step" else "fly-1")
    # The fault strikes at a named controller call, whatever the driver sends before it: step mode,
    # the 20th encoder read (mid-run); fly mode, the first row's PositionerPositionCompareEnable, a
    # polling command (a slowed *move* only waits: moves have their own 60 s timeout). Move faults
    # (following, limit) strike at the first move from there on.
    k = "GroupPositionCurrentGet#20" if mode == "step" else "PositionerPositionCompareEnable"
    j = tmp_path / "j.jsonl"
    with start_lab(tmp_path / "pulses.csv", max_pulse_energy_uj=5.0, faults={"xps": spec.format(k=k)}) as lab:
        res = _run(plan, lab, j, stage_params=params)
        assert res.status == "failed", f"{label}: {res.message}"
        assert lab.laser.gate is False, "gate left open after a fault"
        first = check_ground_truth(plan, lab, j)
        assert first["fired"] < len(plan.shots)
        # the operator clears the fault: interlock closed again, stage re-enabled / re-homed
        lab.laser.interlock_open = False
        with open_stage(lab.stage_url) as stage:
            stage.home()
        res = _run(plan, lab, j, resume=True)
        assert res.status == "completed", f"{label} resume: {res.message}"
        got = check_ground_truth(plan, lab, j)
    assert got["pending"] == 0
    assert got["fired"] + got["uncertain"] == len(plan.shots)
    assert sorted(res.uncertain_ids) == sorted(str(plan.shots.disc_id[i]) for i in read_journal(j).uncertain)


def test_resume_with_refire_uncertain_fires_them_deliberately(tmp_path):
    plan = _plan("dose_matrix")
    j = tmp_path / "j.jsonl"
    with start_lab(tmp_path / "pulses.csv", max_pulse_energy_uj=5.0, faults={"xps": "interlock@70"}) as lab:
        res = _run(plan, lab, j)
        assert res.status == "failed" and res.uncertain_ids
        uncertain = read_journal(j).uncertain
        lab.laser.interlock_open = False
        res = _run(plan, lab, j, resume=True, options=Options(home=True, refire_uncertain=True))
        assert res.status == "completed"
        lab.laser.log.flush()
        p = _pulses(lab.pulse_log_path)
    s = plan.shots
    idx = cKDTree(np.column_stack([s.x_um, s.y_um])).query(p[:, 1:3])[1]
    count = np.bincount(idx, minlength=len(s))
    st = read_journal(j)
    assert (st.state == FIRED).all()
    twice = np.flatnonzero(count > s.pulses)
    assert set(twice.tolist()) <= set(uncertain.tolist())  # only a deliberately refired disc can be lit twice
    assert np.all(count >= s.pulses)


def test_emulated_pulse_energy_mismatch_refuses(tmp_path):
    plan = _plan("dose_matrix")
    with start_lab(tmp_path / "pulses.csv", max_pulse_energy_uj=0.5) as lab:  # laser too weak for the plan
        from fabplan.execute.preflight import PreflightError

        with pytest.raises(PreflightError, match="delivers at most"):  # pre-flight, with the output closed
            _run(plan, lab, tmp_path / "j.jsonl")
        assert math.isclose(len(_pulses(lab.pulse_log_path)), 0)
        assert not lab.laser.output_enabled and not (tmp_path / "j.jsonl").exists()


def test_interlock_open_unconfirms_only_shots_after_the_last_good_check(tmp_path):
    """The Pharos driver reports when the interlock was last seen closed (`last_interlock_ok`): shots
    whose fire call returned before it were lit and stay fired; only later ones become uncertain.
    interlock_check=0 makes the driver check before every fire, so the last good check is recent and
    many shots precede it (a fixed 0.7 s window would have unconfirmed them all)."""
    plan = _plan("dose_matrix")
    j = tmp_path / "j.jsonl"
    with start_lab(tmp_path / "pulses.csv", max_pulse_energy_uj=5.0, faults={"xps": "interlock@78"}) as lab:
        calls: list[tuple[float, float]] = []  # (start, end) of each fire() that returned normally
        with open_stage(lab.stage_url) as stage, \
                open_laser(lab.laser_url + "?interlock_check=0", stage=stage) as laser:
            fire = laser.fire

            def timed_fire(n=1):
                t0 = time.monotonic()
                fire(n)
                calls.append((t0, time.monotonic()))

            laser.fire = timed_fire
            res = execute(plan, stage, laser, RunSpec(j, options=Options(home=True)), readback=PulseLogReader(lab.pulse_log_path, flush=lab.laser.log.flush))
            last_ok = laser.last_interlock_ok
        assert res.status == "failed" and "interlock" in res.message.lower(), res.message
        check_ground_truth(plan, lab, j)  # fired discs were lit exactly once
        fired_order = [r["seq"] for r in map(json.loads, j.read_text().splitlines()) if r["k"] == "fired"]
        assert len(fired_order) == len(calls) >= 3
        state = read_journal(j).state
        before = [s for s, (_, end) in zip(fired_order, calls, strict=True) if end < last_ok]
        after = [s for s, (_, end) in zip(fired_order, calls, strict=True) if end >= last_ok]
        assert before and after, "the fault must strike after some shots and after a good check"
        assert all(state[s] == FIRED for s in before), "a shot fired before the last good check was unconfirmed"
        assert all(state[s] == UNCERTAIN for s in after)
        # resume: the operator closes the interlock; every disc ends lit exactly once or uncertain
        lab.laser.interlock_open = False
        res = _run(plan, lab, j, resume=True)
        assert res.status == "completed", res.message
        got = check_ground_truth(plan, lab, j)
    assert got["pending"] == 0 and got["fired"] + got["uncertain"] == len(plan.shots)
    assert got["uncertain"] == len(after)
