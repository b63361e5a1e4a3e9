"""QA: an output path the user got wrong, or a missing template, is a one-line error with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
HEX = str(ROOT / "designs" / "hex_sweep.yaml")


def _one_line_error(capsys, *needles: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for n in needles:
        assert n in err


@pytest.mark.parametrize("name, why", [("fsr.xyz", "not supported"), ("no/such/dir/fsr.png", "No such file")])
def test_wgm_plot_path_errors(tmp_path, capsys, name, why):
    # Was a matplotlib traceback (ValueError / FileNotFoundError) and exit 1.
    path = str(tmp_path / name)
    assert main(["wgm", "--sweep", "5um:6um:1um", "--plot", path]) == 2
    _one_line_error(capsys, f"cannot write plot {path}", why)


def test_preview_into_missing_folder(tmp_path, capsys):
    path = str(tmp_path / "missing" / "hex.png")
    assert main(["preview", HEX, "-o", path]) == 2
    _one_line_error(capsys, f"cannot write {path}", "No such file")


def test_import_gds_missing_template_writes_nothing(tmp_path, capsys):
    gdstk = pytest.importorskip("gdstk")
    lib = gdstk.Library()
    lib.new_cell("TOP").add(gdstk.ellipse((0, 0), 5, layer=1))
    lib.write_gds(tmp_path / "drawn.gds")
    out = tmp_path / "d.yaml"
    args = ["import-gds", str(tmp_path / "drawn.gds"), "--layer", "1/0", "-o", str(out)]
    assert main([*args, "--template", str(tmp_path / "nofile.yaml")]) == 2
    _one_line_error(capsys, "nofile.yaml: cannot read template")
    assert not out.exists() and not out.with_suffix(".csv").exists()
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    assert main([*args, "--template", str(tmp_path / "bad.yaml")]) == 2
    _one_line_error(capsys, "bad.yaml: not valid YAML")
    assert main([*args, "--template", HEX]) == 0
    assert out.exists()
