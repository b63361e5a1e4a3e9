"""Run control state machine (bluesky-like): deferred pause, resume, immediate stop, shutdown shield."""

from __future__ import annotations

import pytest

from fabplan.execute.control import RunControl, RunState, StopNow


def test_pause_is_deferred_to_checkpoint_then_resume():
    c = RunControl()
    c.start()
    c.request_pause()
    assert c.state is RunState.PAUSING
    assert c.checkpoint() is RunState.PAUSED
    c.resume()
    assert c.checkpoint() is RunState.RUNNING


def test_first_interrupt_pauses_second_stops_now():
    c = RunControl()
    c.start()
    c.on_interrupt()
    assert c.state is RunState.PAUSING
    with pytest.raises(StopNow):
        c.on_interrupt()
    assert c.state is RunState.STOPPING


def test_interrupt_before_start_pauses_before_first_shot():
    c = RunControl()
    c.on_interrupt()
    c.start()
    assert c.checkpoint() is RunState.PAUSED


def test_shielded_shutdown_is_not_interrupted():
    import signal

    c = RunControl()
    c.start()
    c.shielded = True
    c.on_interrupt()
    c.on_interrupt()  # no StopNow while the gate is being closed and the journal ended
    c.on_terminate(signal.SIGTERM)
    assert c.state is RunState.STOPPING


def test_no_transition_out_of_a_final_state():
    c = RunControl()
    c.start()
    c.finish(RunState.DONE)
    with pytest.raises(RuntimeError):
        c.resume()
