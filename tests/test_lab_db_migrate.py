"""An existing logbook made by the released SQLite-only code (schema v3, tests/data/lab/logbook_v3.sqlite,
see the README there) migrates forward in place: nothing lost, same schema as a new logbook."""

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from fabplan.errors import UserError
from fabplan.lab import db, fit_all, open_db
from fabplan.lab.queries import disc_rows, series_spectra
from tests import lab_pg

pg_url = lab_pg.pg_url  # fixture: a fresh PostgreSQL database

V3 = Path(__file__).parent / "data" / "lab" / "logbook_v3.sqlite"


def _raw(path):
    with sqlite3.connect(path) as c:
        return {
            "version": c.execute("PRAGMA user_version").fetchone()[0],
            "discs": c.execute("SELECT disc_id, status, status_manual FROM discs ORDER BY disc_id").fetchall(),
            "fits": c.execute(
                "SELECT series_id, method, threshold_uj_cm2, created FROM fits ORDER BY series_id, method"
            ).fetchall(),
            "spectra": c.execute("SELECT id, series_id, fluence_uj_cm2, counts FROM spectra ORDER BY id").fetchall(),
            "series": c.execute("SELECT id, operator, created FROM series ORDER BY id").fetchall(),
        }


def _columns(path):
    with sqlite3.connect(path) as c:
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in c.execute(f"PRAGMA table_info({t})")] for t in tables}


def test_v3_logbook_migrates_in_place(tmp_path):
    path = tmp_path / "lab.sqlite"
    shutil.copy(V3, path)
    before = _raw(path)
    assert before["version"] == 3 and len(before["spectra"]) == 16
    con = open_db(path)
    assert db.schema_version(con) == db.SCHEMA_VERSION
    con.close()
    after = _raw(path)
    assert after["version"] == db.SCHEMA_VERSION  # an older fabplan now refuses the file ("newer")
    for key in ("discs", "fits", "spectra", "series"):
        assert after[key] == before[key], key
    # The same columns, in the same order, as a logbook created new by this code.
    open_db(tmp_path / "new.sqlite").close()
    assert _columns(path) == _columns(tmp_path / "new.sqlite")


def test_migrated_logbook_works(tmp_path, monkeypatch):
    path = tmp_path / "lab.sqlite"
    shutil.copy(V3, path)
    monkeypatch.setenv("FABPLAN_OPERATOR", "E16-test")
    con = open_db(path)
    rows = {r["disc_id"]: r for r in disc_rows(con)}
    assert rows["A-r00c01"]["status"] == "damaged" and rows["A-r00c01"]["status_manual"] == 1  # set by hand
    assert rows["A-r00c00"]["status"] == "lasing"
    wl, y, f = series_spectra(con, rows["A-r00c00"]["series_id"])
    assert len(wl) == 8 and np.all(np.diff(f) > 0) and wl[0].size == 1024
    res = {r.disc_id: r for r in fit_all(con)}  # refit: rows replaced in place, hand status kept
    # Same spectra, so a threshold again, near the one the v3 code stored (the analysis itself has
    # changed since: the mode-resolved fit of issue 18 moves it by a few per cent).
    assert res["A-r00c00"].has_threshold
    assert res["A-r00c00"].threshold_uj_cm2 == pytest.approx(rows["A-r00c00"]["threshold_uj_cm2"], rel=0.15)
    assert con.execute("SELECT count(*) FROM fits").fetchone()[0] == 4
    assert {r["disc_id"]: r["status"] for r in disc_rows(con)}["A-r00c01"] == "damaged"
    (who,) = [dict(r) for r in con.execute("SELECT operator, action FROM audit")]
    assert who == {"operator": "E16-test", "action": "fit"}


def _dump(con):
    out = {}
    for t in db.COPY_ORDER:
        rows = [tuple(r) for r in con.execute(f"SELECT * FROM {t} ORDER BY 1")]
        out[t] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]
    return out


