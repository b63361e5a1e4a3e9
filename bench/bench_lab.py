"""Benchmark: lab logbook import + fit at lab scale, on SQLite and on a local PostgreSQL in one run.

Default: 2,000 discs x 20 pump fluences x 1,024-pixel spectra (40,000 CSV files) simulated by
sim/lasing.py (not timed), then timed on each backend: `import_manifest` (parse + store, one
transaction) and `fit_all` (spectral analysis, threshold fits, linewidth/Q/mode spacing, store).
Then 8 concurrent writer processes on each backend: (a) each imports its own 1,000-spectrum
manifest (aggregate spectra/s), (b) each adds 40 single spectra, one transaction each (commits/s).

PostgreSQL: `--pg URL`, else $FABPLAN_TEST_PG_URL, else a throwaway server is initdb'd into a
temporary folder (Debian's package, unix socket, PostgreSQL's default durability: fsync on) and
stopped at the end. SQLite runs in WAL mode with synchronous=NORMAL (the logbook's settings).

    python bench/bench_lab.py [--discs 2000] [--points 20] [--dir DIR [--keep] [--reuse]]
                              [--backends sqlite,postgresql] [--writers 8] [--no-fit] [--fit-workers N]

Each timed step also prints its CPU seconds (this process; for the import also its parsing worker
processes) and the load average before and after: on a shared machine the wall time follows the
load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fabplan.lab import fit_all, import_manifest, open_db  # noqa: E402
from fabplan.lab.simulate import simulate_series  # noqa: E402

WRITER = """
import sys, time
from fabplan.lab import open_db, import_manifest, add_spectrum
url, mode, path, me, go = sys.argv[1:6]
con = open_db(url)
while time.time() < float(go):   # all writers start together
    time.sleep(0.001)
t0 = time.perf_counter()
if mode == "import":
    import_manifest(con, path, sample=me, allow_unknown=True, workers=1)
else:
    for k in range(40):
        add_spectrum(con, f"W-r00c{int(me[1:]):02d}", 5 + k, path, sample="adds", allow_unknown=True)
print(time.perf_counter() - t0)
"""


def _disc_ids(n: int) -> list[str]:
    cols = 50
    return [f"{'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[i // (cols * cols) % 26]}-r{(i // cols) % cols:02d}c{i % cols:02d}"
            for i in range(n)]


def _cpu() -> tuple[float, float]:
    """(this process, its reaped children) CPU seconds so far."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def import_and_fit(url: str, manifest: Path, discs, fit: bool = True, fit_workers: int | None = None) -> dict:
    con = open_db(url)
    load0 = os.getloadavg()[0]
    c0 = _cpu()
    t0 = time.perf_counter()
    res = import_manifest(con, manifest, allow_unknown=True)
    t_import = time.perf_counter() - t0
    c1 = _cpu()
    load1 = os.getloadavg()[0]
    # Designed diameters, as `lab add-design` would record them (not timed): they feed the WGM
    # prediction of the mode spacing.
    from fabplan.lab.db import transaction

    with transaction(con):
        con.executemany("UPDATE discs SET diameter_um=? WHERE disc_id=?", [(float(d), i) for i, d in discs])
    t0 = time.perf_counter()
    fits = fit_all(con, workers=fit_workers) if fit else []
    t_fit = time.perf_counter() - t0
    c2 = _cpu()
    load2 = os.getloadavg()[0]
    if con.dialect == "sqlite":
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = Path(con.address).stat().st_size
    else:
        size = int(con.execute("SELECT pg_database_size(current_database())").fetchone()[0])
    con.close()
    return {"import_s": t_import, "fit_s": t_fit, "series": res["series"], "fits": fits, "size": size,
            "import_cpu": (c1[0] - c0[0], c1[1] - c0[1]), "fit_cpu": c2[0] - c1[0] + c2[1] - c1[1],
            "loads": (load0, load1, load2)}


