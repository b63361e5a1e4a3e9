"""QA: a truncated dose-matrix row is reported, not silently fitted as 'nothing ablated'."""

from __future__ import annotations

import numpy as np
import pytest

from fabplan.beam.dose_csv import parse_dose_csv
from fabplan.cli import main
from fabplan.errors import ProblemsError


def test_short_row_is_a_located_problem():
    text = "site,fluence_mj_cm2,pulses,diameter_um\nA,50,1,8.2\nB,60,1\nC,30,1,\n"
    with pytest.raises(ProblemsError) as exc:
        parse_dose_csv(text, "m.csv")
    assert [(p.line, p.path) for p in exc.value.problems] == [(3, "diameter_um")]
    assert "m.csv:3: diameter_um: row has 3 cell(s)" in str(exc.value)


def test_explicit_empty_cell_is_still_not_ablated():
    data = parse_dose_csv("fluence_mj_cm2,pulses,diameter_um\n50,1,8.2\n30,1,\n", "m.csv")
    assert data.ablated.tolist() == [True, False] and np.isnan(data.diameter_um[1])


def test_cli_exit_2_one_line_per_row(tmp_path, capsys):
    path = tmp_path / "measured_diameters.csv"
    path.write_text("fluence_mj_cm2,pulses,diameter_um\n50,1,8.2\n60,1\nabc,1,5\n")
    assert main(["calibrate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in err] == ["3", "4"]
