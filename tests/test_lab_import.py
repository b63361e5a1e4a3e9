"""Spectrum files, manifests (atomic, located errors), disc-id checks, designs and journals."""

import sys
from pathlib import Path

import numpy as np
import pytest

from fabplan.errors import ProblemsError, UserError
from fabplan.lab import add_spectrum, import_journal, import_manifest, open_db, register_design
from fabplan.lab.importer import parse_fluence
from fabplan.lab.spectra_io import SIF_HINT, read_spectrum, write_spectrum

ROOT = Path(__file__).resolve().parents[1]
WL = np.linspace(500.0, 560.0, 64)


def _spec(path: Path, peak=535.0, header=True, sep=","):
    y = 100 + 1e3 / (1 + ((WL - peak) / 0.3) ** 2)
    if header:
        write_spectrum(path, WL, y, 0.1)
    else:
        path.write_text("\n".join(f"{a}{sep}{b}" for a, b in zip(WL[::-1], y[::-1], strict=True)))
    return y


def test_read_two_column_files(tmp_path):
    y = _spec(tmp_path / "a.csv")
    wl, c, t = read_spectrum(tmp_path / "a.csv")
    assert t == 0.1 and np.allclose(wl, WL, atol=1e-4) and np.allclose(c, y, atol=0.06)
    _spec(tmp_path / "b.txt", header=False, sep="\t")  # no header, tab separated, descending
    wl, c, t = read_spectrum(tmp_path / "b.txt")
    assert t is None and wl[0] < wl[-1] and np.allclose(wl, WL)


def test_bad_spectrum_names_file_and_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("wavelength,counts\n500,1\n501,2\n502,oops\n")
    with pytest.raises(UserError, match=r"bad.csv:4: not two numbers"):
        read_spectrum(p)
    p.write_text("1,2\n3,4\n")
    with pytest.raises(UserError, match="in nm"):
        read_spectrum(p)
    with pytest.raises(UserError, match="not found"):
        read_spectrum(tmp_path / "missing.csv")


def test_sif_without_sif_parser_says_how_to_install(tmp_path, monkeypatch):
    p = tmp_path / "x.sif"
    p.write_bytes(b"Andor Technology Multi-Channel File\n")
    monkeypatch.setitem(sys.modules, "sif_parser", None)  # import fails as if not installed
    with pytest.raises(UserError, match=r"fabplan\[sif\]"):
        read_spectrum(p)
    assert "sif-parser" in SIF_HINT


def test_fluence_units():
    assert parse_fluence("12uJ/cm^2") == pytest.approx(12.0)
    assert parse_fluence("0.012 mJ/cm^2") == pytest.approx(12.0)
    assert parse_fluence("15") == 15.0
    with pytest.raises(UserError):
        parse_fluence("12 uJ")


def _manifest(tmp_path, rows, name="m.csv"):
    p = tmp_path / name
    p.write_text("disc_id,fluence,spectrum,operator\n" + "".join(",".join(r) + "\n" for r in rows))
    return p


def test_manifest_import_is_atomic_and_names_the_bad_line(tmp_path):
    for k in range(3):
        _spec(tmp_path / f"s{k}.csv")
    con = open_db(tmp_path / "lab.sqlite")
    good = [("A-r00c00", "5uJ/cm^2", "s0.csv", "ana"), ("A-r00c00", "10", "s1.csv", "ana")]
    bad = good + [("A-r00c01", "12", "nope.csv", "ana")]
    with pytest.raises(ProblemsError, match=r"m\.csv:4: .*nope\.csv.*not found"):
        import_manifest(con, _manifest(tmp_path, bad), allow_unknown=True)
    assert con.execute("SELECT count(*) FROM spectra").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM discs").fetchone()[0] == 0  # disc rows rolled back too
    bad_fluence = good + [("A-r00c01", "12 mJ", "s2.csv", "ana")]
    with pytest.raises(ProblemsError, match=r"m\.csv:4: .*fluence"):
        import_manifest(con, _manifest(tmp_path, bad_fluence), allow_unknown=True)
    res = import_manifest(con, _manifest(tmp_path, good), allow_unknown=True)
    assert res == {"manifest": str(tmp_path / "m.csv"), "spectra": 2, "series": 1, "discs": 1}
    s = con.execute("SELECT operator, pump_wavelength_nm, spot_fwhm_um FROM series").fetchone()
    assert tuple(s) == ("ana", 515.0, 20.0)  # paper defaults for what the manifest does not say


