"""Data other tools read: `lab export --format nexus` (opened with h5py, silx and nexusformat), `--format
parquet` (pyarrow/pandas), the DataFrame API (Logbook) on both backends, and plan, journal and pulse
log of a real dry run (fabplan dry-run on the emulators) as DataFrames."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fabplan.cli import main
from tests import lab_pg

lab_url, pg_url = lab_pg.lab_url, lab_pg.pg_url  # fixtures: SQLite file, PostgreSQL database

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "designs" / "seed_single_disc.yaml"  # one 10 um disc, S-r00c00
POINTS = 10

h5py = pytest.importorskip("h5py")
pd = pytest.importorskip("pandas")


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


@pytest.fixture(scope="module")
def spectra(tmp_path_factory):
    """Simulated sweeps (files on disk: the truth the exports are compared with)."""
    d = tmp_path_factory.mktemp("sp")
    for name, argv in (("seed", ["--design", str(SEED)]), ("free", ["--ids", "F-r00c00,F-r00c01"])):
        assert main(["lab", "simulate", *argv, "--out", str(d / name), "--points", str(POINTS),
                     "--dead-fraction", "0", "--seed", "4"]) == 0
    return d


def _manifest(path):
    rows = path.read_text().splitlines()
    head = rows[0].split(",")
    return [dict(zip(head, r.split(","), strict=True)) for r in rows[1:]]


@pytest.fixture
def filled(lab_url, spectra, capsys):
    """A logbook with a registered design measured twice (two series) and two unregistered discs, fitted."""
    db = ["--db", lab_url]
    run(capsys, "lab", "add-design", str(SEED), "--sample", "seed", *db)
    for _ in range(2):
        run(capsys, "lab", "import", str(spectra / "seed" / "manifest.csv"), "--sample", "seed", *db)
    run(capsys, "lab", "import", str(spectra / "free" / "manifest.csv"), "--sample", "free", "--allow-unknown",
        "--operator", "bo", *db)
    run(capsys, "lab", "fit", *db)
    return lab_url


def test_nexus_export_opens_in_h5py_and_nexusformat(filled, spectra, tmp_path, capsys):
    out = tmp_path / "lab.nxs"
    res = json.loads(run(capsys, "lab", "export", "--format", "nexus", "--out", str(out), "--db", filled, "--json"))
    assert res["entries"] == 4 and res["spectra"] == 4 * POINTS
    truth = {(r["disc_id"], float(r["fluence_uj_cm2"])): spectra / sub / r["spectrum"]
             for sub in ("seed", "free") for r in _manifest(spectra / sub / "manifest.csv")}
    with h5py.File(out, "r") as f:
        assert f.attrs["NX_class"] == "NXroot" and f.attrs["default"] in f
        entries = sorted(f)
        assert entries == ["free__F-r00c00__series3", "free__F-r00c01__series4",
                           "seed__S-r00c00__series1", "seed__S-r00c00__series2"]
        for name in entries:
            e = f[name]
            assert e.attrs["NX_class"] == "NXentry" and e.attrs["default"] == "light_in_light_out"
            disc = e["sample/disc_id"][()].decode()
            data = sorted(k for k in e if k.startswith("spectrum_"))
            assert len(data) == POINTS
            for k in data:
                g = e[k]
                assert g.attrs["NX_class"] == "NXdata" and g.attrs["signal"] == "counts"
                assert g["wavelength"].attrs["units"] == "nm" and g["pump_fluence"].attrs["units"] == "uJ/cm^2"
                # Against the simulator's files: the stored float32 arrays of that disc at that fluence.
                lines = truth[(disc, float(g["pump_fluence"][()]))].read_text().splitlines()
                wl, counts = np.loadtxt([ln for ln in lines if not ln.startswith("#")][1:], delimiter=",",
                                        unpack=True)
                np.testing.assert_array_equal(g["wavelength"][()], wl.astype(np.float32))
                np.testing.assert_array_equal(g["counts"][()], counts.astype(np.float32))
            ll = e["light_in_light_out"]
            assert np.all(np.diff(ll["pump_fluence"][()]) > 0) and np.all(np.isfinite(ll["integrated_emission"][()]))
            assert "s-curve" in e["fits"] and e["fits"].attrs["NX_class"] == "NXprocess"
            assert e["instrument/pump/incident_wavelength"][()] == 515.0
        seed1, seed2 = f["seed__S-r00c00__series1"], f["seed__S-r00c00__series2"]
        yaml = seed1["fabrication/design_yaml"][()].decode()
        assert yaml == SEED.read_text(encoding="utf-8")  # the registered design, verbatim
        assert isinstance(seed2["fabrication"].get("design_yaml", getlink=True), h5py.SoftLink)  # stored once
        assert seed2["fabrication/design_yaml"][()].decode() == yaml
        assert seed1["sample/diameter"].attrs["units"] == "um" and seed1["fabrication/known"][()]
        assert f["free__F-r00c00__series3/operator/name"][()].decode() == "bo"
        assert "design_yaml" not in f["free__F-r00c00__series3/fabrication"]

    # silx (the ESRF viewer's library) by its own NXdata rules: default plot and every spectrum valid.
    silx_io = pytest.importorskip("silx.io")
    from silx.io import nxdata

    with silx_io.open(str(out)) as sf:
        assert nxdata.is_NXroot_with_default_NXdata(sf)
        for name in sf:
            e = sf[name]
            assert nxdata.is_NXentry_with_default_NXdata(e)
            ll = nxdata.get_default(e)
            # silx names a field with its units: "pump_fluence (uJ/cm^2)"
            assert ll.signal_name.startswith("integrated_emission") and ll.axes_names[0].startswith("pump_fluence")
            sp = nxdata.NXdata(e["spectrum_003"])
            assert sp.is_curve and sp.axes_names == ["wavelength (nm)"] and sp.signal.shape == (1024,)

    nx = pytest.importorskip("nexusformat.nexus")
    root = nx.nxload(str(out))
    entry = root["seed__S-r00c00__series1"]
    plot = entry.plottable_data  # NeXus default-plot rules: the light-in/light-out curve
    assert plot.nxname == "light_in_light_out" and plot.nxaxes[0].nxname == "pump_fluence"
    sp = entry["spectrum_000"]
    assert sp.nxsignal.nxname == "counts" and sp.nxaxes[0].nxname == "wavelength"
    assert sp.nxsignal.shape == sp.nxaxes[0].shape
    root.nxfile.close()


def test_parquet_export_tables_and_list_columns(filled, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "tables"
    res = json.loads(run(capsys, "lab", "export", "--format", "parquet", "--out", str(out), "--db", filled,
                         "--json"))
    assert res["rows"]["spectra"] == 4 * POINTS and res["rows"]["discs"] == 3
    spectra = pd.read_parquet(out / "spectra.parquet")
    assert len(spectra) == 4 * POINTS
    assert all(len(w) == len(c) == 1024 for w, c in zip(spectra.wavelength_nm, spectra.counts, strict=True))
    t = pq.read_table(out / "spectra.parquet")
    pa = pytest.importorskip("pyarrow")
    assert t.schema.field("counts").type.value_type == pa.float32()  # float32 lists, as stored
    assert json.loads(t.schema.metadata[b"fabplan"])["schema_version"] >= 4
    fits = pd.read_parquet(out / "fits.parquet")
    assert set(fits.series_id) == {1, 2, 3, 4} and fits.params_json.map(json.loads).map(type).eq(dict).all()
    discs = pd.read_parquet(out / "discs.parquet")
    assert sorted(discs.disc_id) == ["F-r00c00", "F-r00c01", "S-r00c00"]
    meas = pd.read_parquet(out / "measurements.parquet")
    assert len(meas) == 4 * POINTS and set(meas.operator.dropna()) == {"bo"}


def test_export_formats_need_out(filled, capsys):
    assert main(["lab", "export", "--format", "nexus", "--db", filled]) == 2
    assert "needs --out" in capsys.readouterr().err


def test_logbook_dataframes(filled):
    from fabplan.lab import Logbook

    with Logbook(filled) as lb:
        discs = lb.discs()
        assert list(discs.disc_id) == ["F-r00c00", "F-r00c01", "S-r00c00"]
        assert discs.set_index("disc_id").loc["S-r00c00", "n_spectra"] == POINTS  # latest series
        fits = lb.fits()
        assert set(fits.series_id) == {1, 2, 3, 4} and (fits.fitted_by.nunique() == 1)
        sp = lb.spectra("S-r00c00")
        assert len(sp) == 2 * POINTS and sp.series_id.nunique() == 2
        assert sp.counts.iloc[0].dtype == np.float32 and sp.wavelength_nm.iloc[0].shape == (1024,)
        assert list(lb.measurements("F-*").disc_id.unique()) == ["F-r00c00", "F-r00c01"]
        audit = lb.audit()
        assert list(audit.action) == ["add-design", "import", "import", "import", "fit"]
        assert "Logbook(" in repr(lb)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """A real dry run of the shipped single-disc design on the emulators: plan, journal, pulse log."""
    d = tmp_path_factory.mktemp("run")
    journal = d / "seed.jsonl"
    assert main(["dry-run", str(SEED), "--journal", str(journal), "--pulse-log", str(d / "pulses.csv"), "--json"]) == 0
    plan_dirs = [p for p in d.iterdir() if p.is_dir()]
    return journal, d / "pulses.csv", plan_dirs


def test_plan_journal_and_pulse_log_frames(dry_run):
    from fabplan.lab.dataframes import journal_frame, plan_frame, pulse_log_frame

    journal, pulses, plan_dirs = dry_run
    j = journal_frame(journal)
    assert list(j.disc_id) == ["S-r00c00"] and list(j.state) == ["fired"]
    p = pulse_log_frame(pulses)
    assert list(p.columns) == ["t_s", "x_um", "y_um", "z_um"] and len(p) >= 1
    # Light landed where the journal says the stage was commanded (dry-run ground truth).
    assert abs(p.x_um.iloc[0] - j.x_um.iloc[0]) < 1.0 and abs(p.y_um.iloc[0] - j.y_um.iloc[0]) < 1.0
    if plan_dirs:  # the run saves its plan next to the journal
        plan = plan_frame(plan_dirs[0])
        assert list(plan.disc_id) == ["S-r00c00"]
    shutil.rmtree(journal.parent, ignore_errors=True)
