"""A dry run has its own resume, and its journal lands where --help says (issue 17).

The README's `--fault xps=drop@40` example used to end with `fabplan run --resume J --stage URL
--laser URL (this dry run's emulators are gone)`: a hint that led nowhere. Now the dry run is carried
on by fresh emulators from its journal, every disc fired exactly once across both sessions, each
session's pulses in its own pulse log (the emulator's clock restarts).
"""

from __future__ import annotations

import json
from pathlib import Path

from fabplan.cli import main
from fabplan.execute.journal import read_journal
from fabplan.execute.pulselog import read_pulse_log

ROOT = Path(__file__).resolve().parents[1]
HEX = str(ROOT / "designs" / "hex_sweep.yaml")


def test_a_cut_dry_run_is_carried_on_by_dry_run_resume(tmp_path, capsys):
    j = tmp_path / "runs" / "cut.jsonl"
    assert main(["dry-run", HEX, "--fault", "xps=drop@40", "--journal", str(j)]) == 1
    out = capsys.readouterr().out
    assert f"resume with: fabplan dry-run --resume {j}" in out and "--stage URL" not in out
    assert main(["dry-run", "--resume", str(j), "--json", "--report", str(tmp_path / "r.svg")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["journal_counts"]["fired"] == 63 and summary["journal_counts"].get("pending", 0) == 0
    state = read_journal(j)
    assert (state.fire_count == 1).all()  # every disc exactly once across the two sessions
    first, second = j.with_suffix(".pulses.csv"), j.with_name("cut.pulses-2.csv")
    assert len(read_pulse_log(first)) + len(read_pulse_log(second)) == 63
    assert "resume" in (tmp_path / "r.svg").read_text()  # the timeline marks where the second session began


def test_dry_run_resume_refuses_what_it_cannot_resume(tmp_path, capsys):
    assert main(["dry-run"]) == 2
    assert "or --resume JOURNAL" in capsys.readouterr().err
    bogus = tmp_path / "x.jsonl"
    bogus.write_text("not a journal\n")
    assert main(["dry-run", "--resume", str(bogus)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_dry_run_journal_defaults_to_the_journals_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["dry-run", str(ROOT / "designs" / "seed_single_disc.yaml"), "--json"]) == 0
    journal = Path(json.loads(capsys.readouterr().out)["journal"])
    assert journal.parent == Path("journals") and journal.name.endswith("-dry.jsonl")
    assert (tmp_path / journal).is_file()
