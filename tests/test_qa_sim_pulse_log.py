"""QA (issue 13 leftovers): the emulators' pulse log holds every pulse fired.

- `fabplan run --stage 'sim://...&pulse_log=F'` starts an in-process emulated lab; the run closes it
  on every exit path, so the log is complete when the command returns (it stayed empty before: the
  lab was never closed and its buffered lines died with the interpreter).
- A `fabplan sim lab` emulator killed with SIGKILL mid-run keeps every pulse it fired: each trigger
  is one os.write on an O_APPEND descriptor (a 0.2 s flush buffer lost the last pulses before).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from exec_designs import lattice_design
from waiting import wait_for

from fabplan.cli import main
from fabplan.execute.journal import FIRED, read_journal
from fabplan.execute.pulselog import read_pulse_log

ROOT = Path(__file__).resolve().parent.parent
LATTICE = np.array([(10.0 + 20 * c, 10.0 + 20 * r) for r in range(2) for c in range(3)])  # 2 x 3, 20 um pitch


@pytest.fixture
def design(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(lattice_design("plog", "P", 2, 3, motion=None))
    return path


def _assert_log_holds_the_fired_shots(log: Path, journal: Path) -> None:
    pulses = read_pulse_log(log)  # pulses with light only
    fired = int((read_journal(journal).state == FIRED).sum())
    assert fired == len(LATTICE)
    assert len(pulses) == fired, (len(pulses), fired)
    # each lattice site was hit exactly once (the log is the ground truth of where light went)
    d = np.linalg.norm(pulses[:, None, 1:3] - LATTICE[None, :, :], axis=2)
    assert (d.min(axis=0) < 0.1).all() and sorted(d.argmin(axis=1)) == list(range(len(LATTICE)))


def test_run_with_sim_url_writes_the_whole_pulse_log(tmp_path, design):
    """A real `fabplan run` process: the log holds exactly the fired shots once the command returns."""
    log, journal = tmp_path / "pulses.csv", tmp_path / "j.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "fabplan", "run", str(design), "--stage", f"sim://plog?homed=0&pulse_log={log}",
         "--home", "--journal", str(journal), "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "completed"
    _assert_log_holds_the_fired_shots(log, journal)


def test_in_process_run_closes_its_sim_lab(tmp_path, design, capsys):
    """Called through the API/CLI entry in this process, the run itself closes its lab (not only
    interpreter exit): the log is complete on return and the lab is no longer registered."""
    import sim.lab

    log, journal = tmp_path / "pulses.csv", tmp_path / "j.jsonl"
    url = f"sim://plog2?pulse_log={log}"
    assert main(["run", str(design), "--stage", url, "--home", "--journal", str(journal), "--json"]) == 0
    capsys.readouterr()
    _assert_log_holds_the_fired_shots(log, journal)
    assert not any(k.startswith("plog2?") for k in sim.lab._LABS)


def test_sim_lab_closed_when_the_run_is_refused(tmp_path, design, capsys):
    """An exit through an error after the lab started (here: an unreachable laser) closes it too."""
    import sim.lab

    log, journal = tmp_path / "pulses.csv", tmp_path / "j.jsonl"
    url = f"sim://plog3?pulse_log={log}"
    rc = main(["run", str(design), "--stage", url, "--laser", "pharos://127.0.0.1:1", "--home",
               "--journal", str(journal)])
    capsys.readouterr()
    assert rc == 2
    assert not any(k.startswith("plog3?") for k in sim.lab._LABS)
    assert log.read_text().startswith("t_s,")  # closed: the header reached the disk


def _read_json_block(stream) -> dict:
    text = ""
    for line in stream:
        text += line
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            continue
    raise AssertionError(f"no JSON from the emulator: {text!r}")


def test_sigkilled_emulator_keeps_every_confirmed_pulse(tmp_path):
    """kill -9 the emulator while a real run fires: every shot the journal holds as fired is in the log."""
    design = tmp_path / "big.yaml"
    design.write_text(lattice_design("plogk", "K", 20, 20, motion=None))  # 400 shots at real-time speed
    log, journal = tmp_path / "pulses.csv", tmp_path / "j.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    emu = subprocess.Popen([sys.executable, "-m", "fabplan", "sim", "lab", "--pulse-log", str(log), "--speedup", "1",
                            "--json"], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    run = None
    try:
        info = _read_json_block(emu.stdout)
        run = subprocess.Popen([sys.executable, "-m", "fabplan", "run", str(design), "--stage", info["stage_url"],
                                "--laser", info["laser_url"], "--home", "--journal", str(journal), "--json"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)

        def fired_enough():
            if not journal.exists():
                return False
            return (read_journal(journal).state == FIRED).sum() >= 20

        wait_for(fired_enough, 120, "20 fired shots in the journal")
        os.kill(emu.pid, signal.SIGKILL)
        emu.wait(timeout=10)
        run.wait(timeout=120)  # the run loses its devices and stops
    finally:
        for p in (emu, run):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        emu.stdout.close()
    st = read_journal(journal)
    fired = int((st.state == FIRED).sum())
    assert 20 <= fired < 400  # killed mid-run
    pulses = read_pulse_log(log)
    # every confirmed shot is on disk; at most the one shot in flight is there unconfirmed
    assert fired <= len(pulses) <= fired + 1, (fired, len(pulses))
