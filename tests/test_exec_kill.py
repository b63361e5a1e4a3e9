"""SIGKILL the executor (a `fabplan run` subprocess) at random points while the emulated lab runs in
its own process; resume each time. The pulse log must show every disc lit exactly once, except
discs the journal lists as uncertain (lit once or never), and none twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fabplan.execute.journal import FIRED, PENDING, UNCERTAIN, read_journal
from sim.lab import start_lab
from tests.exec_designs import lattice_design


def kill_design(mode: str) -> str:
    return lattice_design("kill-test", "K", 10, 20, mode=mode)


def _intents(path) -> int:
    try:
        with open(path, "rb") as fh:
            return fh.read().count(b'"k":"intent"')
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("mode", ["step", "fly"])
def test_sigkill_at_random_points_then_resume(tmp_path, mode):
    from fabplan.design import loads_design
    from fabplan.planning import build_plan

    rng = random.Random(20261124)
    plan = build_plan(loads_design(kill_design(mode)))
    plan_dir = plan.save(tmp_path / "plan")  # a plan directory: the subprocess needs no design parsing
    journal = tmp_path / "run.jsonl"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    # fly rows are fast at instant speed: slow the emulated clock so kills land inside passes
    lab = start_lab(tmp_path / "pulses.csv", process=True, max_pulse_energy_uj=5.0,
                    speedup="inf" if mode == "step" else 1.0)
    kills = 0
    try:
        for cycle in range(5):
            durability = ("fsync", "batch", "async")[cycle % 3]
            if cycle == 0:
                cmd = ["run", str(plan_dir), "--stage", lab.stage_url, "--laser", lab.laser_url, "--journal",
                       str(journal), "--home"]
            else:
                cmd = ["run", "--resume", str(journal)]
            cmd += ["--durability", durability, "--batch", "16", "--json"]
            if mode == "fly":
                cmd += ["--fly-lead-us", "2.55"]  # the emulated trigger delay (50 ns + half a 200 kHz period)
            before = _intents(journal)
            proc = subprocess.Popen([sys.executable, "-m", "fabplan.cli.cmd_run", *cmd], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            if cycle < 4:
                target = before + rng.randint(1, 30 if mode == "step" else 25)
                deadline = time.monotonic() + 30
                while _intents(journal) < target and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.0005)
                time.sleep(rng.uniform(0, 0.003 if mode == "step" else 0.05))
                proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=60)
            if proc.returncode == -signal.SIGKILL:
                kills += 1
            else:
                assert proc.returncode == 0, err.decode()[-2000:]
                break
    finally:
        lab.close()  # SIGTERM: the lab flushes its pulse log
    assert kills >= 3
    st = read_journal(journal)
    pulses = [ln.split(",") for ln in (tmp_path / "pulses.csv").read_text().splitlines()[1:] if ln]
    p = np.array([r[:6] for r in pulses], float)
    p = p[p[:, 5] == 1]
    s = plan.shots
    d, idx = cKDTree(np.column_stack([s.x_um, s.y_um])).query(p[:, 1:3])
    assert d.max() <= 0.1
    count = np.bincount(idx, minlength=len(s))
    assert count.max() == 1, "a disc was lit twice"
    assert np.all(count[st.state == FIRED] == 1)
    assert np.all(count[st.state == PENDING] == 0) and not (st.state == PENDING).any()
    per_kill = 1 if mode == "step" else 20  # the shot in flight, or the row in flight
    assert (st.state == UNCERTAIN).sum() <= kills * per_kill
