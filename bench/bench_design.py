"""Benchmark: design load + expansion to a DiscTable (target: 1,000,000 discs well under 1 s)."""

from __future__ import annotations

import time
from pathlib import Path

from fabplan.design import expand, load_design, loads_design
from fabplan.design.layout import layout_problems

ROOT = Path(__file__).resolve().parents[1]


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    dense = ROOT / "designs" / "dense_cm2.yaml"
    design = load_design(dense)
    print(f"load dense_cm2.yaml:                     {_best(lambda: load_design(dense)) * 1e3:8.1f} ms")
    print(f"expand 250,000 discs:                    {_best(lambda: expand(design)) * 1e3:8.1f} ms")
    discs = expand(design)
    print(f"layout checks 250,000 discs:             {_best(lambda: layout_problems(design, discs), 1) * 1e3:8.1f} ms")
    text = dense.read_text().replace("shape: [500, 500]", "shape: [1000, 1000]").replace(
        "pitch: 20 um", "pitch: 10 um"
    )
    big = loads_design(text)
    print(f"expand 1,000,000 discs:                  {_best(lambda: expand(big)) * 1e3:8.1f} ms")
    table = expand(big)
    print(f"ids for 1,000,000 discs (lazy, on use):  {_best(lambda: table.take(slice(None)).ids, 1) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
