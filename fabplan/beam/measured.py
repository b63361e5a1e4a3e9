"""A measured radial beam profile (e.g. azimuthally averaged camera image of the focal spot).

The (r, intensity) samples are interpolated shape-preservingly (PCHIP: no overshoot between samples,
so no spurious ring maximum) onto a fine grid, normalised to peak 1; the pulse energy normalisation
comes from integrating that shape (E = F_pk * integral f 2 pi r dr). Zero beyond the last sample.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy.interpolate import PchipInterpolator

from fabplan.beam.base import TabulatedBeam
from fabplan.errors import UserError

GRID_STEP_UM = 0.005
MAX_RADIUS_UM = 1000.0  # a donut focal spot is ~10 um; 1 mm bounds the grid at 200,000 points
MAX_SAMPLES = 100_000


class MeasuredBeam(TabulatedBeam):
    """Beam from sampled radial intensity (arbitrary units); r in um from the beam centre."""

    model = "measured"

    def __init__(self, *, r_um, intensity, source: str = "<arrays>", **threshold):
        r = np.asarray(r_um, dtype=float).ravel()
        v = np.asarray(intensity, dtype=float).ravel()
        where = f"measured beam profile {source}"
        if r.size != v.size or r.size < 3:
            raise UserError(f"{where}: need at least 3 (r, intensity) samples of equal length")
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(v))):
            raise UserError(f"{where}: non-numeric or infinite values")
        if np.any(r < 0) or np.any(np.diff(r) <= 0):
            raise UserError(f"{where}: radii must be >= 0 and strictly increasing")
        if r[-1] > MAX_RADIUS_UM or r.size > MAX_SAMPLES:  # the fine grid below is r_max / 5 nm points
            raise UserError(
                f"{where}: a focal-spot profile reaches at most {MAX_RADIUS_UM:g} um in at most "
                f"{MAX_SAMPLES:,} samples (got {r[-1]:.4g} um, {r.size:,} samples): check the units"
            )
        if np.any(v < 0) or not v.max() > 0:
            raise UserError(f"{where}: intensities must be >= 0 and not all zero")
        if r[0] > 0:  # hold the innermost value down to the centre
            r = np.concatenate(([0.0], r))
            v = np.concatenate(([v[0]], v))
        grid = np.arange(0.0, r[-1] + GRID_STEP_UM / 2, min(GRID_STEP_UM, r[-1] / 100))
        grid[-1] = min(grid[-1], r[-1])
        f = PchipInterpolator(r, v)(grid)
        self.source = source
        self.samples = (r, v / v.max())
        super().__init__(grid, f, **threshold)

    def _params(self):
        return {
            "source": self.source,
            "r_um": self.samples[0].tolist(),
            "intensity": self.samples[1].tolist(),
        }


def read_profile_csv(path: str | Path, radius_column: str = "r_um", value_column: str = "intensity"):
    """(r_um, intensity) arrays from a CSV with a header; UserError naming file and line on bad rows."""
    from fabplan.design.files import MAX_DESIGN_CSV_BYTES
    from fabplan.textfiles import read_text_limited

    p = Path(path)
    text = read_text_limited(p, MAX_DESIGN_CSV_BYTES, "a beam profile")  # size- and UTF-8-checked
    from fabplan.design.files import MAX_CELL_CHARS

    text_lines = text.splitlines()
    long = next((ln for ln in text_lines if len(ln) > 64 * MAX_CELL_CHARS), None)
    if long is not None:  # also keeps csv's 131,072-char field limit out of reach
        raise UserError(f"{p}: a line of {len(long):,} characters: not a radial profile CSV")
    lines = [i + 1 for i, line in enumerate(text_lines) if not line.lstrip().startswith("#")]  # file lines
    rows = csv.DictReader(text_lines[i - 1] for i in lines)
    try:
        fields = rows.fieldnames or []
    except csv.Error as exc:
        raise UserError(f"{p}: unreadable CSV ({exc})") from None
    for col in (radius_column, value_column):
        if col not in fields:
            raise UserError(f"{p}: no column {col!r} (columns: {', '.join(fields) or 'none'})")
    r, v = [], []
    for k, row in _dict_rows(rows, p):
        line_no = lines[k + 1] if k + 1 < len(lines) else "?"
        try:
            r.append(float(row[radius_column]))
            v.append(float(row[value_column]))
        except (TypeError, ValueError):
            raise UserError(
                f"{p}:{line_no}: expected numbers in {radius_column!r} and {value_column!r}, got "
                f"{str(row.get(radius_column))[:30]!r}, {str(row.get(value_column))[:30]!r}"
            ) from None
    return np.array(r), np.array(v)


def _dict_rows(rows, path):
    """enumerate(rows) with a csv error as a UserError naming the file."""
    k = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UserError(f"{path}: unreadable CSV ({exc})") from None
        yield k, row
        k += 1
