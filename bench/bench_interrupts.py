"""Soak: Ctrl+C (SIGINT) at random moments of real `fabplan dry-run` processes; tally the exit codes.

    python bench/bench_interrupts.py --runs 60 --parallel 4 [--root DIR]

One calibration run measures how long the process lives; then each run gets SIGINT at a uniformly
random moment in [0.3 s, 1.1 x that life] (before 0.3 s Python itself is still starting). Prints
exit code -> count, how many stderr outputs held a traceback, and how many runs the signal found
already exited. `--root` runs another checkout (e.g. an old tree) with the same design. Issue 13's
leftover: the old entry gave -2 (death by SIGINT), 130 and tracebacks; the documented codes are 0
(the run had ended) and 3.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "designs" / "demo_array.yaml"  # the demo's array (the same file in an old tree)


def one(root: Path, work: Path, k: int, delay_s: float | None) -> tuple[int, bool, bool, float, str]:
    d = work / f"r{k}"
    d.mkdir()
    env = {**os.environ, "PYTHONPATH": str(root)}
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "fabplan", "dry-run", str(DESIGN), "--journal",
                          str(d / "j.jsonl")], cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    late = False
    if delay_s is not None:
        try:
            p.wait(timeout=delay_s)
            late = True  # exited before the signal
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)
    err = p.communicate()[1]
    return p.returncode, "Traceback" in err, late, time.monotonic() - t0, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--root", type=Path, default=ROOT)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory(prefix="fabplan-soak-") as tmp:
        work = Path(tmp)
        rc, _, _, life, _ = one(a.root, work, -1, None)
        assert rc == 0, f"calibration run exited {rc}"
        delays = [rng.uniform(0.3, 1.1 * life) for _ in range(a.runs)]
        with ThreadPoolExecutor(a.parallel) as pool:
            results = list(pool.map(lambda kd: one(a.root, work, *kd), enumerate(delays)))
    codes = collections.Counter(r[0] for r in results)
    print(f"root {a.root}: {a.runs} runs, life {life:.2f} s (calibration), parallel {a.parallel}, seed {a.seed}")
    print("exit codes: " + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())))
    print(f"tracebacks: {sum(r[1] for r in results)}; signal after exit: {sum(r[2] for r in results)}; "
          f"undocumented codes (not 0/3): {sum(n for c, n in codes.items() if c not in (0, 3))}")
    startup = 0
    for (rc, _, _, _, err), delay in zip(results, delays, strict=True):
        if rc in (0, 3):
            continue
        frames = [ln.strip() for ln in err.splitlines() if ln.strip().startswith("File ")]
        # still importing fabplan.cli (interpreter start, the `fabplan` script's import line): no fabplan
        # code runs yet, Python's own KeyboardInterrupt applies
        if rc == -2 and frames and not any("fabplan/cli/__init__.py" in f and "in run" in f for f in frames):
            startup += 1
        print(f"  exit {rc} at {delay:.2f} s: " + " ... ".join(frames[:2] + frames[-1:]))
    print(f"of which before fabplan's entry point ran (importing fabplan.cli): {startup}")


if __name__ == "__main__":
    main()
