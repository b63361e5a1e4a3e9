"""The monitor's incremental journal reader against the executor's own reader (`read_journal`), the
oracle for shot states: journals written by the real `Journal` writer and by a real dry run, fed to
the follower in arbitrary byte chunks (torn lines included), must give the same per-shot states."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

from fabplan.execute.journal import Journal, read_journal
from fabplan.monitor.follow import JournalFollower
from fabplan.monitor.state import Monitor
from tests.monitor_journals import _header, write_journal


def _feed_in_chunks(src, dst, seed: int) -> JournalFollower:
    data = src.read_bytes()
    rng = random.Random(seed)
    f = JournalFollower(dst)
    assert f.poll() == 0 and "no journal" in (f.error or "")
    pos = 0
    with open(dst, "wb") as out:
        while pos < len(data):
            k = rng.choice([1, 7, 60, 333, 4096])
            out.write(data[pos:pos + k])
            out.flush()
            pos += k
            f.poll()  # after each piece, torn lines and all
    f.poll()
    return f


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_follower_in_chunks_equals_read_journal(tmp_path, seed):
    src = tmp_path / "src.jsonl"
    write_journal(src, seed=seed)
    ref = read_journal(src)
    f = _feed_in_chunks(src, tmp_path / "copy.jsonl", seed)
    m = f.model
    f.fill(np.arange(m.n))  # the numbers are parsed on demand
    assert np.array_equal(m.state, ref.state)
    assert np.array_equal(m.fire_count, ref.fire_count)
    assert np.array_equal(m.intent_count, ref.intent_count)
    assert np.allclose(m.encoder, ref.encoder, equal_nan=True)
    ref_energy = ref.pulse_energy_uj if hasattr(ref, "pulse_energy_uj") else ref.energy_uj  # renamed by the schema
    assert np.allclose(m.energy, ref_energy, equal_nan=True)
    assert m.bad_lines == ref.bad_lines == 0
    assert len(m.sessions) == 2 and m.status() == "running"  # the second session has no end yet
    assert m.records == sum(1 for ln in src.read_bytes().split(b"\n") if ln)


def test_dry_run_journal_matches(tmp_path, capsys):
    """A journal the executor wrote during a real dry run (with a dropped connection)."""
    from fabplan.cli import main
    from tests.exec_designs import lattice_design

    d = tmp_path / "d.yaml"
    d.write_text(lattice_design("mon", "M", 4, 8))
    j = tmp_path / "j.jsonl"
    rc = main(["dry-run", str(d), "--journal", str(j), "--json", "--fault", "xps=drop@GroupMoveAbsolute#20"])
    assert rc == 1
    ref = read_journal(j)
    f = _feed_in_chunks(j, tmp_path / "copy.jsonl", 5)
    assert np.array_equal(f.model.state, ref.state)
    assert f.model.status() == "failed"
    mon = Monitor(j)
    mon.update(wait_layout=True)
    st = mon.state()
    assert st["counts"]["fired"] == ref.counts()["fired"] and st["counts"]["total"] == 32
    assert st["counts"]["fired"] + st["counts"]["uncertain"] + st["counts"]["pending"] + st["counts"]["skipped"] == 32
    assert st["state"]["state"] == "failed"
    assert st["resume"]["command"].startswith("fabplan dry-run --resume ")
    assert st["map"]["available"]  # the plan saved next to the journal
    from fabplan.planning.plan import Plan  # the map's own quick read of shots.csv against the plan reader

    plan = Plan.load(j.with_name(j.name + ".plan"))
    assert np.array_equal(mon.layout.id_strings(), plan.shots.disc_id)
    assert np.array_equal(mon.layout.x, plan.shots.sample_x_um) and np.array_equal(mon.layout.y, plan.shots.sample_y_um)
    assert mon.disc(5)["id"] == plan.shots.disc_id[5] and mon.find_disc(disc_id=plan.shots.disc_id[7]) == 7
    assert st["quality"]["error_p99_nm"] is not None and st["quality"]["tolerance_nm"] == 100.0
    # the page's resume command works as printed: it carries the run on to completion
    import shlex

    argv = shlex.split(st["resume"]["command"])
    assert argv[0] == "fabplan"
    assert main(argv[1:] + ["--json"]) == 0
    capsys.readouterr()
    done = read_journal(j)
    assert done.last_status == "completed" and done.counts()["fired"] == 32 and done.counts()["double_fired"] == 0
    mon.update()
    assert mon.state()["state"]["state"] == "completed" and mon.state()["resume"] is None


def test_torn_last_line_waits_for_its_newline(tmp_path):
    p = tmp_path / "j.jsonl"
    hdr = json.dumps({"k": "header", "format": "fabplan-journal", "format_version": 1, **_header(5)})
    intent = '{"k":"intent","seq":0,"id":"A","x":1.0,"y":2.0,"z":0.0,"e":0.5,"n":1,"t":1.0}'
    p.write_text(hdr + "\n" + intent[:30])
    f = JournalFollower(p)
    assert f.poll() == 1 and f.model.state[0] == 0
    with open(p, "a") as fh:
        fh.write(intent[30:] + "\n")
    assert f.poll() == 1 and f.model.state[0] == 1 and f.model.bad_lines == 0
    # a resume closes a torn line with a newline: it is counted bad, like the executor's reader does
    with open(p, "a") as fh:
        fh.write('{"k":"fired","seq":0,"ex":1.0\n')
    f.poll()
    assert f.model.bad_lines == 1 == read_journal(p).bad_lines


def test_other_key_order_falls_back_to_json(tmp_path):
    p = tmp_path / "j.jsonl"
    hdr = {"k": "header", "format": "fabplan-journal", "format_version": 1, **_header(3)}
    lines = [hdr, {"k": "session", "n": 0}, {"seq": 0, "k": "intent", "x": 1, "y": 2, "z": 3, "e": 0.5, "n": 1, "t": 5},
             {"t": 6, "k": "fired", "seq": 0, "ex": 1.0, "ey": 2.0, "ez": 3.0, "e": 0.5}]
    p.write_text("".join(json.dumps(r) + "\n" for r in lines))
    f = JournalFollower(p)
    f.poll()
    assert f.model.state.tolist() == [2, 0, 0] and f.model.encoder[0].tolist() == [1.0, 2.0, 3.0]


def test_replaced_journal_starts_over(tmp_path):
    p = tmp_path / "j.jsonl"
    write_journal(p, n=40)
    f = JournalFollower(p)
    f.poll()
    assert f.model.n == 40
    tmp = tmp_path / "new.jsonl"
    write_journal(tmp, n=30)
    os.replace(tmp, p)
    f.poll()
    assert f.model.n == 30 and np.array_equal(f.model.state, read_journal(p).state)


def test_not_a_journal_is_reported_not_raised(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"k":"intent"}\n')
    f = JournalFollower(p)
    assert f.poll() == 0 and "not a fabplan journal" in f.error


def test_state_counts_skips_and_stall(tmp_path):
    p = tmp_path / "j.jsonl"
    write_journal(p, n=300)
    ref = read_journal(p)
    mon = Monitor(p, stall_s=5.0)
    mon.update()
    now = mon.model.last_t + 10.0
    st = mon.state(now=now)
    c = st["counts"]
    assert c["fired"] == ref.counts()["fired"] and c["uncertain"] == ref.counts()["uncertain"]
    assert c["skipped"] == 0  # skipped shots of this session are uncertain ones: counted as uncertain
    assert c["fired"] + c["uncertain"] + c["pending"] + c["skipped"] == 300
    assert st["state"]["state"] == "running" and st["state"]["stalled"] is True  # 10 s > 5 s, host elsewhere
    assert st["uncertain"]["n"] == c["uncertain"] and "#100" in st["uncertain"]["ids"]
    assert st["map"]["available"] is False  # no plan folder for this synthetic journal
    assert st["progress"]["remaining_s"] == pytest.approx(c["pending"] * 0.1 * st["progress"]["observed_over_estimated"],
                                                          rel=1e-3)
    kinds = [e["what"] for e in st["events"]]
    assert "pause" in kinds and "unconfirmed" in kinds and "end (failed)" in kinds
    json.dumps(st, allow_nan=False)  # the page's JSON is strict JSON


def test_shot_under_way_is_not_uncertain_while_the_run_lives(tmp_path):
    """The journal reader calls an intent without its outcome uncertain (right for a run that died);
    while the session is open it is the shot being fired: no alarm, no uncertain list."""
    p = tmp_path / "j.jsonl"
    j = Journal.create(p, _header(5), sync="none")
    j.write({"k": "session", "n": 0, "pid": 1})
    j.intent(0, "A", 0.0, 0.0, 0.0, 0.5, 1)
    j.fired(0, 0.0, 0.0, 0.0, 0.5)
    j.intent(1, "B", 20.0, 0.0, 0.0, 0.5, 1)
    j.flush(durable=False)
    mon = Monitor(p)
    mon.update()
    c = mon.state()["counts"]
    assert (c["fired"], c["uncertain"], c["in_flight"], c["pending"]) == (1, 0, 1, 4)
    assert read_journal(p).counts()["uncertain"] == 1
    j.write({"k": "end", "status": "failed", "message": "killed"})
    j.close()
    mon.update()
    st = mon.state()
    assert (st["counts"]["uncertain"], st["counts"]["in_flight"]) == (1, 0) and st["uncertain"]["ids"] == ["#1"]


def test_age_of_the_last_record_follows_the_hot_records(tmp_path):
    """The last record's time comes from the bulk-read intent/fired lines too (whatever the writer
    appends after "t", such as the record chain's "h")."""
    p = tmp_path / "j.jsonl"
    j = Journal.create(p, _header(3), sync="none")
    j.write({"k": "session", "n": 0, "pid": 1, "t": 100.0})
    j.intent(0, "A", 0.0, 0.0, 0.0, 0.5, 1, t=200.0)
    j.fired(0, 0.0, 0.0, 0.0, 0.5, t=300.0)
    j.flush(durable=False)
    f = JournalFollower(p)
    f.poll()
    assert f.model.last_t == 300.0


