"""Ctrl+C at any moment of a `fabplan dry-run` process, the process's own ending included, gives a
documented exit code, no traceback, and no pulse beyond the journal's (issue 13 left "exit -2 is
still possible if Ctrl+C lands during interpreter shutdown"; the old entry gave -2, 130, 0 or 3
depending on when SIGINT landed after the summary, and a traceback inside an atexit callback).

Each case runs the real entry point (`fabplan.cli.run`, what `fabplan` and `python -m fabplan`
call) in a child process started with `python -m` that stops at one point (loading, inside code
run from a string, pre-flight, the first shot, the summary, after the command returned, an atexit
callback, a non-daemon thread still running at exit, the emulated lab closing) until the test has
sent SIGINT and the child has handled it: conditions, not sleeps. A KeyboardInterrupt that ends
string-exec'd code (namedtuple, dataclasses: while modules import) made CPython kill a `-m` process
by SIGINT at exit even though fabplan caught it and exited 3.

Expected codes (fabplan/cli/cmd_run.py EPILOG): 3 when the Ctrl+C pauses or cuts the command short
(a pause before/after a shot, the summary or the lab's close interrupted); the run's own code (0,
completed) once the command has returned: the run has ended, nothing is left to interrupt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from exec_designs import lattice_design

from fabplan.execute.journal import FIRED, read_journal
from fabplan.execute.pulselog import read_pulse_log

ROOT = Path(__file__).resolve().parents[1]

# The child: patch one function (or add an atexit callback / a thread) to stop at the point, then run
# the real entry. "Handled" = the SIGINT raised KeyboardInterrupt here, reached the run's control
# (pause), or was counted by the entry once the command had returned.
CHILD = r"""
import atexit, sys, threading, time
from pathlib import Path

point, out = sys.argv[1], Path(sys.argv[2])
import fabplan.cli as cli
import fabplan.execute.control as control

seen = {"control": 0}
real_on_interrupt = control.RunControl.on_interrupt

def on_interrupt(self):
    seen["control"] += 1
    return real_on_interrupt(self)

control.RunControl.on_interrupt = on_interrupt

def handled():
    late = getattr(getattr(cli, "_Interrupts", None), "late", 0)
    return seen["control"] > 0 or late > 0

def stop_here():
    (out / "at").write_text(point)
    deadline = time.monotonic() + 60
    while not (out / "sent").exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    while not handled() and time.monotonic() < deadline:  # a KeyboardInterrupt ends this wait too
        time.sleep(0.002)

def after(obj, name, first_only=True):
    real = getattr(obj, name)
    calls = []

    def wrapped(*a, **k):
        r = real(*a, **k)
        if not calls or not first_only:
            calls.append(1)
            stop_here()
        return r

    setattr(obj, name, wrapped)

def before(obj, name):
    real = getattr(obj, name)

    def wrapped(*a, **k):
        stop_here()
        return real(*a, **k)

    setattr(obj, name, wrapped)

if point == "preflight":
    import fabplan.execute.runner as runner
    before(runner, "preflight")
elif point == "first-shot":
    import stage_drivers.pharos as pharos
    after(pharos.PharosLaser, "fire")
elif point == "summary":
    import fabplan.execute.report as report
    after(report, "summary_lines")
elif point == "string-exec":  # Ctrl+C inside code run from a string (namedtuple, dataclasses) while loading
    import fabplan.execute.session as session
    real_load = session.load_target

    def load_target(*a, **k):
        exec("stop_here()", {"stop_here": stop_here})
        return real_load(*a, **k)

    session.load_target = load_target
elif point == "lab-close":
    import sim.lab as lab
    before(lab.Lab, "close")
elif point == "after-main":
    after(cli, "main")
elif point == "atexit":
    atexit.register(stop_here)
elif point == "thread":  # still running when the command has returned: Python's shutdown joins it
    returned = threading.Event()
    real_main = cli.main

    def main_then_mark(*a, **k):
        try:
            return real_main(*a, **k)
        finally:
            returned.set()

    cli.main = main_then_mark
    threading.Thread(target=lambda: (returned.wait(60), stop_here()), name="slow-non-daemon").start()