def test_copy_sqlite_logbook_to_postgresql_and_back(tmp_path, pg_url, capsys, monkeypatch):
    """A lab outgrowing one PC: its (old, migrated) SQLite logbook goes whole into the server with
    `lab copy`; the server's logbook then takes new writes; a copy back to a file matches row for row."""
    from fabplan.cli import main

    path = tmp_path / "lab.sqlite"
    shutil.copy(V3, path)
    monkeypatch.setenv("FABPLAN_OPERATOR", "mover")
    assert main(["lab", "copy", pg_url, "--db", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows["spectra"] == 16 and rows["fits"] == 4 and rows["discs"] == 2
    src, pg = open_db(path), open_db(pg_url)
    assert {k: v for k, v in _dump(pg).items() if k != "audit"} == {k: v for k, v in _dump(src).items() if k != "audit"}
    (audit,) = [dict(r) for r in pg.execute("SELECT operator, action FROM audit")]
    assert audit == {"operator": "mover", "action": "copy"}
    # The server carries on: new ids follow the copied ones (its sequences were moved past them).
    res = {r.disc_id: r for r in fit_all(pg)}
    assert set(res) == {"A-r00c00", "A-r00c01"}
    with pytest.raises(UserError, match="not empty"):
        db.copy_logbook(src, pg)
    back = open_db(tmp_path / "back.sqlite")
    db.copy_logbook(pg, back)
    b, p = _dump(back), _dump(pg)
    assert b["audit"][:-1] == p["audit"] and b["audit"][-1][5] == "copy"  # plus the copy's own row
    assert {k: v for k, v in b.items() if k != "audit"} == {k: v for k, v in p.items() if k != "audit"}


V5_STATUSES = ("untested", "lasing", "ASE-only", "dead", "damaged")


def _make_v5(monkeypatch, address):
    """A logbook as fabplan's schema v5 made it: the migrations/schema of v5 (status list without
    'undetermined'), then the patches undone so the next open migrates it."""
    with monkeypatch.context() as m:
        m.setattr(db, "MIGRATIONS", db.MIGRATIONS[:5])
        m.setattr(db, "SCHEMA_VERSION", 5)
        m.setattr(db, "STATUSES", V5_STATUSES)
        con = open_db(address)
        assert db.schema_version(con) == 5
        con.close()


def _undetermined_accepted(con):
    """v6: the status CHECK takes 'undetermined' and still refuses junk; FKs to discs still hold."""
    import sqlalchemy as sa

    from fabplan.lab.db import transaction

    with transaction(con, "test"):
        con.execute("UPDATE discs SET status='undetermined' WHERE disc_id='A-r00c00'")
    assert {r["disc_id"]: r["status"] for r in disc_rows(con)}["A-r00c00"] == "undetermined"
    for bad in ("UPDATE discs SET status='maybe' WHERE disc_id='A-r00c00'",
                "INSERT INTO series(disc_pk) VALUES (987654)"):
        with pytest.raises(sa.exc.IntegrityError), transaction(con, "test"):
            con.execute(bad)


def test_v5_sqlite_logbook_migrates_to_v6_rebuilding_discs(tmp_path, monkeypatch):
    path = tmp_path / "lab.sqlite"
    shutil.copy(V3, path)
    _make_v5(monkeypatch, path)
    before = _raw(path)

    def schema(p):
        with sqlite3.connect(p) as c:
            return sorted(c.execute("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))

    schema_v5 = schema(path)
    with sqlite3.connect(path) as c:
        full_before = c.execute("SELECT * FROM discs ORDER BY id").fetchall()
    con = open_db(path)
    assert db.schema_version(con) == db.SCHEMA_VERSION  # v6, then v7 (a column on series)
    con.close()
    after = _raw(path)
    assert after["version"] == db.SCHEMA_VERSION
    for key in ("discs", "fits", "spectra", "series"):
        assert after[key] == before[key], key
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT * FROM discs ORDER BY id").fetchall() == full_before  # ids, every column
        sql = c.execute("SELECT sql FROM sqlite_master WHERE name='discs'").fetchone()[0]
        assert "'damaged','undetermined'" in sql and "UNIQUE (sample_id, disc_id)" in sql
        assert c.execute("PRAGMA foreign_key_check").fetchall() == []
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert schema(path) == schema_v5  # same tables and indexes (discs_disc_id rebuilt), no leftovers
    open_db(tmp_path / "new.sqlite").close()
    assert _columns(path) == _columns(tmp_path / "new.sqlite")
    con = open_db(path)
    _undetermined_accepted(con)
    con.close()


def test_v3_logbook_through_every_version_allows_undetermined(tmp_path):
    path = tmp_path / "lab.sqlite"
    shutil.copy(V3, path)
    con = open_db(path)
    _undetermined_accepted(con)
    con.close()


def test_v5_postgresql_logbook_migrates_to_v6(pg_url, monkeypatch):
    _make_v5(monkeypatch, pg_url)
    con = open_db(pg_url)
    assert db.schema_version(con) == db.SCHEMA_VERSION
    (check,) = [r[0] for r in con.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'discs'::regclass AND contype = 'c'")]
    assert "undetermined" in check and "damaged" in check
    from fabplan.lab.db import transaction

    with transaction(con, "test"):
        sid = con.insert_id("INSERT INTO samples(name) VALUES ('S')")
        con.execute("INSERT INTO discs(sample_id, disc_id) VALUES (?, 'A-r00c00')", (sid,))
    _undetermined_accepted(con)
    con.close()
