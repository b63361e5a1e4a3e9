"""Optical constants: shipped tables, Sellmeier, user CSV, scale, range errors (REFERENCE.md section 3)."""

from pathlib import Path

import numpy as np
import pytest

from fabplan.errors import UserError
from fabplan.wgm.materials import MATERIAL_NAMES, get_material


def test_shipped_tables_are_package_data_with_citation():
    data = Path(__file__).resolve().parents[1] / "fabplan" / "data"
    for name in ("CsPbBr3_nk_Ermolaev-o.csv", "CsPbBr3_nk_Ermolaev-e.csv", "CsPbBr3_nk_Brennan.csv"):
        text = (data / name).read_text()
        assert "refractiveindex.info" in text and "Reference:" in text
    for name in MATERIAL_NAMES:
        get_material(name).n(540.0)


def test_ermolaev_o_at_540nm_is_the_table_value():
    # CsPbBr3_nk_Ermolaev-o.csv row 0.540,2.46503,0.00196 (Ermolaev et al., Nano Lett. 23, 2570 (2023)).
    m = get_material("cspbbr3-ermolaev-o")
    assert m.n(540.0) == pytest.approx(2.46503, abs=1e-9)
    assert m.k(540.0) == pytest.approx(0.00196, abs=1e-9)
    assert get_material("cspbbr3") is m  # default alias


def test_material_group_index_on_the_exciton_red_wing():
    # REFERENCE.md section 3: n_g ~ 11.5 (530), 8.9 (535), 6.9 (540), 4.8 (550 nm) for Ermolaev-o.
    ng = get_material("cspbbr3-ermolaev-o").n_group(np.array([530.0, 535.0, 540.0, 550.0]))
    assert ng == pytest.approx([11.5, 8.9, 6.9, 4.8], abs=0.15)


def test_spline_derivative_matches_finite_difference():
    for name in ("cspbbr3-ermolaev-o", "cspbbr3-brennan", "fused-silica"):
        m = get_material(name)
        wl, h = np.array([533.3, 541.7, 600.2]), 1e-4
        fd = (m.n(wl + h) - m.n(wl - h)) / (2 * h)
        assert m.dn_dwl(wl) == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_fused_silica_malitson():
    # REFERENCE.md section 3: Malitson 1965, n(540 nm) = 1.4603.
    assert get_material("fused-silica").n(540.0) == pytest.approx(1.4603, abs=1e-4)
    assert get_material("air").n(540.0) == 1.0


def test_out_of_range_is_a_clear_error():
    with pytest.raises(UserError, match=r"499 nm is outside its data range 500-949 nm"):
        get_material("cspbbr3-ermolaev-o").n(499.0)
    with pytest.raises(UserError, match="unknown material"):
        get_material("unobtainium")


def test_user_csv_in_um_or_nm_and_scale(tmp_path):
    um = tmp_path / "film_um.csv"
    um.write_text("# my film\nwavelength_um,n,k\n0.50,2.0,0\n0.55,2.1,0\n0.60,2.2,0\n0.65,2.3,0\n")
    nm = tmp_path / "film_nm.csv"
    nm.write_text("wavelength_nm,n\n500,2.0\n550,2.1\n600,2.2\n650,2.3\n")
    for p in (um, nm):
        m = get_material(str(p))
        assert m.n(575.0) == pytest.approx(2.15)
        assert (m.lo_nm, m.hi_nm) == (500.0, 650.0)
    scaled = get_material(str(nm), scale=0.92)
    assert scaled.n(550.0) == pytest.approx(0.92 * 2.1)
    bad = tmp_path / "bad.csv"
    bad.write_text("wavelength_nm,n\n500,2.0\n")
    with pytest.raises(UserError, match="at least 4 rows"):
        get_material(str(bad))
    with pytest.raises(UserError, match="not found"):
        get_material(str(tmp_path / "missing.csv"))


def test_number_is_a_constant_index():
    m = get_material(1.45)
    assert m.n(1234.0) == 1.45 and m.dn_dwl(600.0) == 0.0