def test_interlock_age_comes_from_interlock_records(tmp_path):
    """Issue 15: "time since the interlock was last seen closed" is read from the journal's interlock
    records (records.py InterlockRecord), not from the last confirmed shot, once they exist."""
    p = tmp_path / "j.jsonl"
    j = Journal.create(p, _header(3), sync="none")
    j.write({"k": "session", "n": 0, "pid": 1, "t": 100.0})
    j.write({"k": "interlock", "closed": True, "seen": 100.0, "source": "arm", "t": 100.0})
    j.intent(0, "A", 0.0, 0.0, 0.0, 0.5, 1, t=300.0)
    j.fired(0, 0.0, 0.0, 0.0, 0.5, t=300.0)
    j.flush(durable=False)
    mon = Monitor(p)
    mon.update()
    q = mon.state(now=400.0)["quality"]
    assert q["interlock_closed_age_s"] == 300.0 and q["interlock_open"] is False  # 400 - 100, not 400 - 300
    assert all(e["what"] != "interlock" for e in mon.state(now=400.0)["events"])  # routine: not listed
    j.write({"k": "interlock", "closed": True, "seen": 350.0, "source": "laser", "t": 351.0})
    j.write({"k": "interlock", "closed": False, "seen": 360.0, "source": "laser", "message": "interlock open",
             "t": 360.0})
    j.close()
    mon.update()
    st = mon.state(now=400.0)
    assert st["quality"]["interlock_closed_age_s"] == 50.0 and st["quality"]["interlock_open"] is True
    assert any(e["what"] == "interlock_open" for e in st["events"])
    assert read_journal(p).counts()["fired"] == 1  # the executor's reader ignores them


