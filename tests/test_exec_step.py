"""Executor logic against in-memory devices: exactly once, faults stop safely, resume, pause/stop."""

from __future__ import annotations

import numpy as np
import pytest
from test_exec_fakes import FakeLaser, FakeStage, lost_after_firing, make_plan

from fabplan.errors import UserError
from fabplan.execute.context import Options
from fabplan.execute.control import RunControl, RunHooks, StopNow
from fabplan.execute.journal import read_journal
from fabplan.execute.preflight import PreflightError
from fabplan.execute.runner import RunSpec, execute, selection_mask
from stage_drivers.protocols import FollowingError


def _fired_xy(laser):
    return sorted((round(x, 6), round(y, 6)) for x, y, _z, _n in laser.log)


def _planned_xy(plan, seqs=None):
    s = plan.shots
    idx = range(len(s)) if seqs is None else seqs
    return sorted((round(float(s.x_um[i]), 6), round(float(s.y_um[i]), 6)) for i in idx)


@pytest.mark.parametrize("sync", ["fsync", "async"])
def test_full_run_fires_each_disc_once(tmp_path, sync):
    plan = make_plan()
    stage = FakeStage()
    laser = FakeLaser(stage)
    res = execute(plan, stage, laser, RunSpec(tmp_path / "j.jsonl", sync=sync))
    assert res.status == "completed", res.message
    assert _fired_xy(laser) == _planned_xy(plan)
    assert res.counts == {"fired": 12, "uncertain": 0, "pending": 0, "double_fired": 0}
    assert not laser.armed and stage.stopped >= 1  # gate closed and stage stopped at the end
    st = read_journal(tmp_path / "j.jsonl")
    assert st.header["plan_hash"] == plan.plan_hash and st.last_status == "completed"


@pytest.mark.parametrize("sync", ["fsync", "async"])
def test_following_error_stops_then_resume_completes(tmp_path, sync):
    plan = make_plan()
    stage = FakeStage(faults={("move", 5): FollowingError("following error", device="xps", code=-25)})
    laser = FakeLaser(stage)
    j = tmp_path / "j.jsonl"
    res = execute(plan, stage, laser, RunSpec(j, sync=sync))
    assert res.status == "failed" and "following error" in res.message
    assert len(laser.log) == 5 and not laser.armed
    assert res.counts["uncertain"] == 0  # the failed move withdrew its intent
    res = execute(plan, stage, laser, RunSpec(j, resume=True, sync=sync))
    assert res.status == "completed"
    assert _fired_xy(laser) == _planned_xy(plan)


def test_lost_connection_while_firing_is_uncertain_never_refired(tmp_path):
    plan = make_plan()
    stage = FakeStage()
    laser = FakeLaser(stage, faults={3: lost_after_firing()})
    j = tmp_path / "j.jsonl"
    res = execute(plan, stage, laser, j)
    assert res.status == "failed" and res.uncertain_ids == [str(plan.shots.disc_id[3])]
    res = execute(plan, stage, laser, RunSpec(j, resume=True))
    assert res.status == "completed"
    assert res.skipped_uncertain_ids == [str(plan.shots.disc_id[3])]
    assert _fired_xy(laser) == _planned_xy(plan)  # shot 3 fired once (before the drop), never again
    assert res.counts["double_fired"] == 0 and res.counts["uncertain"] == 1


def test_refire_uncertain_fires_it_deliberately(tmp_path):
    plan = make_plan()
    stage = FakeStage()
    laser = FakeLaser(stage, faults={3: FollowingError("x", device="xps")})  # refused: not actually fired
    j = tmp_path / "j.jsonl"
    execute(plan, stage, laser, j)
    res = execute(plan, stage, laser, RunSpec(j, resume=True, options=Options(refire_uncertain=True)))
    assert res.status == "completed" and res.counts["uncertain"] == 0
    assert _fired_xy(laser) == _planned_xy(plan)


def test_out_of_position_stops_with_clear_message(tmp_path):
    plan = make_plan()
    stage = FakeStage(offset_um=0.3)
    laser = FakeLaser(stage)
    res = execute(plan, stage, laser, RunSpec(tmp_path / "j.jsonl", options=Options(settle_retry_s=0.001)))
    assert res.status == "failed"
    assert "300 nm from the target" in res.message and "Not fired" in res.message
    assert laser.log == [] and res.counts["pending"] == 12


def test_interlock_open_fails_before_anything_moves(tmp_path):
    plan = make_plan()
    stage = FakeStage()
    laser = FakeLaser(stage, interlock_open=True)
    res = execute(plan, stage, laser, tmp_path / "j.jsonl")
    assert res.status == "failed" and "interlock" in res.message
    assert stage.calls["move"] == 0 and laser.log == []


def test_targets_outside_travel_refused_before_journal(tmp_path):
    plan = make_plan()
    stage = FakeStage(limits=(-5.0, 15.0))
    with pytest.raises(PreflightError, match="outside the stage travel"):
        execute(plan, stage, FakeLaser(stage), tmp_path / "j.jsonl")
    assert stage.calls["move"] == 0 and not (tmp_path / "j.jsonl").exists()


