"""QA: a plan directory defends itself. plan_hash covers everything the executor acts on (fly lines,
tolerance, settle time, mode), and a damaged plan.json / shots.csv is a located user error, exit 2.

Issue 13: appending a copy of a fly row to plan.json (10 discs fired twice) or dropping one (10 shots
left pending) both ran and said "completed"; damaged plan directories gave 59 tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from exec_designs import lattice_design
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabplan.design import loads_design
from fabplan.errors import UserError
from fabplan.planning import build_plan
from fabplan.planning.plan import Plan


@pytest.fixture(scope="module")
def fly_dir(tmp_path_factory) -> Path:
    design = loads_design(lattice_design("fly-int", "F", 3, 10, mode="fly"))
    plan = build_plan(design)
    assert plan.mode == "fly" and len(plan.lines) == 3
    return plan.save(tmp_path_factory.mktemp("plan") / "p")


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def _edit_json(d: Path, fn) -> None:
    doc = json.loads((d / "plan.json").read_text())
    fn(doc)
    (d / "plan.json").write_text(json.dumps(doc, indent=2))


def _replace_in_json(d: Path, old: str, new: str) -> None:
    """A textual edit of plan.json (as rewritten by _edit_json) that json.dumps could not write."""
    _edit_json(d, lambda doc: None)
    text = (d / "plan.json").read_text()
    assert old in text, old  # the damage is really made
    (d / "plan.json").write_text(text.replace(old, new))


def test_saved_plan_loads_and_hash_is_stable(fly_dir):
    plan = Plan.load(fly_dir)
    assert plan.content_hash() == plan.plan_hash


@pytest.mark.parametrize(
    "edit",
    [
        lambda doc: doc["lines"].append(dict(doc["lines"][0])),  # a fly row fired twice
        lambda doc: doc["lines"].pop(),  # a fly row never fired
        lambda doc: doc.update(position_tolerance_um=50.0),
        lambda doc: doc.update(settle_time_s=0.0),
        lambda doc: doc["lines"][1].update(velocity_um_s=doc["lines"][1]["velocity_um_s"] * 10),
        lambda doc: doc.update(estimate={**doc["estimate"], "total_s": 1.0}),
    ],
    ids=["append-row", "drop-row", "tolerance", "settle", "velocity", "estimate"],
)
def test_any_edit_of_plan_json_is_refused(fly_dir, tmp_path, edit):
    d = _copy(fly_dir, tmp_path)
    _edit_json(d, edit)
    with pytest.raises(UserError):
        Plan.load(d)


def test_edited_in_memory_plan_fails_preflight_hash(fly_dir):
    from fabplan.execute.preflight import PreflightError, PreflightReport, check_plan

    plan = Plan.load(fly_dir)
    check_plan(plan, PreflightReport())
    plan.lines.append(dict(plan.lines[0]))
    with pytest.raises(PreflightError, match="plan_hash"):
        check_plan(plan, PreflightReport())


def test_version_1_plan_is_refused_with_replan_hint(fly_dir, tmp_path):
    d = _copy(fly_dir, tmp_path)
    _edit_json(d, lambda doc: doc.update(format_version=1))
    with pytest.raises(UserError, match="re-run `fabplan plan`"):
        Plan.load(d)


DAMAGE = {
    "truncated-json": lambda d: (d / "plan.json").write_bytes((d / "plan.json").read_bytes()[:100]),
    "json-list": lambda d: (d / "plan.json").write_text("[1, 2]"),
    "json-deep": lambda d: (d / "plan.json").write_text("[" * 100_000 + "]" * 100_000),
    "json-latin1": lambda d: (d / "plan.json").write_bytes(b'{"format": "\xe9"}'),
    "csv-binary": lambda d: (d / "shots.csv").write_bytes(b"\x00\xff" * 100),
    "csv-header-only": lambda d: (d / "shots.csv").write_text(
        (d / "shots.csv").read_text().splitlines()[0] + "\n"
    ),
    "csv-short-row": lambda d: (d / "shots.csv").write_text((d / "shots.csv").read_text()[:-20] + "\n"),
    "csv-bad-int": lambda d: (d / "shots.csv").write_text(
        (d / "shots.csv").read_text().replace("\n0,", "\nzero,", 1)
    ),
    "csv-huge-int": lambda d: (d / "shots.csv").write_text(
        (d / "shots.csv").read_text().replace("\n0,", "\n" + "9" * 30 + ",", 1)
    ),
    "csv-missing": lambda d: (d / "shots.csv").unlink(),
    "n_shots-string": lambda d: _edit_json(d, lambda doc: doc.update(n_shots="12")),
    "n_shots-huge": lambda d: _edit_json(d, lambda doc: doc.update(n_shots=10**12)),
    "mode-bogus": lambda d: _edit_json(d, lambda doc: doc.update(mode="warp")),
    "line-not-dict": lambda d: _edit_json(d, lambda doc: doc["lines"].__setitem__(0, 5)),
    "line-seq-past-end": lambda d: _edit_json(d, lambda doc: doc["lines"][0].update(last_seq=10**9)),
    "line-seq-negative": lambda d: _edit_json(d, lambda doc: doc["lines"][0].update(first_seq=-1)),
    "design_hash-null": lambda d: _edit_json(d, lambda doc: doc.update(design_hash=None)),
    "json-5000-digit-int": lambda d: _replace_in_json(d, '"n_shots": 30', '"n_shots": ' + "9" * 5000),
    # soak find: json raises a plain ValueError past 4,300 digits
    "huge-field": lambda d: _edit_json(d, lambda doc: doc.update(format="x" * 200_000)),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_damaged_plan_dir_is_one_located_line(fly_dir, tmp_path, name):
    # `fabplan run/dry-run PLAN_DIR` load the plan with Plan.load before anything connects: a UserError
    # here is exit 2 with this one line (fabplan.cli.dispatch).
    d = _copy(fly_dir, tmp_path)
    DAMAGE[name](d)
    with pytest.raises(UserError) as exc:
        Plan.load(d)
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 400 and str(d) in msg, msg


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_byte_damage_never_crashes(fly_dir, tmp_path_factory, data):
    d = _copy(fly_dir, tmp_path_factory.mktemp("fz"))
    name = data.draw(st.sampled_from(["plan.json", "shots.csv"]))
    raw = bytearray((d / name).read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    junk = data.draw(st.binary(min_size=1, max_size=6))
    if action == "flip":
        raw[pos : pos + len(junk)] = junk
    elif action == "cut":
        del raw[pos:]
    else:
        raw[pos:pos] = junk
    (d / name).write_bytes(bytes(raw))
    try:
        plan = Plan.load(d)
    except UserError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
    else:  # a mutation that kept the meaning (e.g. whitespace in plan.json) still hashes the same
        assert plan.content_hash() == plan.plan_hash


def _rehashed(fly_dir: Path, tmp_path: Path, edit) -> Path:
    """The plan edited AND its plan_hash recomputed (someone who knows the format): the executor's
    own guards must still hold."""
    plan = Plan.load(fly_dir)
    edit(plan.lines)
    plan.header["n_lines"] = len(plan.lines)
    plan.header["plan_hash"] = plan.content_hash()
    return plan.save(tmp_path / "edited")


def test_rehashed_duplicate_fly_row_fires_no_disc_twice(fly_dir, tmp_path, capsys, monkeypatch):
    import json as _json

    import fabplan.planning.plan as plan_mod
    from fabplan.cli import main
    from fabplan.execute.journal import read_journal
    from fabplan.execute.pulselog import read_pulse_log

    d = _rehashed(fly_dir, tmp_path, lambda lines: lines.append(dict(lines[0])))
    with pytest.raises(UserError, match=r"lines\[3\]\.line"):  # the loader's own check refuses it
        Plan.load(d)
    # ...and were the loader fooled, the journal writer's guard still refuses the second pass
    monkeypatch.setattr(plan_mod, "_check_lines", lambda *a: None)
    journal = tmp_path / "j.jsonl"
    rc = main(["dry-run", str(d), "--journal", str(journal), "--json"])
    res = _json.loads(capsys.readouterr().out)
    assert rc == 1 and res["status"] == "failed" and "refusing to fire shot" in res["message"], res
    st = read_journal(journal)
    fired = st.counts()["fired"]
    assert st.fire_count.max() == 1 and fired >= 10  # the run stopped at the duplicate row
    assert len(read_pulse_log(res["pulse_log"])) == fired  # the emulator's ground truth: each disc once


def test_rehashed_dropped_fly_row_is_not_completed(fly_dir, tmp_path, capsys):
    import json as _json

    from fabplan.cli import main

    d = _rehashed(fly_dir, tmp_path, lambda lines: lines.pop())
    rc = main(["dry-run", str(d), "--journal", str(tmp_path / "j.jsonl"), "--json"])
    res = _json.loads(capsys.readouterr().out)
    assert rc == 1 and res["status"] == "failed" and "not completed" in res["message"], res
    assert res["journal_counts"]["pending"] == 10
