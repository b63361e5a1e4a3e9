"""The journal's one schema (fabplan/execute/records.py) holds the writer and the reader together:
every record a real session writes has only the keys its kind declares, the hand-formatted hot
records are laid out in the schema's key order (the reader's fast path relies on it), and the
reader gives back per-shot disc ids, positions, energies and pulses."""

from __future__ import annotations

import json

import numpy as np
from test_exec_fakes import FakeLaser, FakeReadback, FakeStage, make_plan

from fabplan.execute.journal import Journal, _fast_fired, _fast_intent, _parse_intent, read_journal
from fabplan.execute.records import FIRED, RECORDS, record_keys
from fabplan.execute.runner import RunSpec, execute


def _lines(path):
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def test_every_record_of_a_session_fits_its_kind(tmp_path):
    for mode in ("step", "fly"):
        plan = make_plan(mode=mode)
        stage = FakeStage()
        laser = FakeLaser(stage)
        stage.pco_laser = laser
        j = tmp_path / f"{mode}.jsonl"
        res = execute(plan, stage, laser, RunSpec(j, sync="batch"), readback=FakeReadback(laser))
        assert res.status == "completed"
        kinds = set()
        for rec in _lines(j):
            kind = rec["k"]
            kinds.add(kind)
            assert kind in RECORDS
            if kind != "event":  # events carry their own fields beside what/message
                assert set(rec) <= set(record_keys(kind)), (kind, set(rec) - set(record_keys(kind)))
            if kind in ("intent", "fired"):
                assert tuple(rec) == record_keys(kind)  # the wire order the fast reader expects
        assert {"header", "session", "intent", "fired", "end"} <= kinds


def test_hot_records_take_the_fast_path_and_read_back_per_shot_state(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal.create(path, {"plan_hash": "h", "n_shots": 3}, sync="none") as j:
        j.intent(0, "A-r00c00", 1.5, -2.0, 0.25, 0.5, 2)
        j.fired(0, 1.5001, -2.0, 0.25, 0.49)
        j.intents([1], ["A-r00c01"], [3.0], [4.0], [float("nan")], [0.7], [1])
    raw = path.read_bytes().split(b"\n")
    intent = next(ln for ln in raw if ln.startswith(b'{"k":"intent","seq":0'))
    fired = next(ln for ln in raw if ln.startswith(b'{"k":"fired"'))
    assert _parse_intent(intent)[:7] == (0, "A-r00c00", 1.5, -2.0, 0.25, 0.5, 2) and _fast_intent(intent)[0] == 0
    assert _fast_fired(fired)[:5] == (0, 1.5001, -2.0, 0.25, 0.49)
    st = read_journal(path)
    assert st.disc_id.tolist() == ["A-r00c00", "A-r00c01", None]
    assert st.state.tolist() == [FIRED, 1, 0]
    np.testing.assert_allclose(st.target_um[0], [1.5, -2.0, 0.25])
    assert np.isnan(st.target_um[1, 2]) and np.isnan(st.target_um[2]).all()
    np.testing.assert_allclose(st.planned_pulse_energy_uj[:2], [0.5, 0.7])
    assert st.pulse_energy_uj[0] == 0.49 and st.pulses.tolist() == [2, 1, 0]


def test_an_id_the_fast_path_cannot_split_still_reads(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal.create(path, {"plan_hash": "h", "n_shots": 1}, sync="none") as j:
        j.intent(0, 'odd,"id"', 1.0, 2.0, 3.0, 0.5, 1)
    assert read_journal(path).disc_id[0] == 'odd,"id"'
