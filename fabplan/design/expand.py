"""Expand a design into a DiscTable: every disc position and parameter, vectorised.

Lattice sites are generated with numpy broadcasting (a million discs in well under a second);
only explicit arrays given as a list or CSV touch Python per row.
"""

from __future__ import annotations

import csv
import io
import itertools
import math

import numpy as np

from fabplan.design import models
from fabplan.design.checks import SKIP_PATTERN, lattice_shape
from fabplan.disctable import DiscTable
from fabplan.errors import Problem, ProblemsError
from fabplan.units import parse_kind

MAX_COORD_UM = 1e6  # 1 m: no stage travels further; beyond, positions are typos (1e308, units)
_PARAMS = ("diameter", "fluence", "pulses")
_COLUMN = {"diameter": "diameter_um", "fluence": "fluence_mj_cm2", "pulses": "pulses"}


def _axis_values(sweep: models.AxisSweep | None, count: int, repeats: int = 1) -> dict[str, np.ndarray]:
    """Per-index values of each swept parameter along one lattice axis (cartesian product)."""
    if sweep is None:
        return {}
    params = sweep.parameters()
    combos = list(itertools.product(*[values for _, values in params]))
    table = np.array(combos, dtype=float).reshape(len(combos), len(params))
    table = np.tile(table, (repeats, 1))
    index = np.arange(count) % len(table)
    return {name: table[index, k] for k, (name, _) in enumerate(params)}


