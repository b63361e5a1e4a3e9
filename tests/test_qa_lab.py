"""QA of the lab commands a new user runs: `--json` prints JSON, a report before `lab fit` says so."""

from __future__ import annotations

import json

import pytest

from fabplan.cli import main


@pytest.fixture
def db(tmp_path, monkeypatch, capsys):
    """A logbook with one simulated disc measured, not fitted yet."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FABPLAN_DB", str(tmp_path / "lab.sqlite"))
    assert main(["lab", "simulate", "--out", "spectra", "--ids", "X-r00c00", "--points", "8"]) == 0
    assert main(["lab", "import", "spectra/manifest.csv", "--allow-unknown"]) == 0
    capsys.readouterr()
    return tmp_path


def test_export_json_flag_prints_json(db, capsys):
    assert main(["lab", "fit"]) == 0
    capsys.readouterr()
    assert main(["lab", "export", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)  # was CSV: --json was ignored in favour of --format csv
    assert [r["disc_id"] for r in rows] == ["X-r00c00"]


def test_report_before_fit_is_a_user_error_not_a_traceback(db, capsys):
    # Unfitted spectra have no integrated emission: matplotlib's log axis raised ValueError.
    assert main(["lab", "report", "--out", "report"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "1 measured disc(s) not fitted yet (X-r00c00)" in err and "fabplan lab fit" in err
    assert main(["lab", "fit"]) == 0
    capsys.readouterr()
    assert main(["lab", "report", "--out", "report", "--json", "--disc", "X-r00c00"]) == 0  # per-disc: on request
    assert json.loads(capsys.readouterr().out)["disc_figures"] == 1


def test_import_journal_given_a_folder(tmp_path, monkeypatch, capsys):
    # `fabplan dry-run --journal runs/hex.jsonl` writes runs/hex.jsonl.plan/ next to the journal;
    # tab completion offers it, and the error said "journal not found" for a folder that exists.
    monkeypatch.setenv("FABPLAN_DB", str(tmp_path / "lab.sqlite"))
    (tmp_path / "hex.jsonl.plan").mkdir()
    assert main(["lab", "import-journal", str(tmp_path / "hex.jsonl.plan")]) == 2
    assert "hex.jsonl.plan: is a folder, not a journal (.jsonl)" in capsys.readouterr().err
    assert main(["lab", "import-journal", str(tmp_path / "nothere.jsonl")]) == 2
    assert "nothere.jsonl: journal not found" in capsys.readouterr().err
