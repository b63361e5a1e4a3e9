"""Executor benchmarks: dry runs of designs/dense_cm2.yaml (250,000 discs) through the real XPS and
Pharos drivers against the emulators over loopback, journal included.

    python bench/bench_exec.py                 # everything (a few minutes)
    python bench/bench_exec.py --rows 50       # the first 50 rows only (quick look)
    python bench/bench_exec.py --monitor-pairs 6   # what an open --monitor costs this dry run

Prints: fsync cost here (disk vs tmpfs); step mode shots per wall second with "batch" durability
(the default of dry-run) and, on a slice, with a per-shot fsync; controller round trips, HTTP
requests and fsyncs per shot (counted on the driver side); fly mode wall time of the whole
`fabplan dry-run` command; emulated fabrication time fly vs step and the p99 placement error from
the emulator's pulse log (true stage position at each pulse vs the target).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COUNTS = {"xps": 0, "http": 0, "fsync": 0}


def _count_calls() -> None:
    """Count controller calls, HTTP requests and fsyncs made by this process."""
    import stage_drivers.pharos as ph
    import stage_drivers.xps as xps

    orig_call, orig_req, orig_fsync = xps._Link.call, ph.PharosLaser.request, os.fsync

    def call(self, *a, **k):
        COUNTS["xps"] += 1
        return orig_call(self, *a, **k)

    def req(self, *a, **k):
        COUNTS["http"] += 1
        return orig_req(self, *a, **k)

    def fsync(fd):
        COUNTS["fsync"] += 1
        return orig_fsync(fd)

    xps._Link.call, ph.PharosLaser.request, os.fsync = call, req, fsync


def fsync_cost_us(directory: str, n: int = 200) -> float:
    path = Path(directory) / f"fsync-bench-{os.getpid()}.tmp"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        t = time.perf_counter()
        for _ in range(n):
            os.write(fd, b'{"k":"intent","seq":123456,"x":1234.5678,"y":42.0}\n')
            os.fsync(fd)
        return (time.perf_counter() - t) / n * 1e6
    finally:
        os.close(fd)
        path.unlink()


def _plan(mode: str, rows: int | None):
    from fabplan.design import load_design
    from fabplan.planning import build_plan

    design = load_design(ROOT / "designs" / "dense_cm2.yaml")
    if rows:
        arr = design.arrays[0]
        design.arrays[0] = arr.model_copy(update={"shape": (rows, arr.shape[1])})
    if mode != design.process.mode:
        design = design.model_copy(update={"process": design.process.model_copy(update={"mode": mode})})
    return build_plan(design), design


def placement_p99_nm(plan, pulse_log: Path) -> tuple[float, float, int]:
    """p99 and max distance (nm) from each lit pulse's true position to its nearest target."""
    from scipy.spatial import cKDTree

    from fabplan.execute.pulselog import read_pulse_log

    p = read_pulse_log(pulse_log)
    s = plan.shots
    d, _ = cKDTree(np.column_stack([s.x_um, s.y_um])).query(p[:, 1:3])
    return float(np.percentile(d, 99) * 1e3), float(d.max() * 1e3), len(p)