def _lattice_positions(
    a: models.LatticeArray, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if a.lattice == "rect":
        px, py = a.pitch  # type: ignore[misc]
        x, y = cols * px, rows * py
    elif a.lattice == "square":
        x, y = cols * float(a.pitch), rows * float(a.pitch)  # type: ignore[arg-type]
    else:  # hex: odd rows shifted by half a pitch, rows sqrt(3)/2 pitch apart
        p = float(a.pitch)  # type: ignore[arg-type]
        x = cols * p + (rows % 2) * (p / 2.0)
        y = rows * (p * math.sqrt(3.0) / 2.0)
    if a.rotation:
        t = math.radians(a.rotation)
        c, s = math.cos(t), math.sin(t)
        x, y = c * x - s * y, s * x + c * y
    return x + a.origin[0], y + a.origin[1]


def expand_lattice(a: models.LatticeArray, array_index: int) -> DiscTable:
    n_rows, n_cols = lattice_shape(a)
    row_vals = _axis_values(a.sweep.rows if a.sweep else None, n_rows, a.repeats)
    col_vals = _axis_values(a.sweep.cols if a.sweep else None, n_cols)
    rows = np.repeat(np.arange(n_rows, dtype=np.int32), n_cols)
    cols = np.tile(np.arange(n_cols, dtype=np.int32), n_rows)
    keep = np.ones(rows.size, bool)
    for entry in a.skip:
        m = SKIP_PATTERN.match(entry)
        if m:
            keep[int(m["row"]) * n_cols + int(m["col"])] = False
    default = {
        "diameter": np.nan if a.disc.diameter is None else a.disc.diameter,
        "fluence": np.nan if a.disc.fluence is None else a.disc.fluence,
        "pulses": a.disc.pulses,
    }
    values = {}
    for name in _PARAMS:
        if name in row_vals:
            values[name] = row_vals[name][rows]
        elif name in col_vals:
            values[name] = col_vals[name][cols]
        else:
            values[name] = np.full(rows.size, default[name], dtype=float)
    rows, cols = rows[keep], cols[keep]
    x, y = _lattice_positions(a, rows, cols)
    return DiscTable(
        array_ids=(),
        array_index=np.full(rows.size, array_index, np.int32),
        row=rows,
        col=cols,
        x_um=x.astype(float),
        y_um=y.astype(float),
        diameter_um=values["diameter"][keep],
        fluence_mj_cm2=values["fluence"][keep],
        pulses=values["pulses"][keep].astype(np.int32),
    )


_CSV_ALIASES = {
    "x": ("x_um", "x", "length_um"),
    "y": ("y_um", "y", "length_um"),
    "diameter": ("diameter_um", "diameter", "length_um"),
    "fluence": ("fluence_mj_cm2", "fluence", "fluence_mj_cm2"),
}


def _csv_row(row: list[str], index: dict[str, int], default: models.DiscParams) -> dict[str, float]:
    def cell(key: str) -> str:
        k = index.get(key)
        return row[k].strip() if k is not None and k < len(row) else ""

    parsed: dict[str, float] = {}
    for key in ("x", "y", "diameter", "fluence"):
        text = cell(key)
        if text:
            parsed[key] = parse_kind(text, _CSV_ALIASES[key][2])
        elif key in ("x", "y"):
            raise ValueError(f"missing {key}")
        else:
            value = getattr(default, key)
            parsed[key] = math.nan if value is None else value
    text = cell("pulses")
    parsed["pulses"] = int(text) if text else default.pulses
    if parsed["pulses"] < 1:
        raise ValueError("pulses must be >= 1")
    if math.isnan(parsed["diameter"]) and math.isnan(parsed["fluence"]):
        raise ValueError("each disc needs a diameter or a fluence")
    return parsed


def read_disc_csv(path, default: models.DiscParams) -> dict[str, np.ndarray]:
    """Columns x_um, y_um [, diameter_um, fluence_mj_cm2, pulses]; errors name file and line."""
    problems: list[Problem] = []
    out: dict[str, list] = {"x": [], "y": [], "diameter": [], "fluence": [], "pulses": []}
    from fabplan.design.files import MAX_DESIGN_CSV_BYTES, csv_rows
    from fabplan.textfiles import read_text_limited

    # Bounded size, UTF-8 checked up front (a Latin-1 file was a UnicodeDecodeError traceback mid-read);
    # csv errors and oversized cells are located problems (csv_rows)
    handle = io.StringIO(read_text_limited(path, MAX_DESIGN_CSV_BYTES, "a disc CSV"), newline="")
    with handle:
        reader = csv_rows(csv.reader(handle), path)
        header = [h.strip() for h in next(reader, (1, []))[1]]
        index = {}
        for key, (canon, short, _) in _CSV_ALIASES.items():
            for name in (canon, short):
                if name in header:
                    index[key] = header.index(name)
        if "pulses" in header:
            index["pulses"] = header.index("pulses")
        if "x" not in index or "y" not in index:
            raise ProblemsError(
                [Problem(f"CSV header needs x_um and y_um columns, got {header[:8]}", "", str(path), 1, 1)]
            )
        for line_no, row in reader:
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            try:
                parsed = _csv_row(row, index, default)
            except ValueError as exc:
                problems.append(Problem(str(exc), f"row {line_no - 1}", str(path), line_no, 1))
                if len(problems) >= 50:
                    break
                continue
            for key, value in parsed.items():
                out[key].append(value)
    if problems:
        raise ProblemsError(problems)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def expand_explicit(a: models.ExplicitArray, array_index: int, design: models.Design) -> DiscTable:
    if a.csv is not None:
        cols = read_disc_csv(design.resolve(a.csv), a.disc)
    else:
        discs = a.discs or []

        def pick(name: str, fallback: float) -> np.ndarray:
            return np.array(
                [getattr(d, name) if getattr(d, name) is not None else fallback for d in discs], dtype=float
            )

        cols = {
            "x": pick("x", math.nan),
            "y": pick("y", math.nan),
            "diameter": pick("diameter", a.disc.diameter if a.disc.diameter is not None else math.nan),
            "fluence": pick("fluence", a.disc.fluence if a.disc.fluence is not None else math.nan),
            "pulses": pick("pulses", a.disc.pulses),
        }
    n = len(cols["x"])
    return DiscTable(
        array_ids=(),
        array_index=np.full(n, array_index, np.int32),
        row=np.zeros(n, np.int32),
        col=np.arange(n, dtype=np.int32),
        x_um=cols["x"],
        y_um=cols["y"],
        diameter_um=cols["diameter"],
        fluence_mj_cm2=cols["fluence"],
        pulses=cols["pulses"].astype(np.int32),
    )


def expand(design: models.Design) -> DiscTable:
    """All discs of the design in file order (arrays in order, rows then columns).

    `diameter_um` is the design's target and NaN for discs given by fluence (their diameter comes
    from the beam model: `fabplan.beam.expected_diameters(design, discs)`, or a plan's shots).

    >>> from fabplan.design import load_design
    >>> from fabplan.shipped import shipped_design
    >>> discs = expand(load_design(shipped_design("dose_matrix")))
    >>> discs  # doctest: +ELLIPSIS
    DiscTable(72 discs in 1 array(s) [DM]; x 0..280 um, y 0..320 um; D -, F 50-190 mJ/cm^2, pulses 1-5)
    >>> discs.ids[:2].tolist(), discs.fluence_mj_cm2[:2].tolist()
    (['DM-r00c00', 'DM-r00c01'], [50.0, 70.0])
    """
    parts = []
    for i, a in enumerate(design.arrays):
        if isinstance(a, models.LatticeArray):
            parts.append(expand_lattice(a, i))
        else:
            parts.append(expand_explicit(a, i, design))
        far = ~(np.abs(parts[-1].x_um) <= MAX_COORD_UM) | ~(np.abs(parts[-1].y_um) <= MAX_COORD_UM)
        if far.any():  # x = 1e308 (a typo, a CSV in other units): KD-trees downstream overflow on it
            raise ProblemsError([design.problem(("arrays", i), f"{int(far.sum())} disc(s) placed beyond "
                                                f"{MAX_COORD_UM / 1e6:g} m from the origin (check the units)")])
    return DiscTable.concat(parts, tuple(a.id for a in design.arrays))
