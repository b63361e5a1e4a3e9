"""Planning benchmarks: whole pipeline on 250,000 and 1,000,000 discs, ordering of 20,000 random
discs against the lower bound, and the naive (Python loop of shapely objects) baseline.

    /work/venv/bin/python bench/bench_plan.py            # everything (~1-2 min on 2 cores)
    /work/venv/bin/python bench/bench_plan.py --quick    # skip the 1,000,000-disc case

Each pipeline case runs in a fresh child process (load design -> build_plan -> plan written) so the
peak RSS it reports (ru_maxrss) is that pipeline's own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DENSE = ROOT / "designs" / "dense_cm2.yaml"


# ----------------------------------------------------------------------------------- pipeline
def child_pipeline(design_path: str, out_dir: str) -> None:
    t0 = time.perf_counter()
    from fabplan.design import expand, load_design
    from fabplan.planning import build_plan

    t_import = time.perf_counter()
    design = load_design(design_path)
    discs = expand(design)
    t_load = time.perf_counter()
    plan = build_plan(design, discs=discs)
    t_plan = time.perf_counter()
    plan.save(out_dir)
    t_save = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = ru.ru_maxrss / 1024
    print(
        json.dumps(
            {
                "n": len(discs),
                "import_s": t_import - t0,
                "load_expand_s": t_load - t_import,
                "build_plan_s": t_plan - t_load,
                "save_s": t_save - t_plan,
                "load_to_written_s": t_save - t_import,
                "peak_rss_mb": peak_mb,
                "cpu_s": ru.ru_utime + ru.ru_stime,
                "estimate_s": plan.header["estimate"]["total_s"],
                "plan_hash": plan.plan_hash,
            }
        )
    )


def run_child(design_path: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(design_path), str(Path(tmp) / "plan")],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def million_design(tmp: Path) -> Path:
    text = DENSE.read_text()
    text = text.replace("shape: [500, 500]", "shape: [1000, 1000]")
    text = text.replace(
        "rect: [-50 um, -50 um, 10050 um, 10050 um]", "rect: [-50 um, -50 um, 20050 um, 20050 um]"
    )
    text = text.replace("name: dense-cm2", "name: dense-4cm2")
    p = tmp / "dense_1m.yaml"
    p.write_text(text)
    return p


def bench_verify_geometry() -> dict:
    """Verification of 250,000 discs against a concave film region and two keep-outs (shapely 2)."""
    from fabplan.beam import make_beam
    from fabplan.design import expand, loads_design
    from fabplan.planning.shots import make_raw_shots
    from fabplan.planning.verify import verify_shots

    text = DENSE.read_text().replace(
        "region: {rect: [-50 um, -50 um, 10050 um, 10050 um]}",
        "region: {polygon: [[-50, -50], [10050, -50], [10050, 10050], [5000, 9000], [-50, 10050]]}\n"
        "  keepouts:\n"
        "    - {name: a, circle: {center: [3000, 3000], radius: 200}}\n"
        "    - {name: b, polygon: [[100, 7000], [9000, 7100], [9000, 7140], [100, 7040]]}",
    )
    design = loads_design(text)
    discs = expand(design)
    beam = make_beam(design.beam, design.laser)
    raw = make_raw_shots(design, discs, beam)
    ids = discs.ids
    t0 = time.perf_counter()
    found = verify_shots(design, raw, ids, beam)
    return {
        "n": len(discs),
        "verify_s": time.perf_counter() - t0,
        "found": {v.kind: len(v.index) for v in found},
    }


# ----------------------------------------------------------------------------------- random discs
def hard_core_points(n: int, dmin: float, seed: int = 7) -> np.ndarray:
    """Random sequential addition: uniform darts, kept if >= dmin from every kept one (no overlaps)."""
    rng = np.random.default_rng(seed)
    side = math.sqrt(n * 2.0 * dmin * dmin)  # packing fraction ~0.39 of the exclusion discs
    cell = dmin / math.sqrt(2.0)
    grid: dict[tuple[int, int], tuple[float, float]] = {}
    out = []
    while len(out) < n:
        for px, py in rng.uniform(0, side, (4 * n, 2)).tolist():
            gx, gy = int(px // cell), int(py // cell)
            ok = True
            for ix in range(gx - 2, gx + 3):
                for iy in range(gy - 2, gy + 3):
                    q = grid.get((ix, iy))
                    if q is not None and (q[0] - px) ** 2 + (q[1] - py) ** 2 < dmin * dmin:
                        ok = False
                        break
                if not ok:
                    break
            if ok:
                grid[(gx, gy)] = (px, py)
                out.append((px, py))
                if len(out) == n:
                    break
    return np.array(out)


RANDOM_DESIGN = """schema_version: 1
name: random-20k
sample:
  region: {{rect: [-100, -100, {side}, {side}]}}
