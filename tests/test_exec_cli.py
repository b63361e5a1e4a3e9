"""`fabplan run` / `fabplan dry-run` end to end: JSON summary, selection, resume by journal,
report figure, refusal of another plan, Ctrl+C once (pause) and twice (stop) in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fabplan.cli import main
from fabplan.execute.journal import read_journal
from sim.lab import start_lab
from tests.exec_designs import lattice_design


def cli_design(rows: int, mode: str) -> str:
    return lattice_design("cli-test", "C", rows, 8, mode=mode, motion=None)


@pytest.fixture
def design(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text(cli_design(3, "step"))
    return p


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_dry_run_json_and_report(tmp_path, design, capsys):
    rc = main(["dry-run", str(design), "--journal", str(tmp_path / "j.jsonl"), "--report", str(tmp_path / "r.png"),
               "--json", "--lab-process", "no"])
    out = _json(capsys)
    assert rc == 0 and out["status"] == "completed" and out["journal_counts"]["fired"] == 24
    assert out["pulses_with_light"] == 24 and out["estimated_real_duration_s"] > 0
    assert (tmp_path / "r.png").stat().st_size > 10_000


def test_dry_run_fly_mode_override(tmp_path, design, capsys):
    rc = main(["dry-run", str(design), "--mode", "fly", "--journal", str(tmp_path / "j.jsonl"), "--json"])
    out = _json(capsys)
    # this design flies at the default 100 mm/s: the emulated laser's 0-5 us wait for its next amplified
    # pulse (v * 5 us = 500 nm) puts shots beyond the 100 nm tolerance, so the run completes with exit 4
    assert rc == 4 and out["mode"] == "fly" and out["pulses_with_light"] == 24
    assert out["status"] == "completed" and out["out_of_tolerance"]["shots"] > 0


def test_fly_dry_run_with_shots_out_of_tolerance_exits_4(tmp_path, design, capsys):
    """A 10 nm tolerance: the emulated laser's 0-5 us wait for its next amplified pulse puts many fly
    pulses further off than that (v * 5 us; sim/README), so the run completes but must not exit 0."""
    rc = main(["dry-run", str(design), "--mode", "fly", "--journal", str(tmp_path / "j.jsonl"), "--json",
               "--tolerance-um", "0.01"])
    out = _json(capsys)
    assert rc == 4 and out["status"] == "completed"
    oot = out["out_of_tolerance"]
    assert oot["shots"] > 0 and oot["rows"] >= 1 and oot["tolerance_nm"] == 10 and oot["ids"][0].startswith("C-r")
    assert "OUT OF the 10 nm position tolerance" in out["message"]
    rc = main(["dry-run", str(design), "--mode", "fly", "--journal", str(tmp_path / "k.jsonl"), "--tolerance-um", "0.01"])
    text = capsys.readouterr().out
    assert rc == 4 and "OUT OF TOLERANCE:" in text and "completed: 24 shot(s) fired; " in text


def test_run_only_skip_then_resume_all(tmp_path, design, capsys):
    skip = tmp_path / "skip.txt"
    skip.write_text("C-r00c01\n")
    j = tmp_path / "j.jsonl"
    with start_lab(tmp_path / "p.csv") as lab:
        rc = main(["run", str(design), "--stage", lab.stage_url, "--laser", lab.laser_url, "--journal", str(j),
                   "--home", "--only", "C-r00*", "--skip", str(skip), "--json"])
        out = _json(capsys)
        assert rc == 0 and out["fired_this_session"] == 7 and out["not_selected"] == 17
        # resume keeps the recorded selection: nothing more to fire
        rc = main(["run", "--resume", str(j), "--json"])
        assert rc == 0 and _json(capsys)["fired_this_session"] == 0
        # an explicit --only widens it; the recorded skip list still holds (a cracked disc stays skipped)
        rc = main(["run", "--resume", str(j), "--only", "*", "--json"])
        out = _json(capsys)
        assert rc == 0 and out["fired_this_session"] == 16 and out["journal_counts"]["fired"] == 23
    st = read_journal(j)
    assert len(st.sessions) == 3 and st.counts()["double_fired"] == 0 and st.counts()["pending"] == 1


def test_resume_uses_the_saved_plan_and_refuses_a_changed_design(tmp_path, design, capsys):
    j = tmp_path / "j.jsonl"
    with start_lab(tmp_path / "p.csv") as lab:
        assert main(["run", str(design), "--stage", lab.stage_url, "--journal", str(j), "--home",
                     "--laser", lab.laser_url, "--json"]) == 0
        design.write_text(cli_design(4, "step"))
        capsys.readouterr()
        assert main(["run", "--resume", str(j), "--json"]) == 0  # the plan saved with the journal is resumed
        assert "changed since this run started" in capsys.readouterr().err
        assert main(["run", str(design), "--resume", str(j)]) == 2  # the changed design is another plan
    assert "refusing to resume on a different plan" in capsys.readouterr().err


def test_resume_of_a_finished_dry_run_without_devices_fails_cleanly(tmp_path, design, capsys):
    j = tmp_path / "j.jsonl"
    assert main(["dry-run", str(design), "--journal", str(j), "--json", "--lab-process", "no"]) == 0
    capsys.readouterr()
    # the journal's emulator URLs refuse the connection: a configuration error before anything moved
    assert main(["run", "--resume", str(j)]) == 2
    err = capsys.readouterr().err
    assert "emulators are gone" in err and "cannot connect" in err and err.count("\n") == 1


def test_unreachable_device_is_exit_2_naming_it_and_leaves_no_plan_folder(tmp_path, design, capsys):
    """QA standard: user errors exit 2, device errors name the device; a URL that refuses the
    connection (port 1 on loopback) before anything moved is a configuration error."""
    dead_stage = "xps://127.0.0.1:1?group=XYZ"
    j = tmp_path / "j.jsonl"
    assert main(["run", str(design), "--stage", dead_stage, "--journal", str(j)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {dead_stage}: cannot connect") and err.count("\n") == 1 and "--stage" in err
    with start_lab(tmp_path / "p.csv") as lab:  # a live stage, a dead laser
        assert main(["run", str(design), "--stage", lab.stage_url, "--laser", "pharos://127.0.0.1:1",
                     "--journal", str(j), "--home"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: pharos://127.0.0.1:1") and err.count("\n") == 1 and "--laser" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.yaml", "p.csv"]  # no journal, no j.jsonl.plan/


def test_dry_run_with_a_fault_fails_safely(tmp_path, design, capsys):
    rc = main(["dry-run", str(design), "--journal", str(tmp_path / "j.jsonl"), "--fault", "xps=following@40", "--json"])
    out = _json(capsys)
    assert rc == 1 and out["status"] == "failed" and "Following" in out["message"]
    assert out["pulses_with_light"] == out["journal_counts"]["fired"] > 0
    # a fault while connecting is exit 2 in dry-run as in run (one code for one cause, issue 13)
    assert main(["dry-run", str(design), "--journal", str(tmp_path / "k.jsonl"), "--fault", "drop@2"]) == 2
    assert not (tmp_path / "k.jsonl.plan").exists()  # refused at connect: no plan folder left behind


def test_user_errors_exit_2(tmp_path, design, capsys):
    assert main(["run", str(design)]) == 2
    assert main(["run", str(tmp_path / "missing.yaml"), "--stage", "xps://127.0.0.1:1"]) == 2
    assert main(["dry-run", str(design), "--fault", "bogus=drop"]) == 2


def _intents(path) -> int:
    try:
        return path.read_bytes().count(b'"k":"intent"')
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("sig,presses,status,code", [(signal.SIGINT, 1, "paused", 3), (signal.SIGINT, 2, "stopped", 3),
                                                    (signal.SIGTERM, 1, "stopped", 3)])
def test_ctrl_c_pauses_then_stops(tmp_path, sig, presses, status, code):
    from fabplan.design import loads_design
    from fabplan.planning import build_plan

    plan_dir = build_plan(loads_design(cli_design(6, "step"))).save(tmp_path / "plan")
    j = tmp_path / "j.jsonl"
    lab = start_lab(tmp_path / "p.csv", process=True, speedup=0.05, homed=True)  # a 20 um move now takes ~0.4 s
    try:
        proc = subprocess.Popen([sys.executable, "-m", "fabplan.cli.cmd_run", "run", str(plan_dir), "--stage",
                                 lab.stage_url, "--laser", lab.laser_url, "--journal", str(j), "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        deadline = time.monotonic() + 30
        while _intents(j) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.1)  # the 2nd intent precedes its fire by ~1 ms: we are now inside the next move
        for _ in range(presses):  # both presses land inside that move
            proc.send_signal(sig)
            time.sleep(0.03)
        out, err = proc.communicate(timeout=30)
        from stage_drivers import open_stage

        with open_stage(lab.stage_url) as stage:  # the gate line (GPIO3.DO bit 0) was left low
            gpio = int(stage.call("GPIODigitalGet(GPIO3.DO,unsigned short *)", 1)[0])
        assert gpio & 1 == 0
    finally:
        lab.close()
    assert proc.returncode == code, err.decode()[-2000:]
    summary = json.loads(out)
    assert summary["status"] == status
    st = read_journal(j)
    assert st.last_status == status and 0 < st.counts()["fired"] < 48
    if status == "paused":
        assert st.counts()["uncertain"] == 0  # the shot in progress was finished and confirmed
    lit = sum(1 for ln in (tmp_path / "p.csv").read_text().splitlines()[1:] if ln.split(",")[5] == "1")
    c = st.counts()
    assert c["fired"] <= lit <= c["fired"] + c["uncertain"]  # every fired disc lit; only uncertain ones in doubt


def test_dry_run_of_a_saved_plan_uses_its_attenuator_calibration(tmp_path, capsys):
    """hex_sweep has a Pharos attenuator with 4 uJ at 100 %: a dry run of the saved plan directory
    (no design at hand) must emulate that calibration, or every energy check fails."""
    from pathlib import Path

    design = Path(__file__).resolve().parents[1] / "designs" / "hex_sweep.yaml"
    plan_dir = tmp_path / "plan"
    assert main(["plan", str(design), "-o", str(plan_dir)]) == 0
    capsys.readouterr()
    rc = main(["dry-run", str(plan_dir), "--journal", str(tmp_path / "j.jsonl"), "--json"])
    out = _json(capsys)
    assert rc == 0 and out["journal_counts"]["fired"] == 63
