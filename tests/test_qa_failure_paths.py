"""QA: failure paths end cleanly (issue 13): a full disk stops the run with the gate closed and a
readable journal; SIGTERM or a double Ctrl+C during pre-flight is exit 3 without a traceback; a fault
while connecting is the same exit code in run and dry-run; a run that left selected shots unfired
never says "completed"."""

from __future__ import annotations

import errno
import json
import os
import signal

import pytest
from exec_designs import lattice_design

from fabplan.cli import main
from fabplan.execute.journal import FIRED, read_journal


@pytest.fixture
def design(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(lattice_design("fp", "P", 2, 3, motion=None))
    return path


@pytest.fixture
def fly_design(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(lattice_design("fpf", "F", 3, 4, mode="fly", motion=None))
    return path


def test_disk_full_mid_run_stops_cleanly_with_a_readable_journal(tmp_path, design, capsys, monkeypatch):
    import fabplan.execute.journal as jmod

    real_write = os.write
    journal = tmp_path / "j.jsonl"
    writes = {"n": 0}

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if target == str(journal):
            writes["n"] += 1
            if writes["n"] == 6:  # a short write tears this record...
                return real_write(fd, data[: len(data) // 2])
            if writes["n"] > 6:  # ...and the disk stays full
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(jmod.os, "write", write)
    rc = main(["dry-run", str(design), "--journal", str(journal), "--json"])
    monkeypatch.undo()
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    res = json.loads(out.out)
    assert rc == 1 and res["status"] == "failed", res
    assert "free space" in res["message"] and str(tmp_path) in res["message"], res["message"]
    st = read_journal(journal)  # the torn last record is tolerated: the journal stays readable
    assert st.bad_lines == 1 and not st.ends
    assert (st.state == FIRED).sum() <= res["pulses_with_light"]  # nothing claimed that did not fire


def _signal_in_preflight(monkeypatch, *signals):
    import fabplan.execute.runner as runner

    real = runner.preflight

    def preflight(*args, **kwargs):
        for sig in signals:
            os.kill(os.getpid(), sig)  # delivered to the handler the session installed (main thread)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "preflight", preflight)


@pytest.mark.parametrize(
    "signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)], ids=["sigterm", "double-ctrl-c"]
)
def test_stop_during_preflight_is_exit_3_without_traceback(tmp_path, design, capsys, monkeypatch, signals):
    _signal_in_preflight(monkeypatch, *signals)
    rc = main(["dry-run", str(design), "--journal", str(tmp_path / "j.jsonl")])
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "Traceback" not in err and "StopNow" not in err and "nothing fired" in err, err


def test_fault_while_connecting_is_the_same_code_in_run_and_dry_run(tmp_path, design, capsys):
    from sim.lab import start_lab

    dry = main(["dry-run", str(design), "--journal", str(tmp_path / "a.jsonl"), "--fault", "xps=drop@1"])
    with start_lab(tmp_path / "p.csv", faults={"xps": "drop@1"}) as lab:
        run = main(
            [
                "run",
                str(design),
                "--stage",
                lab.stage_url,
                "--laser",
                lab.laser_url,
                "--journal",
                str(tmp_path / "b.jsonl"),
            ]
        )
    err = capsys.readouterr().err
    assert dry == run == 2, err
    assert "Traceback" not in err


def test_fly_row_that_saw_no_pulse_is_not_completed(tmp_path, fly_design, capsys, monkeypatch):
    import fabplan.execute.fly as fly

    real = fly.confirm_row

    def confirm_row(ctx, line, seqs, passes):
        if int(line["line"]) == 0:  # the read-back saw no pulse for this row
            for s in seqs.tolist():
                ctx.journal.not_fired(s, "position compare: no pulse recorded at this disc")
            return
        return real(ctx, line, seqs, passes)

    monkeypatch.setattr(fly, "confirm_row", confirm_row)
    journal = tmp_path / "j.jsonl"
    rc = main(["dry-run", str(fly_design), "--journal", str(journal), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc != 0 and res["status"] != "completed" and "not completed" in res["message"], res
    st = read_journal(journal)
    assert st.counts()["pending"] == 4 and st.ends[-1]["status"] == "failed"


def test_percent_attenuator_without_a_laser_is_refused_before_arming(tmp_path, capsys):
    from pathlib import Path

    from sim.lab import start_lab

    hex_sweep = Path(__file__).resolve().parents[1] / "designs" / "hex_sweep.yaml"  # attenuator: percent
    with start_lab(
        tmp_path / "p.csv", homed=True
    ) as lab:  # --stage only: the laser is the XPS gate, no attenuator
        rc = main(["run", str(hex_sweep), "--stage", lab.stage_url, "--journal", str(tmp_path / "j.jsonl")])
    err = capsys.readouterr().err
    assert rc == 2 and "percent attenuator" in err and "--laser" in err and "Traceback" not in err, err
    assert not (tmp_path / "j.jsonl").exists()  # refused in pre-flight: no session, nothing armed


def test_laser_energy_unlike_the_design_calibration_fires_nothing(tmp_path, capsys):
    from pathlib import Path

    from fabplan.execute.pulselog import read_pulse_log
    from sim.lab import start_lab

    hex_sweep = Path(__file__).resolve().parents[1] / "designs" / "hex_sweep.yaml"  # energy_at_100: 4 uJ
    with start_lab(tmp_path / "p.csv", homed=True, max_pulse_energy_uj=10.0) as lab:  # a 10 uJ laser
        rc = main(
            [
                "run",
                str(hex_sweep),
                "--stage",
                lab.stage_url,
                "--laser",
                lab.laser_url,
                "--journal",
                str(tmp_path / "j.jsonl"),
                "--only",
                "H-r00c0*",
            ]
        )
    out = capsys.readouterr()
    # refused in pre-flight with the output closed (tests/test_safety_laser_energy.py: nothing armed or moved)
    assert rc == 2 and "energy_at_100 4 uJ" in out.err and "Traceback" not in out.err, out
    assert len(read_pulse_log(tmp_path / "p.csv")) == 0  # not one pulse at 2.5x the planned energy
    assert not (tmp_path / "j.jsonl").exists()


def test_ctrl_c_while_connecting_is_exit_3_like_a_stop(tmp_path, design, capsys, monkeypatch):
    from fabplan.execute.session import RunSession

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(RunSession, "dry_run", classmethod(lambda cls, config: interrupted()))
    assert main(["dry-run", str(design), "--journal", str(tmp_path / "j.jsonl")]) == 3
    assert "Traceback" not in capsys.readouterr().err
