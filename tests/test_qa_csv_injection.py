"""QA: `lab export` CSV never hands a spreadsheet a formula from user text (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io

from fabplan.lab.tables import write_csv


def test_formula_cells_are_neutralised_numbers_kept():
    rows = [
        {"disc_id": "A-r00c00", "notes": "=cmd|' /C calc'!A0", "n": -3, "x": -2.5},
        {"disc_id": "+A", "notes": "@SUM(A1:A2)", "n": 1, "x": "-1.5"},
        {"disc_id": "-B", "notes": "\tTAB", "n": 2, "x": "\r=1"},
    ]
    fh = io.StringIO()
    write_csv(rows, fh)
    got = list(csv.reader(io.StringIO(fh.getvalue())))
    assert got[1] == ["A-r00c00", "'=cmd|' /C calc'!A0", "-3", "-2.5"]
    assert got[2] == ["'+A", "'@SUM(A1:A2)", "1", "-1.5"]
    assert got[3][:2] == ["'-B", "'\tTAB"] and got[3][3] == "'\r=1"
