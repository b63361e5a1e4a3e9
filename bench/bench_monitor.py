"""Monitor benchmarks (issue 15): what following a 250,000-shot journal costs the page, and what an
open monitor costs the run.

    python bench/bench_monitor.py                       # both parts (dense_cm2, 250,000 discs)
    python bench/bench_monitor.py --overhead-rows 100   # the overhead part on the first 100 rows only
    python bench/bench_monitor.py --skip-overhead

1. State update: the plan of designs/dense_cm2.yaml (250,000 shots) saved next to a journal written
   by the executor's own `Journal` writer (batch durability: a horizon per 256 shots, an intent and a
   fired record per shot, 250,000 of each). Timed: the monitor's first look (whole journal + plan +
   design + map binning), `state()` (the /api/state JSON), `map_state()` (the binned map codes), and
   an update after 2,000 more shots were appended (about 1.3 s of a dry run), against the executor's
   reader `read_journal` of the same file.
2. Overhead: bench/bench_monitor_overhead.py (the same dry run with and without `--monitor` and a
   page-like client, alternating pairs, CPUs pinned; its docstring says why).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _plan(rows: int | None = None):
    from fabplan.design import load_design
    from fabplan.planning import build_plan

    design = load_design(ROOT / "designs" / "dense_cm2.yaml")
    if rows:
        arr = design.arrays[0]
        design.arrays[0] = arr.model_copy(update={"shape": (rows, arr.shape[1])})
    if design.process.mode != "step":
        design = design.model_copy(update={"process": design.process.model_copy(update={"mode": "step"})})
    return build_plan(design)


def write_journal(plan, journal: Path, n_done: int, batch: int = 256) -> None:
    from fabplan.execute.journal import Journal

    s = plan.shots
    header = {"run_id": "bench", "plan_hash": plan.plan_hash, "design_hash": plan.design_hash,
              "design_name": plan.header.get("design_name"), "design_file": str(ROOT / "designs" / "dense_cm2.yaml"),
              "plan_dir": str(journal.with_name(journal.name + ".plan")), "mode": "step", "n_shots": len(s),
              "devices": {"stage": "sim://xps", "laser": "sim://pharos"}, "estimate_s": plan.estimate["total_s"],
              "position_tolerance_um": 0.1, "host": "bench", "pid": 1, "user": "bench"}
    rng = np.random.default_rng(0)
    j = Journal.create(journal, header, sync="none")
    j.write({"k": "session", "n": 0, "resume": False, "to_fire": len(s)})
    append(j, plan, 0, n_done, rng, batch)
    j.close()


def append(j, plan, start: int, stop: int, rng, batch: int = 256) -> None:
    s = plan.shots
    x, y, z, e, ids, n = (s.x_um.tolist(), s.y_um.tolist(), s.z_um.tolist(), s.pulse_energy_uj.tolist(),
                          s.disc_id.tolist(), s.pulses.tolist())
    noise = rng.normal(0, 0.01, (stop - start, 2)).tolist()
    for k, seq in enumerate(range(start, stop)):
        if (seq - start) % batch == 0:
            j.write({"k": "horizon", "seqs": [[seq, min(seq + batch, stop) - 1]], "n": batch})
        j.intent(seq, ids[seq], x[seq], y[seq], z[seq], e[seq], n[seq])
        j.fired(seq, x[seq] + noise[k][0], y[seq] + noise[k][1], z[seq], e[seq])
    j.flush(durable=False)


def bench_state(work: Path) -> dict:
    from fabplan.execute.journal import Journal, read_journal
    from fabplan.monitor.state import Monitor

    t = time.perf_counter()
    plan = _plan()
    print(f"dense_cm2 plan: {len(plan.shots)} shots in {time.perf_counter() - t:.1f} s")
    journal = work / "dense.jsonl"
    plan.save(journal.with_name(journal.name + ".plan"))
    n = len(plan.shots)
    write_journal(plan, journal, n - 2000)
    size_mb = journal.stat().st_size / 1e6
    t, c = time.perf_counter(), time.process_time()
    ref = read_journal(journal)
    t_read, c_read = time.perf_counter() - t, time.process_time() - c
    mon = Monitor(journal)
    t, c = time.perf_counter(), time.process_time()
    mon.update()
    t_first, c_first = time.perf_counter() - t, time.process_time() - c
    mon.update(wait_layout=True)
    t_layout, c_layout = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    st = mon.state()
    t_state = time.perf_counter() - t
    t = time.perf_counter()
    ms = mon.map_state()
    t_map = time.perf_counter() - t
    assert st["counts"]["fired"] == ref.counts()["fired"]
    j = Journal.append_to(journal, sync="none")
    append(j, plan, n - 2000, n, np.random.default_rng(1))
    j.close()
    t, c = time.perf_counter(), time.process_time()
    mon.update()
    st2 = mon.state()
    ms2 = mon.map_state()
    t_incr, c_incr = time.perf_counter() - t, time.process_time() - c
    assert st2["counts"]["fired"] == n
    out = {"shots": n, "journal_mb": round(size_mb, 1), "read_journal_s": round(t_read, 3),
           "monitor_first_look_s": round(t_first, 3), "map_layout_ready_s": round(t_layout, 3), "state_json_s": round(t_state, 4),
           "map_state_s": round(t_map, 4), "update_after_2000_more_shots_s": round(t_incr, 4),
           "state_json_kb": round(len(json.dumps(st2)) / 1e3, 1), "map_codes_kb": round(len(ms2["codes"]) / 1e3, 1),
           "map_grid": mon.layout.grid and [mon.layout.grid["nx"], mon.layout.grid["ny"]],
           "cpu_s": {"read_journal": round(c_read, 3), "first_look": round(c_first, 3),
                     "first_look_with_map": round(c_layout, 3), "update_after_2000": round(c_incr, 4)}}
    assert ms is not None
    print(f"state update, {n} shots ({size_mb:.0f} MB journal): read_journal {t_read:.2f} s; monitor first look "
          f"{t_first:.2f} s (the map's plan + design + binning, on a helper thread, ready after {t_layout:.2f} s); state() {t_state * 1e3:.1f} ms; map_state() "
          f"{t_map * 1e3:.1f} ms; update + state + map after 2,000 more shots {t_incr * 1e3:.1f} ms; "
          f"/api/state {out['state_json_kb']} kB, map {out['map_codes_kb']} kB ({out['map_grid']} bins); CPU seconds "
          f"(wall above is shared with the machine's other work): {out['cpu_s']}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--overhead-rows", type=int, help="overhead runs on the first ROWS rows of the 500 x 500 lattice")
    ap.add_argument("--pairs", type=int, default=2, help="with/without pairs for the overhead (default 2)")
    ap.add_argument("--skip-state", action="store_true")
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-monitor-", dir="/tmp"))
    results: dict = {"workdir": str(work)}
    if not args.skip_state:
        results["state"] = bench_state(work)
    if not args.skip_overhead:
        from bench_monitor_overhead import overhead

        results["overhead"] = overhead(args.overhead_rows, args.pairs, work=work)
    print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
