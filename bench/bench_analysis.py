"""Lasing-analysis accuracy on series from the independent generator tests/synth_lasing.py.

    python bench/bench_analysis.py [--series 300] [--seed 1]

Prints: found fraction of evaluable lasing series (threshold inside the sweep with >= 2 points below
and >= 3 above), median and p90 relative threshold error, 95 % interval coverage, false calls on
non-lasing series, Q error where the line is resolved (FWHM >= instrument resolution), and time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth_lasing import make_series  # noqa: E402

from fabplan.lab.analysis import analyse_series  # noqa: E402


def run(n_series: int, seed: int, verbose: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    t0 = time.perf_counter()
    for i in range(n_series):
        s = make_series(rng)
        a = analyse_series(s.wl, s.counts, s.exposure_s, s.fluence, s.resolution_nm, dark=s.dark)
        tr = s.truth
        rows.append(dict(lasing=tr["lasing"], evaluable=tr["evaluable"], truth=tr["threshold"],
                         verdict=a.verdict, th=a.threshold, lo=a.lo, hi=a.hi, q=a.q, q_true=tr["q"],
                         resolved=tr["resolved"], limited=a.resolution_limited, beta=tr["beta"],
                         q_lo=a.q_lo, q_hi=a.q_hi, flag=a.flag, mode=a.mode_nm, mode_true=tr["mode_nm"]))
        if verbose:
            r = rows[-1]
            print(i, r["evaluable"], r["verdict"], f"{r['truth']:.2f} {r['th']:.2f} [{r['lo']:.2f},{r['hi']:.2f}]",
                  f"beta={r['beta']:.3g} q={r['q']:.0f}/{r['q_true']:.0f}", r["flag"][:90])
    dt = time.perf_counter() - t0
    ev = [r for r in rows if r["evaluable"]]
    found = [r for r in ev if r["verdict"] == "threshold"]
    err = np.array([abs(r["th"] / r["truth"] - 1) for r in found])
    cover = np.mean([r["lo"] <= r["truth"] <= r["hi"] for r in found]) if found else float("nan")
    dead = [r for r in rows if not r["lasing"]]
    false = sum(r["verdict"] == "threshold" for r in dead)
    wrong_dead = sum(r["verdict"] == "none" for r in ev)
    qs = [r for r in found if r["resolved"] and np.isfinite(r["q"]) and abs(r["mode"] - r["mode_true"]) < 0.3]
    qerr = np.array([abs(r["q"] / r["q_true"] - 1) for r in qs])
    qcov = np.mean([r["q_lo"] <= r["q_true"] <= r["q_hi"] for r in qs]) if qs else float("nan")
    res = dict(series=n_series, evaluable=len(ev), found=len(found) / max(len(ev), 1),
               median_err=float(np.median(err)) if err.size else float("nan"),
               p90_err=float(np.percentile(err, 90)) if err.size else float("nan"),
               coverage=float(cover), called_none=wrong_dead, non_lasing=len(dead), false_threshold=false,
               q_n=len(qs), q_median_err=float(np.median(qerr)) if qerr.size else float("nan"),
               q_within_20=float(np.mean(qerr <= 0.2)) if qerr.size else float("nan"), q_coverage=float(qcov),
               seconds=dt)
    return res


def run_sim(n_discs: int, seed: int) -> dict:
    """The same analysis on `lab simulate`'s simulator (sim/lasing.py: physics-predicted threshold and Q)."""
    from sim.lasing import LasingDisc, Spectrometer, simulate_series

    rng = np.random.default_rng(seed)
    f = np.round(np.linspace(2.0, 60.0, 20), 3)
    rows = []
    t0 = time.perf_counter()
    for _ in range(n_discs):
        disc = LasingDisc(float(rng.uniform(5.0, 15.0)), float(np.clip(rng.normal(1.0, 0.12), 0.4, 1.3)))
        s = simulate_series(disc, f, Spectrometer(), rng)
        a = analyse_series(s.wavelength_nm, s.counts, s.integration_s, s.fluence_uj_cm2, 0.1)
        rows.append((s.truth["threshold_uj_cm2"], s.truth["q"], a, bool((s.counts >= 65535).any())))
    dt = time.perf_counter() - t0
    ev = [r for r in rows if r[0] < 0.8 * f.max()]
    found = [r for r in ev if r[2].has_threshold]
    err = np.array([abs(r[2].threshold / r[0] - 1) for r in found])
    cov = np.mean([r[2].lo <= r[0] <= r[2].hi for r in found]) if found else float("nan")
    qe = np.array([abs(r[2].q / r[1] - 1) for r in found if np.isfinite(r[2].q)])
    return dict(n=n_discs, evaluable=len(ev), found=len(found) / max(len(ev), 1),
                median_err=float(np.median(err)), p90_err=float(np.percentile(err, 90)), coverage=float(cov),
                q_median_err=float(np.median(qe)), q_within_20=float(np.mean(qe <= 0.2)),
                clipped_series=sum(r[3] for r in rows), flagged=sum(bool(r[2].clipped) for r in rows), seconds=dt)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--sim", type=int, default=0, help="also N discs from sim/lasing.py (lab simulate's model)")
    a = ap.parse_args()
    if a.sim:
        r = run_sim(a.sim, a.seed)
        print(f"sim/lasing.py: {r['n']} discs ({r['evaluable']} with threshold < 0.8 x top fluence), "
              f"{r['seconds']:.1f} s: found {100 * r['found']:.1f} %, median error {100 * r['median_err']:.2f} %, "
              f"p90 {100 * r['p90_err']:.2f} %, coverage {100 * r['coverage']:.1f} %, Q median error "
              f"{100 * r['q_median_err']:.1f} % (within 20 %: {100 * r['q_within_20']:.1f} %), clipped series "
              f"{r['clipped_series']} all flagged: {r['flagged'] == r['clipped_series']}")
    if not a.series:
        return
    r = run(a.series, a.seed, a.v)
    print(f"series {r['series']} (evaluable lasing {r['evaluable']}, non-lasing {r['non_lasing']}), "
          f"{r['seconds']:.1f} s ({1e3 * r['seconds'] / r['series']:.0f} ms/series)")
    print(f"found {100 * r['found']:.1f} %  median error {100 * r['median_err']:.2f} %  "
          f"p90 error {100 * r['p90_err']:.2f} %  95 % interval coverage {100 * r['coverage']:.1f} %")
    print(f"lasing series called 'none': {r['called_none']}; thresholds called on non-lasing: "
          f"{r['false_threshold']}/{r['non_lasing']}")
    print(f"Q (resolved lines, n={r['q_n']}): median error {100 * r['q_median_err']:.1f} %, within 20 %: "
          f"{100 * r['q_within_20']:.1f} %, interval coverage {100 * r['q_coverage']:.1f} %")


if __name__ == "__main__":
    main()
