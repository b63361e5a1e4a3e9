"""Lab logbook database on both backends (SQLite file, PostgreSQL server): addresses, schema, arrays,
transactions, killed and failed imports, readers, fit workers, audit, disc globs."""

import os
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fabplan.errors import ProblemsError, UserError
from fabplan.lab import db, import_manifest, open_db
from fabplan.lab.queries import disc_rows, glob_regex
from fabplan.lab.simulate import simulate_series
from tests import lab_pg

lab_url, pg_url = lab_pg.lab_url, lab_pg.pg_url  # fixtures: SQLite file, PostgreSQL database

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = {"samples", "designs", "runs", "discs", "series", "spectra", "axes", "fits", "spectral", "audit"}


def _tables(con):
    import sqlalchemy as sa

    return set(sa.inspect(con._c).get_table_names())


def test_open_creates_latest_schema(lab_url):
    con = open_db(lab_url)
    assert db.schema_version(con) == db.SCHEMA_VERSION
    assert TABLES <= _tables(con)
    if con.dialect == "sqlite":
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    con = open_db(lab_url)  # reopening an up-to-date logbook changes nothing
    assert db.schema_version(con) == db.SCHEMA_VERSION
    assert con.execute("SELECT count(*) FROM audit WHERE action='migrate'").fetchone()[0] == 0


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


def test_newer_schema_is_refused(lab_url):
    con = open_db(lab_url)
    with db.transaction(con):
        db._set_version(con, db.SCHEMA_VERSION + 1)
    con.close()
    with pytest.raises(UserError, match="newer"):
        open_db(lab_url)


def test_addresses(tmp_path, monkeypatch):
    monkeypatch.setenv("FABPLAN_DB", str(tmp_path / "env.sqlite"))
    assert db.default_path(None) == tmp_path / "env.sqlite"
    assert db.default_path(tmp_path / "x.sqlite") == tmp_path / "x.sqlite"
    monkeypatch.delenv("FABPLAN_DB")
    assert str(db.default_path(None)) == "fabplan-lab.sqlite"
    assert db.sqlite_path(f"sqlite:///{tmp_path}/u.sqlite") == tmp_path / "u.sqlite"
    assert db.sqlite_path("sqlite:///rel.sqlite") == db.sqlite_path("rel.sqlite")
    assert db.sqlite_path("postgresql://ana@labdb/logbook") is None
    con = open_db(f"sqlite:///{tmp_path}/u.sqlite")
    assert (tmp_path / "u.sqlite").is_file() and con.dialect == "sqlite"
    assert db.redact("postgresql://ana:secret@labdb/logbook") == "postgresql://ana:***@labdb/logbook"
    for bad, msg in (
        ("mysql://x@y/z", "unsupported logbook address"),
        (str(tmp_path / "missing" / "lab.sqlite"), "does not exist"),
        ("sqlite://", "must be a file"),
    ):
        with pytest.raises(UserError, match=msg):
            open_db(bad)
    with pytest.raises(UserError, match=r"cannot open the logbook") as e:  # nothing listens there
        open_db(f"postgresql://ana:secret@/nowhere?host={tmp_path}")
    assert "secret" not in str(e.value)


def test_arrays_round_trip_and_axes_are_shared(lab_url):
    con = open_db(lab_url)
    wl = np.linspace(490, 590, 1024)
    with db.transaction(con):
        a1 = db.axis_id(con, wl)
        a2 = db.axis_id(con, wl.copy())
    assert a1 == a2 and con.execute("SELECT count(*) FROM axes").fetchone()[0] == 1
    stored = db.from_blob(con.execute("SELECT wavelength_nm FROM axes").fetchone()[0])
    assert np.array_equal(stored, wl.astype("<f4"))  # float32 bytes, exactly as written