def writers(url: str, mode: str, paths: list[Path]) -> tuple[float, list[float]]:
    """n writer processes at once; returns (wall s from the common start, per-writer s)."""
    open_db(url).close()
    go = time.time() + 3.0 + 0.3 * len(paths)  # after every process has imported fabplan and connected
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, mode, str(p), f"w{k}", str(go)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for k, p in enumerate(paths)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.time() - go
    if any(p.returncode for p in procs):
        raise SystemExit(f"a writer failed: {[p.returncode for p in procs]}")
    return wall, [float(o.strip().splitlines()[-1]) for o in outs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--discs", type=int, default=2000)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--dir", help="work directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the spectra and database")
    ap.add_argument("--reuse", action="store_true", help="reuse spectra already simulated in --dir")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--pg", help="PostgreSQL server URL (a database is created per measurement)")
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--no-fit", action="store_true", help="time the import only")
    ap.add_argument("--fit-workers", type=int, help="fit_all(workers=N) (default: fit_all's own default)")
    args = ap.parse_args()
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_lab_"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    diam = np.round(rng.choice(np.arange(3.0, 12.5, 0.5), args.discs), 2)
    discs = list(zip(_disc_ids(args.discs), diam, strict=True))
    t0 = time.perf_counter()
    manifest = work / "spectra" / "manifest.csv"
    if not (args.reuse and manifest.is_file()):
        manifest = simulate_series(
            discs, work / "spectra", np.round(np.linspace(2.0, 60.0, args.points), 3), seed=1
        )
    # Writers' manifests: 50 discs x 20 fluences = 1,000 spectra each; one spectrum file for the adds.
    wman = []
    for k in range(args.writers):
        m = work / f"writer{k}" / "manifest.csv"
        if not (args.reuse and m.is_file()):
            m = simulate_series([(f"W{k}-r00c{i:02d}", 8.0) for i in range(50)], work / f"writer{k}",
                                np.round(np.linspace(2.0, 60.0, 20), 3), seed=10 + k)
        wman.append(m)
    one = next((p for p in (work / "writer0").rglob("*.csv") if p.name != "manifest.csv"), None)
    t_sim = time.perf_counter() - t0
    n_spec = args.discs * args.points
    size_files = sum(p.stat().st_size for p in (work / "spectra").rglob("*.csv"))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; {args.discs} discs x "
          f"{args.points} fluences x 1024 px = {n_spec} spectra")
    print(f"simulate + write files (not timed): {t_sim:.1f} s, {size_files / 1e6:.0f} MB of CSV", flush=True)

    server = None
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results: dict[str, dict] = {}
    try:
        for b in backends:
            if b == "sqlite":
                def new_url(tag: str) -> str:
                    p = work / f"{tag}.sqlite"
                    for q in (p, Path(f"{p}-wal"), Path(f"{p}-shm")):
                        q.unlink(missing_ok=True)
                    return str(p)
            else:
                from tests.lab_pg import fresh_database, start, stop

                base = args.pg or os.environ.get("FABPLAN_TEST_PG_URL")
                if not base:
                    server = Path(tempfile.mkdtemp(prefix="bench-pg-"))
                    base = start(server, durable=True)

                def new_url(tag: str, base=base) -> str:
                    return fresh_database(base)
            r = import_and_fit(new_url("lab"), manifest, discs, fit=not args.no_fit, fit_workers=args.fit_workers)
            results[b] = r
            (cm, cw), la = r["import_cpu"], r["loads"]
            print(f"[{b}] import: {r['import_s']:.2f} s ({n_spec / r['import_s']:.0f} spectra/s), {r['series']} series; "
                  f"CPU {cm:.2f} s main + {cw:.2f} s parsing workers; load {la[0]:.1f} -> {la[1]:.1f}", flush=True)
            if not args.no_fit:
                print(f"[{b}] fit: {r['fit_s']:.1f} s ({len(r['fits']) / r['fit_s']:.0f} series/s), CPU {r['fit_cpu']:.1f} s; "
                      f"load -> {la[2]:.1f}; import + fit: {r['import_s'] + r['fit_s']:.1f} s", flush=True)
            print(f"[{b}] database {r['size'] / 1e6:.0f} MB", flush=True)
            n_w = args.writers
            if not n_w:
                continue
            wall_i, per_i = writers(new_url("w_import"), "import", wman)
            wall_a, per_a = writers(new_url("w_add"), "add", [one] * args.writers)
            print(f"[{b}] {n_w} writers importing 1,000 spectra each at once: {n_w * 1000 / wall_i:.0f} spectra/s "
                  f"aggregate ({wall_i:.1f} s wall; slowest writer {max(per_i):.1f} s, fastest {min(per_i):.1f} s)")
            print(f"[{b}] {n_w} writers adding 40 single spectra each (one transaction per spectrum): "
                  f"{n_w * 40 / wall_a:.0f} commits/s aggregate ({wall_a:.1f} s wall)", flush=True)
    finally:
        if server is not None:
            stop(server)
    if {"sqlite", "postgresql"} <= results.keys():
        s, p = results["sqlite"], results["postgresql"]
        tot_s, tot_p = s["import_s"] + s["fit_s"], p["import_s"] + p["fit_s"]
        print(f"PostgreSQL / SQLite, import + fit: {tot_p / tot_s:.2f} (goal <= 2); import {p['import_s'] / s['import_s']:.2f}, "
              f"fit {p['fit_s'] / s['fit_s']:.2f}; SQLite import + fit {tot_s:.1f} s (previous 18.5 s)")
    fits = next(iter(results.values()))["fits"] if results else []
    truth = json.loads((work / "spectra" / "truth.json").read_text())
    err, missed = [], 0
    for f in fits:
        th = truth[f.disc_id]["threshold_uj_cm2"]
        if f.has_threshold and th < 1e6:
            err.append(abs(f.threshold_uj_cm2 / th - 1))
        elif not f.has_threshold and th < 60.0 / 1.2 and truth[f.disc_id]["damage_uj_cm2"] is None:
            missed += 1
    if err:
        print(f"threshold error vs simulated truth: median {100 * np.median(err):.2f} % "
              f"(95th pct {100 * np.percentile(err, 95):.1f} %), missed {missed}")
    if not args.keep and not args.dir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