def test_resume_refuses_another_plan(tmp_path):
    plan = make_plan()
    stage = FakeStage()
    execute(plan, stage, FakeLaser(stage), tmp_path / "j.jsonl")
    with pytest.raises(UserError, match="different plan"):
        execute(make_plan(n_rows=2), stage, FakeLaser(stage), RunSpec(tmp_path / "j.jsonl", resume=True))


def test_pause_finishes_current_shot_and_closes_gate(tmp_path):
    plan = make_plan()
    stage = FakeStage()
    laser = FakeLaser(stage)
    control = RunControl()
    stage.on_move = lambda s: control.on_interrupt() if s.calls["move"] == 4 else None  # first Ctrl+C
    j = tmp_path / "j.jsonl"
    res = execute(plan, stage, laser, j, control=control)
    assert res.status == "paused" and len(laser.log) == 4  # the shot in progress was finished
    assert not laser.armed and res.counts["uncertain"] == 0
    stage.on_move = None
    res = execute(plan, stage, laser, RunSpec(j, resume=True))
    assert res.status == "completed" and _fired_xy(laser) == _planned_xy(plan)


def test_pause_then_resume_in_session(tmp_path):
    plan = make_plan()
    stage = FakeStage()
    laser = FakeLaser(stage)
    control = RunControl()
    stage.on_move = lambda s: control.request_pause() if s.calls["move"] == 2 else None
    res = execute(plan, stage, laser, tmp_path / "j.jsonl", hooks=RunHooks(on_pause=lambda: True), control=control)
    assert res.status == "completed" and laser.arm_count == 2
    assert _fired_xy(laser) == _planned_xy(plan)


def test_second_interrupt_stops_at_once_gate_closed(tmp_path):
    plan = make_plan()
    stage = FakeStage()
    laser = FakeLaser(stage)
    control = RunControl()

    def hook(s):
        if s.calls["move"] == 6:
            control.on_interrupt()
            control.on_interrupt()  # raises StopNow mid-shot

    stage.on_move = hook
    res = execute(plan, stage, laser, tmp_path / "j.jsonl", control=control)
    assert res.status == "stopped" and len(laser.log) == 5
    assert not laser.armed and stage.stopped >= 1
    assert res.counts["uncertain"] == 0  # stopped during the move: intent withdrawn (or never written)


def test_stopnow_is_base_exception():
    assert not issubclass(StopNow, Exception)


def test_selection_only_and_skip(tmp_path):
    plan = make_plan()
    skip = tmp_path / "skip.txt"
    skip.write_text("A-r00c01  # cracked film\n")
    mask = selection_mask(plan.shots.disc_id, only="A-r00*,A-r02c03", skip_file=skip)
    assert mask.sum() == 4
    stage = FakeStage()
    laser = FakeLaser(stage)
    res = execute(plan, stage, laser, RunSpec(tmp_path / "j.jsonl", selection=mask))
    assert res.status == "completed" and len(laser.log) == 4
    assert _fired_xy(laser) == _planned_xy(plan, np.flatnonzero(mask))
    with pytest.raises(UserError, match="matches no disc"):
        selection_mask(plan.shots.disc_id, only="Z-*")


def test_a_stage_that_cannot_trigger_is_refused(tmp_path):
    plan = make_plan()
    stage = FakeStage()
    laser = FakeLaser(stage)
    laser.trigger = object()  # e.g. an ESP301: no gate / trigger output
    laser.url = "pharos://x"
    with pytest.raises(PreflightError, match="cannot trigger|no stage controller"):
        execute(plan, stage, laser, tmp_path / "j.jsonl")
    assert stage.calls["move"] == 0


def test_fire_refused_before_triggering_is_not_uncertain(tmp_path):
    from stage_drivers.protocols import NotInPosition

    plan = make_plan()
    stage = FakeStage()
    laser = FakeLaser(stage, faults={4: NotInPosition("refusing to fire", device="xps")})
    res = execute(plan, stage, laser, tmp_path / "j.jsonl")
    assert res.status == "failed" and res.counts["uncertain"] == 0 and res.counts["fired"] == 4


def test_energy_waits_for_a_slow_attenuator_then_checks(tmp_path):
    import numpy as np

    from fabplan.planning.plan import Plan, ShotTable

    base = make_plan(1, 4)
    s = base.shots
    cols = {name: getattr(s, name) for name in ("disc_id", "x_um", "y_um", "z_um", "sample_x_um", "sample_y_um",
                                                "fluence_mj_cm2", "pulses", "attenuator", "diameter_um",
                                                "trench_outer_um")}
    cols["pulse_energy_uj"] = np.array([0.2, 0.2, 0.4, 0.4])
    plan = Plan.assemble(dict(base.header), ShotTable.from_columns(**cols))

    class SlowLaser(FakeLaser):
        lag = 0

        def set_attenuation(self, percent):
            self.target, self.lag = percent, 3  # three reads before the energy follows

        def pulse_energy_uj(self):
            if self.lag:
                self.lag -= 1
                return 1.0 * self.att / 100.0
            self.att = getattr(self, "target", self.att)
            return 1.0 * self.att / 100.0

    stage = FakeStage()
    laser = SlowLaser(stage)
    res = execute(plan, stage, laser, tmp_path / "j.jsonl")
    assert res.status == "completed", res.message
    from fabplan.execute.journal import read_journal

    assert np.allclose(read_journal(tmp_path / "j.jsonl").pulse_energy_uj, [0.2, 0.2, 0.4, 0.4])
