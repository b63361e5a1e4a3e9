"""What timing a session's selection costs before its first shot (issue 17 leftover).

The executor times what it will fire after pre-flight (fabplan.execute.selection_estimate): on a
250,000-disc plan that must stay a small fraction of a second. Prints, for designs/dense_cm2.yaml in
fly and step mode: planning time (for scale), then the session estimate of the whole plan, of half of
it (every other row, --only style), of a resume with the first 30 % done, and with a random 30 % left
out (every fly row partial: the executor steps partial rows, and so does the estimate). Median of 5.

    /work/venv/bin/python bench/bench_estimate_selection.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from fabplan.design import load_design
from fabplan.execute.selection_estimate import session_estimate
from fabplan.planning import build_plan

DENSE = Path(__file__).resolve().parents[1] / "designs" / "dense_cm2.yaml"


def _median_ms(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    base = load_design(DENSE)
    rng = np.random.default_rng(0)
    for mode in ("fly", "step"):
        design = base.model_copy(update={"process": base.process.model_copy(update={"mode": mode})})
        t0 = time.perf_counter()
        plan = build_plan(design)
        t_plan = time.perf_counter() - t0
        n = len(plan.shots)
        ids = plan.shots.disc_id.astype(str)
        row = np.char.partition(ids, "c")[:, 0]
        rows = np.unique(row)
        half = np.isin(row, rows[::2])
        resumed = np.arange(n) >= int(0.3 * n) + 123  # a resume: the first 30 % fired, cut inside a row
        scattered = rng.random(n) > 0.3  # 30 % left out at random (a long --skip): every fly row partial
        print(f"{DENSE.name} {mode}: {n:,} shots, {len(plan.lines):,} fly lines; planned in {t_plan:.2f} s")
        for name, mask in (("whole plan", np.ones(n, bool)), ("every other row", half), ("resume, 30 % done", resumed),
                           ("scattered 30 % out", scattered)):
            est = session_estimate(plan, mask, start_um=(0.0, 0.0, 0.0))
            ms = _median_ms(lambda mask=mask, plan=plan: session_estimate(plan, mask, start_um=(0.0, 0.0, 0.0)))
            print(f"  {name:<18} {int(mask.sum()):>8,} shots  estimate {est['total_s'] / 60:7.1f} min "
                  f"(whole plan {plan.estimate['total_s'] / 60:.1f} min)  timed in {ms:8.1f} ms")


if __name__ == "__main__":
    main()
