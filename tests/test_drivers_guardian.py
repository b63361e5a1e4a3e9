"""The guardian: SIGKILL (or a freeze) of the run process leaves the emulated gate low, position
compare disarmed and the laser output closed within 1 s; a dead guardian stops the run.

The emulated lab lives in this (pytest) process so it outlives the killed run process; the run
process is a real child that connects, arms the laser, opens the gate and arms compare."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from sim.lab import start_lab
from stage_drivers.guardian import Guardian, guardable, guardian_for

RUN = textwrap.dedent("""
    import sys, time
    from stage_drivers import open_laser, open_stage
    from stage_drivers.guardian import Guardian
    stage_url, laser_url = sys.argv[1], sys.argv[2]
    st = open_stage(stage_url)
    laser = open_laser(laser_url, stage=st)
    with Guardian(stage_url, laser_url):
        st.move_to(0.0, 0.0, 0.0)
        laser.arm()
        st.arm_compare("X", [100.0, 200.0, 300.0])
        print("armed", flush=True)
        time.sleep(600)
""")


def wait_for(cond, deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


@pytest.fixture
def lab(tmp_path):
    with start_lab(tmp_path / "p.csv", homed=True) as lab:
        yield lab


def armed(lab) -> dict:
    return {"gate": bool(lab.xps.gpio_do & 1), "compare": any(p.pco_enabled for p in lab.xps.group.positioners),
            "output": lab.laser.output_enabled}


def start_run(lab):
    proc = subprocess.Popen([sys.executable, "-c", RUN, lab.stage_url, lab.laser_url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line == "armed", proc.stderr.read()
    assert armed(lab) == {"gate": True, "compare": True, "output": True}
    return proc


def test_sigkill_of_the_run_process_makes_every_output_safe_within_1s(lab):
    proc = start_run(lab)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ok = wait_for(lambda: armed(lab) == {"gate": False, "compare": False, "output": False}, 1.0)
    assert ok, armed(lab)
    assert "the run process died: outputs made safe" in proc.stderr.read()


def test_a_frozen_run_process_is_noticed_by_its_missing_heartbeat(lab):
    proc = start_run(lab)
    os.kill(proc.pid, signal.SIGSTOP)  # alive, but neither executing nor beating
    try:
        ok = wait_for(lambda: armed(lab) == {"gate": False, "compare": False, "output": False}, 2.0 + 1.0)
        assert ok, armed(lab)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        os.kill(proc.pid, signal.SIGCONT)
        proc.wait()


def test_a_dead_guardian_stops_the_run_and_a_clean_end_touches_nothing(lab):
    lost = threading.Event()
    g = Guardian(lab.stage_url, lab.laser_url, on_lost=lambda reason: lost.set()).start()
    g.proc.kill()
    assert lost.wait(5.0) and "guardian process exited" in g.lost
    g.stop()
    lab.laser.output_enabled = True
    with Guardian(lab.stage_url, lab.laser_url) as g2:
        pass
    assert g2.proc.returncode == 0 and lab.laser.output_enabled  # "q": nothing touched


def test_only_reachable_devices_get_a_guardian():
    assert guardable("xps://10.0.0.2:5001") and guardable("pharos://h:20022/v0")
    assert not guardable("sim://lab") and not guardable("esp301:///dev/ttyUSB0") and not guardable(None)
    with guardian_for("sim://x", None) as g:
        assert g is None
    with pytest.raises(RuntimeError, match="cannot connect"):
        Guardian("xps://127.0.0.1:9", None, start_timeout_s=10.0).start()


def test_sigkill_of_fabplan_run_mid_row_leaves_the_lab_safe(tmp_path):
    """End to end: `fabplan run` (RunSession starts the guardian) killed while a fly row is armed."""
    from fabplan.design import loads_design
    from fabplan.planning import build_plan
    from tests.exec_designs import lattice_design

    plan_dir = build_plan(loads_design(lattice_design("guard", "G", 4, 12, mode="fly"))).save(tmp_path / "plan")
    with start_lab(tmp_path / "p.csv", speedup=1.0, max_pulse_energy_uj=5.0) as lab:
        proc = subprocess.Popen([sys.executable, "-m", "fabplan", "run", str(plan_dir), "--stage", lab.stage_url,
                                 "--laser", lab.laser_url, "--journal", str(tmp_path / "j.jsonl"), "--home",
                                 "--fly-lead-us", "2.55"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            assert wait_for(lambda: armed(lab) == {"gate": True, "compare": True, "output": True}, 60.0), \
                armed(lab)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        ok = wait_for(lambda: armed(lab) == {"gate": False, "compare": False, "output": False}, 1.0)
        assert ok, armed(lab)
        assert "the run process died: outputs made safe" in proc.stderr.read()
