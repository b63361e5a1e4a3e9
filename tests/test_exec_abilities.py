"""Optional device abilities are protocols the executor asks with isinstance; pre-flight names the
ability a run needs and a device lacks, and the compare reset goes through the driver."""

from __future__ import annotations

import pytest
from test_exec_fakes import FakeLaser, FakeReadback, FakeStage, make_plan

from fabplan.execute.preflight import PreflightError
from fabplan.execute.runner import execute
from stage_drivers.protocols import (
    BurstTrigger,
    ExternallyTriggered,
    InterlockCheck,
    MotionProfile,
    PositionCompare,
    abilities,
)


class GateOnlyController(FakeStage):
    """Can gate and burst-fire the laser (BurstTrigger) but has no position compare."""

    def set_gate(self, open_):
        self.gate = open_

    def fire_pulses(self, n=1):
        pass


class CompareController(GateOnlyController):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.compare_resets = 0

    def arm_compare(self, axis, positions_um):
        pass

    def disarm_compare(self, all_positioners=False):
        self.compare_resets += bool(all_positioners)


class TriggeredLaser(FakeLaser):
    """A laser whose per-shot firing comes from a controller (like the Pharos)."""

    def __init__(self, stage, trigger):
        super().__init__(stage)
        self.trigger = trigger


def test_fakes_declare_what_they_can_do():
    stage = FakeStage()
    assert abilities(stage) == ["MotionProfile"] and isinstance(stage, MotionProfile)
    assert not isinstance(FakeLaser(stage), (InterlockCheck, ExternallyTriggered))
    assert isinstance(GateOnlyController(), BurstTrigger) and not isinstance(GateOnlyController(), PositionCompare)
    assert isinstance(TriggeredLaser(stage, None), ExternallyTriggered)


def test_preflight_names_the_missing_trigger_ability(tmp_path):
    stage = FakeStage()
    with pytest.raises(PreflightError, match="lacks the BurstTrigger ability"):
        execute(make_plan(), stage, TriggeredLaser(stage, trigger=stage), tmp_path / "a.jsonl")
    ctl = GateOnlyController()
    with pytest.raises(PreflightError, match="lacks the PositionCompare ability"):
        execute(make_plan(mode="fly"), ctl, TriggeredLaser(ctl, trigger=ctl), tmp_path / "b.jsonl")
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "b.jsonl").exists()  # refused before the journal


def test_compare_left_armed_is_reset_through_the_driver_before_anything_moves(tmp_path):
    ctl = CompareController()
    laser = TriggeredLaser(ctl, trigger=ctl)
    ctl.pco_laser = laser
    res = execute(make_plan(mode="fly"), ctl, laser, tmp_path / "j.jsonl", readback=FakeReadback(laser))
    assert res.status == "completed" and ctl.compare_resets == 1  # once: the trigger is the stage
