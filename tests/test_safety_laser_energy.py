"""A laser whose energy disagrees with the design is refused in pre-flight, with its output closed:
exit 2, nothing homed or moved, no position compare armed, output never enabled, not one pulse
(the emulators' ground-truth pulse log). Issue 13 left it caught only after arming (the Pharos
reports 0 output energy while closed); the amplifier's power / rate (ActualRaPower,
ActualRaFrequency: reported while closed) give the energy at 100 % attenuator.

Expected numbers: designs/hex_sweep.yaml says `attenuator: {type: percent, energy_at_100: 4 uJ}`;
the emulated laser's energy at 100 % is its max_pulse_energy (sim/laser_model.py, linear in %)."""

from __future__ import annotations

from pathlib import Path

import pytest
from exec_designs import lattice_design

from fabplan.cli import main
from fabplan.execute.pulselog import read_pulse_log
from sim.lab import start_lab
from sim.pharos_emulator import PharosEmulator
from stage_drivers import open_laser
from stage_drivers.protocols import ClosedReadout

HEX_SWEEP = Path(__file__).resolve().parents[1] / "designs" / "hex_sweep.yaml"  # energy_at_100: 4 uJ


class _Recorder:
    """Every command the emulated XPS and Pharos receive (what was armed, enabled, moved)."""

    def __init__(self, lab):
        self.xps: list[str] = []
        self.pharos: list[tuple[str, str]] = []
        xps_execute, pharos_handle = lab.xps.execute, lab.pharos.handle

        def execute(cmd, state=None):
            self.xps.append(cmd)
            return xps_execute(cmd, state)

        def handle(method, path, body):
            self.pharos.append((method, path))
            return pharos_handle(method, path, body)

        lab.xps.execute, lab.pharos.handle = execute, handle

    def armed_anything(self) -> list[str]:
        xps = [c for c in self.xps if c.startswith(("PositionerPositionCompareEnable", "GroupMove", "GroupHome",
                                                    "GroupInitialize", "EventExtendedStart"))
               or (c.startswith("GPIODigitalSet") and not c.endswith(",0)"))]
        return xps + [p for m, p in self.pharos if m != "GET" and not p.endswith("CloseOutput")]


def _run(lab, journal, *extra):
    return main(["run", str(HEX_SWEEP), "--stage", lab.stage_url, "--laser", lab.laser_url, "--journal",
                 str(journal), "--only", "H-r00c0*", *extra])


@pytest.mark.parametrize("energy_uj", [10.0, 4.4, 2.0], ids=["2.5x", "+10%", "half"])
def test_wrong_laser_energy_is_refused_before_anything_moves_or_arms(tmp_path, capsys, energy_uj):
    with start_lab(tmp_path / "p.csv", homed=False, max_pulse_energy_uj=energy_uj) as lab:
        rec = _Recorder(lab)
        rc = _run(lab, tmp_path / "j.jsonl", "--home")  # --home: pre-flight would home an unreferenced stage
        homed = lab.xps.group.homed
        fired, blocked = lab.laser.fired, lab.laser.blocked
        url = lab.laser_url
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert url in line and f"{energy_uj:g} uJ at 100 %" in line and "energy_at_100 4 uJ" in line, line
    assert rec.armed_anything() == [], rec.armed_anything()  # no compare, no gate, no output, no move
    assert not homed  # refused before homing: nothing moved
    assert fired == blocked == 0 and len(read_pulse_log(tmp_path / "p.csv")) == 0
    assert not (tmp_path / "j.jsonl").exists() and not (tmp_path / "j.jsonl.plan").exists()


def test_right_laser_energy_passes_and_preflight_says_what_it_read(tmp_path, capsys):
    from fabplan.execute.journal import read_journal

    with start_lab(tmp_path / "p.csv", homed=True, max_pulse_energy_uj=4.0) as lab:
        assert _run(lab, tmp_path / "j.jsonl") == 0
    checks = read_journal(tmp_path / "j.jsonl").sessions[0]["preflight"]
    assert any("energy at 100 % 4 uJ agrees with the design's energy_at_100 4 uJ" in c for c in checks), checks
    assert any("output 200 kHz (design 1 kHz)" in c for c in checks), checks  # the picker, read while closed


def test_sim_url_with_another_energy_is_refused_with_no_pulse(tmp_path, capsys):
    log = tmp_path / "p.csv"
    rc = main(["run", str(HEX_SWEEP), "--stage", f"sim://wrong?max_pulse_energy=10&pulse_log={log}",
               "--journal", str(tmp_path / "j.jsonl"), "--only", "H-r00c0*", "--home"])
    err = capsys.readouterr().err
    assert rc == 2 and "10 uJ at 100 %" in err and "Traceback" not in err, err
    assert len(read_pulse_log(log)) == 0


