"""Benchmark: lab logbook import + fit at lab scale.

Default: 2,000 discs x 20 pump fluences x 1,024-pixel spectra (40,000 CSV files) simulated by
sim/lasing.py (not timed), then timed: `import_manifest` (parse + store, one transaction) and
`fit_all` (spectral analysis, both threshold fits, linewidth/Q/mode spacing, store). Prints the
database size and how well the fits recover the simulated thresholds.

    python bench/bench_lab.py [--discs 2000] [--points 20] [--dir DIR [--keep] [--reuse]]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fabplan.lab import fit_all, import_manifest, open_db  # noqa: E402
from fabplan.lab.simulate import simulate_series  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--discs", type=int, default=2000)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--dir", help="work directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the spectra and database")
    ap.add_argument("--reuse", action="store_true", help="reuse spectra already simulated in --dir")
    args = ap.parse_args()
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_lab_"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cols = 50
    diam = np.round(rng.choice(np.arange(3.0, 12.5, 0.5), args.discs), 2)
    discs = [
        (
            f"{'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[i // (cols * cols) % 26]}-r{(i // cols) % cols:02d}c{i % cols:02d}",
            d,
        )
        for i, d in enumerate(diam)
    ]
    t0 = time.perf_counter()
    manifest = work / "spectra" / "manifest.csv"
    if not (args.reuse and manifest.is_file()):
        manifest = simulate_series(
            discs, work / "spectra", np.round(np.linspace(2.0, 60.0, args.points), 3), seed=1
        )
    t_sim = time.perf_counter() - t0
    n_spec = args.discs * args.points
    size_files = sum(p.stat().st_size for p in (work / "spectra").rglob("*.csv"))
    db_path = work / "lab.sqlite"
    for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        p.unlink(missing_ok=True)
    con = open_db(db_path)
    t0 = time.perf_counter()
    res = import_manifest(con, manifest, allow_unknown=True)
    t_import = time.perf_counter() - t0
    # Designed diameters, as `lab add-design` would record them (not timed): they feed the WGM
    # prediction of the mode spacing.
    con.executemany("UPDATE discs SET diameter_um=? WHERE disc_id=?", [(float(d), i) for i, d in discs])
    t0 = time.perf_counter()
    fits = fit_all(con)
    t_fit = time.perf_counter() - t0
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    size_db = db_path.stat().st_size
    truth = json.loads((work / "spectra" / "truth.json").read_text())
    err_a, err_b, missed, false_pos = [], [], 0, 0
    for f in fits:
        th = truth[f.disc_id]["threshold_uj_cm2"]
        in_range = th < 60.0 / 1.2 and truth[f.disc_id]["damage_uj_cm2"] is None
        if f.has_threshold:
            if th > 1e6:
                false_pos += 1
            else:
                err_a.append(abs(f.threshold_uj_cm2 / th - 1))
                err_b.append(abs(f.threshold_scurve / th - 1))
        elif in_range:
            missed += 1
    sp = np.array(
        [
            f.mode_spacing_nm / f.fsr_predicted_nm - 1
            for f in fits
            if np.isfinite(f.mode_spacing_nm) and np.isfinite(f.fsr_predicted_nm)
        ]
    )
    status = {s: sum(f.status == s for f in fits) for s in ("lasing", "ASE-only", "dead", "damaged")}
    print(
        f"machine: {os.cpu_count()} cores; {args.discs} discs x {args.points} fluences x 1024 px = {n_spec} spectra"
    )
    print(f"simulate + write files (not timed): {t_sim:.1f} s, {size_files / 1e6:.0f} MB of CSV")
    print(f"import: {t_import:.1f} s ({n_spec / t_import:.0f} spectra/s), {res['series']} series")
    print(f"fit:    {t_fit:.1f} s ({len(fits) / t_fit:.0f} series/s)")
    print(f"import + fit: {t_import + t_fit:.1f} s (target <= 60 s)")
    print(f"database: {size_db / 1e6:.1f} MB ({size_db / n_spec:.0f} bytes/spectrum)")
    print(f"status: {status}")
    if err_a:
        print(
            f"threshold error vs simulated truth: two-segment median {100 * np.median(err_a):.2f} % "
            f"(95th pct {100 * np.percentile(err_a, 95):.1f} %), S-curve median {100 * np.median(err_b):.2f} % "
            f"(95th pct {100 * np.percentile(err_b, 95):.1f} %); missed {missed}, false thresholds {false_pos}"
        )
    if sp.size:
        print(
            f"mode spacing measured vs WGM estimator: median |error| {100 * np.median(np.abs(sp)):.1f} % "
            f"(90th pct {100 * np.percentile(np.abs(sp), 90):.1f} %, {sp.size} discs)"
        )
    if not args.keep and not args.dir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
