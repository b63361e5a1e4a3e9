"""Lab database: WAL, migrations, array storage, concurrent writers, killed imports."""

import os
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fabplan.errors import UserError
from fabplan.lab import db, import_manifest, open_db
from fabplan.lab.simulate import simulate_series

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_open_creates_wal_and_latest_schema(tmp_path):
    con = open_db(tmp_path / "lab.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"samples", "designs", "runs", "discs", "series", "spectra", "axes", "fits", "spectral"} <= tables


def test_forward_migration_from_v1_keeps_data(tmp_path):
    path = tmp_path / "old.sqlite"
    con = db.connect(path)
    with db.transaction(con):
        db.MIGRATIONS[0](con)
        con.execute("PRAGMA user_version=1")
        con.execute("INSERT INTO samples(name) VALUES ('s1')")
    con.close()
    con = open_db(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    assert con.execute("SELECT name FROM samples").fetchone()[0] == "s1"
    assert "integrated" in {r[1] for r in con.execute("PRAGMA table_info(spectra)")}


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    open_db(path).execute(f"PRAGMA user_version={db.SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match="newer"):
        open_db(path)


def test_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FABPLAN_DB", str(tmp_path / "env.sqlite"))
    assert db.default_path(None) == tmp_path / "env.sqlite"
    assert db.default_path(tmp_path / "x.sqlite") == tmp_path / "x.sqlite"
    monkeypatch.delenv("FABPLAN_DB")
    assert str(db.default_path(None)) == "fabplan-lab.sqlite"


def test_arrays_round_trip_and_axes_are_shared(tmp_path):
    con = open_db(tmp_path / "a.sqlite")
    wl = np.linspace(490, 590, 1024)
    with db.transaction(con):
        a1 = db.axis_id(con, wl)
        a2 = db.axis_id(con, wl.copy())
    assert a1 == a2 and con.execute("SELECT count(*) FROM axes").fetchone()[0] == 1
    assert np.allclose(db.from_blob(db.to_blob(wl)), wl, rtol=1e-7)


def test_transaction_rolls_back_on_error(tmp_path):
    con = open_db(tmp_path / "t.sqlite")
    with pytest.raises(RuntimeError):
        with db.transaction(con):
            con.execute("INSERT INTO samples(name) VALUES ('x')")
            raise RuntimeError("boom")
    assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == 0


def _manifests(tmp_path, n_writers, n_discs, points):
    out = []
    for w in range(n_writers):
        discs = [(f"W{w}-r00c{i:02d}", 10.0) for i in range(n_discs)]
        out.append(
            simulate_series(discs, tmp_path / f"w{w}", np.linspace(2, 60, points), seed=w, dead_fraction=0)
        )
    return out


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    manifests = _manifests(tmp_path, 2, 4, 10)
    path = tmp_path / "shared.sqlite"
    open_db(path).close()
    script = textwrap.dedent("""
        import sys
        from fabplan.lab import open_db, import_manifest
        con = open_db(sys.argv[1])
        for k in range(3):   # several transactions each, interleaving with the other writer
            import_manifest(con, sys.argv[2], sample=f"s{k}", allow_unknown=True, chunk=7)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(m)], cwd=ROOT) for m in manifests]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    con = open_db(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM spectra").fetchone()[0] == 2 * 3 * 4 * 10
    assert con.execute("SELECT count(*) FROM series").fetchone()[0] == 2 * 3 * 4
    assert con.execute("SELECT count(DISTINCT disc_id) FROM discs").fetchone()[0] == 8


def test_killed_import_leaves_database_consistent(tmp_path):
    (manifest,) = _manifests(tmp_path, 1, 4, 10)
    path = tmp_path / "k.sqlite"
    con = open_db(path)
    import_manifest(con, manifest, sample="before", allow_unknown=True)
    before = con.execute("SELECT count(*) FROM spectra").fetchone()[0]
    con.close()
    script = textwrap.dedent("""
        import os, signal, sys
        from fabplan.lab import open_db, import_manifest
        def die(done, total):
            if done >= 15:
                os.kill(os.getpid(), signal.SIGKILL)   # mid-transaction, no cleanup at all
        import_manifest(open_db(sys.argv[1]), sys.argv[2], sample="killed", allow_unknown=True,
                        chunk=5, progress=die)
    """)
    rc = subprocess.run(
        [sys.executable, "-c", script, str(path), str(manifest)], cwd=ROOT, timeout=120
    ).returncode
    assert rc == -9
    con = open_db(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM spectra").fetchone()[0] == before
    assert con.execute("SELECT count(*) FROM samples WHERE name='killed'").fetchone()[0] == 0
    # The same import now goes through whole.
    import_manifest(con, manifest, sample="killed", allow_unknown=True)
    assert con.execute("SELECT count(*) FROM spectra").fetchone()[0] == 2 * before


def test_readers_see_committed_state_only(tmp_path):
    path = tmp_path / "r.sqlite"
    w = open_db(path)
    r = sqlite3.connect(path)
    w.execute("BEGIN IMMEDIATE")
    w.execute("INSERT INTO samples(name) VALUES ('pending')")
    assert r.execute("SELECT count(*) FROM samples").fetchone()[0] == 0  # WAL: reader not blocked
    w.execute("COMMIT")
    assert r.execute("SELECT count(*) FROM samples").fetchone()[0] == 1


def test_fit_in_worker_processes_matches_serial(tmp_path):
    from fabplan.lab import fit_all

    (manifest,) = _manifests(tmp_path, 1, 3, 12)
    con = open_db(tmp_path / "f.sqlite")
    import_manifest(con, manifest, allow_unknown=True)
    serial = fit_all(con)
    parallel = fit_all(con, workers=2)  # workers read the WAL database, this process writes
    assert [r.disc_id for r in serial] == [r.disc_id for r in parallel]
    for a, b in zip(serial, parallel, strict=True):
        assert a.status == b.status and np.allclose(a.threshold_uj_cm2, b.threshold_uj_cm2, equal_nan=True)
