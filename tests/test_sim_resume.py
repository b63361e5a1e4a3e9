"""`fabplan run --resume J` of a run made against sim:// emulators (issue 17 leftover).

The journal's `devices` holds the emulators' loopback addresses (xps://127.0.0.1:PORT), gone with the
run's process, so the resume used to need `--stage` again. The header now keeps the URLs as given and
the resume starts equivalent emulators: same lab parameters, the injected fault dropped, its own pulse
log beside the first, the fresh stage homed. End to end through the installed CLI in subprocesses, so
the first run's emulators really are gone when the resume starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fabplan.execute.journal import read_journal
from fabplan.execute.pulselog import read_pulse_log
from fabplan.execute.sim_resume import fresh_url, resume_urls

HEX = Path(__file__).resolve().parents[1] / "designs" / "hex_sweep.yaml"


def _fabplan(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fabplan", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_a_sim_run_cut_by_a_fault_resumes_with_just_the_journal(tmp_path):
    url = "sim://lab?xps_fault=drop@60&pulse_log=pulses.csv"
    first = _fabplan("run", str(HEX), "--stage", url, "--home", "--journal", "j.jsonl", cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr  # the injected fault cut the run
    assert "resume with: fabplan run --resume j.jsonl" in first.stdout
    h = read_journal(tmp_path / "j.jsonl").header
    assert h["devices"]["stage"].startswith("xps://127.0.0.1:")  # the emulator's address, now gone
    assert h["device_urls"]["stage"].startswith(url)  # as given (plus the design's laser parameters)

    again = _fabplan("run", "--resume", "j.jsonl", cwd=tmp_path)  # no --stage, no --home
    assert again.returncode == 0, again.stdout + again.stderr
    state = read_journal(tmp_path / "j.jsonl")
    counts = state.counts()
    assert counts["fired"] + counts.get("uncertain", 0) == 63 and counts.get("pending", 0) == 0
    assert (state.fire_count <= 1).all()  # nothing fired twice
    s0, s1 = state.sessions[0]["devices"]["stage"], state.sessions[1]["devices"]["stage"]
    assert s0 != s1  # fresh emulators on new ports
    # the resume's pulses in their own log (its clock starts at zero again); together every fired shot
    first_log, second_log = read_pulse_log(tmp_path / "pulses.csv"), read_pulse_log(tmp_path / "pulses-2.csv")
    assert len(first_log) + len(second_log) >= counts["fired"] and len(second_log) > 0


def test_an_explicit_stage_on_resume_still_wins(tmp_path):
    first = _fabplan("run", str(HEX), "--stage", "sim://a?xps_fault=drop@60", "--home", "--journal", "j.jsonl",
                     cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    again = _fabplan("run", "--resume", "j.jsonl", "--stage", "sim://b", "--home", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_journal(tmp_path / "j.jsonl").counts().get("pending", 0) == 0


def test_resume_urls_drop_faults_and_take_the_next_pulse_log(tmp_path):
    log = tmp_path / "p.csv"
    log.write_text("")
    (tmp_path / "p-2.csv").write_text("")
    given = f"spy+sim://lab?seed=3&xps_fault=drop@5&pharos_fault=interlock@2&pulse_log={log}&max_pulse_energy=4"
    stage, laser = resume_urls({"device_urls": {"stage": given, "laser": given}})
    assert stage == laser  # one lab for both, as in the first run
    assert stage.startswith("spy+sim://lab?seed=3&pulse_log=") and "_fault=" not in stage
    assert stage.endswith("max_pulse_energy=4") and "p-3.csv" in stage
    assert resume_urls({"devices": {"stage": "xps://10.0.0.2:5001"}}) is None  # not a sim:// run
    assert fresh_url("sim://x", {}) == "sim://x"
