"""Emulated lab: ground-truth pulse log, in-process and child-process labs (surviving a SIGKILL of
the client), sim:// URLs and the `fabplan sim` / `fabplan stage` commands."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim import start_lab
from sim.lab import close_all_labs
from sim.motion import jerk_time_for, move_duration
from stage_drivers import open_laser, open_stage

ROOT = Path(__file__).resolve().parent.parent


def read_log(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_pulse_log_is_ground_truth(tmp_path):
    with start_lab(tmp_path / "p.csv", homed=True, max_pulse_energy_uj=8.0) as lab:
        with open_stage(lab.stage_url) as st, open_laser(lab.laser_url, stage=st) as laser:
            laser.set_attenuation(50.0)
            st.move_to(250.0, -125.0, 10.0)
            st.fire_pulses(1)  # gate closed and output off: logged as blocked, no light
            laser.arm()
            laser.fire(3)
    rows = read_log(tmp_path / "p.csv")
    assert [r["gate"] for r in rows] == ["0", "1", "1", "1"]
    assert float(rows[0]["energy_uj"]) == 0.0
    for r in rows[1:]:
        assert float(r["energy_uj"]) == pytest.approx(4.0, rel=0.06)  # 8 uJ x 50 %, 1 % rms
        assert (float(r["x_um"]), float(r["y_um"]), float(r["z_um"])) == pytest.approx((250, -125, 10), abs=0.03)
    t = [float(r["t_s"]) for r in rows[1:]]
    # one trigger per pulse: each takes at least a period of the laser's 200 kHz pulse train
    assert t[1] - t[0] == pytest.approx(1 / 200e3, abs=1 / 200e3)


def test_jsonl_log_and_simulated_time(tmp_path):
    with start_lab(tmp_path / "p.jsonl", homed=True) as lab, open_stage(lab.stage_url) as st:
        t0 = float(st.call("ElapsedTimeGet(double *)", 1)[0])
        st.move_to(10000.0, 0.0, 0.0)  # 10 mm on X at 20 mm/s, 200 mm/s^2
        t1 = float(st.call("ElapsedTimeGet(double *)", 1)[0])
        expected = move_duration(10.0, 20.0, 200.0, jerk_time_for(20.0, 200.0, 0.005, 0.05)) + 2e-5
        assert t1 - t0 == pytest.approx(expected, abs=1e-6)
        with open_laser(lab.laser_url, stage=st) as laser:
            laser.arm()
            laser.fire(1)
    rec = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert set(rec) == {"t_s", "x_um", "y_um", "z_um", "energy_uj", "gate", "source"}


def test_sim_urls_share_one_lab():
    try:
        with open_stage("sim://t?homed=1") as st, open_laser("sim://t?homed=1", stage=st) as laser:
            st.move_to(1.0, 2.0, 3.0)
            laser.arm()
            laser.fire(2)
            assert laser.pulse_energy_uj() == pytest.approx(10.0)
    finally:
        close_all_labs()


CLIENT = """
import sys
from stage_drivers import open_stage, open_laser
st = open_stage(sys.argv[1]); laser = open_laser(sys.argv[2], stage=st); laser.arm()
i = 0
while True:
    st.move_to(i % 1000, 0, 0); laser.fire(1); i += 1
    if i == 50: print("firing", flush=True)
