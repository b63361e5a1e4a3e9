"""The Python API as a notebook user meets it: short reprs, HTML summaries, DataFrames, units.

Issue 17: `repr(plan)` was 9.6 kB, `pd.DataFrame(vars(discs))` failed, `estimate_disc("10um")`
raised although the CLI takes units.
"""

from __future__ import annotations

import numpy as np
import pytest

from fabplan.design import expand, load_design
from fabplan.planning import build_plan
from fabplan.shipped import shipped_design
from fabplan.wgm import estimate_disc


@pytest.fixture(scope="module")
def hexd():
    design = load_design(shipped_design("hex_sweep"))
    discs = expand(design)
    return design, discs, build_plan(design, discs=discs)


def test_reprs_are_one_short_line(hexd):
    for obj in (*hexd, hexd[2].shots, estimate_disc(10.0)):
        text = repr(obj)
        assert "\n" not in text and len(text) < 200, text
    design, discs, plan = hexd
    assert repr(discs).startswith("DiscTable(63 discs in 1 array(s) [H]")
    assert repr(plan).startswith("Plan('hex-sweep': 63 shots, step mode")


def test_a_quarter_million_disc_table_still_prints_one_line():
    discs = expand(load_design(shipped_design("dense_cm2")))
    assert repr(discs) == ("DiscTable(250,000 discs in 1 array(s) [D]; x 10..9990 um, y 10..9990 um; "
                           "D 6 um, F -, pulses 1)")
    html = discs._repr_html_()
    assert "249,995 more rows" in html and html.count("<tr>") < 20


def test_html_summaries(hexd):
    design, discs, plan = hexd
    for obj in (design, discs, plan, plan.shots):
        html = obj._repr_html_()
        assert html.startswith("<div>") and html.endswith("</div>") and len(html) < 5000
    assert "plan hash" in plan._repr_html_() and "H-r00c00" in discs._repr_html_()


def test_to_pandas(hexd):
    pd = pytest.importorskip("pandas")
    _design, discs, plan = hexd
    df = discs.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 63
    assert df["disc_id"].iloc[0] == "H-r00c00" and set(df["array"]) == {"H"}
    np.testing.assert_array_equal(df["diameter_um"].to_numpy(), discs.diameter_um)
    shots = plan.to_pandas()
    assert len(shots) == 63 and shots["seq"].tolist() == list(range(63))
    assert set(shots["disc_id"]) == set(df["disc_id"])


def test_units_are_accepted_like_the_cli():
    # the CLI's `fabplan wgm --diameter 10um --thickness 100nm` and the API give the same estimate
    a, b = estimate_disc("10um", thickness_nm="0.1 um"), estimate_disc(10.0, thickness_nm=100.0)
    assert a.fsr_nm == b.fsr_nm and a.n_modes_in_window == b.n_modes_in_window
    from fabplan.wgm import free_spectral_range

    assert free_spectral_range("10um", "540 nm") == free_spectral_range(10.0, 540.0)
    from fabplan.units import UnitError

    with pytest.raises(UnitError, match="expected a length"):
        estimate_disc("10 mJ")
