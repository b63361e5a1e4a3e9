"""Malformed device URLs and report names are user errors (exit 2), never tracebacks."""

from fabplan.cli import main


def test_malformed_device_url_is_a_user_error(capsys):
    assert main(["stage", "status", "xps://[::1"]) == 2
    err = capsys.readouterr().err
    assert "not a device URL" in err and "Traceback" not in err


def test_dry_run_report_with_unknown_extension_is_refused_before_running(tmp_path, capsys):
    from pathlib import Path

    design = Path(__file__).resolve().parents[1] / "designs" / "seed_single_disc.yaml"
    rc = main(
        ["dry-run", str(design), "--journal", str(tmp_path / "j.jsonl"), "--report", str(tmp_path / "r.xyz")]
    )
    assert rc == 2
    assert "r.xyz" in capsys.readouterr().err
    assert not (tmp_path / "j.jsonl").exists()  # refused before anything ran


def test_negative_tolerance_is_refused(tmp_path, capsys):
    from pathlib import Path

    design = Path(__file__).resolve().parents[1] / "designs" / "seed_single_disc.yaml"
    rc = main(["dry-run", str(design), "--journal", str(tmp_path / "j.jsonl"), "--tolerance-um", "-1"])
    assert rc == 2
    assert "--tolerance-um" in capsys.readouterr().err


def test_validate_rejects_what_plan_rejects(tmp_path, capsys):
    """Discs 12 um apart with a 12 um LG01 ring: the layout is fine, the trenches are not."""
    design = tmp_path / "close.yaml"
    design.write_text(
        "schema_version: 1\nsample:\n  region: {rect: [-100, -100, 200, 200]}\nlaser:\n  max_pulse_energy: 5 uJ\n"
        "beam:\n  profile: {model: lg01, ring_diameter: 12 um}\n  threshold_fluence: 40 mJ/cm^2\n"
        "  damage_fluence: 400 mJ/cm^2\narrays:\n  - id: A\n    pitch: 12 um\n    shape: [3, 4]\n"
        "    disc: {diameter: 6 um}\n"
    )
    assert main(["validate", str(design)]) == 2
    err = capsys.readouterr().err
    assert "annulus_hits_disc: 12 discs" in err
    assert main(["plan", str(design), "-o", str(tmp_path / "p")]) == 2
