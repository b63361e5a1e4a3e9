"""Regenerate the tour's sample inputs in this folder (a lab would measure/draw its own).

measured_diameters.csv -- a SYNTHETIC dose matrix laid out like designs/dose_matrix.yaml (8 peak
    fluences 50-190 mJ/cm^2 x pulses 1, 2, 5 x 3 repeats, site ids DM-rRRcCC): disc diameters from
    the LG01 closed form computed here independently of fabplan (fluence e x exp(-x) F_peak with
    x = r^2 / r_p^2, edge where it equals F_th(N) = F_th(1) N^(S-1): x = -W0(-F_th(N) / (e F_peak)),
    D = 2 r_p sqrt(x); scipy's Lambert W), with F_th(1) = 36 mJ/cm^2, S = 0.85, ring diameter 11.6 um,
    and Gaussian measurement noise of 2.5 % of the diameter (seed 1). Sites below threshold are empty. The fit
    (`fabplan calibrate`) should give these values back within its uncertainties.
drawn.gds -- 12 circles on layer 1/0 drawn with KLayout's own Basic.CIRCLE PCell (klayout Python
    module, 64 points): a 3 x 4 grid at 40 um pitch, diameters 5-9.5 um along the columns, per row
    as a lab member would draw them in the KLayout editor (`fabplan import-gds` reads them by edges).

    python designs/samples/make_samples.py      # needs scipy and klayout (the test extra)
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy.special import lambertw

HERE = Path(__file__).resolve().parent
F_TH1, S, RING_D, NOISE_REL, SEED = 36.0, 0.85, 11.6, 0.025, 1
FLUENCES = np.arange(50.0, 191.0, 20.0)  # designs/dose_matrix.yaml: columns
PULSES = (1, 2, 5)  # rows, repeated 3 times
REPEATS = 3


def lg01_diameter_um(peak_fluence: np.ndarray, pulses: np.ndarray) -> np.ndarray:
    threshold = F_TH1 * pulses.astype(float) ** (S - 1.0)
    ratio = threshold / peak_fluence
    x = np.where(ratio <= 1.0, -lambertw(-ratio / np.e, 0).real, np.nan)
    return RING_D * np.sqrt(x)


def measured_csv(path: Path) -> None:
    rows, fluence, pulses = [], [], []
    for rep in range(REPEATS):
        for k, n in enumerate(PULSES):
            for c, f in enumerate(FLUENCES):
                rows.append(f"DM-r{rep * len(PULSES) + k:02d}c{c:02d}")
                fluence.append(f)
                pulses.append(n)
    d = lg01_diameter_um(np.array(fluence), np.array(pulses))
    d = d * (1.0 + np.random.default_rng(SEED).normal(0.0, NOISE_REL, d.size))
    with open(path, "w", newline="") as fh:
        fh.write("# SYNTHETIC sample for the README tour, made by designs/samples/make_samples.py:\n"
                 f"# LG01 closed form, F_th(1) {F_TH1:g} mJ/cm^2, S {S:g}, ring {RING_D:g} um, "
                 f"noise {100 * NOISE_REL:g} % (seed {SEED}). Replace with your measured dose matrix.\n")
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["site", "fluence_mj_cm2", "pulses", "diameter_um"])
        for site, f, n, di in zip(rows, fluence, pulses, d, strict=True):
            w.writerow([site, f"{f:g}", n, "" if not np.isfinite(di) else f"{di:.2f}"])


def drawn_gds(path: Path) -> None:
    import klayout.db as kdb
    import klayout.lib  # noqa: F401 - registers KLayout's Basic library (the CIRCLE PCell)

    ly = kdb.Layout()
    ly.dbu = 0.001
    top = ly.create_cell("DRAWN")
    for col, d in enumerate((5.0, 6.5, 8.0, 9.5)):
        r = d / 2
        circle = ly.create_cell("CIRCLE", "Basic", {"layer": kdb.LayerInfo(1, 0), "radius": r, "actual_radius": r,
                                                     "handle": kdb.DPoint(-r, 0), "npoints": 64})
        for row in range(3):
            top.insert(kdb.DCellInstArray(circle.cell_index(), kdb.DTrans(kdb.DVector(40.0 * col, 40.0 * row))))
    ly.write(str(path))


if __name__ == "__main__":
    measured_csv(HERE / "measured_diameters.csv")
    drawn_gds(HERE / "drawn.gds")
    print(f"written: {HERE / 'measured_diameters.csv'}, {HERE / 'drawn.gds'}")
