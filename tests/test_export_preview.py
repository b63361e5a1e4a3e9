"""`fabplan preview` writes png/svg/pdf for a single disc, a lattice and a design with violations."""

from pathlib import Path

import pytest

from fabplan.cli import main

DESIGNS = Path(__file__).resolve().parents[1] / "designs"


@pytest.mark.parametrize(("name", "ext"), [("seed_single_disc.yaml", "svg"), ("hex_sweep.yaml", "png")])
def test_preview_formats(tmp_path, capsys, name, ext):
    out = tmp_path / f"p.{ext}"
    assert main(["preview", str(DESIGNS / name), "-o", str(out), "--color", "fluence"]) == 0
    data = out.read_bytes()
    assert data[:4] == b"\x89PNG" if ext == "png" else b"<svg" in data[:2000]


def test_dense_preview_uses_the_binned_view_and_zoom(tmp_path, monkeypatch):
    import fabplan.export.preview as pv

    monkeypatch.setattr(pv, "DRAW_LIMIT", 20)  # dose_matrix (72 discs) now counts as dense
    out = tmp_path / "p.pdf"
    assert main(["preview", str(DESIGNS / "dose_matrix.yaml"), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"%PDF"


def test_preview_marks_violations_and_exits_2(tmp_path, capsys):
    text = (
        (DESIGNS / "seed_single_disc.yaml").read_text().replace("fluence: 100 mJ/cm^2", "fluence: 30 mJ/cm^2")
    )
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    out = tmp_path / "bad.png"
    assert main(["preview", str(f), "-o", str(out)]) == 2
    assert out.exists() and "violations" in capsys.readouterr().out


def test_preview_rejects_unknown_format(tmp_path, capsys):
    assert main(["preview", str(DESIGNS / "seed_single_disc.yaml"), "-o", str(tmp_path / "p.jpg")]) == 2
