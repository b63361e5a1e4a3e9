"""`fabplan wgm` command line: disc, slab and sweep modes, JSON keys, user errors."""

import json

from fabplan.cli import main


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_disc_json(capsys):
    d = _json(capsys, ["wgm", "--diameter", "10um", "--thickness", "100nm", "--json"])
    assert {"n_eff", "n_group", "confinement", "fsr_nm", "modes"} <= set(d)
    assert 1.0 < d["fsr_nm"] < 1.5
    assert {"m", "radial_order", "wavelength_nm", "q_rad"} <= set(d["modes"][0])


def test_disc_text_and_options(capsys):
    argv = ["wgm", "--diameter", "3 um", "--outside", "substrate", "--window", "530nm:545nm",
            "--polarization", "te", "--radial-orders", "2", "--material", "cspbbr3-ermolaev-o"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "FSR" in out and "radial" in out and "below Q_min" in out


def test_slab_json(capsys):
    d = _json(capsys, ["wgm", "--slab", "--thickness", "100nm", "--wavelength", "540nm", "--json"])
    assert abs(d["n_eff"] - 2.01) < 0.01 and abs(d["confinement"] - 0.76) < 0.01 and d["n_group"] > 6


def test_sweep_plot_json(capsys, tmp_path):
    png = tmp_path / "fsr.png"
    d = _json(capsys, ["wgm", "--sweep", "2um:6um:1um", "--plot", str(png), "--json"])
    assert d["diameter_um"] == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert len(d["fsr_nm"]) == len(d["n_modes"]) == len(d["q_rad"]) == 5
    assert d["single_mode_limit_um"] > 0
    assert png.stat().st_size > 1000


def test_user_errors_exit_2(capsys):
    assert main(["wgm", "--diameter", "10um", "--window", "400nm:450nm"]) == 2
    assert "outside the data range" in capsys.readouterr().err
    assert main(["wgm", "--diameter", "10 mJ"]) == 2
    assert main(["wgm"]) == 2
    assert main(["wgm", "--sweep", "2um:1um"]) == 2
    assert main(["wgm", "--diameter", "10um", "--material", "nosuch"]) == 2


def test_design_annotation(capsys):
    from pathlib import Path

    design = Path(__file__).resolve().parents[1] / "designs" / "dose_matrix.yaml"
    d = _json(capsys, ["wgm", "--design", str(design), "--json"])
    # dose_matrix gives fluences, not diameters: the beam model's predicted diameters are annotated.
    assert d["by_diameter"] and sum(g["n_discs"] for g in d["by_diameter"]) == 72
    assert all(g["fsr_nm"] > 0 and g["n_modes"] >= 1 for g in d["by_diameter"])
    assert main(["wgm", "--design", str(design)]) == 0
    assert "WGM estimate" in capsys.readouterr().out
