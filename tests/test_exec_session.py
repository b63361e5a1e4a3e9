"""RunSession: the run use case below the CLI (constructors, hooks, pause from another thread or
process, resume from the journal), on the in-memory fake:// devices and on a dry run."""

from __future__ import annotations

import threading

import pytest

from fabplan.errors import UserError
from fabplan.execute.control import RunHooks, RunState
from fabplan.execute.journal import read_journal
from fabplan.execute.session import RunConfig, RunSession
from tests.exec_designs import lattice_design


@pytest.fixture
def design(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text(lattice_design("session-test", "S", 3, 4, motion=None))
    return p


def test_start_runs_on_fake_devices_with_progress_and_state_hooks(tmp_path, design):
    progress, states = [], []
    session = RunSession.start(RunConfig(target=str(design), stage="fake://", journal=str(tmp_path / "j.jsonl")))
    assert session.mode == "step" and len(session.plan.shots) == 12
    res = session.run(RunHooks(on_progress=lambda done, total, disc: progress.append((done, total, disc)),
                               on_state=lambda old, new, why: states.append(new)))
    assert res.status == "completed" and res.stats.fired == 12
    assert [p[0] for p in progress] == list(range(1, 13)) and progress[-1][1] == 12
    assert states == [RunState.RUNNING, RunState.DONE]
    st = read_journal(tmp_path / "j.jsonl")
    assert st.counts()["fired"] == 12 and set(st.disc_id) == set(session.plan.shots.disc_id.tolist())
    assert (tmp_path / "j.jsonl.plan").is_dir()  # the plan is kept beside the journal for a resume


def test_request_pause_from_another_thread_then_resume_from_the_journal(tmp_path, design):
    j = tmp_path / "j.jsonl"
    session = RunSession.start(RunConfig(target=str(design), stage="fake://", journal=str(j)))

    def on_progress(done, total, disc):
        if done == 5:  # as a browser monitor would, from its own thread
            t = threading.Thread(target=session.request_pause, args=("operator pressed pause",))
            t.start()
            t.join()

    res = session.run(RunHooks(on_progress=on_progress))
    assert res.status == "paused" and res.stats.fired == 5 and "operator pressed pause" in res.message
    events = [e["what"] for e in read_journal(j).events]
    assert events == ["pause"]
    resumed = RunSession.resume(str(j), RunConfig(stage="fake://"))
    assert resumed.resuming and resumed.plan.plan_hash == session.plan.plan_hash
    res = resumed.run()
    assert res.status == "completed" and res.stats.fired == 7 and res.counts["fired"] == 12


def test_pause_file_from_another_process_pauses_and_hook_resumes(tmp_path, design):
    j = tmp_path / "j.jsonl"
    session = RunSession.start(RunConfig(target=str(design), stage="fake://", journal=str(j)))
    paused = threading.Event()

    def on_progress(done, total, disc):
        if done == 3:
            session.pause_file.touch()  # what another process does
            assert paused.wait(10), "the pause file was not noticed"

    def on_state(old, new, why):
        if new is RunState.PAUSING:
            paused.set()

    res = session.run(RunHooks(on_progress=on_progress, on_state=on_state, on_pause=lambda: True))
    assert res.status == "completed" and res.stats.fired == 12
    assert not session.pause_file.exists()  # the request was consumed
    assert [e["what"] for e in read_journal(j).events] == ["pause", "resume"]


def test_stop_file_stops_at_the_next_shot(tmp_path, design):
    j = tmp_path / "j.jsonl"
    session = RunSession.start(RunConfig(target=str(design), stage="fake://", journal=str(j)))
    stopping = threading.Event()

    def on_progress(done, total, disc):
        if done == 2:
            session.stop_file.touch()
            assert stopping.wait(10)

    res = session.run(RunHooks(on_progress=on_progress,
                               on_state=lambda o, n, w: stopping.set() if n is RunState.STOPPING else None))
    assert res.status == "stopped" and res.stats.fired == 2


def test_constructor_refusals_are_user_errors(tmp_path, design):
    with pytest.raises(UserError, match="--stage URL is required"):
        RunSession.start(RunConfig(target=str(design)))
    with pytest.raises(UserError, match="tolerance"):
        RunSession.start(RunConfig(target=str(design), stage="fake://", tolerance_um=0))
    with pytest.raises(UserError, match="no such design"):
        RunSession.dry_run(RunConfig(target=str(tmp_path / "missing.yaml")))
    with pytest.raises(UserError, match="unknown device scheme"):
        RunSession.start(RunConfig(target=str(design), stage="ftp://x", journal=str(tmp_path / "j.jsonl"))).run()
    assert not (tmp_path / "j.jsonl.plan").exists()  # refused before the journal: no stray plan folder


def test_dry_run_session_reports_the_emulated_run(tmp_path, design):
    session = RunSession.dry_run(RunConfig(target=str(design), journal=str(tmp_path / "d.jsonl")))
    res = session.run()
    assert res.status == "completed" and res.dry_run["pulses_with_light"] == 12
    assert read_journal(tmp_path / "d.jsonl").header["dry_run"] is True


def test_resume_of_something_that_is_not_a_journal_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"k": "x"}\n')
    with pytest.raises(UserError, match="not a fabplan journal"):
        RunSession.resume(str(bad))
    bad.write_text('{"k": "header", "format": "fabplan-journal", "format_version": 1}\n')
    with pytest.raises(UserError, match="n_shots"):
        RunSession.resume(str(bad))


def test_progress_counts_what_this_run_can_reach(tmp_path, design):
    """Under --only the bar runs to the selection's size (it showed 5/12 at the end of a 5-shot run)."""
    progress = []
    session = RunSession.start(RunConfig(target=str(design), stage="fake://", journal=str(tmp_path / "o.jsonl"),
                                         only="S-r00c*,S-r01c00"))
    res = session.run(RunHooks(on_progress=lambda done, total, disc: progress.append((done, total))))
    assert res.stats.fired == 5
    assert progress[-1] == (5, 5) and {t for _, t in progress} == {5}
