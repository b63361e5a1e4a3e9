"""`fabplan lab ...` end to end on simulated spectra: the dry-run path of the final demo."""

import json
from pathlib import Path

import pytest

from fabplan.cli import main
from tests import lab_pg

lab_url, pg_url = lab_pg.lab_url, lab_pg.pg_url  # fixtures: each test on SQLite and PostgreSQL

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("lab")
    rc = main(
        [
            "lab",
            "simulate",
            "--out",
            str(d / "spectra"),
            "--ids",
            "A-r00c00,A-r00c01,A-r01c00",
            "--diameter",
            "10",
            "--points",
            "14",
            "--seed",
            "2",
            "--dead-fraction",
            "0",
        ]
    )
    assert rc == 0
    return d


def test_dry_run_path(lab_dir, capsys, monkeypatch, lab_url):
    """The same commands, unchanged, on a SQLite file and with FABPLAN_DB=postgresql://..."""
    monkeypatch.setenv("FABPLAN_DB", lab_url)
    monkeypatch.setenv("FABPLAN_OPERATOR", "ana")
    manifest = str(lab_dir / "spectra" / "manifest.csv")
    rc, _, err = run(capsys, "lab", "import", manifest)
    assert rc == 2 and "unknown disc ids" in err and "Traceback" not in err
    rc, out, _ = run(capsys, "lab", "import", manifest, "--allow-unknown", "--operator", "test", "--json")
    assert rc == 0 and json.loads(out)["spectra"] == 3 * 14
    rc, out, _ = run(capsys, "lab", "fit", "--json")
    fits = json.loads(out)
    assert rc == 0 and len(fits) == 3
    truth = json.loads((lab_dir / "spectra" / "truth.json").read_text())
    for f in fits:  # simulated ground truth (sim/lasing.py), both methods within 5 %
        if f["has_threshold"]:
            assert f["threshold_uj_cm2"] == pytest.approx(truth[f["disc_id"]]["threshold_uj_cm2"], rel=0.05)
            assert f["threshold_scurve"] == pytest.approx(truth[f["disc_id"]]["threshold_uj_cm2"], rel=0.05)
    assert any(f["status"] == "lasing" for f in fits)
    rc, out, _ = run(capsys, "lab", "list", "--status", "lasing", "--json")
    assert rc == 0 and all(r["status"] == "lasing" for r in json.loads(out))
    rc, out, _ = run(capsys, "lab", "show", "A-r00c00")
    assert rc == 0 and "two-segment" in out and "series" in out
    rc, out, _ = run(capsys, "lab", "export", "--format", "csv")
    assert rc == 0 and out.splitlines()[0].startswith("sample,disc_id") and len(out.splitlines()) == 4
    rc, out, _ = run(capsys, "lab", "export", "--format", "json", "--all")
    assert rc == 0 and len(json.loads(out)) == 3 * 14
    rc, out, _ = run(capsys, "lab", "set-status", "A-r01c00", "damaged")
    rc, out, _ = run(capsys, "lab", "fit", "--disc", "A-r01*")
    rc, out, _ = run(capsys, "lab", "list", "--status", "damaged", "--json")
    assert [r["disc_id"] for r in json.loads(out)] == ["A-r01c00"]  # a hand-set status survives refits
    from fabplan.lab import open_db

    con = open_db(lab_url)
    audit = [dict(r) for r in con.execute("SELECT operator, action, detail FROM audit ORDER BY id")]
    assert [a["action"] for a in audit] == ["import", "fit", "set-status", "fit"]
    assert audit[0]["operator"] == "test" and {a["operator"] for a in audit[1:]} == {"ana"}  # --operator wins
    assert json.loads(audit[2]["detail"]) == {"disc": "A-r01c00", "status": "damaged"}
    con.close()
    rc, out, _ = run(
        capsys, "lab", "report", "--out", str(lab_dir / "report"), "--max-disc-figures", "1", "--json"
    )
    rep = json.loads(out)
    assert rc == 0 and rep["disc_figures"] == 1 and len(rep["array_figures"]) == 4
    assert (lab_dir / "report" / "fits.csv").is_file() and (
        lab_dir / "report" / "threshold_map.png"
    ).is_file()


def test_show_unknown_disc_is_a_user_error(lab_dir, capsys):
    rc, _, err = run(capsys, "lab", "show", "Z-r00c00", "--db", str(lab_dir / "other.sqlite"))
    assert rc == 2 and "not in the lab database" in err


