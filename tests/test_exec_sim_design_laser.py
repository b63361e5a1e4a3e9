"""A sim:// laser takes the design's laser unless its URL says otherwise (issue 17).

`fabplan run designs/hex_sweep.yaml --stage sim://lab --home` exited 1 ("reports 10 uJ at 100 % but
the design's attenuator calibration (energy_at_100 4 uJ) expects 4 uJ"): the in-process emulated
Pharos always started at 10 uJ. Now RunSession adds the design's max_pulse_energy (the energy at
100 % a dry run's emulator gets) and repetition rate to a sim:// URL that does not set them; a URL
that sets a different energy is still refused by pre-flight, nothing fired.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fabplan.cli import main
from fabplan.design.loader import load_design
from fabplan.execute.journal import read_journal
from fabplan.execute.session import _sim_takes_design_laser

ROOT = Path(__file__).resolve().parents[1]
HEX = ROOT / "designs" / "hex_sweep.yaml"


def test_the_tour_command_completes_on_emulators(tmp_path):
    """The exact command of the issue, as a subprocess of the installed CLI (63 shots)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "fabplan", "run", str(HEX), "--stage", "sim://lab", "--home",
                        "--journal", str(tmp_path / "j.jsonl")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "completed: 63 shot(s) fired" in p.stdout
    assert read_journal(tmp_path / "j.jsonl").counts()["fired"] == 63


def test_an_explicit_energy_that_disagrees_is_refused_before_firing(tmp_path, capsys):
    rc = main(["run", str(HEX), "--stage", "sim://lab?max_pulse_energy=10", "--home",
               "--journal", str(tmp_path / "j.jsonl"), "--json"])
    err = capsys.readouterr().err  # refused in pre-flight with the output closed: exit 2, no journal
    assert rc == 2 and "10 uJ at 100 %" in err and "energy_at_100 4 uJ" in err and "nothing armed" in err, err
    assert not (tmp_path / "j.jsonl").exists()


def test_url_gets_the_design_laser_only_where_it_is_silent():
    design = load_design(str(HEX))  # attenuator energy_at_100 4 uJ, 1 kHz

    class _Plan:
        header: dict = {}

    plan = _Plan()
    assert _sim_takes_design_laser("sim://lab", plan, design) == "sim://lab?max_pulse_energy=4&rep_rate=1000"
    assert (_sim_takes_design_laser("spy+sim://lab?seed=3&max_pulse_energy=10", plan, design)
            == "spy+sim://lab?seed=3&max_pulse_energy=10&rep_rate=1000")
    assert _sim_takes_design_laser("sim://x?max_pulse_energy=2&rep_rate=5", plan, design) == (
        "sim://x?max_pulse_energy=2&rep_rate=5")
    assert _sim_takes_design_laser("xps://1.2.3.4:5001?group=XYZ", plan, design) == "xps://1.2.3.4:5001?group=XYZ"
    assert _sim_takes_design_laser(None, plan, design) is None


def test_sim_lab_url_parameters_set_the_emulated_laser():
    from sim.lab import close_lab_for_url, lab_for_url
    from stage_drivers.urls import parse_device_url

    url = "sim://e17-params?max_pulse_energy=4&rep_rate=1000"
    lab = lab_for_url(parse_device_url(url))
    try:
        assert lab.laser.max_pulse_energy_uj == 4.0
        assert lab.laser.output_frequency_hz == 1000.0  # 200 kHz amplifier / picker 200
    finally:
        assert close_lab_for_url(url)
