"""QA: `validate --json` / `plan --json` on a bad design still print one JSON document for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabplan.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def typo_design(tmp_path):
    text = (ROOT / "designs" / "dose_matrix.yaml").read_text()
    assert "    pitch: 40 um\n" in text
    path = tmp_path / "my_design.yaml"
    path.write_text(text.replace("    pitch: 40 um\n", "    pich: 40 um\n"))
    return path


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_bad_design_json(command, typo_design, capsys):
    # stdout used to be empty: `fabplan validate my_design.yaml --json | python -m json.tool` failed.
    assert main([command, str(typo_design), "--json"]) == 2
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["ok"] is False
    assert {(p["path"], p["line"]) for p in data["problems"]} >= {("arrays[0].pich", 26)}
    assert "unknown key 'pich'; did you mean 'pitch'?" in err  # the lines for people are unchanged


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_missing_design_json(command, tmp_path, capsys):
    assert main([command, str(tmp_path / "hex_swep.yaml"), "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["problems"][0]["message"] == "file not found"
    assert err.strip().endswith("hex_swep.yaml: file not found") and err.count("\n") == 1
