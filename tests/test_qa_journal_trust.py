"""QA: a journal defends itself (issue 13). Every record is validated on read; a journal that cannot be
trusted is refused with the line at fault; a torn last write is told apart from damage in the middle;
the writer refuses to fire a shot it holds as fired or uncertain, whatever the plan or firing loop says.

Cases that once failed: `seq: -1` marked the LAST shot fired (numpy negative index; that disc was never
made), `"n_shots": 1e12` tried to allocate 931 GiB, truncated/header-only journals, seq past the end or
a string, an unknown format_version: all tracebacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabplan.execute.journal import (
    FIRED,
    PENDING,
    UNCERTAIN,
    Journal,
    JournalError,
    ShotRefused,
    read_journal,
)

N = 6


def _journal(tmp_path: Path, fired=(0, 1), uncertain=(2,)) -> Path:
    path = tmp_path / "run.jsonl"
    # fixed times: byte-identical journals, so the fuzzer's draws do not depend on the clock
    j = Journal.create(path, {"plan_hash": "abc", "n_shots": N, "mode": "step", "t": 1.0}, sync="none")
    j.write({"k": "session", "n": 0, "t": 1.0})
    for s in fired:
        j.intent(s, f"A-r00c{s:02d}", 0.0, 0.0, 0.0, 0.5, 1, t=1.0)
        j.fired(s, 0.0, 0.0, 0.0, 0.5, t=1.0)
    for s in uncertain:
        j.intent(s, f"A-r00c{s:02d}", 0.0, 0.0, 0.0, 0.5, 1, t=1.0)
    j.close()
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def test_clean_journal_reads(tmp_path):
    st = read_journal(_journal(tmp_path))
    assert st.state.tolist() == [FIRED, FIRED, UNCERTAIN, PENDING, PENDING, PENDING] and st.bad_lines == 0


def test_header_only_journal_is_all_pending(tmp_path):
    path = _journal(tmp_path, fired=(), uncertain=())
    _write(path, _lines(path)[:1])
    st = read_journal(path)
    assert (st.state == PENDING).all() and not st.sessions


# (name, edit of the list of lines, line number expected in the message)
DAMAGE = {
    "seq-negative": (lambda ls: ls + ['{"k":"fired","seq":-1,"ex":0,"ey":0,"ez":0,"e":0.5,"t":1}'], 8),
    "seq-negative-intent": (
        lambda ls: ls + ['{"k":"intent","seq":-1,"id":"A","x":0,"y":0,"z":0,"e":0.5,"n":1,"t":1}'],
        8,
    ),
    "seq-past-end": (lambda ls: ls + ['{"k":"fired","seq":6,"ex":0,"ey":0,"ez":0,"e":0.5,"t":1}'], 8),
    "seq-string": (lambda ls: ls + ['{"k":"fired","seq":"3","t":1}'], 8),
    "seq-float": (lambda ls: ls + ['{"k":"not_fired","seq":1.0,"reason":"x","t":1}'], 8),
    "seq-bool": (lambda ls: ls + ['{"k":"intent","seq":true,"id":"A","t":1}'], 8),
    "seqs-out-of-range": (lambda ls: ls + ['{"k":"unconfirmed","seqs":[0,99],"reason":"x","t":1}'], 8),
    "horizon-huge": (lambda ls: ls + ['{"k":"horizon","seqs":[[0,1000000000000]],"n":1,"t":1}'], 8),
    "energy-string": (lambda ls: ls + ['{"k":"fired","seq":3,"ex":0,"ey":0,"ez":0,"e":"hot","t":1}'], 8),
    "n_shots-huge": (lambda ls: [ls[0].replace('"n_shots": 6', '"n_shots": 1e12')] + ls[1:], 1),
    "n_shots-int-huge": (lambda ls: [ls[0].replace('"n_shots": 6', '"n_shots": 1000000000000')] + ls[1:], 1),
    "n_shots-negative": (lambda ls: [ls[0].replace('"n_shots": 6', '"n_shots": -1')] + ls[1:], 1),
    "format-version-newer": (
        lambda ls: [ls[0].replace('"format_version": 1', '"format_version": 99')] + ls[1:],
        1,
    ),
    "format-version-string": (
        lambda ls: [ls[0].replace('"format_version": 1', '"format_version": "1"')] + ls[1:],
        1,
    ),
    "torn-header": (lambda ls: [ls[0][:30]], 1),
    "second-header": (lambda ls: ls + [ls[0]], 8),
    "damaged-middle": (lambda ls: ls[:3] + ["{garbage"] + ls[3:], 4),
    "torn-middle-no-resume": (lambda ls: ls[:3] + [ls[3][:20]] + ls[3:], 4),
    "record-not-object": (lambda ls: ls[:2] + ["[1, 2]"] + ls[2:], 3),
}


def _unchained(lines: list[str]) -> list[str]:
    """The journal as written before the record chain (no "h" links): validated record by record."""
    return [re.sub(r',"h":"[0-9a-f]{16}"\}$', "}", ln) for ln in lines]


@pytest.mark.parametrize("chained", [True, False], ids=["chained", "pre-chain"])
@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_untrustworthy_journal_is_refused_with_its_line(tmp_path, name, chained):
    path = _journal(tmp_path)
    edit, line = DAMAGE[name]
    lines = _lines(path)
    _write(path, edit(lines if chained else _unchained(lines)))
    with pytest.raises(JournalError) as exc:
        read_journal(path)
    msg = str(exc.value)
    assert f"{path}:{line}:" in msg and "\n" not in msg and len(msg) < 400, msg


def test_empty_journal_is_refused(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"")
    with pytest.raises(JournalError, match="no header"):
        read_journal(path)


def test_torn_tail_is_tolerated_and_survives_a_resume(tmp_path):
    path = _journal(tmp_path)
    with open(path, "ab") as fh:
        fh.write(b'{"k":"intent","seq":3,"id":"A-r0')  # power cut mid-write
    st = read_journal(path)
    assert st.bad_lines == 1 and st.state[3] == PENDING
    j = Journal.append_to(path, sync="none")  # isolates the torn line and marks it
    j.write({"k": "session", "n": 1})
    j.intent(3, "A-r00c03", 0.0, 0.0, 0.0, 0.5, 1)
    j.fired(3, 0.0, 0.0, 0.0, 0.5)
    j.close()
    st = read_journal(path)  # the torn line is now in the middle, but accounted for
    assert st.bad_lines == 1 and st.state[3] == FIRED
    # the same damaged line WITHOUT the mark append_to leaves is a lost record: refused
    lines = [ln for ln in _lines(path) if "torn_write_isolated" not in ln]
    _write(path, lines)
    with pytest.raises(JournalError, match="middle"):
        read_journal(path)


def test_resume_refuses_an_untrustworthy_journal(tmp_path):
    from fabplan.errors import UserError
    from fabplan.execute.session import RunSession

    path = _journal(tmp_path)
    _write(path, _lines(path) + ['{"k":"fired","seq":-1,"ex":0,"ey":0,"ez":0,"e":0.5,"t":1}'])
    with pytest.raises(UserError, match=r":8: fired: seq"):
        RunSession.resume(str(path))


# ---------------------------------------------------------------- the writer's guard


def _guarded(tmp_path: Path, refire=False) -> Journal:
    path = _journal(tmp_path)
    st = read_journal(path)
    j = Journal.append_to(path, sync="none")
    todo = st.state == PENDING
    if refire:
        todo |= st.state == UNCERTAIN
    j.guard_shots(st.state, todo, refire=todo)
    return j


@pytest.mark.parametrize("seq, why", [(0, "already fired"), (1, "already fired"), (2, "uncertain")])
def test_writer_refuses_to_fire_a_fired_or_uncertain_shot(tmp_path, seq, why):
    j = _guarded(tmp_path)
    with pytest.raises(ShotRefused, match=why):
        j.intent(seq, "A", 0.0, 0.0, 0.0, 0.5, 1)
    with pytest.raises(ShotRefused, match=why):  # a fly row containing it: nothing of the row is written
        j.intents([3, seq], ["A", "B"], [0, 0], [0, 0], [0, 0], [0.5, 0.5], [1, 1])
    j.close()
    st = read_journal(j.path)
    assert st.intent_count[3] == 0 and st.fire_count.max() == 1


def test_writer_refuses_out_of_range_and_duplicate_rows(tmp_path):
    j = _guarded(tmp_path)
    with pytest.raises(ShotRefused, match="not a shot"):
        j.intent(-1, "A", 0.0, 0.0, 0.0, 0.5, 1)
    with pytest.raises(ShotRefused, match="not a shot"):
        j.intents([3, N], ["A", "B"], [0, 0], [0, 0], [0, 0], [0.5, 0.5], [1, 1])  # past the end, in a row
    with pytest.raises(ShotRefused, match="twice"):
        j.intents([3, 3], ["A", "A"], [0, 0], [0, 0], [0, 0], [0.5, 0.5], [1, 1])
    j.intent(3, "A", 0.0, 0.0, 0.0, 0.5, 1)  # the refusals wrote nothing and left shot 3 pending
    j.close()
    assert read_journal(j.path).intent_count.tolist()[3:] == [1, 0, 0]


def test_writer_allows_pending_retry_after_not_fired_and_refire_once(tmp_path):
    j = _guarded(tmp_path, refire=True)
    j.intent(3, "A", 0.0, 0.0, 0.0, 0.5, 1)
    j.not_fired(3, "out of position")
    j.intent(3, "A", 0.0, 0.0, 0.0, 0.5, 1)  # withdrawn intent: pending again, may fire
    j.fired(3, 0.0, 0.0, 0.0, 0.5)
    with pytest.raises(ShotRefused, match="already fired"):
        j.intent(3, "A", 0.0, 0.0, 0.0, 0.5, 1)
    j.intent(2, "A", 0.0, 0.0, 0.0, 0.5, 1)  # --refire-uncertain: once
    with pytest.raises(ShotRefused, match="uncertain"):
        j.intent(2, "A", 0.0, 0.0, 0.0, 0.5, 1)
    assert j.left_pending(np.ones(N, bool)).tolist() == [4, 5]
    j.close()


# ---------------------------------------------------------------- fuzzer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_journals_never_crash_and_never_lose_a_fired_shot_silently(tmp_path_factory, data):
    path = _journal(tmp_path_factory.mktemp("j"))
    lines = _lines(path)
    i = data.draw(st.integers(0, len(lines) - 1))
    action = data.draw(st.sampled_from(["cut", "flip", "drop", "dup", "field"]))
    if action == "cut":
        lines = lines[:i] + [lines[i][: data.draw(st.integers(0, len(lines[i])))]]
    elif action == "flip":
        pos = data.draw(st.integers(0, len(lines[i]) - 1))
        lines[i] = (
            lines[i][:pos]
            + data.draw(st.sampled_from(["x", "-", "9", '"', "}", "\\u0000"]))
            + lines[i][pos + 1 :]
        )
    elif action == "drop":
        del lines[i]
    elif action == "dup":
        lines.insert(i, lines[i])
    else:
        try:
            rec = json.loads(lines[i])
        except ValueError:
            rec = None
        if isinstance(rec, dict):
            key = data.draw(st.sampled_from(sorted(rec)))
            rec[key] = data.draw(
                st.one_of(
                    st.none(), st.integers(-(10**13), 10**13), st.floats(), st.text(max_size=3), st.just([])
                )
            )
            lines[i] = json.dumps(rec)
    _write(path, lines)
    try:
        state = read_journal(path)
    except JournalError as exc:
        assert "\n" not in str(exc)
        return
    assert state.state.shape == (state.n_shots,)


@pytest.mark.parametrize("sha", [None, "0" * 64])
def test_resume_does_not_follow_the_journals_design_file_blindly(tmp_path, sha):
    from fabplan.errors import UserError
    from fabplan.execute.session import RunSession

    path = tmp_path / "run.jsonl"
    header = {
        "plan_hash": "abc",
        "n_shots": N,
        "mode": "step",
        "design_file": "/etc/passwd",
        "devices": {"stage": "xps://127.0.0.1:1"},
    }
    if sha:
        header["design_file_sha256"] = sha
    Journal.create(path, header, sync="none").close()
    with pytest.raises(UserError, match="not the file the run started from") as exc:
        RunSession.resume(str(path))
    assert "root:" not in str(exc.value)  # nothing of the named file is read into the message


@pytest.mark.parametrize(
    "edit, line",
    [
        (lambda ls: ls[:3] + ls[4:], 4),  # shot 0's "fired" removed: it would look uncertain/pending
        (lambda ls: ls[:4] + ls[6:], 5),  # shot 1's intent and fired removed: it would be fired again
        (lambda ls: ls[:2] + [ls[2].replace('"x":0.0', '"x":9.0')] + ls[3:], 3),  # a value edited
        (lambda ls: ls[:3] + [ls[4], ls[3]] + ls[5:], 4),  # two records swapped
    ],
    ids=["drop-fired", "drop-shot", "edit-value", "swap"],
)
def test_record_chain_tells_tampering_from_a_torn_tail(tmp_path, edit, line):
    path = _journal(tmp_path)
    _write(path, edit(_lines(path)))
    with pytest.raises(JournalError, match=rf"{re.escape(str(path))}:{line}: record chain broken"):
        read_journal(path)