laser: {{max_pulse_energy: 5 uJ, repetition_rate: 10 kHz}}
beam:
  profile: {{model: lg01, ring_diameter: 12 um}}
  threshold_fluence: 40 mJ/cm^2
  damage_fluence: 400 mJ/cm^2
arrays:
  - id: R
    disc: {{diameter: 6 um, pulses: 1}}
    csv: random.csv
process: {{mode: step, ordering: nearest}}
"""


def bench_random(n: int = 20_000) -> dict:
    from fabplan.design import expand, load_design
    from fabplan.planning import build_plan
    from fabplan.planning.order import order_shots
    from fabplan.planning.tour import lower_bound, path_length

    pts = hard_core_points(n, 14.0)  # LG01 12 um ring, 6 um discs: trench 19.3 um -> 13.65 um clearance
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "random.csv").write_text(
            "x_um,y_um\n" + "\n".join(f"{x:.3f},{y:.3f}" for x, y in pts.tolist()) + "\n"
        )
        side = float(pts.max()) + 100
        (d / "random.yaml").write_text(RANDOM_DESIGN.format(side=side))
        design = load_design(d / "random.yaml")
        discs = expand(design)
        t0, c0 = time.perf_counter(), time.process_time()
        order, _ = order_shots(
            discs.x_um, discs.y_um, discs.array_index, discs.row, discs.col, [False], "nearest"
        )
        t_order, c_order = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        bound, how = lower_bound(discs.x_um, discs.y_um)
        t_bound = time.perf_counter() - t0
        length = path_length(discs.x_um, discs.y_um, order)
        t0 = time.perf_counter()
        plan = build_plan(design, discs=discs)
        t_plan = time.perf_counter() - t0
    # the same optimiser on uniform points (overlapping discs: not a valid design, a harder case)
    rng = np.random.default_rng(1)
    ux, uy = rng.uniform(0, side, (2, n))
    t0 = time.perf_counter()
    uo, _ = order_shots(ux, uy, np.zeros(n, int), np.zeros(n, int), np.arange(n), [False], "nearest")
    t_uniform = time.perf_counter() - t0
    ub, _ = lower_bound(ux, uy)
    return {
        "n": n,
        "order_s": t_order,
        "order_cpu_s": c_order,
        "bound_s": t_bound,
        "path_mm": length / 1000,
        "bound_mm": bound / 1000,
        "ratio": length / bound,
        "bound_method": how,
        "build_plan_s": t_plan,
        "plan_ratio": plan.header["path_ratio"],
        "uniform_order_s": t_uniform,
        "uniform_ratio": path_length(ux, uy, uo) / ub,
    }


# ----------------------------------------------------------------------------------- naive baseline
def naive_pipeline(x, y, disc_r, trench_r, region, keepouts, margin):
    """What a first script would do: a shapely object per disc, Python loops over discs and pairs,
    a Python nearest-neighbour loop."""
    from shapely.geometry import Point

    discs = [Point(a, b).buffer(r) for a, b, r in zip(x, y, disc_r, strict=True)]
    rings = [
        Point(a, b).buffer(R).difference(Point(a, b).buffer(r))
        for a, b, r, R in zip(x, y, disc_r, trench_r, strict=True)
    ]
    bad = set()
    for i, ring in enumerate(rings):
        for j, disc in enumerate(discs):
            if i != j and ring.distance(disc) < margin:
                bad.add(i)
    outside = [i for i, d in enumerate(discs) if not region.contains(d)]
    hits = [i for i, rg in enumerate(rings) for k in keepouts if rg.intersects(k)]
    todo = list(range(1, len(x)))
    order = [0]
    while todo:
        cx, cy = x[order[-1]], y[order[-1]]
        k = min(range(len(todo)), key=lambda t: (x[todo[t]] - cx) ** 2 + (y[todo[t]] - cy) ** 2)
        order.append(todo.pop(k))
    return bad, outside, hits, order


def bench_naive(n_side: int = 30) -> dict:
    import shapely

    from fabplan.planning.order import order_shots
    from fabplan.planning.verify import keepout_hits, neighbour_conflicts, outside_region_mask

    r_idx = np.repeat(np.arange(n_side), n_side)
    c_idx = np.tile(np.arange(n_side), n_side)
    x, y = c_idx * 20.0, r_idx * 20.0
    n = len(x)
    disc_r, trench_r = np.full(n, 3.0), np.full(n, 9.65)
    region = shapely.box(-50, -50, n_side * 20 + 50, n_side * 20 + 50)
    keepouts = [shapely.Point(200, 200).buffer(15)]
    t0 = time.perf_counter()
    naive = naive_pipeline(x.tolist(), y.tolist(), disc_r.tolist(), trench_r.tolist(), region, keepouts, 1.0)
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs, _ = neighbour_conflicts(x, y, disc_r, trench_r, 1.0)
    out = outside_region_mask(region, x, y, disc_r)
    hits = keepout_hits(keepouts, x, y, trench_r)
    order, _ = order_shots(x, y, np.zeros(n, int), r_idx, c_idx, [True], "serpentine")
    t_fast = time.perf_counter() - t0
    assert len(naive[0]) == len(np.unique(pairs)) and len(naive[1]) == int(out.sum())
    assert sorted(set(naive[2])) == sorted(set(hits[0].tolist()))
    return {"n": n, "naive_s": t_naive, "fabplan_s": t_fast, "speedup": t_naive / t_fast}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2, metavar=("DESIGN", "OUT"))
    ap.add_argument("--quick", action="store_true", help="skip the 1,000,000-disc case")
    args = ap.parse_args()
    if args.child:
        child_pipeline(*args.child)
        return
    print(f"machine: 2 cores (shared), load average {os.getloadavg()[0]:.1f} at start; times are wall clock")
    r = run_child(DENSE)
    print(
        f"dense_cm2 ({r['n']:,} discs, fly): load+expand {r['load_expand_s']:.2f} s, build_plan {r['build_plan_s']:.2f} s, "
        f"save {r['save_s']:.2f} s -> load to plan written {r['load_to_written_s']:.2f} s (target <= 10 s; "
        f"process CPU {r['cpu_s']:.2f} s incl. imports); "
        f"peak RSS {r['peak_rss_mb']:.0f} MB (target <= 1536 MB); imports {r['import_s']:.2f} s"
    )
    if not args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            r = run_child(million_design(Path(tmp)))
        print(
            f"dense 1,000,000 discs: load to plan written {r['load_to_written_s']:.2f} s (target <= 40 s), "
            f"build_plan {r['build_plan_s']:.2f} s, save {r['save_s']:.2f} s, process CPU {r['cpu_s']:.2f} s, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    g = bench_verify_geometry()
    print(
        f"verification of {g['n']:,} discs, concave region + 2 keep-outs: {g['verify_s']:.2f} s "
        f"(found {g['found']})"
    )
    b = bench_random()
    print(
        f"random {b['n']:,} discs (hard-core, no overlaps): ordering {b['order_s']:.2f} s wall, "
        f"{b['order_cpu_s']:.2f} s CPU (target <= 10 s), "
        f"path {b['path_mm']:.1f} mm, lower bound {b['bound_mm']:.1f} mm ({b['bound_method']}, {b['bound_s']:.2f} s), "
        f"ratio {b['ratio']:.3f} (target <= 1.15); whole build_plan {b['build_plan_s']:.2f} s"
    )
    print(
        f"  same optimiser on {b['n']:,} uniform random points (overlapping, not a valid design): "
        f"{b['uniform_order_s']:.2f} s, ratio {b['uniform_ratio']:.3f}"
    )
    for side in (15, 20):
        nb = bench_naive(side)
        print(
            f"naive baseline ({nb['n']} discs, Python loops over shapely objects + Python NN): {nb['naive_s']:.2f} s "
            f"vs fabplan vectorised {nb['fabplan_s'] * 1000:.1f} ms (x{nb['speedup']:.0f}); same violations found"
        )


if __name__ == "__main__":
    main()
