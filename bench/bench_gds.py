"""GDS export and import at production size: designs/dense_cm2.yaml (250,000 discs of 6 um).

Prints: export time (export_gds only, after planning) and file size; import time of that file
(one cell placed by an array) and of a flat layout with 250,000 circle polygons (written by gdstk,
as a flattened KLayout/gdsfactory layout would be). Run: /work/venv/bin/python bench/bench_gds.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from fabplan.beam import make_beam
from fabplan.design import expand, load_design
from fabplan.export.gds import export_gds
from fabplan.export.gds_import import import_circles
from fabplan.planning.shots import make_raw_shots

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn, k: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(k):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    design = load_design(ROOT / "designs" / "dense_cm2.yaml")
    discs = expand(design)
    raw = make_raw_shots(design, discs, make_beam(design.beam, design.laser, base_dir=ROOT / "designs"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "dense.gds"
        for labels in ("auto", "all"):
            t, info = best_of(lambda labels=labels: export_gds(design, raw, discs.ids, out, labels=labels))
            print(
                f"export dense_cm2 ({info['discs']} discs, labels {info['labels']}): {t:.2f} s, "
                f"{out.stat().st_size / 1e6:.3f} MB, {info['arrays']} arrays + {info['single_references']} "
                f"single refs, {info['disc_labels']} labels"
            )
        export_gds(design, raw, discs.ids, out)
        t, c = best_of(lambda: import_circles(out, 1, 0))
        print(f"import that file (AREF): {len(c.x_um)} circles in {t:.2f} s")

        import gdstk

        lib = gdstk.Library(unit=1e-6, precision=1e-9)
        cell = lib.new_cell("FLAT")
        proto = gdstk.ellipse((0, 0), 3.0, tolerance=0.005, layer=1)
        for x, y in zip(discs.x_um.tolist(), discs.y_um.tolist(), strict=True):
            cell.add(proto.copy().translate(x, y))
        flat = Path(tmp) / "flat.gds"
        lib.write_gds(str(flat))
        t, c = best_of(lambda: import_circles(flat, 1, 0), k=2)
        assert np.allclose(c.diameter_um, 6.0, atol=1e-3)
        print(
            f"import flat layout ({len(proto.points)}-vertex polygons, {flat.stat().st_size / 1e6:.0f} MB): "
            f"{len(c.x_um)} circles in {t:.2f} s"
        )


if __name__ == "__main__":
    main()
