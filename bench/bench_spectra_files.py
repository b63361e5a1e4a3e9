"""Per-file read time of the camera formats (tests/data: Solis SIF, LightField SPE) and a text export.

Run: /work/venv/bin/python bench/bench_spectra_files.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from fabplan.lab.spectra_io import read_spectrum, write_spectrum

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def per_call(f: str, n: int = 100) -> float:
    read_spectrum(f)
    t = time.perf_counter()
    for _ in range(n):
        read_spectrum(f)
    return (time.perf_counter() - t) / n


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        txt = Path(tmp) / "s.csv"
        write_spectrum(txt, np.linspace(500, 560, 1024), np.arange(1024.0), 0.1)
        ev = Path(tmp) / "ev.csv"
        ev.write_text(
            "Energy (eV),counts\n" + "\n".join(f"{2.2 + i * 1e-4:.6f},{i}" for i in range(1024)) + "\n"
        )
        files = {
            "SIF kinetic series, one frame of 20 (88 kB)": f"{DATA / 'sif' / 'measurement.sif'}#frame=3",
            "SIF 500 accumulations (8 kB)": str(DATA / "sif" / "raman1.sif"),
            "SPE 3.0 LightField (44 kB)": str(DATA / "spe" / "one_dimensional_spectrum.spe"),
            "text CSV, nm (1024 rows)": str(txt),
            "text CSV, eV header (1024 rows)": str(ev),
        }
        for name, f in files.items():
            print(f"{name}: {per_call(f) * 1e3:.2f} ms per file")


if __name__ == "__main__":
    main()
