"""Reading a measured dose matrix: (pulse energy or peak fluence, pulses, disc diameter) per site.

CSV with a header; columns (case-insensitive, other columns such as a site id are ignored):
  pulse_energy_uj | energy_uj | energy        pulse energy at the sample (uJ), or
  fluence_mj_cm2  | fluence   | peak_fluence  fluence (mJ/cm^2)           -- exactly one of the two
  fluence_definition   (optional) what a fluence dose means: peak (default; the maximum of F(r)),
                       ring-fwhm-average or geometric-annulus (fabplan.beam.base.FLUENCE_DEFINITIONS);
                       an empty cell = not stated (the caller's default); a peak_fluence* column is peak
  pulses          | n_pulses                  pulses per site (integer >= 1)
  diameter_um     | disc_diameter_um | diameter   measured disc diameter (um); empty, "-", "none",
                                               "nan" or "0" means "not ablated" (no trench)
Cells may carry units ("0.4 uJ", "10.2 um"). Lines starting with '#' are comments.
Every bad row is reported at once with its file and line (the first MAX_PROBLEMS of them).

Limits no hand-measured dose matrix reaches keep hostile files in bounded time and memory: MAX_BYTES,
MAX_ROWS data rows (the fit is O(rows) per iteration), MAX_CELL_CHARS per cell (the unit parser is
quadratic in its input) and MAX_PULSES pulses per site; messages never echo an oversized cell whole.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fabplan.beam.base import FLUENCE_DEFINITIONS
from fabplan.errors import Problem, ProblemsError, UserError
from fabplan.units import UnitError, parse_kind

ENERGY_NAMES = ("pulse_energy_uj", "energy_uj", "pulse_energy", "energy")
FLUENCE_NAMES = ("fluence_mj_cm2", "peak_fluence_mj_cm2", "fluence", "peak_fluence")
PULSES_NAMES = ("pulses", "n_pulses")
DIAMETER_NAMES = ("diameter_um", "disc_diameter_um", "diameter", "disc_diameter")
DEFINITION_NAMES = ("fluence_definition",)
PEAK_NAMES = ("peak_fluence_mj_cm2", "peak_fluence")  # the column's name says the definition
NOT_ABLATED = {"", "-", "none", "nan", "na", "n/a", "0", "0.0"}
MAX_BYTES = 16 * 2**20
MAX_ROWS = 5_000  # the fit's start grid costs ~720 model evaluations per row (~2 s per 1,000 rows)
MAX_CELL_CHARS = 100
MAX_PULSES = 1_000_000
MAX_PROBLEMS = 50


def _show(cell: str) -> str:
    """repr of a cell, shortened when long."""
    return repr(cell) if len(cell) <= 40 else f"{cell[:30]!r}... ({len(cell):,} chars)"


@dataclass(frozen=True)
class DoseData:
    """Rows of a dose matrix; `dose` is pulse energy (uJ) or fluence (mJ/cm^2) per `dose_kind`.

    `definition`: per row, what a fluence dose means ("" = not stated: the caller decides, peak by
    default); None when the file has no fluence_definition column (and no peak_fluence* column).
    """

    source: str
    dose_kind: str  # "energy_uj" | "fluence_mj_cm2"
    dose: np.ndarray
    pulses: np.ndarray
    diameter_um: np.ndarray  # NaN = not ablated
    line: np.ndarray  # file line of each row
    definition: np.ndarray | None = None  # per row: a FLUENCE_DEFINITIONS name or "" (not stated)
    dose_column: str = ""

    @property
    def ablated(self) -> np.ndarray:
        return np.isfinite(self.diameter_um)


def _pick(fields: list[str], names: tuple[str, ...]) -> list[str]:
    lower = {f.strip().lower(): f for f in fields}
    return [lower[n] for n in names if n in lower]


def parse_dose_csv(text: str, source: str = "<input>") -> DoseData:
    """Parse dose-matrix CSV text; ProblemsError listing every bad row (file:line)."""
    lines = text.splitlines()
    keep = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not keep:
        raise UserError(f"{source}: no header and no rows")
    reader = csv.reader(io.StringIO("\n".join(lines[i] for i in keep)))
    try:
        rows = list(reader)
    except csv.Error as exc:  # e.g. an unclosed quote running into a field over the csv module's limit
        line = keep[min(reader.line_num, len(keep)) - 1] + 1 if reader.line_num else None
        raise ProblemsError([Problem(f"unreadable CSV: {exc}", file=source, line=line)]) from None
    header = [h.strip() for h in rows[0]]
    energy, fluence = _pick(header, ENERGY_NAMES), _pick(header, FLUENCE_NAMES)
    pulses_col, diam_col = _pick(header, PULSES_NAMES), _pick(header, DIAMETER_NAMES)
    def_col = _pick(header, DEFINITION_NAMES)
    header_line = keep[0] + 1
    missing = []
    if bool(energy) == bool(fluence):
        missing.append(
            "give exactly one dose column: pulse energy ("
            + "/".join(ENERGY_NAMES)
            + ") or peak fluence ("
            + "/".join(FLUENCE_NAMES)
            + ")"
        )
    if not pulses_col:
        missing.append("missing pulses column (" + "/".join(PULSES_NAMES) + ")")
    if not diam_col:
        missing.append("missing disc diameter column (" + "/".join(DIAMETER_NAMES) + ")")
    if missing:
        raise ProblemsError(
            [Problem(m + f"; header is: {', '.join(header)}", file=source, line=header_line) for m in missing]
        )
    kind = "energy_uj" if energy else "fluence_mj_cm2"
    idx = {
        name: header.index(name) for name in (energy or fluence)[:1] + pulses_col[:1] + diam_col[:1] + def_col[:1]
    }
    dose_col, n_col, d_col = (energy or fluence)[0], pulses_col[0], diam_col[0]
    named_peak = dose_col.strip().lower() in PEAK_NAMES

    if len(rows) - 1 > MAX_ROWS:
        raise UserError(
            f"{source}: {len(rows) - 1:,} data rows; a dose matrix has at most {MAX_ROWS:,} "
            "(split the file, or average repeated sites)"
        )
    problems: list[Problem] = []
    dose, pulses, diam, where, defs = [], [], [], [], []
    for k, row in enumerate(rows[1:], start=1):
        if len(problems) >= MAX_PROBLEMS:
            problems.append(Problem(f"... stopped after {MAX_PROBLEMS} bad rows", file=source))
            break
        line_no = keep[k] + 1
        cells = {name: (row[i].strip() if i < len(row) else "") for name, i in idx.items()}
        long = [name for name, c in cells.items() if len(c) > MAX_CELL_CHARS]
        if long:
            problems.append(
                Problem(
                    f"cell of {len(cells[long[0]]):,} characters (at most {MAX_CELL_CHARS}): {_show(cells[long[0]])}",
                    path=long[0],
                    file=source,
                    line=line_no,
                )
            )
            continue
        ok = True

        def bad(col: str, msg: str, line_no: int = line_no) -> None:
            nonlocal ok
            ok = False
            problems.append(Problem(msg, path=col, file=source, line=line_no))

        try:
            x = parse_kind(cells[dose_col], kind)
            if not (np.isfinite(x) and 0 < x < 1e9):
                bad(dose_col, f"dose must be > 0 (and below 1e9), got {cells[dose_col]!r}")
        except UnitError as exc:
            bad(dose_col, str(exc) if cells[dose_col] else "empty dose")
            x = np.nan
        try:
            n = float(cells[n_col])
        except ValueError:
            n = np.nan
        if not (1 <= n <= MAX_PULSES and n == int(n)):  # NaN and inf fail the range test first
            bad(n_col, f"pulses must be a whole number from 1 to {MAX_PULSES:,}, got {_show(cells[n_col])}")
        text_d = cells[d_col]
        if idx[d_col] >= len(row):  # a truncated row is not "nothing ablated": that needs an empty cell
            bad(
                d_col,
                f"row has {len(row)} cell(s), no {d_col} cell (if nothing was ablated, leave the cell empty but keep its comma)",
            )
        elif text_d.lower() in NOT_ABLATED:
            d = np.nan
        else:
            try:
                d = parse_kind(text_d, "length_um")
                if not (np.isfinite(d) and 0 < d < 1e6):
                    bad(
                        d_col,
                        f"diameter must be > 0 and < 1 m (leave empty if nothing ablated), got {text_d!r}",
                    )
            except UnitError as exc:
                bad(d_col, str(exc))
                d = np.nan
        fdef = "peak" if named_peak else ""
        if def_col:
            cell = cells[def_col[0]].lower()
            if cell and cell not in FLUENCE_DEFINITIONS:
                bad(
                    def_col[0],
                    f"unknown fluence definition {_show(cells[def_col[0]])} "
                    f"(expected {', '.join(FLUENCE_DEFINITIONS)}, or empty)",
                )
            elif cell and named_peak and cell != "peak":
                bad(def_col[0], f"fluence definition {cell!r} but the dose column {dose_col!r} is a peak fluence")
            fdef = cell or fdef
        if ok:
            defs.append(fdef)
            dose.append(x)
            pulses.append(int(n))
            diam.append(d)
            where.append(line_no)
    if problems:
        raise ProblemsError(problems)
    if not dose:
        raise UserError(f"{source}: header but no data rows")
    if not np.isfinite(diam).any():
        raise UserError(
            f"{source}: no site was ablated (every {d_col} cell empty): nothing to fit; "
            "measure up to doses that ablate"
        )
    return DoseData(
        source=source,
        dose_kind=kind,
        dose=np.array(dose, dtype=float),
        pulses=np.array(pulses, dtype=np.int64),
        diameter_um=np.array(diam, dtype=float),
        line=np.array(where, dtype=np.int64),
        definition=np.array(defs, dtype=object) if (def_col or named_peak) else None,
        dose_column=dose_col,
    )


def read_dose_csv(path: str | Path) -> DoseData:
    from fabplan.textfiles import read_text_limited

    p = Path(path)
    text = read_text_limited(p, MAX_BYTES, "a dose matrix")  # size-limited, UTF-8 error with its line
    return parse_dose_csv(text, str(p))
