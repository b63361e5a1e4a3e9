"""QA (issue 13 leftovers): `kill -9` of `fabplan lab import` takes its parsing workers with it.

The import parses large manifests in a process pool; a parent killed with SIGKILL used to leave the
two workers running. The child here is a real `fabplan lab import` whose worker parse function is
made to block (so the workers are certainly alive and busy when the parent dies); each worker prints
its pid when it starts a file. Workers are found gone by /proc (a zombie waiting for init to reap it
counts as gone), within a deadline, waiting for the condition.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fabplan.lab.spectra_io import write_spectrum

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import os, sys, time
import fabplan.lab.importer as imp

def blocking_read(path):
    time.sleep(600)

imp._read_one = blocking_read  # the pool is forked after this: the workers block in it
if sys.argv[3] == "watch":  # the portable fallback: no prctl, a thread watching the parent pid
    import fabplan.lab.workers as w
    w._set_pdeathsig = lambda: False
from fabplan.cli import main
sys.exit(main(["lab", "import", sys.argv[1], "--db", sys.argv[2], "--allow-unknown"]))
"""


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return set()
    return {int(c) for c in text.split()}


def _sleeping_in_parse(pid: int) -> bool:
    """A pool worker blocked in the test's parse function (its main thread sleeps in clock_nanosleep)."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return wchan in ("hrtimer_nanosleep", "0", "")  # "0"/"": a kernel that hides wchan: any live child


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("guard", ["pdeathsig", "watch"])
def test_kill_9_of_lab_import_takes_its_workers_with_it(tmp_path, guard):
    wl = np.linspace(500.0, 560.0, 64)
    write_spectrum(tmp_path / "s0.csv", wl, 100 + 1e3 / (1 + ((wl - 535.0) / 0.3) ** 2), 0.1)
    n = 450  # above importer.PARALLEL_MIN_FILES: parsed by two workers
    manifest = tmp_path / "m.csv"
    manifest.write_text("disc_id,fluence,spectrum,operator\n"
                        + "".join(f"A-r{i // 50:02d}c{i % 50:02d},5,s0.csv,x\n" for i in range(n)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", CHILD, str(manifest), str(tmp_path / "lab.sqlite"), guard],
                              stdout=subprocess.DEVNULL, text=True, env=env, cwd=tmp_path)
    workers: set[int] = set()
    try:
        # The workers are the import's child processes that have entered the blocking parse (they sleep
        # there): found through /proc, with a deadline, so a worker whose announcement is lost (or a pool
        # that never starts) fails the test instead of hanging it.
        deadline = time.monotonic() + 120.0
        while len(workers) < 2 and parent.poll() is None and time.monotonic() < deadline:
            workers = {p for p in _children(parent.pid) if _sleeping_in_parse(p)}
            time.sleep(0.05)
        assert len(workers) == 2, "the import did not start two workers"
        assert all(_alive(p) for p in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10.0
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in workers), f"workers {sorted(p for p in workers if _alive(p))} outlived " \
                                                    "their killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        for p in workers:  # never leave a worker of this test behind, whatever happened
            if _alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