def run_step(plan, design, work: Path, sync: str, selection=None, label: str = "", process: bool = False) -> dict:
    from fabplan.execute.context import Options
    from fabplan.execute.pulselog import read_pulse_log
    from fabplan.execute.runner import RunSpec, execute
    from sim.lab import start_lab
    from stage_drivers import open_laser, open_stage

    pulses = work / f"step-{label}.pulses.csv"
    with start_lab(pulses, process=process, max_pulse_energy_uj=float(design.laser.max_pulse_energy)) as lab:
        with open_stage(lab.stage_url) as stage, open_laser(lab.laser_url, stage=stage) as laser:
            before = dict(COUNTS)
            res = execute(plan, stage, laser, RunSpec(work / f"step-{label}.jsonl", options=Options(home=True),
                                                      sync=sync, selection=selection))
            after = dict(COUNTS)
    assert res.status == "completed", res.message
    n = res.stats.fired
    p = read_pulse_log(pulses)
    out = {"shots": n, "wall_s": res.wall_s, "shots_per_s": n / res.wall_s,
           "emulated_s": float(p[-1, 0]) if len(p) else math.nan,
           "per_shot": {k: (after[k] - before[k]) / max(n, 1) for k in COUNTS}, "pulse_log": pulses}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, help="only the first ROWS rows of the 500 x 500 lattice")
    ap.add_argument("--fsync-slice", type=int, default=5000, help="shots run with a per-shot fsync (0: skip)")
    ap.add_argument("--lab-process", action="store_true",
                    help="emulators in a child process (default: threads of this process, as dry-run does)")
    ap.add_argument("--workdir", help="where journals and pulse logs go (default: a temp dir on disk)")
    ap.add_argument("--monitor-pairs", type=int, metavar="N",
                    help="only the monitor's overhead: N pairs of the fly dry run with and without --monitor "
                         "(bench/bench_monitor_overhead.py, which says how it pins CPUs)")
    args = ap.parse_args()
    if args.monitor_pairs:
        from bench_monitor_overhead import overhead

        print(json.dumps(overhead(args.rows, args.monitor_pairs), indent=1, default=str))
        return 0
    _count_calls()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-exec-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"workdir": str(work)}

    results["fsync_us"] = {"disk (journal dir)": fsync_cost_us(str(work)), "tmpfs (/dev/shm)": fsync_cost_us("/dev/shm")
                           if Path("/dev/shm").is_dir() else None}
    print(f"fsync cost: {results['fsync_us']}")

    t = time.perf_counter()
    step_plan, design = _plan("step", args.rows)
    print(f"step plan: {len(step_plan.shots)} shots, planned in {time.perf_counter() - t:.1f} s, "
          f"estimate {step_plan.estimate['total_s']:.0f} s")
    step = run_step(step_plan, design, work, "batch", label="batch", process=args.lab_process)
    p99, pmax, npulses = placement_p99_nm(step_plan, step["pulse_log"])
    step.update(p99_nm=p99, max_nm=pmax, pulses=npulses)
    where = "child process" if args.lab_process else "in-process"
    print(f"step, batch durability, lab {where}: {step['shots']} shots in {step['wall_s']:.1f} s = {step['shots_per_s']:.0f} "
          f"shots/s; per shot {step['per_shot']}; emulated {step['emulated_s']:.0f} s; p99 {p99:.1f} nm")
    results["step_batch"] = {k: v for k, v in step.items() if k != "pulse_log"}

    if args.fsync_slice:
        sel = np.zeros(len(step_plan.shots), bool)
        sel[: args.fsync_slice] = True
        for sync in ("fsync", "async"):
            r = run_step(step_plan, design, work, sync, selection=sel, label=sync, process=args.lab_process)
            print(f"step, {sync} durability ({r['shots']} shots): {r['shots_per_s']:.0f} shots/s; "
                  f"per shot {r['per_shot']}")
            results[f"step_{sync}"] = {k: v for k, v in r.items() if k != "pulse_log"}

    # fly: the whole command, as a user runs it (planning, lab start, run, read-back, summary)
    fly_plan, _ = _plan("fly", args.rows)
    journal = work / "fly.jsonl"
    cmd = [sys.executable, "-m", "fabplan", "dry-run", str(ROOT / "designs" / "dense_cm2.yaml"), "--journal",
           str(journal), "--json"]
    if args.rows:  # a sliced design file
        import yaml

        doc = yaml.safe_load((ROOT / "designs" / "dense_cm2.yaml").read_text())
        doc["arrays"][0]["shape"][0] = args.rows
        sliced = work / "dense_slice.yaml"
        sliced.write_text(yaml.safe_dump(doc))
        cmd[4] = str(sliced)
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=str(ROOT))
    fly_wall = time.perf_counter() - t
    if out.returncode != 0:
        print(out.stdout[-2000:], out.stderr[-2000:])
        return 1
    fly = json.loads(out.stdout)
    fp99, fmax, fn = placement_p99_nm(fly_plan, Path(fly["pulse_log"]))
    results["fly"] = {"command_wall_s": fly_wall, "executor_wall_s": fly["duration_s"],
                      "emulated_s": fly["emulated_duration_s"], "p99_nm": fp99, "max_nm": fmax, "pulses": fn,
                      "rows_out_of_tolerance": fly["rows_out_of_tolerance"], "estimate_s": fly["estimate_s"]}
    print(f"fly: `fabplan dry-run` took {fly_wall:.1f} s wall (executor {fly['duration_s']:.1f} s); emulated "
          f"{fly['emulated_duration_s']:.0f} s; p99 {fp99:.1f} nm, max {fmax:.1f} nm; rows flagged "
          f"{fly['rows_out_of_tolerance']}")
    ratio = step["emulated_s"] / fly["emulated_duration_s"]
    results["fly_vs_step_emulated_speedup"] = ratio
    print(f"emulated fabrication time: step {step['emulated_s']:.0f} s vs fly {fly['emulated_duration_s']:.0f} s "
          f"-> fly is {ratio:.1f}x faster")
    print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
