"""`fabplan dry-run` runs the emulated Pharos at the design's repetition rate (its pulse picker set to
it, as a `sim://...?rep_rate=` lab already was), not at the emulated amplifier's 200 kHz.

Expected numbers: designs/dose_matrix.yaml (copied to a 2 kHz variant here) has rows of 1, 2 and 5
pulses per shot; the emulated laser fires the pulses of one shot one output period apart, so at
2 kHz consecutive pulses of one shot are 1 / 2000 s = 0.5 ms apart (sim/laser_model.py: a trigger
waits at most one amplifier period, 1 / 200 kHz = 5 us, plus the picker's period). The old
emulator spaced them 5 us apart whatever the design said.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from exec_designs import lattice_design

from fabplan.cli import main
from fabplan.execute.journal import read_journal
from fabplan.execute.pulselog import read_pulse_log
from sim.laser_model import LaserModel

DOSE = Path(__file__).resolve().parents[1] / "designs" / "dose_matrix.yaml"  # 1 kHz, pulses 1, 2, 5


def _design(tmp_path: Path, rate: str) -> Path:
    text = DOSE.read_text()
    assert "repetition_rate: 1 kHz" in text
    p = tmp_path / "dose.yaml"
    p.write_text(text.replace("repetition_rate: 1 kHz", f"repetition_rate: {rate}"))
    return p


def test_dry_run_fires_at_the_design_rate(tmp_path, capsys):
    design = _design(tmp_path, "2 kHz")
    journal = tmp_path / "j.jsonl"
    rc = main(["dry-run", str(design), "--journal", str(journal), "--only", "DM-r0[0-2]c0[0-1]", "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    summary = json.loads(out)
    assert summary["laser_rate_hz"] == 2000.0
    # the emulator itself reports the rate (pre-flight reads it with the output closed)
    checks = read_journal(journal).sessions[0]["preflight"]
    assert any("output 2 kHz (design 2 kHz)" in c for c in checks), checks
    pulses = read_pulse_log(tmp_path / "j.pulses.csv")
    assert len(pulses) == 2 * (1 + 2 + 5), len(pulses)  # two columns of the 1, 2, 5 pulse rows
    t = pulses[:, 0]
    dt = np.diff(t)
    within_shot = dt[dt < 0.01]  # shots are >= one settle time (20 ms) apart; pulses of one shot are not
    assert len(within_shot) == 2 * (1 + 4), dt  # 2-pulse shots: 1 gap each, 5-pulse shots: 4 gaps
    # one output period apart, give or take one amplifier period of trigger wait (5 us)
    assert np.all(np.abs(within_shot - 0.5e-3) <= 5e-6 + 1e-9), within_shot


def test_picker_keeps_its_period_between_triggers():
    """Triggers 0.1 ms apart on a 1 kHz laser: each waits for the picker, so pulses come 1 ms apart."""
    laser = LaserModel(None, base_rate_hz=200e3)
    laser.set_output_rate(1000.0)
    assert laser.pp_divider == 200 and laser.output_frequency_hz == 1000.0
    gap = 1e-3 - 5e-6  # one output period, less the amplifier period the emulator's trigger wait spans
    t = laser.release_times(np.arange(5) * 1e-4)
    assert np.allclose(np.diff(t), gap) and t[0] == 0.0
    laser.output_enabled = laser.gate = True
    laser.fire(t, 0.0, 0.0, 0.0, "gpio")
    assert laser.release_times(np.array([t[-1] + 1e-4]))[0] == pytest.approx(t[-1] + gap)  # across calls too
    assert laser.fire_one(t[-1] + 2e-4, 0.0, 0.0, 0.0, "gpio") == 1 and laser.last_pulse_t == pytest.approx(t[-1] + gap)
    with pytest.raises(ValueError):
        laser.set_output_rate(400e3)  # faster than the amplifier


def _fly_row(tmp_path: Path) -> Path:
    """One row of 8 equal discs, 20 um apart, 1 kHz: the planner's row speed is 20 um x 1 kHz = 20 mm/s
    (also the motion limit), one trigger per millisecond."""
    text = lattice_design("fly-row", "F", 1, 8, mode="fly")
    assert "repetition_rate: 10 kHz" in text
    p = tmp_path / "row.yaml"
    p.write_text(text.replace("repetition_rate: 10 kHz", "repetition_rate: 1 kHz"))
    return p


def test_fly_run_on_a_laser_slower_than_the_rows_is_refused_in_preflight(tmp_path, capsys):
    """The design says 1 kHz, the (emulated) laser is set to 100 Hz: fly rows would trigger ten times
    faster than it pulses. Refused before anything moves or is armed, no pulse in the log."""
    log = tmp_path / "p.csv"
    url = f"sim://slow?rep_rate=100&homed=1&pulse_log={log}"
    rc = main(["run", str(_fly_row(tmp_path)), "--stage", url, "--laser", url, "--journal", str(tmp_path / "j.jsonl")])
    err = capsys.readouterr().err
    assert rc == 2 and "fly mode needs a pulse every" in err and "0.1 kHz" in err and "Traceback" not in err, err
    assert len(read_pulse_log(log)) == 0


def test_fly_dry_run_at_the_design_rate_places_every_pulse(tmp_path, capsys):
    """At the design's rate the planner's rows (v <= pitch x rate) fit the laser: pre-flight says so and
    the read-back finds every pulse within the 100 nm tolerance."""
    journal = tmp_path / "j.jsonl"
    rc = main(["dry-run", str(_fly_row(tmp_path)), "--journal", str(journal), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["out_of_tolerance"]["shots"] == 0 and summary["laser_rate_hz"] == 1000.0, summary
    checks = read_journal(journal).sessions[0]["preflight"]
    assert any(c.startswith("fly rows need up to") and "the laser gives 1 kHz" in c for c in checks), checks
    t = read_pulse_log(tmp_path / "j.pulses.csv")[:, 0]
    assert np.all(np.diff(t) >= 1e-3 - 5e-6 - 1e-9)


def test_fly_rate_check_counts_only_rows_with_shots_to_fire():
    """Only the rows this run fires must fit the laser: a fast row left out by the selection is no
    reason to refuse, one selected shot of it (its first or last) is. Rows: seqs 0-3 at 1 kHz of
    triggers (20 mm/s over 20 um), 4-7 at 4 kHz (80 mm/s); the laser set to 2 kHz."""
    from types import SimpleNamespace

    from fabplan.execute.preflight import PreflightError, PreflightReport, check_fly_rate

    lines = [{"first_seq": 0, "last_seq": 3, "velocity_um_s": 2e4, "pitch_um": 20.0},
             {"first_seq": 4, "last_seq": 7, "velocity_um_s": -8e4, "pitch_um": 20.0}]
    plan = SimpleNamespace(lines=lines, shots=np.zeros(8))

    def check(todo):
        report = PreflightReport(devices={"laser_setting": {"output_frequency_hz": 2000.0}})
        check_fly_rate(plan, np.asarray(todo, np.int64), "fly", report)
        return report.checks

    assert check([0, 3]) == ["fly rows need up to 1 kHz of pulses; the laser gives 2 kHz"]
    for todo in ([4], [7], [0, 1, 2, 3, 4, 5, 6, 7]):
        with pytest.raises(PreflightError, match=r"every 250 us \(rows at up to 4 kHz"):
            check(todo)


def test_a_plan_directory_on_sim_gets_the_plans_rate(tmp_path, capsys):
    """`fabplan run PLAN_DIR --stage sim://...`: no design file, so the emulated laser takes the saved
    plan's repetition_rate_hz (1 kHz here), as a design file or a dry run of the same plan gives it,
    not the emulated amplifier's 200 kHz."""
    plan_dir = tmp_path / "plan"
    assert main(["plan", str(_fly_row(tmp_path)), "-o", str(plan_dir)]) == 0
    journal = tmp_path / "j.jsonl"
    url = f"sim://plandir?homed=1&pulse_log={tmp_path / 'p.csv'}"
    assert main(["run", str(plan_dir), "--stage", url, "--journal", str(journal)]) == 0, capsys.readouterr()
    checks = read_journal(journal).sessions[0]["preflight"]
    assert any("output 1 kHz (design 1 kHz)" in c for c in checks), checks
    t = read_pulse_log(tmp_path / "p.csv")[:, 0]
    assert len(t) == 8 and np.all(np.diff(t) >= 1e-3 - 5e-6 - 1e-9)
