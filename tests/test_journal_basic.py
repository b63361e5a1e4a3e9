"""Journal: records round-trip, state derivation (pending / uncertain / fired), torn lines."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from fabplan.execute.journal import FIRED, PENDING, UNCERTAIN, Journal, read_journal


def _new(tmp_path, n=5, sync="fsync"):
    return Journal.create(tmp_path / "run.jsonl", {"plan_hash": "abc", "n_shots": n, "mode": "step"}, sync=sync)


@pytest.mark.parametrize("sync", ["fsync", "async", "batch", "none"])
def test_states_from_records(tmp_path, sync):
    j = _new(tmp_path, sync=sync)
    j.write({"k": "session", "n": 0, "resume": False})
    j.intent(0, "A-r00c00", 1.0, 2.0, 0.0, 0.5, 1)
    j.wait_durable()
    j.fired(0, 1.001, 2.0, 0.0, 0.49)
    j.intent(1, "A-r00c01", 11.0, 2.0, 0.0, 0.5, 1)
    j.wait_durable()
    j.fired(1, 11.0, 2.0, 0.0, 0.5)
    j.intent(2, "A-r00c02", 21.0, 2.0, 0.0, 0.5, 1)  # dies before confirmation -> uncertain
    j.intent(3, "A-r00c03", 31.0, 2.0, 0.0, 0.5, 1)
    j.not_fired(3, "out of position")  # withdrawn -> pending
    j.close()
    st = read_journal(tmp_path / "run.jsonl")
    assert st.plan_hash == "abc"
    assert list(st.state) == [FIRED, FIRED, UNCERTAIN, PENDING, PENDING]
    assert list(st.uncertain) == [2]
    np.testing.assert_allclose(st.encoder[0], [1.001, 2.0, 0.0])
    assert st.counts() == {"fired": 2, "uncertain": 1, "pending": 2, "double_fired": 0}
    assert st.bad_lines == 0
    assert st.last_status is None  # the session never wrote an end record


def test_fired_rides_with_next_write(tmp_path):
    j = _new(tmp_path)
    j.intent(0, "A-r00c00", 0.0, 0.0, 0.0, 0.5, 1)
    j.fired(0, 0.0, 0.0, 0.0, 0.5)
    assert '"fired"' not in (tmp_path / "run.jsonl").read_text()  # buffered ...
    j.intent(1, "A-r00c01", 0.0, 0.0, 0.0, 0.5, 1)
    text = (tmp_path / "run.jsonl").read_text()
    assert text.index('"fired"') < text.index('"seq":1')  # ... and written before the next intent
    j.close()


def test_torn_last_line_is_tolerated_and_isolated_on_append(tmp_path):
    j = _new(tmp_path)
    j.intent(0, "A-r00c00", 0.0, 0.0, 0.0, 0.5, 1)
    j.fired(0, 0.0, 0.0, 0.0, 0.5)
    j.close()
    path = tmp_path / "run.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"k":"intent","seq":1,"id":"A-r0')  # power cut mid-write
    st = read_journal(path)
    assert st.bad_lines == 1 and list(st.state[:2]) == [FIRED, PENDING]
    j = Journal.append_to(path)
    j.intent(1, "A-r00c01", 0.0, 0.0, 0.0, 0.5, 1)
    j.fired(1, 0.0, 0.0, 0.0, 0.5)
    j.close()
    st = read_journal(path)
    assert st.bad_lines == 1 and list(st.state[:2]) == [FIRED, FIRED]


def test_lines_are_plain_json_with_nulls(tmp_path):
    j = _new(tmp_path)
    j.intent(0, 'we"ird', 0.1, float("nan"), 0.0, 0.5, 2)
    j.fired(0, None, None, None, None)
    j.write({"k": "end", "status": "completed", "summary": {"fired": np.int64(1)}})
    j.close()
    recs = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert [r["k"] for r in recs] == ["header", "intent", "fired", "end"]
    assert recs[1]["id"] == 'we"ird' and recs[1]["y"] is None and recs[1]["n"] == 2
    assert recs[0]["format"] == "fabplan-journal" and recs[0]["format_version"] == 1


def test_create_refuses_to_overwrite(tmp_path):
    _new(tmp_path).close()
    with pytest.raises(FileExistsError):
        _new(tmp_path)


def test_not_a_journal(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"k":"intent","seq":0}\n')
    with pytest.raises(ValueError, match="not a fabplan journal"):
        read_journal(p)


def _batch_run(tmp_path, boot):
    j = Journal.create(tmp_path / "run.jsonl", {"plan_hash": "abc", "n_shots": 6}, sync="batch")
    j.write({"k": "session", "n": 0, "boot_id": boot}, durable=True)
    j.horizon([0, 1, 2, 3])
    for s in (0, 1):
        j.intent(s, f"A-r00c0{s}", 0.0, 0.0, 0.0, 0.5, 1)
        j.fired(s, 0.0, 0.0, 0.0, 0.5)
    j.intent(2, "A-r00c02", 0.0, 0.0, 0.0, 0.5, 1)  # killed while firing shot 2
    os.close(j.fd)  # no end record, no final flush


def test_batch_same_boot_is_exact(tmp_path):
    _batch_run(tmp_path, "boot-A")
    st = read_journal(tmp_path / "run.jsonl", current_boot_id="boot-A")
    # shot 1's fired record went out with shot 2's intent; shot 3 in the horizon, never intended: pending
    assert list(st.state) == [FIRED, FIRED, UNCERTAIN, PENDING, PENDING, PENDING]
    assert len(st.horizon_uncertain) == 0


def test_batch_after_reboot_horizon_shots_are_uncertain(tmp_path):
    _batch_run(tmp_path, "boot-A")
    st = read_journal(tmp_path / "run.jsonl", current_boot_id="boot-B")
    assert list(st.state) == [FIRED, FIRED, UNCERTAIN, UNCERTAIN, PENDING, PENDING]
    assert list(st.horizon_uncertain) == [3]


def test_explicit_uncertain_record_persists(tmp_path):
    _batch_run(tmp_path, "boot-A")
    j = Journal.append_to(tmp_path / "run.jsonl", sync="batch")
    j.write({"k": "session", "n": 1, "boot_id": "boot-B"})
    j.write({"k": "uncertain", "seqs": [3]})
    j.write({"k": "end", "status": "completed"}, durable=True)
    j.close()
    st = read_journal(tmp_path / "run.jsonl", current_boot_id="boot-C")
    assert list(st.state[:5]) == [FIRED, FIRED, UNCERTAIN, UNCERTAIN, PENDING]


def test_seq_ranges_roundtrip():
    from fabplan.execute.journal import expand_ranges, seq_ranges

    seqs = [3, 4, 5, 9, 10, 20]
    assert seq_ranges(seqs) == [[3, 5], [9, 10], [20, 20]]
    assert expand_ranges(seq_ranges(seqs)).tolist() == seqs


def test_second_writer_is_refused_while_the_first_holds_the_journal(tmp_path):
    from fabplan.execute.journal import JournalBusy

    j = _new(tmp_path)
    with pytest.raises(JournalBusy):
        Journal.append_to(tmp_path / "run.jsonl")
    j.close()
    Journal.append_to(tmp_path / "run.jsonl").close()  # free once the first writer is gone
