"""QA: a path the user names that cannot be opened is `error: cannot open PATH: reason`, exit 2, no traceback.

Paths under an ordinary file (`blocker/x`) fail for root too, so the tests do not depend on permissions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fabplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
SEED = str(ROOT / "designs" / "seed_single_disc.yaml")


@pytest.fixture
def blocker(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FABPLAN_DB", str(tmp_path / "lab.sqlite"))
    (tmp_path / "blocker").write_text("a file, not a folder\n")
    return "blocker"


@pytest.mark.parametrize(
    "argv",
    [
        ["schema", "-o", "blocker/schema.json"],
        ["plan", SEED, "-o", "blocker/plan"],
        ["lab", "export", "--out", "blocker/fits.csv"],
        ["lab", "report", "--out", "blocker/report"],
        ["run", "--resume", "no_such_journal.jsonl", "--stage", "sim://lab"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_unopenable_path_is_a_user_error(argv, blocker, capsys):
    # Each used to end in a FileNotFoundError / NotADirectoryError traceback with exit 1.
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open ") and err.count("\n") == 1, err
    assert ("blocker/" in err) or ("no_such_journal.jsonl" in err)


def test_export_gds_unwritable(blocker, capsys):
    pytest.importorskip("gdstk")
    assert main(["export-gds", SEED, "-o", "blocker/seed.gds"]) == 2
    assert "blocker/seed.gds" in capsys.readouterr().err


def test_device_errors_keep_their_own_handling(capsys):
    # OSErrors without a file name (e.g. connection refused) are not turned into "cannot open".
    assert main(["stage", "status", "xps://127.0.0.1:1?group=XYZ"]) == 2
    assert "cannot connect" in capsys.readouterr().err


def test_broken_pipe_still_exits_0(monkeypatch):
    # BrokenPipeError is an OSError without a file name: `fabplan ... | head` must stay quiet, exit 0.
    import fabplan.cli.cmd_validate as cmd_validate

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cmd_validate, "_schema", closed_pipe)
    assert main(["schema"]) == 0
