"""Station profiles (per-user TOML, environment overrides, no credentials) and the run log (-v/-q,
a log file per run, secrets masked)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fabplan.cli import main
from fabplan.errors import UserError
from fabplan.runlog import log_path, redact, run_log
from fabplan.station import config_path, get_station

STATIONS = """\
default = "lab1"
[stations.lab1]
stage = "xps://192.168.0.254:5001?group=XYZ"
laser = "pharos://192.168.0.20:20020"
journal_dir = "~/runs"
logbook = "postgresql://labdb/fablog"
description = "line 1"

[stations.sim]
stage = "sim://xps"
"""


@pytest.fixture
def stations(tmp_path, monkeypatch):
    p = tmp_path / "stations.toml"
    p.write_text(STATIONS)
    monkeypatch.setenv("FABPLAN_CONFIG", str(p))
    for env in ("FABPLAN_STAGE", "FABPLAN_LASER", "FABPLAN_JOURNAL_DIR", "FABPLAN_DB", "FABPLAN_STATION"):
        monkeypatch.delenv(env, raising=False)
    return p


def test_default_location_is_the_platform_config_folder(monkeypatch):
    from platformdirs import user_config_path

    monkeypatch.delenv("FABPLAN_CONFIG", raising=False)
    assert config_path() == user_config_path("fabplan", appauthor=False) / "stations.toml"


def test_station_from_file_and_env_overrides(stations, monkeypatch):
    st = get_station("lab1")
    assert st["stage"] == "xps://192.168.0.254:5001?group=XYZ" and st["journal_dir"] == "~/runs"
    assert st["sources"]["laser"] == "file"
    monkeypatch.setenv("FABPLAN_LASER", "pharos://127.0.0.1:20022")
    monkeypatch.setenv("FABPLAN_STATION", "sim")
    st = get_station()
    assert st["name"] == "sim" and st["laser"] == "pharos://127.0.0.1:20022"
    assert st["sources"]["laser"] == "env FABPLAN_LASER"
    monkeypatch.delenv("FABPLAN_STATION")
    assert get_station()["name"] == "lab1"  # the file's default


@pytest.mark.parametrize("line, words", [
    ('password = "hunter22"', "credentials never"),
    ('stage = "xps://admin:hunter22@192.168.0.254:5001"', "password in its URL"),
    ('logbook = "postgresql://labdb/fab?password=hunter22"', "'password' parameter"),
    ('stgae = "sim://xps"', "unknown key 'stgae'"),
    ("stage = 5", "must be a string"),
])
def test_bad_station_files_are_one_line_errors(tmp_path, monkeypatch, capsys, line, words):
    p = tmp_path / "s.toml"
    p.write_text(f"[stations.x]\n{line}\n")
    monkeypatch.setenv("FABPLAN_CONFIG", str(p))
    with pytest.raises(UserError, match=words):
        get_station("x")
    assert main(["station", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hunter22" not in err


def test_credentials_in_the_environment_are_refused_too(stations, monkeypatch):
    monkeypatch.setenv("FABPLAN_STAGE", "xps://admin:s3cret@10.0.0.1:5001")
    with pytest.raises(UserError, match="FABPLAN_STAGE") as exc:
        get_station("lab1")
    assert "s3cret" not in str(exc.value)


def test_cli_list_show_path(stations, capsys):
    assert main(["station", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["default"] == "lab1" and [s["name"] for s in out["stations"]] == ["lab1", "sim"]
    assert main(["station", "show", "sim"]) == 0
    assert "sim://xps" in capsys.readouterr().out
    assert main(["station", "show", "nope"]) == 2
    assert "no [stations.nope]" in capsys.readouterr().err
    assert main(["station", "path"]) == 0 and capsys.readouterr().out.strip() == str(stations)
    assert main(["station", "path", "--example"]) == 0
    example = capsys.readouterr().out
    stations.write_text(example)
    assert get_station()["name"] == "xps-lab1"  # the template is a valid station file


def test_redact_masks_secrets(monkeypatch):
    monkeypatch.setenv("FABPLAN_XPS_PASSWORD", "Administrator99")
    assert "hunter2" not in redact("login user=admin password=hunter2 ok")
    assert redact("postgresql://fab:hunter2@db/x") == "postgresql://fab:***@db/x"
    assert "Administrator99" not in redact("Login(Administrator, Administrator99)")


def test_run_log_file_next_to_the_journal(tmp_path, monkeypatch):
    monkeypatch.setenv("FABPLAN_XPS_PASSWORD", "Administrator99")
    journal = tmp_path / "run.jsonl"
    with run_log(journal) as path:
        logging.getLogger("fabplan.execute").info("session started")
        logging.getLogger("stage_drivers.xps").debug("-> Login(Administrator,Administrator99)")
        logging.getLogger("fabplan.planning").warning("token=abc123 planned")
    assert path == log_path(journal) == tmp_path / "run.log"
    text = path.read_text()
    assert "session started" in text and "stage_drivers.xps" in text and "fabplan.planning" in text
    assert "Administrator99" not in text and "abc123" not in text
    logging.getLogger("fabplan.execute").info("after the run")
    assert "after the run" not in path.read_text()  # the handler is gone with the run


def test_run_with_a_station_takes_its_devices_and_journal_folder(tmp_path, monkeypatch, capsys):
    """`fabplan run DESIGN --station NAME` against the emulators: the station names their URLs and
    the journal folder; the run's log file lands next to its journal."""
    from sim.lab import start_lab
    from tests.exec_designs import lattice_design

    design = tmp_path / "st.yaml"
    design.write_text(lattice_design("station-test", "S", 2, 4, motion=None))
    runs = tmp_path / "runs"
    with start_lab(tmp_path / "p.csv") as lab:
        cfg = tmp_path / "stations.toml"
        cfg.write_text(f'[stations.emu]\nstage = "{lab.stage_url}"\nlaser = "{lab.laser_url}"\n'
                       f'journal_dir = "{runs}"\n')
        monkeypatch.setenv("FABPLAN_CONFIG", str(cfg))
        for env in ("FABPLAN_STAGE", "FABPLAN_LASER", "FABPLAN_JOURNAL_DIR", "FABPLAN_STATION"):
            monkeypatch.delenv(env, raising=False)
        assert main(["run", str(design), "--station", "emu", "--home", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    journal = runs / next(p.name for p in runs.iterdir() if p.suffix == ".jsonl")
    assert out["journal"] == str(journal) and out["fired_this_session"] == 8
    log = journal.with_suffix(".log").read_text()
    assert "run state idle -> running" in log and "run state running -> done" in log
    assert main(["run", str(design), "--station", "nowhere"]) == 2
    assert "no [stations.nowhere]" in capsys.readouterr().err


def test_verbose_and_quiet(tmp_path, capsys):
    design = str(Path(__file__).resolve().parents[1] / "designs" / "hex_sweep.yaml")
    assert main(["-v", "plan", design, "-o", str(tmp_path / "p1")]) == 0
    assert "INFO fabplan.planning: planned hex-sweep" in capsys.readouterr().err
    assert main(["plan", design, "-o", str(tmp_path / "p2"), "-v"]) == 0  # after the command too
    assert "fabplan.planning" in capsys.readouterr().err
    assert main(["plan", design, "-o", str(tmp_path / "p3")]) == 0
    assert "fabplan.planning" not in capsys.readouterr().err  # warnings only by default
    logging.getLogger("fabplan.execute").warning("a warning")
    assert "a warning" in capsys.readouterr().err
    assert main(["-q", "plan", design, "-o", str(tmp_path / "p4")]) == 0
    logging.getLogger("fabplan.execute").warning("another warning")
    assert "another warning" not in capsys.readouterr().err
    main(["plan", design, "-o", str(tmp_path / "p5")])  # back to the default level for later tests


def test_lab_takes_the_station_logbook_after_db_and_env(tmp_path, monkeypatch, capsys):
    """`fabplan lab ... --station NAME` (or $FABPLAN_STATION) opens the station's logbook; precedence
    --db > $FABPLAN_DB > station > ./fabplan-lab.sqlite."""
    cfg = tmp_path / "stations.toml"
    book = tmp_path / "station-book.sqlite"
    cfg.write_text(f'[stations.lab1]\nstage = "sim://xps"\nlogbook = "sqlite:///{book}"\n[stations.bare]\nstage = "sim://xps"\n')
    monkeypatch.setenv("FABPLAN_CONFIG", str(cfg))
    for env in ("FABPLAN_DB", "FABPLAN_STATION"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.chdir(tmp_path)

    def opens(path, *extra):  # `lab list` creates the logbook it opens: a new file says which one
        assert not path.exists()
        assert main(["lab", "list", "--json", *extra]) == 0, capsys.readouterr().err
        assert path.is_file()
        path.unlink()

    opens(book, "--station", "lab1")
    monkeypatch.setenv("FABPLAN_STATION", "lab1")
    opens(book)
    other = tmp_path / "env.sqlite"
    monkeypatch.setenv("FABPLAN_DB", str(other))  # the environment's logbook beats the station's
    opens(other, "--station", "lab1")
    given = tmp_path / "given.sqlite"
    opens(given, "--station", "lab1", "--db", str(given))  # --db beats everything
    monkeypatch.delenv("FABPLAN_DB")
    monkeypatch.delenv("FABPLAN_STATION")
    opens(tmp_path / "fabplan-lab.sqlite", "--station", "bare")  # a station without a logbook: the default
    assert not book.exists() and not other.exists()
    assert main(["lab", "list", "--station", "nowhere"]) == 2
    assert "no [stations.nowhere]" in capsys.readouterr().err