"""


def test_child_process_lab_survives_a_killed_client(tmp_path):
    lab = start_lab(tmp_path / "p.csv", process=True, homed=True)
    try:
        assert lab.pid != os.getpid()
        client = subprocess.Popen([sys.executable, "-c", CLIENT, lab.stage_url, lab.laser_url],
                                  stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert client.stdout.readline().strip() == "firing"
        client.send_signal(signal.SIGKILL)
        client.wait(5)
        client.stdout.close()
        with open_stage(lab.stage_url) as st:  # the lab is still there and answers
            assert st.status().ready
        time.sleep(0.3)  # the log is flushed every 0.2 s
        assert len(read_log(lab.pulse_log_path)) >= 50
    finally:
        lab.close()
    assert lab.process.returncode is not None


# The full `fabplan` parser imports every command module (seconds on a loaded box); these tests
# register only the two modules under test, exactly as fabplan.cli.build_parser does.
MINI_CLI = """
import argparse, sys
from fabplan.cli import cmd_sim, cmd_stage
p = argparse.ArgumentParser(prog="fabplan"); s = p.add_subparsers()
cmd_sim.register(s); cmd_stage.register(s)
a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))
"""


def run_cli(argv) -> int:
    import argparse

    from fabplan.cli import cmd_sim, cmd_stage
    from fabplan.errors import UserError

    p = argparse.ArgumentParser(prog="fabplan")
    s = p.add_subparsers()
    cmd_sim.register(s)
    cmd_stage.register(s)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:  # what fabplan.cli.main does
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _start_cli(*args):
    proc = subprocess.Popen([sys.executable, "-c", MINI_CLI, "sim", *args, "--json"], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("}"):
            break
    return proc, json.loads("".join(lines))


def test_cli_sim_and_stage_commands(tmp_path, capsys):
    main = run_cli
    proc, info = _start_cli("xps", "--speedup", "inf", "--pulse-log", str(tmp_path / "p.csv"))
    try:
        assert info["url"].startswith("xps://127.0.0.1:")
        assert main(["stage", "move", info["url"], "0.1 mm", "20", "3", "--home", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["position_um"] == pytest.approx([100.0, 20.0, 3.0], abs=0.05)
        assert main(["stage", "status", info["url"], "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["code"] == 12
        assert main(["stage", "move", info["url"], "1 m", "0", "0"]) == 2  # outside travel: user error
        assert "outside travel limits" in capsys.readouterr().err
    finally:
        proc.terminate()
        proc.wait(5)
        proc.stdout.close()



def test_cli_esp301_and_pharos_handlers(capsys):
    """The handlers serve until a signal; here only their announcement and stage access are checked."""
    import argparse
    import threading

    from fabplan.cli import cmd_sim

    p = argparse.ArgumentParser()
    cmd_sim.register(p.add_subparsers())
    args = p.parse_args(["sim", "esp301", "--speedup", "inf", "--json"])
    assert args.func is cmd_sim._esp301
    stop = threading.Event()
    started = []

    def fake_serve(emulators):
        started.extend(emulators)
        stop.wait(5)
        for e in emulators:
            e.close()
        return 0

    cmd_sim._serve, real = fake_serve, cmd_sim._serve
    try:
        t = threading.Thread(target=args.func, args=(args,))
        t.start()
        for _ in range(100):
            if started:
                break
            time.sleep(0.02)
        info = json.loads(capsys.readouterr().out)
        assert info["device"].startswith("/dev/")
        with open_stage(info["url"], timeout_s=1.0) as st:
            st.home()
            assert st.status().ready
        stop.set()
        t.join(5)
    finally:
        cmd_sim._serve = real


def test_cli_stage_home_and_negative_targets(capsys):
    try:
        assert run_cli(["stage", "home", "sim://clihome", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["code"] == 11
        assert run_cli(["stage", "move", "sim://clihome", "-100", "-0.5", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["position_um"][:2] == pytest.approx([-100, -0.5], abs=0.05)
    finally:
        close_all_labs()


def test_cli_stage_status_leaves_a_running_job_alone(capsys):
    """`stage status` is a monitor: it must not disable another process's position compare or lower
    its gate (the XPS driver does both on connect for every other caller)."""
    from sim.xps_emulator import XpsEmulator

    e = XpsEmulator(speedup="inf", initialized=True).start()
    try:
        e.execute("GPIODigitalSet(GPIO3.DO,1,1)")
        e.execute("PositionerPositionCompareSet(XYZ.X,1,2,0.5)")
        e.execute("PositionerPositionCompareEnable(XYZ.X)")
        assert run_cli(["stage", "status", e.url, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["code"] == 11
        assert e.group.positioners[0].pco_enabled and e.gpio_do & 1
        assert run_cli(["stage", "move", e.url, "0", "0", "0", "--json"]) == 0  # a mover resets them
        assert not e.group.positioners[0].pco_enabled and e.gpio_do & 1 == 0
    finally:
        e.close()
