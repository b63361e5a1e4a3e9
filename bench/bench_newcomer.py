"""A new lab member's first hour, timed: the demo, the lab report of a 63-disc array, notebook reprs.

    /work/venv/bin/python bench/bench_newcomer.py [--skip-demo]

Prints wall and CPU seconds per step (the machine is shared: CPU time is the steadier figure).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FABPLAN = [sys.executable, "-m", "fabplan"]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(label: str, argv: list[str], cwd: Path, env: dict) -> float:
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(FABPLAN + argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    print(f"{label:<52} wall {wall:7.1f} s   cpu {cpu:7.1f} s", flush=True)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env["FABPLAN_DB"] = str(work / "lab.sqlite")
        if not args.skip_demo:
            timed("fabplan demo (default design)", ["demo", "--out", str(work / "demo")], work, env)
        design = str(ROOT / "designs" / "hex_sweep.yaml")
        timed("dry-run hex_sweep (63 discs)", ["dry-run", design, "--journal", "runs/hex.jsonl"], work, env)
        timed("lab add-design + import-journal", ["lab", "add-design", design], work, env)
        timed("  import-journal", ["lab", "import-journal", "runs/hex.jsonl"], work, env)
        timed("lab simulate --from-db (63 discs x 12 spectra)",
              ["lab", "simulate", "--from-db", "--out", "spectra", "--points", "12"], work, env)
        timed("lab import (756 spectra)", ["lab", "import", "spectra/manifest.csv"], work, env)
        timed("lab fit (63 series)", ["lab", "fit"], work, env)
        timed("lab report, 63 discs (PNG)", ["lab", "report", "--out", "report"], work, env)
        # --format is new: the probe lets the same bench time a tree from before it
        help_text = subprocess.run(FABPLAN + ["lab", "report", "--help"], env=env, capture_output=True,
                                   text=True).stdout
        for fmt in ("pdf", "svg") if "--format" in help_text else ():
            timed(f"lab report, 63 discs ({fmt.upper()})",
                  ["lab", "report", "--out", f"report-{fmt}", "--format", fmt], work, env)

    from fabplan.design import expand, load_design

    discs = expand(load_design(ROOT / "designs" / "dense_cm2.yaml"))
    for label, fn in (("repr(DiscTable) 250,000 discs", lambda: repr(discs)),
                      ("DiscTable._repr_html_() 250,000 discs", discs._repr_html_),
                      ("DiscTable.to_pandas() 250,000 discs", discs.to_pandas)):
        t0 = time.perf_counter()
        fn()
        print(f"{label:<52} wall {time.perf_counter() - t0:7.3f} s", flush=True)


if __name__ == "__main__":
    main()
