"""Series carry their pump-fluence definition (issue 18, "Fluence definitions"): logbook schema v7 adds a
nullable series.fluence_definition ('peak' of the Gaussian spot or 'average'); `lab add/import
--fluence-definition` or a manifest column sets it; `lab show` and the exports carry it."""

import json
import shutil
from pathlib import Path

import pytest

from fabplan.cli import main
from fabplan.errors import ProblemsError
from fabplan.lab import db, import_manifest, open_db
from fabplan.lab.queries import measurement_rows
from tests import lab_pg

pg_url = lab_pg.pg_url  # fixture: a fresh PostgreSQL database (skips without FABPLAN_TEST_PG_URL)

V3 = Path(__file__).parent / "data" / "lab" / "logbook_v3.sqlite"


def _spectrum(tmp_path) -> Path:
    p = tmp_path / "s.csv"
    p.write_text("".join(f"{530 + 0.1 * i:.1f},{100 + (i == 50) * 900}\n" for i in range(100)))
    return p


def test_v6_logbook_migrates_to_v7_with_the_definition_unstated(tmp_path, monkeypatch):
    path = tmp_path / "lab.sqlite"
    shutil.copy(V3, path)
    with monkeypatch.context() as m:  # a logbook as schema v6 left it
        m.setattr(db, "MIGRATIONS", db.MIGRATIONS[:6])
        m.setattr(db, "SCHEMA_VERSION", 6)
        open_db(path).close()
    con = open_db(path)
    assert db.schema_version(con) == db.SCHEMA_VERSION == 7
    rows = con.execute("SELECT fluence_definition FROM series").fetchall()
    assert rows and all(r[0] is None for r in rows)
    con.close()


def _add_and_show(address, tmp_path, capsys):
    spec = str(_spectrum(tmp_path))
    base = ["lab", "add", "--db", address, "--disc", "A-r00c00", "--allow-unknown", "--spectrum", spec]
    assert main([*base, "--fluence", "5", "--fluence-definition", "peak"]) == 0
    assert main([*base, "--fluence", "7"]) == 0  # same series: keeps its definition
    assert main(["lab", "add", "--db", address, "--disc", "A-r00c01", "--allow-unknown", "--spectrum", spec,
                 "--fluence", "5"]) == 0  # not stated
    capsys.readouterr()
    assert main(["lab", "show", "--db", address, "A-r00c00"]) == 0
    assert "pump fluence peak" in capsys.readouterr().out
    assert main(["lab", "show", "--db", address, "A-r00c00", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [s["fluence_definition"] for s in shown["series"]] == ["peak"]
    assert main(["lab", "show", "--db", address, "A-r00c01"]) == 0
    assert "pump fluence definition not stated" in capsys.readouterr().out
    con = open_db(address)
    got = {(r["disc_id"], r["fluence_uj_cm2"]): r["fluence_definition"] for r in measurement_rows(con)}
    con.close()
    assert got == {("A-r00c00", 5.0): "peak", ("A-r00c00", 7.0): "peak", ("A-r00c01", 5.0): None}


def test_lab_add_and_show_sqlite(tmp_path, capsys):
    _add_and_show(str(tmp_path / "lab.sqlite"), tmp_path, capsys)


def test_lab_add_and_show_postgresql(pg_url, tmp_path, capsys):
    _add_and_show(pg_url, tmp_path, capsys)


def test_manifest_column_sets_it_and_a_bad_value_names_the_line(tmp_path):
    spec = _spectrum(tmp_path)
    man = tmp_path / "m.csv"
    man.write_text(f"disc_id,fluence,spectrum,fluence_definition\nA-r00c00,5,{spec},Average\n"
                   f"A-r00c01,5,{spec},\n")
    con = open_db(tmp_path / "lab.sqlite")
    import_manifest(con, man, allow_unknown=True)
    got = {r["disc_id"]: r["fluence_definition"] for r in measurement_rows(con)}
    assert got == {"A-r00c00": "average", "A-r00c01": None}
    bad = tmp_path / "bad.csv"
    bad.write_text(f"disc_id,fluence,spectrum,fluence_definition\nA-r00c02,5,{spec},top-hat\n")
    with pytest.raises(ProblemsError, match="pump fluence definition must be one of peak, average"):
        import_manifest(con, bad, allow_unknown=True)
    con.close()