def test_design_registered_discs_get_wgm_mode_spacing(tmp_path, capsys):
    design = str(ROOT / "designs" / "seed_single_disc.yaml")  # one 10 um disc, S-r00c00
    db = str(tmp_path / "lab.sqlite")
    rc, out, _ = run(capsys, "lab", "add-design", design, "--db", db, "--sample", "seed")
    assert rc == 0 and "1 discs" in out
    assert (
        main(
            [
                "lab",
                "simulate",
                "--design",
                design,
                "--out",
                str(tmp_path / "sp"),
                "--dead-fraction",
                "0",
                "--points",
                "14",
            ]
        )
        == 0
    )
    rc, _, err = run(
        capsys, "lab", "import", str(tmp_path / "sp" / "manifest.csv"), "--db", db, "--sample", "seed"
    )
    assert rc == 0, err
    rc, out, _ = run(capsys, "lab", "fit", "--db", db, "--json")
    (fit,) = json.loads(out)
    assert fit["status"] == "lasing"
    # Simulated comb and prediction both come from the WGM estimator for D = 10 um: they must agree
    # (REFERENCE.md section 4: ~1.0-1.5 nm at 533-540 nm for this disc).
    assert 0.9 < fit["fsr_predicted_nm"] < 1.7
    assert fit["mode_spacing_nm"] == pytest.approx(fit["fsr_predicted_nm"], rel=0.1)


def test_python_api_demo_path(tmp_path):
    """The issue-8 demo through the Python API: plan + journal -> fabricated discs -> simulated
    spectra -> atomic import (ids known from the run) -> fits -> report."""
    import numpy as np

    from fabplan import lab
    from fabplan.design import load_design
    from fabplan.execute.journal import Journal
    from fabplan.planning import build_plan

    plan = build_plan(load_design(ROOT / "designs" / "dose_matrix.yaml"))
    plan.save(tmp_path / "plan")
    j = Journal.create(
        tmp_path / "j.jsonl",
        {
            "plan_hash": plan.header["plan_hash"],
            "n_shots": len(plan.shots),
            "design_hash": plan.header["design_hash"],
            "plan_dir": str(tmp_path / "plan"),
        },
        sync="none",
    )
    for q in range(4):
        j.intent(q, str(plan.shots.disc_id[q]), 0.0, 0.0, 0.0, 1.0, 1)
        j.fired(q, None, None, None, 1.0)
    j.flush()
    j.close()
    con = lab.open_db(tmp_path / "lab.sqlite")
    lab.import_journal(con, tmp_path / "j.jsonl", sample="s1")
    discs = lab.fabricated_discs(con)
    assert [d["disc_id"] for d in discs] == sorted(str(x) for x in plan.shots.disc_id[:4])
    manifest = lab.simulate_series(discs, tmp_path / "spectra", np.linspace(2, 60, 12), dead_fraction=0.0)
    assert lab.import_manifest(con, manifest)["spectra"] == 4 * 12
    results = lab.fit_all(con)
    assert len(results) == 4 and all(np.isfinite(r.fsr_predicted_nm) for r in results)
    rep = lab.report(con, tmp_path / "report", max_disc_figures=0)
    assert rep["measured"] == 4 and (tmp_path / "report" / "fits.json").is_file()


def test_fit_pump_jitter_widens_the_threshold_interval(lab_dir, tmp_path, capsys):
    """`lab fit --pump-jitter FRACTION` reaches fit_all(pump_jitter=); a noisier pump -> wider interval."""
    db = str(tmp_path / "jitter.sqlite")
    manifest = str(lab_dir / "spectra" / "manifest.csv")
    rc, _, _ = run(capsys, "lab", "import", manifest, "--db", db, "--allow-unknown", "--operator", "t")
    assert rc == 0
    width = {}
    for jitter in ("0", "0.03", "0.2"):
        rc, out, _ = run(capsys, "lab", "fit", "--db", db, "--json", "--pump-jitter", jitter)
        assert rc == 0
        width[jitter] = {f["disc_id"]: f["threshold_hi"] - f["threshold_lo"] for f in json.loads(out)
                         if f["has_threshold"]}
    assert width["0.2"]
    rc, out, _ = run(capsys, "lab", "fit", "--db", db, "--json")  # default is 0.03
    default = {f["disc_id"]: f["threshold_hi"] - f["threshold_lo"] for f in json.loads(out) if f["has_threshold"]}
    assert default == pytest.approx(width["0.03"], rel=1e-9)
    for disc, w in width["0.2"].items():
        assert w > width["0"][disc]


@pytest.mark.parametrize("bad", ["-0.1", "1.5", "lots"])
def test_fit_pump_jitter_bad_values_exit_2(lab_dir, tmp_path, capsys, bad):
    rc, _, err = run(capsys, "lab", "fit", "--db", str(tmp_path / "x.sqlite"), "--pump-jitter", bad)
    assert rc == 2 and "--pump-jitter" in err and "Traceback" not in err