def test_dry_run_journals_interlock_records_not_per_shot(tmp_path, monkeypatch):
    """A dry run's journal holds interlock records (arming, the final check, and the laser's own
    checks while firing at most every INTERLOCK_RECORD_S), far fewer than shots; the monitor uses them."""
    import fabplan.execute.context as context
    from fabplan.cli import main
    from tests.exec_designs import lattice_design

    monkeypatch.setattr(context, "INTERLOCK_RECORD_S", 0.0)  # record every new good check of the laser
    d = tmp_path / "d.yaml"
    d.write_text(lattice_design("mon", "M", 4, 8))
    j = tmp_path / "j.jsonl"
    assert main(["dry-run", str(d), "--journal", str(j), "--json"]) == 0
    recs = [json.loads(line) for line in j.read_text().splitlines()]
    ilk = [r for r in recs if r["k"] == "interlock"]
    assert [r["source"] for r in ilk][:1] == ["arm"] and ilk[-1]["source"] == "check"
    assert all(r["closed"] is True for r in ilk) and len(ilk) < 32  # not one per shot
    seen = [r["seen"] for r in ilk]
    assert seen == sorted(seen)
    mon = Monitor(j)
    mon.update()
    q = mon.state(now=seen[-1] + 5.0)["quality"]
    assert q["interlock_source"] == "interlock records" and q["interlock_closed_age_s"] == pytest.approx(5.0, abs=0.1)
    assert read_journal(j).counts()["fired"] == 32