def test_transaction_rolls_back_on_error(lab_url):
    con = open_db(lab_url)
    with pytest.raises(RuntimeError):
        with db.transaction(con):
            con.execute("INSERT INTO samples(name) VALUES ('x')")
            raise RuntimeError("boom")
    assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM audit").fetchone()[0] == 0  # its audit row went too


def _manifests(tmp_path, n_writers, n_discs, points, prefix="W"):
    out = []
    for w in range(n_writers):
        discs = [(f"{prefix}{w}-r00c{i:02d}", 10.0) for i in range(n_discs)]
        out.append(
            simulate_series(discs, tmp_path / f"{prefix}{w}", np.linspace(2, 60, points), seed=w, dead_fraction=0)
        )
    return out


def _count(con, table):
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_killed_import_leaves_database_consistent(tmp_path, lab_url):
    (manifest,) = _manifests(tmp_path, 1, 4, 10)
    con = open_db(lab_url)
    import_manifest(con, manifest, sample="before", allow_unknown=True)
    before = _count(con, "spectra")
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
    rc = subprocess.run([sys.executable, "-c", script, lab_url, str(manifest)], cwd=ROOT, timeout=120).returncode
    assert rc == -9
    con = open_db(lab_url)
    if con.dialect == "sqlite":
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _count(con, "spectra") == before
    assert con.execute("SELECT count(*) FROM samples WHERE name='killed'").fetchone()[0] == 0
    # The same import now goes through whole (on PostgreSQL: the killed session's lock was released).
    import_manifest(con, manifest, sample="killed", allow_unknown=True)
    assert _count(con, "spectra") == 2 * before


def test_failed_import_changes_nothing(tmp_path, lab_url):
    (manifest,) = _manifests(tmp_path, 1, 3, 10)
    con = open_db(lab_url)
    import_manifest(con, manifest, sample="ok", allow_unknown=True)
    snapshot = {t: _count(con, t) for t in sorted(TABLES)}
    rows = manifest.read_text().splitlines()
    victim = manifest.parent / rows[25].split(",")[2]  # a spectrum file in the third chunk
    victim.write_text("wavelength,counts\nnot,numbers\n")
    with pytest.raises(ProblemsError, match="line 26|:26"):
        import_manifest(con, manifest, sample="new", allow_unknown=True, chunk=8)
    assert {t: _count(con, t) for t in sorted(TABLES)} == snapshot


def test_readers_see_committed_state_only(lab_url):
    w = open_db(lab_url)
    r = open_db(lab_url)
    with db.transaction(w):
        w.execute("INSERT INTO samples(name) VALUES ('pending')")
        assert _count(r, "samples") == 0  # the reader is not blocked, and sees nothing uncommitted
    assert _count(r, "samples") == 1


def test_fit_in_worker_processes_matches_serial(tmp_path, lab_url):
    from fabplan.lab import fit_all

    (manifest,) = _manifests(tmp_path, 1, 3, 12)
    con = open_db(lab_url)
    import_manifest(con, manifest, allow_unknown=True)
    serial = fit_all(con)
    parallel = fit_all(con, workers=2)  # workers open the logbook's URL themselves, this process writes
    assert [r.disc_id for r in serial] == [r.disc_id for r in parallel]
    for a, b in zip(serial, parallel, strict=True):
        assert a.status == b.status and np.allclose(a.threshold_uj_cm2, b.threshold_uj_cm2, equal_nan=True)
    assert _count(con, "fits") == 2 * 3  # refitting replaced each (series, method) row, kept one


