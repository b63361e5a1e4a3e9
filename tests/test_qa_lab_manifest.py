"""QA: every bad manifest row is named with its line and the column at fault."""

from __future__ import annotations

import pytest

from fabplan.cli import main
from fabplan.errors import ProblemsError
from fabplan.lab.importer import read_manifest

MANIFEST = """disc_id,fluence_uj_cm2,spectrum,integration_s,resolution_nm
A-r00c00,2,a.csv,1,0.1
A-r00c01,3 mJ,a.csv,1,0.1
A-r00c02,3,a.csv,abc,0.1
A-r00c03,3,a.csv,1,0.1 mJ
A-r00c04,3
"""


def test_problems_name_line_and_column(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text(MANIFEST)
    with pytest.raises(ProblemsError) as exc:
        read_manifest(path, "default")
    got = [(p.line, p.path) for p in exc.value.problems]
    # The column was missing from the message ("could not convert string to float: 'abc'").
    assert got == [(3, "fluence_uj_cm2"), (4, "integration_s"), (5, "resolution_nm"), (6, "")]
    assert f"{path}:4: integration_s: could not convert" in str(exc.value)


def test_cli_exit_2_no_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FABPLAN_DB", str(tmp_path / "lab.sqlite"))
    (tmp_path / "manifest.csv").write_text(MANIFEST)
    assert main(["lab", "import", str(tmp_path / "manifest.csv"), "--allow-unknown"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 4 and "Traceback" not in err