def test_dry_run_with_the_interlock_opening_journals_it(tmp_path):
    """The Pharos emulator's interlock opens (fault): the journal says so and the monitor shows it."""
    from fabplan.cli import main
    from tests.exec_designs import lattice_design

    d = tmp_path / "d.yaml"
    d.write_text(lattice_design("mon", "M", 4, 8))
    j = tmp_path / "j.jsonl"
    # @4: the interlock opens after pre-flight checked it (connect, closed readout, interlock check), before arming
    assert main(["dry-run", str(d), "--journal", str(j), "--json", "--fault", "pharos=interlock@4"]) == 1
    ilk = [r for r in map(json.loads, j.read_text().splitlines()) if r["k"] == "interlock"]
    assert ilk and ilk[-1]["closed"] is False and "interlock" in ilk[-1]["message"]
    mon = Monitor(j)
    mon.update()
    st = mon.state()
    assert st["quality"]["interlock_open"] is True
    assert any(e["what"] == "interlock_open" for e in st["events"])


def test_remaining_time_comes_from_the_session_estimate(tmp_path):
    """A session that fires a selection (or what a resume has left) records its own estimate; the
    monitor's time per shot is that session's, not the whole plan's (whose shots may be far apart)."""
    p = tmp_path / "sel.jsonl"
    j = Journal.create(p, _header(100), sync="none")  # whole plan: estimate_s 10 s for 100 shots
    j.write({"k": "session", "n": 0, "resume": False, "pid": 1, "to_fire": 4,
             "estimate": {"total_s": 8.0, "n_shots": 4.0, "plan_total_s": 10.0}})
    j.intent(0, "A-r00c000", 0.0, 0.0, 0.0, 0.5, 1)
    j.fired(0, 0.0, 0.0, 0.0, 0.5)
    j.close()
    mon = Monitor(p)
    mon.update()
    prog = mon.state()["progress"]
    assert prog["per_shot_estimate_s"] == 2.0 and prog["session_estimate_s"] == 8.0 and prog["estimate_s"] == 10.0
    # without a session estimate (journals before it existed): the plan's, per shot
    q = tmp_path / "old.jsonl"
    j = Journal.create(q, _header(100), sync="none")
    j.write({"k": "session", "n": 0, "resume": False, "pid": 1, "to_fire": 100})
    j.close()
    mon = Monitor(q)
    mon.update()
    assert mon.state()["progress"]["per_shot_estimate_s"] == 0.1
