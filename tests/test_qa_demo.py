"""QA: `fabplan demo --json` is a JSON document on stdout (scripts pipe it into a JSON parser)."""

from __future__ import annotations

import json

from fabplan.cli import main


def test_demo_json_stdout_is_one_json_document(tmp_path, capsys):
    # The step-by-step log (validate, plan, ... summaries) used to precede the JSON on stdout.
    assert main(["demo", "--out", str(tmp_path / "demo-out"), "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["artefacts"]["summary"].endswith("demo-summary.json")
    assert "== 1/6 validate" in err  # the log is still there, on stderr