def test_unknown_ids_refused_unless_allowed(tmp_path):
    _spec(tmp_path / "s.csv")
    con = open_db(tmp_path / "lab.sqlite")
    with pytest.raises(UserError, match="unknown disc ids A-r00c00.*--allow-unknown"):
        add_spectrum(con, "A-r00c00", "5", tmp_path / "s.csv")
    with pytest.raises(ProblemsError, match="malformed disc id"):
        add_spectrum(con, "disc7", "5", tmp_path / "s.csv", allow_unknown=True)
    r1 = add_spectrum(con, "A-r00c00", "5", tmp_path / "s.csv", allow_unknown=True)
    r2 = add_spectrum(con, "A-r00c00", "8", tmp_path / "s.csv", allow_unknown=True)
    r3 = add_spectrum(con, "A-r00c00", "8", tmp_path / "s.csv", allow_unknown=True, new_series=True)
    assert r1["series_id"] == r2["series_id"] != r3["series_id"]


def test_design_registration_checks_ids(tmp_path):
    _spec(tmp_path / "s.csv")
    con = open_db(tmp_path / "lab.sqlite")
    info = register_design(con, ROOT / "designs" / "seed_single_disc.yaml")
    assert info["discs"] == 1
    (disc_id, d_um) = con.execute("SELECT disc_id, diameter_um FROM discs").fetchone()
    # The seed design gives the paper's dose (100 mJ/cm^2) only; the logbook stores the beam model's
    # predicted diameter, ~10.3 um (what `fabplan validate` prints; the paper reports a ~10 um disc).
    assert disc_id == "S-r00c00" and d_um == pytest.approx(10.32, abs=0.05)
    assert register_design(con, ROOT / "designs" / "seed_single_disc.yaml")["design_id"] == info["design_id"]
    add_spectrum(con, "S-r00c00", "5", tmp_path / "s.csv")
    with pytest.raises(UserError, match="unknown disc ids S-r00c01.*1 known discs"):
        add_spectrum(con, "S-r00c01", "5", tmp_path / "s.csv")


def test_journal_import_records_run_and_fired_discs(tmp_path):
    from fabplan.execute.journal import Journal

    path = tmp_path / "journal.jsonl"
    j = Journal.create(
        path,
        {
            "run_id": "r1",
            "plan_hash": "ab" * 32,
            "design_hash": "cd" * 32,
            "n_shots": 4,
            "started": "2026-11-24T00:40:00Z",
        },
        sync="none",
    )
    for seq, disc in enumerate(["B-r00c00", "B-r00c01", "B-r00c02"]):
        j.intent(seq, disc, 10.0 * seq, 0.0, 0.0, 1.5, 1)
        if seq < 2:
            j.fired(seq, 10.0 * seq + 0.01, 0.0, 0.0, 1.49)
    j.flush()
    j.close()
    con = open_db(tmp_path / "lab.sqlite")
    res = import_journal(con, path)
    assert (res["fired"], res["uncertain"], res["design_linked"]) == (2, 1, False)
    rows = dict(con.execute("SELECT disc_id, fab_state FROM discs").fetchall())
    assert rows == {"B-r00c00": "fired", "B-r00c01": "fired", "B-r00c02": "uncertain"}
    assert con.execute("SELECT plan_hash FROM runs").fetchone()[0] == "ab" * 32
    with pytest.raises(UserError, match="already imported"):
        import_journal(con, path)
    _spec(tmp_path / "s.csv")
    add_spectrum(con, "B-r00c01", "5", tmp_path / "s.csv")  # now a known disc
    with pytest.raises(UserError, match="unknown"):
        add_spectrum(con, "B-r00c03", "5", tmp_path / "s.csv")  # never shot


