"""Beam/ablation throughput: disc diameter prediction and inversion for 250,000 discs.

    /work/venv/bin/python bench/bench_beam.py

Cases: a dose-matrix-like array (16 unique (fluence, pulses) pairs) and the worst case (every disc
unique), for the LG01 closed form and the annular coherent image (image build time reported apart).
"""

from __future__ import annotations

import time

import numpy as np

from fabplan.beam import AnnularBeam, Lg01Beam
from fabplan.beam.annular import annular_image

N_DISCS = 250_000


def _best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    annular_image.cache_clear()
    t = time.perf_counter()
    ann = AnnularBeam(
        inner_diameter_um=10.0,
        outer_diameter_um=16.0,
        na=0.32,
        threshold_fluence_mj_cm2=40.0,
        damage_fluence_mj_cm2=400.0,
    )
    build = time.perf_counter() - t
    lg = Lg01Beam(ring_diameter_um=12.0, threshold_fluence_mj_cm2=40.0, damage_fluence_mj_cm2=400.0)
    print(f"annular image build (10/16 um mask, NA 0.32, 515 nm; cached per design): {build * 1e3:.1f} ms")
    print(
        f"{'model':<8} {'case':<12} {'diameter ms':>12} {'trench ms':>10} {'inverse ms':>11}  ({N_DISCS} discs)"
    )
    for beam in (lg, ann):
        for case in ("16 unique", "all unique"):
            pulses = rng.choice([1, 2, 5, 10], N_DISCS)
            ranges = np.array([beam.diameter_range_um(n) for n in (1, 2, 5, 10)])
            lo, hi = ranges[:, 0].max(), ranges[:, 1].min()
            if case == "16 unique":
                fl = rng.choice(np.geomspace(120, 380, 4), N_DISCS)
                dia = rng.choice(np.linspace(lo, hi, 6)[1:-1], N_DISCS)
            else:
                fl = rng.uniform(120, 380, N_DISCS)
                dia = rng.uniform(lo, hi, N_DISCS)
            t_d = _best(lambda b=beam, f=fl, p=pulses: b.disc_diameter_um(f, p))
            t_t = _best(lambda b=beam, f=fl, p=pulses: b.trench_outer_diameter_um(f, p))
            t_i = _best(lambda b=beam, d=dia, p=pulses: b.fluence_for_diameter(d, p))
            print(f"{beam.model:<8} {case:<12} {t_d * 1e3:12.1f} {t_t * 1e3:10.1f} {t_i * 1e3:11.1f}")


if __name__ == "__main__":
    main()