def test_audit_says_who_did_what(tmp_path, lab_url, monkeypatch):
    from fabplan.lab import fit_all

    monkeypatch.setenv("FABPLAN_OPERATOR", "ana")
    (manifest,) = _manifests(tmp_path, 1, 2, 8)
    con = open_db(lab_url)
    import_manifest(con, manifest, allow_unknown=True)
    fit_all(con)
    audit = [dict(r) for r in con.execute("SELECT * FROM audit ORDER BY id")]
    assert [a["action"] for a in audit] == ["import", "fit"]
    assert {a["operator"] for a in audit} == {"ana"} and {a["pid"] for a in audit} == {os.getpid()}
    assert all(a["host"] and a["at"].endswith("Z") for a in audit)
    imp, fit = audit[0]["id"], audit[1]["id"]
    assert {r[0] for r in con.execute("SELECT audit_id FROM spectra")} == {imp}
    assert {r[0] for r in con.execute("SELECT audit_id FROM series")} == {imp}
    assert {r[0] for r in con.execute("SELECT audit_id FROM fits")} == {fit}
    assert {r[0] for r in con.execute("SELECT status_audit_id FROM discs")} == {fit}


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("A-r0*", {"A-r00c00", "A-r00c01", "A-r01c10"}),
        ("A-r0?c0?", {"A-r00c00", "A-r00c01"}),
        ("*c1[0-9]", {"A-r01c10", "B-r10c10", "B.r10c10"}),
        ("[^A]*", {"B-r10c10", "B.r10c10"}),
        ("B.r*", {"B.r10c10"}),  # '.' is literal in a glob, not any character
        ("A-R0*", set()),  # case-sensitive, as SQLite's GLOB
    ],
)
def test_disc_globs_agree_on_both_backends(lab_url, pattern, expected):
    con = open_db(lab_url)
    with db.transaction(con):
        sid = db.sample_id(con, "s")
        con.executemany(
            "INSERT INTO discs(sample_id, disc_id) VALUES (?,?)",
            [(sid, d) for d in ("A-r00c00", "A-r00c01", "A-r01c10", "B-r10c10", "B.r10c10")],
        )
    assert {r["disc_id"] for r in disc_rows(con, pattern)} == expected


def test_glob_regex():
    assert glob_regex("A-r0[0-3]c*") == r"^A\-r0[0-3]c.*$"
    assert glob_regex("[]x]?") == "^[]x].$"
    assert glob_regex("a[") == r"^a\[$"


def test_old_style_sqlite_file_still_readable_by_sqlite3(tmp_path):
    """The default backend stays a plain SQLite file other tools (sqlite3, DB browsers) open."""
    path = tmp_path / "plain.sqlite"
    open_db(path).close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
        assert TABLES <= {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_sqlite_writer_waits_past_busy_timeout_with_backoff(tmp_path, monkeypatch):
    """A writer that outwaits the driver's busy timeout is retried (bounded backoff), not failed."""
    import threading

    path = tmp_path / "busy.sqlite"
    holder, waiter = open_db(path), open_db(path)
    waiter.execute("PRAGMA busy_timeout=20")  # give up quickly so the retry path runs
    retried = threading.Event()

    def backoff(attempt):
        retried.set()
        return 0.01

    monkeypatch.setattr(db, "_backoff", backoff)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock...

    def release():
        retried.wait(60)  # ...until the waiter has given up once and backed off
        holder.execute("COMMIT")

    t = threading.Thread(target=release)
    t.start()
    with db.transaction(waiter):
        waiter.execute("INSERT INTO samples(name) VALUES ('late')")
    t.join()
    assert retried.is_set() and _count(waiter, "samples") == 1


def test_retrying_reruns_on_serialization_failure_only():
    from sqlalchemy.exc import DBAPIError

    class Serialization(Exception):
        sqlstate = "40001"

    calls = []

    def op():
        calls.append(1)
        if len(calls) < 3:
            raise DBAPIError("COMMIT", (), Serialization("could not serialize access"))
        return "done"

    assert db.retrying(op) == "done" and len(calls) == 3
    with pytest.raises(DBAPIError):
        db.retrying(lambda: (_ for _ in ()).throw(DBAPIError("x", (), ValueError("syntax error"))))
    assert db.is_lock_error(DBAPIError("x", (), sqlite3.OperationalError("database is locked")))
