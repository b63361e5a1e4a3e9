"""QA: what the README's safety checklist promises about `fabplan plan` holds."""

from __future__ import annotations

from pathlib import Path

from fabplan.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_plan_warns_about_a_poor_fiducial_fit(tmp_path, capsys):
    # README item 4: "`fabplan plan` warns when the fiducial fit's RMS residual exceeds
    # process.position_tolerance". hex_sweep's 3 fiducials fit an affine map exactly (residual 0);
    # a 4th, off the map by ~2 um, leaves a residual (0.85 um RMS) well above 0.1 um.
    text = (ROOT / "designs" / "hex_sweep.yaml").read_text()
    assert "    F3: [-200 um, 420 um]\n" in text and "      F3: [10197.1, 5819.4]\n" in text
    text = text.replace("    F3: [-200 um, 420 um]\n", "    F3: [-200 um, 420 um]\n    F4: [600 um, 420 um]\n")
    text = text.replace("      F3: [10197.1, 5819.4]\n", "      F3: [10197.1, 5819.4]\n      F4: [10999.0, 5825.0]\n")
    (tmp_path / "aligned.yaml").write_text(text)
    assert main(["plan", str(tmp_path / "aligned.yaml")]) == 0
    out = capsys.readouterr().out
    assert "warning: alignment: the fiducial fit leaves 0.846 um RMS residual" in out
    readme = (ROOT / "README.md").read_text().replace("\n   ", " ")
    assert "`fabplan plan` warns when the fiducial fit's RMS residual exceeds `process.position_tolerance`" in readme


def test_tour_says_how_to_get_fabplan_on_the_path():
    # The install line puts fabplan in .venv/bin; the tour's bare `fabplan ...` lines then gave
    # "fabplan: command not found" to a reader who had not activated the venv.
    text = (ROOT / "README.md").read_text()
    tour = text.split("## A short tour", 1)[1]
    assert tour.index("source .venv/bin/activate") < tour.index("```bash")