sys.argv = ["fabplan", *sys.argv[3:]]
cli.run()
"""

# point -> exit code: 3 pauses the run or cuts the command short; once it has returned, its own (0).
# "run-atexit": `fabplan run --stage sim://...` (its in-process lab closes in the session and atexit).
POINTS = {"string-exec": 3, "preflight": 3, "first-shot": 3, "summary": 3, "lab-close": 3, "after-main": 3,
          "atexit": 0, "thread": 0, "run-atexit": 0}


def _command(point: str, design: Path, d: Path) -> list[str]:
    if point.startswith("run-"):
        return ["run", str(design), "--stage", f"sim://{point}?pulse_log={d / 'j.pulses.csv'}", "--home",
                "--journal", str(d / "j.jsonl")]
    return ["dry-run", str(design), "--journal", str(d / "j.jsonl")]


def test_ctrl_c_at_every_point_of_a_run_gives_a_documented_code(tmp_path):
    design = tmp_path / "d.yaml"
    design.write_text(lattice_design("intr", "I", 1, 3, motion=None))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    (tmp_path / "ctrlc_child.py").write_text(CHILD)  # run with -m, as `python -m fabplan` runs (see string-exec)
    procs = {}
    for point in POINTS:  # all at once: each waits at its point for the test
        d = tmp_path / point
        d.mkdir()
        procs[point] = subprocess.Popen(
            [sys.executable, "-m", "ctrlc_child", point.removeprefix("run-"), str(d), *_command(point, design, d)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_ctrl_c_as_at_a_terminal)
    waiting = dict(procs)
    deadline = time.monotonic() + 120
    while waiting and time.monotonic() < deadline:
        for point, p in list(waiting.items()):
            d = tmp_path / point
            if (d / "at").exists():
                p.send_signal(signal.SIGINT)
                (d / "sent").write_text("")
                del waiting[point]
            elif p.poll() is not None:
                pytest.fail(f"{point}: exited {p.returncode} before reaching the point: {p.stderr.read()[-2000:]}")
        time.sleep(0.01)
    assert not waiting, f"never reached: {sorted(waiting)}"
    problems = [f"{point}: {problem}" for point, p in procs.items()
                for problem in _check(point, p, tmp_path / point)]
    assert not problems, "\n".join(problems)


def _ctrl_c_as_at_a_terminal() -> None:
    """The child starts with SIGINT at its default, as a command typed at a terminal does. A test run
    started in the background (`cmd &` in a script, nohup) inherits SIGINT ignored, and Python then
    never installs its KeyboardInterrupt handler: every Ctrl+C here would be silently ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _check(point: str, p: subprocess.Popen, d: Path) -> list[str]:
    """What is wrong with how the child at `point` ended (every point is checked, then reported)."""
    out, err = p.communicate(timeout=60)
    tail = err[-1500:]
    if p.returncode != POINTS[point]:
        return [f"exit {p.returncode}, expected {POINTS[point]}\n{tail}"]
    wrong = []
    if "Traceback" in err or "KeyboardInterrupt" in err:
        wrong.append(f"traceback\n{tail}")
    if point == "string-exec":  # interrupted while loading the design: nothing started
        return wrong + (["a journal was started"] if (d / "j.jsonl").exists() else [])
    st = read_journal(d / "j.jsonl")
    if not st.ends:
        return wrong + ["the journal has no end record"]  # the run did not end through its finally
    fired = int((st.state == FIRED).sum())
    if len(read_pulse_log(d / "j.pulses.csv")) != fired:
        wrong.append("pulses with light differ from the journal's fired shots")  # gate left open
    status = st.ends[-1]["status"]
    if point in ("preflight", "first-shot"):  # the first Ctrl+C pauses: before arming / after that shot
        if status != "paused" or fired != (point == "first-shot"):
            wrong.append(f"{status} with {fired} fired")
    elif status != "completed" or fired != 3:
        wrong.append(f"{status} with {fired} fired")
    if POINTS[point] == 0 and ("Ctrl+C ignored: the command had already ended (exit 0)" not in err
                               or "completed: 3 shot(s) fired" not in out):
        wrong.append(f"no summary or no note\n{tail}")
    return wrong


def test_signal_handlers_give_sigterm_back_before_sigint(monkeypatch):
    """A Ctrl+C landing as the session's handlers are restored (KeyboardInterrupt right after SIGINT is
    the caller's again) must not leave SIGTERM routed to the ended run, whose shielded control ignores it."""
    from fabplan.execute.control import RunControl, SignalHandlers

    # Ctrl+C as at a terminal, even when this test run was started with SIGINT ignored (in the background)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGTERM)
        real = signal.signal

        def signal_then_ctrl_c(sig, handler):
            old = real(sig, handler)
            if sig == signal.SIGINT and handler is signal.default_int_handler:
                raise KeyboardInterrupt
            return old

        control = RunControl()
        with pytest.raises(KeyboardInterrupt):
            with SignalHandlers(control):
                control.shielded = True  # as at the end of a run
                monkeypatch.setattr(signal, "signal", signal_then_ctrl_c)
        monkeypatch.undo()
        assert signal.getsignal(signal.SIGTERM) is before
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        monkeypatch.undo()
        signal.signal(signal.SIGINT, outer)


@pytest.mark.parametrize("resume", [False, True], ids=["ends-paused", "resumed-at-the-prompt"])
def test_ctrl_c_during_preflight_pauses_before_arming(tmp_path, resume):
    """The pending pause is honoured before the laser is armed (it used to wait for the checkpoint
    after the first shot); resumed at the prompt, the run fires everything, arming once."""
    from test_exec_fakes import FakeLaser, FakeStage, make_plan

    from fabplan.execute.control import RunControl, RunHooks
    from fabplan.execute.runner import execute

    stage = FakeStage()
    laser = FakeLaser(stage)
    control = RunControl()
    control.request_pause("interrupted (Ctrl+C) during pre-flight")  # what the SIGINT handler does there
    res = execute(make_plan(2, 2), stage, laser, tmp_path / "j.jsonl", RunHooks(on_pause=lambda: resume),
                  control=control)
    records = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    events = [r.get("what") for r in records if r.get("k") == "event"]
    assert events[:1] == ["pause"]
    if resume:
        assert res.status == "completed" and len(laser.log) == 4 and laser.arm_count == 1
    else:
        assert res.status == "paused" and laser.log == [] and laser.arm_count == 0