@pytest.mark.parametrize("damaged", [False, True])
def test_journal_with_plan_gives_sample_positions_and_diameters(tmp_path, caplog, damaged):
    """A real plan (designs/dose_matrix.yaml, discs given by fluence) + journal: the lab log takes the
    disc ids, sample coordinates and beam-model diameters from the plan named in the header. A plan
    that is there but damaged is not silently ignored: the import warns and keeps stage coordinates."""
    from fabplan.design import load_design
    from fabplan.execute.journal import Journal
    from fabplan.planning import build_plan

    design_path = ROOT / "designs" / "dose_matrix.yaml"
    plan = build_plan(load_design(design_path))
    plan.save(tmp_path / "plan")
    path = tmp_path / "journal.jsonl"
    h = plan.header
    j = Journal.create(
        path,
        {
            "plan_hash": h["plan_hash"],
            "design_hash": h["design_hash"],
            "n_shots": len(plan.shots),
            "plan_dir": str(tmp_path / "plan"),
        },
        sync="none",
    )
    sh = plan.shots
    for q in range(3):
        j.intent(
            q, str(sh.disc_id[q]), float(sh.x_um[q]), float(sh.y_um[q]), 0.0, float(sh.pulse_energy_uj[q]), 1
        )
        j.fired(q, float(sh.x_um[q]), float(sh.y_um[q]), 0.0, float(sh.pulse_energy_uj[q]))
    j.flush()
    j.close()
    con = open_db(tmp_path / "lab.sqlite")
    if damaged:
        (tmp_path / "plan" / "shots.csv").write_text("not a shot table\n")
    with caplog.at_level("WARNING", logger="fabplan.lab.records"):
        assert import_journal(con, path)["fired"] == 3
    row = con.execute(
        "SELECT diameter_um, x_um, y_um FROM discs WHERE disc_id=?", (str(sh.disc_id[0]),)
    ).fetchone()
    if damaged:
        assert "cannot be read" in caplog.text and str(tmp_path / "plan") in caplog.text
        assert row[0] is None and (row[1], row[2]) == pytest.approx((float(sh.x_um[0]), float(sh.y_um[0])))
        return
    assert not caplog.text
    assert row[0] == pytest.approx(float(sh.diameter_um[0]))
    assert (row[1], row[2]) == pytest.approx((float(sh.sample_x_um[0]), float(sh.sample_y_um[0])))
    # Registering the design afterwards links the run to it by hash.
    register_design(con, design_path)
    assert con.execute("SELECT design_id FROM runs").fetchone()[0] is not None


def test_parallel_import_path_is_atomic_too(tmp_path):
    """Large manifests are parsed in worker processes; a bad file deep inside still rolls back all."""
    _spec(tmp_path / "s0.csv")
    rows = [(f"A-r{i // 50:02d}c{i % 50:02d}", "5", "s0.csv", "x") for i in range(450)]
    rows[437] = ("A-r08c37", "5", "missing.csv", "x")
    con = open_db(tmp_path / "lab.sqlite")
    with pytest.raises(ProblemsError, match=r"m\.csv:439: .*missing\.csv"):
        import_manifest(con, _manifest(tmp_path, rows), allow_unknown=True, workers=2, chunk=100)
    assert con.execute("SELECT count(*) FROM spectra").fetchone()[0] == 0
    rows[437] = ("A-r08c37", "5", "s0.csv", "x")
    res = import_manifest(con, _manifest(tmp_path, rows), allow_unknown=True, workers=2, chunk=100)
    assert res["spectra"] == 450 and con.execute("SELECT count(*) FROM axes").fetchone()[0] == 1