def test_laser_short_of_the_plans_energy_is_refused_without_a_calibration(tmp_path, capsys):
    design = tmp_path / "d.yaml"  # no attenuator: percentages come from the laser's own energy
    design.write_text(lattice_design("weak", "W", 2, 2, motion=None))
    with start_lab(tmp_path / "p.csv", homed=True, max_pulse_energy_uj=0.01) as lab:
        rec = _Recorder(lab)
        rc = main(["run", str(design), "--stage", lab.stage_url, "--laser", lab.laser_url,
                   "--journal", str(tmp_path / "j.jsonl")])
    err = capsys.readouterr().err
    assert rc == 2 and "delivers at most 0.01 uJ" in err and "needs up to" in err, err
    assert rec.armed_anything() == [] and len(read_pulse_log(tmp_path / "p.csv")) == 0


def test_energy_not_readable_while_closed_keeps_the_check_after_arming(tmp_path, capsys):
    """A harmonic module after the amplifier: the RA energy is not the output's. Pre-flight says so,
    and the check with the output enabled (before the first shot) still fires nothing."""
    with start_lab(tmp_path / "p.csv", homed=True, max_pulse_energy_uj=10.0) as lab:
        lab.laser.harmonic = 2
        rc = _run(lab, tmp_path / "j.jsonl")
    out = capsys.readouterr()
    assert rc == 1 and "expects 4 uJ" in out.out + out.err and "Traceback" not in out.err, out
    assert len(read_pulse_log(tmp_path / "p.csv")) == 0
    from fabplan.execute.journal import read_journal

    checks = read_journal(tmp_path / "j.jsonl").sessions[0]["preflight"]
    assert any("not known with the output closed (harmonic 2" in c for c in checks), checks


def test_closed_readout_reads_one_status_object_like_lightcon():
    """The request is lightcon's get_status (GET /v1/Basic); the values are the emulator's model."""
    laser_clients = pytest.importorskip("lightcon.laser_clients")
    with PharosEmulator() as emu:
        emu.laser.max_pulse_energy_uj, emu.laser.pp_divider, emu.laser.attenuator_percent = 7.5, 4, 30.0
        seen: list[tuple[str, str, bytes]] = []
        real = emu.handle
        emu.handle = lambda m, p, b: (seen.append((m, p, b)), real(m, p, b))[1]
        laser = open_laser(emu.url, timeout_s=2.0)
        assert isinstance(laser, ClosedReadout)
        seen.clear()
        r = laser.closed_readout()
        mine = list(seen)
        seen.clear()
        status = laser_clients.Pharos("127.0.0.1", port=emu.port).get_status()
        assert mine == seen[-1:] == [("GET", "/v1/Basic", b"")]  # lightcon's constructor GETs it too
        laser.close()
    assert not r["output_enabled"] and r["output_energy_uj"] == 0.0  # closed: the output reports nothing
    assert r["energy_at_100_uj"] == pytest.approx(7.5)  # RA power / RA rate
    assert status["ActualRaPower"] / (status["ActualRaFrequency"] * 1e3) * 1e6 == pytest.approx(7.5)
    assert r["attenuator_percent"] == 30.0 and r["pp_divider"] == 4 and r["output_frequency_hz"] == 50e3


@pytest.mark.parametrize("drop, why", [("ActualHarmonic", "no ActualHarmonic"),
                                       ("ActualRaPower", "no regenerative-amplifier power")])
def test_energy_is_unknown_when_the_firmware_does_not_say_enough(drop, why):
    """Older firmware without the RA values, or one that does not say the output is the fundamental:
    NaN with the reason (pre-flight then says so), never a guess."""

    class Firmware(PharosEmulator):
        def snapshot(self):
            snap = super().snapshot()
            snap.pop(drop)
            return snap

    with Firmware() as emu:
        laser = open_laser(emu.url, timeout_s=2.0)
        r = laser.closed_readout()
        laser.close()
    assert r["energy_at_100_uj"] != r["energy_at_100_uj"] and why in r["energy_unknown_why"], r


def test_a_laser_that_cannot_tell_while_closed_is_named_in_preflight(tmp_path):
    from test_exec_fakes import FakeLaser, FakeStage, make_plan

    from fabplan.execute.journal import read_journal
    from fabplan.execute.runner import execute

    stage = FakeStage()
    assert execute(make_plan(1, 2), stage, FakeLaser(stage), tmp_path / "j.jsonl").status == "completed"
    checks = read_journal(tmp_path / "j.jsonl").sessions[0]["preflight"]
    assert "fake://laser does not report its energy with the output closed: compared after arming, before the " \
           "first shot" in checks, checks


def test_percent_attenuator_without_a_laser_is_refused_before_homing(tmp_path, capsys):
    """--stage only (the XPS gate, no attenuator, no energy) for a plan that sets percentages: refused
    with the stage still unreferenced (issue 13 found it before arming, but after --home had moved it)."""
    with start_lab(tmp_path / "p.csv", homed=False) as lab:
        rec = _Recorder(lab)
        rc = main(["run", str(HEX_SWEEP), "--stage", lab.stage_url, "--home", "--journal", str(tmp_path / "j.jsonl")])
        homed = lab.xps.group.homed
    err = capsys.readouterr().err
    assert rc == 2 and "percent attenuator" in err and "Traceback" not in err, err
    assert not homed and rec.armed_anything() == [] and len(read_pulse_log(tmp_path / "p.csv")) == 0
