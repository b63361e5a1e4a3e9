"""Plan and ShotTable: the pure, content-hashed result of planning, and its on-disk form.

A plan directory holds two files and nothing else that varies between runs:
  plan.json  the header (metadata, estimate, hashes) plus the fly-mode `lines`
  shots.csv  one row per shot IN FIRING ORDER, fixed decimal places per column

Float columns are quantised to the decimals written in the CSV when the table is built, so a plan
loaded from disk equals the plan that was saved, and saving it again gives the same bytes.
`plan_hash` is sha256 over the design hash, the model parameters (canonical JSON), the bytes of
shots.csv and (format version 2) every other field of plan.json, the fly `lines` included: the
executor acts on lines, tolerance, settle time and mode, so an edit to any of them is refused.
Two plans with the same hash fire the same shots the same way.

Loading defends itself: size limits on both files, every column parsed with a located error,
`seq` must be 0..n-1, fly lines must be well-formed and reference existing shots.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fabplan.errors import UserError
from fabplan.jsonutil import finite

FORMAT = "fabplan-plan"
FORMAT_VERSION = 2  # 2: plan_hash covers the whole of plan.json (fly lines, tolerance, settle, mode)
PLAN_FILE = "plan.json"
SHOTS_FILE = "shots.csv"

# (name, kind, decimals). kind: "i" integer, "f" float (fixed decimals), "s" string.
# Positions to 0.1 nm, energies to 1 pJ: far below stage repeatability and laser stability.
SHOT_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("seq", "i", 0),
    ("disc_id", "s", 0),
    ("x_um", "f", 4),
    ("y_um", "f", 4),
    ("z_um", "f", 4),
    ("sample_x_um", "f", 4),
    ("sample_y_um", "f", 4),
    ("fluence_mj_cm2", "f", 4),
    ("pulse_energy_uj", "f", 6),
    ("pulses", "i", 0),
    ("attenuator", "f", 4),
    ("diameter_um", "f", 4),
    ("trench_outer_um", "f", 4),
    ("line", "i", 0),
)
COLUMN_NAMES = tuple(c[0] for c in SHOT_COLUMNS)
_KIND = {name: kind for name, kind, _ in SHOT_COLUMNS}
_DECIMALS = {name: dec for name, _, dec in SHOT_COLUMNS}


def quantize(values: np.ndarray, decimals: int) -> np.ndarray:
    """Round to `decimals` so that '%.{decimals}f' printing and parsing round-trips exactly.

    round(x * 10^d) / 10^d is the correctly rounded double of an exact decimal, which is what a
    CSV reader returns for that decimal.
    """
    scale = 10.0**decimals
    out = np.round(np.asarray(values, dtype=np.float64) * scale) / scale
    out[out == 0] = 0.0  # no "-0.0000" in the file
    return out


@dataclass
class ShotTable:
    """Struct of numpy arrays, one entry per shot, in firing order (see SHOT_COLUMNS).

    x/y/z are STAGE coordinates (alignment and focus map applied); sample_x/sample_y are the disc
    centre in the design's sample coordinates. `attenuator` is NaN without an attenuator; `line`
    is the fly-mode row index (-1 in step mode).
    """

    seq: np.ndarray
    disc_id: np.ndarray
    x_um: np.ndarray
    y_um: np.ndarray
    z_um: np.ndarray
    sample_x_um: np.ndarray
    sample_y_um: np.ndarray
    fluence_mj_cm2: np.ndarray
    pulse_energy_uj: np.ndarray
    pulses: np.ndarray
    attenuator: np.ndarray
    diameter_um: np.ndarray
    trench_outer_um: np.ndarray
    line: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.seq)
        for name in COLUMN_NAMES:
            arr = getattr(self, name)
            kind = _KIND[name]
            if kind == "i":
                arr = np.asarray(arr, dtype=np.int64)
            elif kind == "f":
                arr = quantize(arr, _DECIMALS[name])
            else:
                arr = np.asarray(arr, dtype=str)
            if arr.shape != (n,):
                raise ValueError(f"ShotTable column {name} has shape {arr.shape}, expected ({n},)")
            setattr(self, name, arr)

    def __len__(self) -> int:
        return int(self.seq.shape[0])

    @classmethod
    def from_columns(cls, **columns: Any) -> ShotTable:
        """Build from keyword columns; `seq` defaults to 0..n-1 and `line` to -1."""
        n = len(columns["x_um"])
        columns.setdefault("seq", np.arange(n))
        columns.setdefault("line", np.full(n, -1))
        missing = set(COLUMN_NAMES) - set(columns)
        if missing:
            raise ValueError(f"ShotTable missing columns: {sorted(missing)}")
        return cls(**{name: columns[name] for name in COLUMN_NAMES})

    def take(self, index: np.ndarray, renumber: bool = True) -> ShotTable:
        """Rows in the order of `index` (e.g. a firing order); `seq` renumbered 0..n-1."""
        cols = {name: getattr(self, name)[index] for name in COLUMN_NAMES}
        if renumber:
            cols["seq"] = np.arange(len(cols["seq"]))
        return ShotTable(**cols)

    def __repr__(self) -> str:
        from fabplan._display import span

        return (
            f"ShotTable({len(self):,} shots; D {span(self.diameter_um, 'um')}, "
            f"F {span(self.fluence_mj_cm2, 'mJ/cm^2')}, E {span(self.pulse_energy_uj, 'uJ')}, "
            f"pulses {span(self.pulses, '')})"
        )

    def to_pandas(self):
        """One row per shot in firing order (pandas DataFrame; needs pandas, the `data` extra)."""
        from fabplan._display import to_pandas

        return to_pandas({name: getattr(self, name) for name in COLUMN_NAMES})

    def _repr_html_(self) -> str:
        from fabplan._display import html_summary

        return html_summary(
            f"ShotTable: {len(self):,} shots",
            [("summary", repr(self)[len("ShotTable(") : -1])],
            {name: getattr(self, name) for name in COLUMN_NAMES},
        )

    def row(self, i: int) -> dict[str, Any]:
        """One shot as a plain dict (python scalars), e.g. for a journal entry."""
        out: dict[str, Any] = {}
        for name in COLUMN_NAMES:
            v = getattr(self, name)[i]
            kind = _KIND[name]
            out[name] = int(v) if kind == "i" else float(v) if kind == "f" else str(v)
        return out

    def equals(self, other: ShotTable) -> bool:
        """Exact equality of every column (NaN equal to NaN)."""
        if len(self) != len(other):
            return False
        for name in COLUMN_NAMES:
            a, b = getattr(self, name), getattr(other, name)
            if _KIND[name] == "f":
                if not np.array_equal(a, b, equal_nan=True):
                    return False
            elif not np.array_equal(a, b):
                return False
        return True

    # -- CSV ---------------------------------------------------------------------------------
    def to_csv_bytes(self) -> bytes:
        """Canonical CSV: header line, '\\n' line ends, fixed decimals, 'nan' for missing.

        Formatted column by column, and only the distinct values of repetitive columns (a dense
        array has one fluence, energy, diameter...): ~5x faster than formatting row tuples.
        """
        n = len(self)
        cols = [_format_column(getattr(self, name), kind, dec) for name, kind, dec in SHOT_COLUMNS]
        body = "\n".join(map(",".join, zip(*cols, strict=True))) if n else ""
        text = ",".join(COLUMN_NAMES) + "\n" + (body + "\n" if body else "")
        if text.count("\n") != n + 1 or text.count(",") != (len(COLUMN_NAMES) - 1) * (n + 1):
            raise UserError("disc ids must not contain commas or newlines")
        return text.encode("ascii")

    @classmethod
    def from_csv_bytes(cls, data: bytes, source: str = SHOTS_FILE) -> ShotTable:
        """Parse canonical shots.csv; UserError naming `source`, the line and the column on bad data."""
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise UserError(
                f"{source}:{line}: not ASCII text (byte {exc.start}): not a fabplan shots.csv"
            ) from None
        lines = text.splitlines()
        if not lines or tuple(lines[0].split(",")) != COLUMN_NAMES:
            raise UserError(f"{source}:1: header must be {','.join(COLUMN_NAMES)}")
        rows = [line.split(",") for line in lines[1:] if line]
        for i, r in enumerate(rows):
            if len(r) != len(COLUMN_NAMES):
                raise UserError(
                    f"{source}:{_line_of(lines, i)}: {len(r)} field(s), every row needs {len(COLUMN_NAMES)}"
                )
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMN_NAMES)
        out: dict[str, np.ndarray] = {}
        for (name, kind, _), values in zip(SHOT_COLUMNS, cols, strict=True):
            if kind == "s":
                out[name] = np.array(values, dtype=str) if values else np.empty(0, dtype="<U1")
                continue
            try:
                out[name] = np.array(values, dtype=np.int64 if kind == "i" else np.float64)
            except (ValueError, OverflowError):
                i = next(k for k, v in enumerate(values) if not _parses(v, kind))
                what = "an integer" if kind == "i" else "a number"
                raise UserError(
                    f"{source}:{_line_of(lines, i)}: {name}: expected {what}, got {_clip(values[i])}"
                ) from None
        for name in ("x_um", "y_um", "z_um", "pulse_energy_uj"):
            bad = ~np.isfinite(out[name])
            if bad.any():
                i = int(np.argmax(bad))
                raise UserError(
                    f"{source}:{_line_of(lines, i)}: {name}: must be finite, got {cols[COLUMN_NAMES.index(name)][i]}"
                )
        n = len(rows)
        if n and not np.array_equal(out["seq"], np.arange(n)):
            i = int(np.argmax(out["seq"] != np.arange(n)))
            raise UserError(
                f"{source}:{_line_of(lines, i)}: seq {out['seq'][i]} out of order: rows must be seq 0..{n - 1}"
            )
        return cls(**out)


def _line_of(lines: list[str], row: int) -> int:
    """File line (1-based) of data row `row` (blank lines skipped, as the parser does)."""
    k = -1
    for j, line in enumerate(lines[1:], start=2):
        if line:
            k += 1
            if k == row:
                return j
    return len(lines)


def _parses(value: str, kind: str) -> bool:
    try:
        np.array([value], dtype=np.int64 if kind == "i" else np.float64)
    except (ValueError, OverflowError):
        return False
    return True


def _clip(value: Any, limit: int = 40) -> str:
    """repr of a user value, shortened: messages never echo a huge field whole."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'" + f" ({len(str(value)):,} chars)"


def _format_column(values: np.ndarray, kind: str, decimals: int) -> list[str]:
    if kind == "s":
        return values.tolist()
    fmt = "%d" if kind == "i" else f"%.{decimals}f"
    n = len(values)
    if n > 64:
        uniq, inv = np.unique(values, return_inverse=True)
        if len(uniq) * 4 < n:
            return np.array([fmt % v for v in uniq.tolist()], dtype=object)[inv.ravel()].tolist()
    return [fmt % v for v in values.tolist()]


def sha256_hex(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())  # length-safe concatenation
    return h.hexdigest()


def design_hash(text: str) -> str:
    """sha256 hex of a design's YAML text: the plan header's and the logbook's `design_hash`."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, NaN -> null: the bytes that get hashed."""
    return json.dumps(finite(obj), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


# fluence_definition describes model.beam (which holds a non-default definition), so a peak-fluence
# plan keeps the hash it had before the header described it.
_UNHASHED = frozenset({"plan_hash", "shots_file", "lines", "fluence_definition"})


def compute_plan_hash(
    design_hash: str,
    model: dict,
    shots_csv: bytes,
    header: dict | None = None,
    lines: list | None = None,
) -> str:
    """sha256 over design hash, model, shots.csv and, when given, the rest of the header and the lines.

    Callers checking a plan should use `Plan.content_hash()`, which always passes header and lines."""
    parts = [design_hash.encode(), canonical_json(model), shots_csv]
    if header is not None or lines is not None:
        rest = {k: v for k, v in (header or {}).items() if k not in _UNHASHED}
        parts += [canonical_json(rest), canonical_json(list(lines or []))]
    return sha256_hex(*parts)


def _duration(seconds: float) -> str:
    """'12.3 s', '4.2 min', '2.69 h'."""
    if not np.isfinite(seconds):
        return "? s"
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min" if seconds < 7200 else f"{seconds / 3600:.3g} h"


@dataclass
class Plan:
    """Header (json-able dict), shots (ShotTable in firing order), fly-mode lines.

    header keys: format, format_version, plan_hash, design_hash, design_name, mode, n_shots,
    repetition_rate_hz, position_tolerance_um, settle_time_s, estimate {total_s, moves_s, settle_s,
    pulses_s, attenuator_s, turnarounds_s}, path_length_um, path_lower_bound_um,
    travel {x, y, z: [min, max]} (stage extents this plan visits, fly run-ups included),
    fabplan_version, plus `model` (the parameters hashed besides the design text) and extras
    such as `ordering` and `lower_bound_method`.
    lines: fly mode only, dicts {line, axis, y_um, z_um, start_um, stop_um, velocity_um_s,
    first_seq, last_seq}; empty in step mode.
    """

    header: dict[str, Any]
    shots: ShotTable
    lines: list[dict[str, Any]] = field(default_factory=list)
    _csv: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def plan_hash(self) -> str:
        return str(self.header["plan_hash"])

    @property
    def design_hash(self) -> str:
        return str(self.header["design_hash"])

    @property
    def mode(self) -> str:
        return str(self.header["mode"])

    @property
    def estimate(self) -> dict[str, float]:
        return dict(self.header["estimate"])

    def __len__(self) -> int:
        return len(self.shots)

    def __repr__(self) -> str:
        est = self.header.get("estimate", {}).get("total_s", float("nan"))
        return (
            f"Plan({self.header.get('design_name', '?')!r}: {len(self):,} shots, {self.mode} mode, "
            f"estimated {_duration(est)}, plan hash {self.plan_hash[:12]})"
        )

    def _facts(self) -> list[tuple[str, str]]:
        h = self.header
        est = h.get("estimate", {})
        facts = [
            ("design", str(h.get("design_name"))),
            ("shots", f"{len(self):,}"),
            ("mode", self.mode),
            (
                "estimated time",
                _duration(est.get("total_s", float("nan")))
                + " ("
                + ", ".join(f"{k.removesuffix('_s')} {v:.3g} s" for k, v in est.items() if k != "total_s")
                + ")",
            ),
            ("path length", f"{h.get('path_length_um', float('nan')) / 1000:.4g} mm"),
            ("plan hash", self.plan_hash),
        ]
        facts += [("warning", w) for w in h.get("warnings", [])]
        return facts

    def _repr_html_(self) -> str:
        from fabplan._display import html_summary

        return html_summary("Plan", self._facts(), {n: getattr(self.shots, n) for n in COLUMN_NAMES})

    def to_pandas(self):
        """The shots in firing order as a pandas DataFrame (`plan.shots.to_pandas()`).

        >>> from fabplan.design import load_design
        >>> from fabplan.planning import build_plan
        >>> from fabplan.shipped import shipped_design
        >>> plan = build_plan(load_design(shipped_design("seed_single_disc")))
        >>> plan.to_pandas()[["disc_id", "fluence_mj_cm2", "diameter_um"]]
            disc_id  fluence_mj_cm2  diameter_um
        0  S-r00c00           100.0      10.3213
        """
        return self.shots.to_pandas()

    @classmethod
    def assemble(
        cls,
        header: dict[str, Any],
        shots: ShotTable,
        lines: list[dict[str, Any]] | None = None,
    ) -> Plan:
        """Fill format, n_shots and plan_hash from the content (header needs design_hash, model)."""
        h = {"format": FORMAT, "format_version": FORMAT_VERSION}
        h.update(header)
        h["n_shots"] = len(shots)
        h.setdefault("model", {})
        h.pop("plan_hash", None)
        csv = shots.to_csv_bytes()
        # Through JSON and back, so the hash is over exactly what a reader of plan.json will see.
        h = json.loads(json.dumps(finite(h), allow_nan=False))
        lines = json.loads(json.dumps(finite(list(lines or [])), allow_nan=False))
        h["plan_hash"] = compute_plan_hash(h["design_hash"], h["model"], csv, h, lines)
        plan = cls(header=h, shots=shots, lines=lines)
        plan._csv = csv
        return plan

    def content_hash(self) -> str:
        """The hash this plan's content gives now (equal to `plan_hash` unless it was edited)."""
        csv = self._csv if self._csv is not None else self.shots.to_csv_bytes()
        return compute_plan_hash(self.design_hash, self.header.get("model", {}), csv, self.header, self.lines)

    def to_json_bytes(self) -> bytes:
        doc = dict(self.header)
        doc["shots_file"] = SHOTS_FILE
        doc["lines"] = self.lines
        return (json.dumps(finite(doc), indent=2, sort_keys=True, allow_nan=False) + "\n").encode()

    def save(self, plan_dir: str | Path) -> Path:
        """Write plan.json and shots.csv into `plan_dir` (created); returns the directory."""
        d = Path(plan_dir)
        if d.exists() and not d.is_dir():
            raise UserError(f"{d}: exists and is not a directory")
        d.mkdir(parents=True, exist_ok=True)
        csv = self._csv if self._csv is not None else self.shots.to_csv_bytes()
        (d / SHOTS_FILE).write_bytes(csv)
        (d / PLAN_FILE).write_bytes(self.to_json_bytes())
        return d

    @classmethod
    def load(cls, plan_dir: str | Path, verify_hash: bool = True) -> Plan:
        """Read a plan directory; by default refuse one whose content does not match its plan_hash.

        A damaged or hand-edited directory is a UserError naming the file (and line), never a traceback."""
        d = Path(plan_dir)
        if not d.is_dir():
            raise UserError(f"{d}: not a plan directory" + ("" if d.exists() else " (does not exist)"))
        raw = _read_limited(d / PLAN_FILE, MAX_PLAN_JSON_BYTES)
        csv = _read_limited(d / SHOTS_FILE, MAX_SHOTS_CSV_BYTES)
        try:
            doc = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise UserError(f"{d / PLAN_FILE}: not UTF-8 text (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{d / PLAN_FILE}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})") from None
        except RecursionError:
            raise UserError(f"{d / PLAN_FILE}: JSON nested too deeply") from None
        except ValueError as exc:  # e.g. an integer of 5,000 digits (Python's int conversion limit)
            raise UserError(f"{d / PLAN_FILE}: invalid JSON ({str(exc)[:80]})") from None
        where = str(d / PLAN_FILE)
        if not isinstance(doc, dict):
            raise UserError(f"{where}: expected a JSON object, got {type(doc).__name__}")
        if doc.get("format") != FORMAT:
            raise UserError(f"{where}: not a fabplan plan (format {_clip(doc.get('format'))})")
        if doc.get("format_version") != FORMAT_VERSION:
            raise UserError(
                f"{where}: plan format version {_clip(doc.get('format_version'))} is not supported "
                f"(this fabplan reads version {FORMAT_VERSION}): re-run `fabplan plan` on the design"
            )
        _check_header(doc, where)
        lines = doc.pop("lines", [])
        doc.pop("shots_file", None)
        shots = ShotTable.from_csv_bytes(csv, str(d / SHOTS_FILE))
        _check_lines(lines, doc["mode"], shots, where)
        plan = cls(header=doc, shots=shots, lines=lines, _csv=csv)
        if verify_hash:
            if plan.content_hash() != doc.get("plan_hash"):
                raise UserError(
                    f"{d}: plan.json or shots.csv does not match plan_hash (file edited or corrupted); "
                    "re-run `fabplan plan`"
                )
            if len(shots) != doc.get("n_shots"):
                raise UserError(
                    f"{d}: n_shots {_clip(doc.get('n_shots'))} but {len(shots)} rows in {SHOTS_FILE}"
                )
        return plan


# Far beyond any real plan (1 cm^2 at 20 um pitch is 250,000 shots, ~35 MB of shots.csv), and small
# enough that loading stays in bounded memory and time.
MAX_PLAN_JSON_BYTES = 256 * 2**20
MAX_SHOTS_CSV_BYTES = 512 * 2**20
_LINE_KEYS = ("start_um", "stop_um", "velocity_um_s", "y_um", "z_um")


def _read_limited(path: Path, limit: int) -> bytes:
    from fabplan.textfiles import read_bytes_limited

    try:
        data = read_bytes_limited(path, limit)
    except FileNotFoundError:
        raise UserError(f"{path.parent}: not a plan directory (missing {path.name})") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UserError(f"{path}: larger than {limit // 2**20} MiB: not a fabplan plan file")
    return data


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_header(doc: dict, where: str) -> None:
    """The fields the executor acts on have the right types (the hash says nobody changed them)."""
    for key in ("plan_hash", "design_hash"):
        if not isinstance(doc.get(key), str):
            raise UserError(f"{where}: {key}: expected a string, got {_clip(doc.get(key))}")
    if doc.get("mode") not in ("step", "fly"):
        raise UserError(f"{where}: mode: expected 'step' or 'fly', got {_clip(doc.get('mode'))}")
    n = doc.get("n_shots")
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
        raise UserError(f"{where}: n_shots: expected a whole number >= 0, got {_clip(n)}")
    if not isinstance(doc.get("model", {}), dict):
        raise UserError(f"{where}: model: expected an object")
    for key in ("position_tolerance_um", "settle_time_s", "repetition_rate_hz"):
        if key in doc and doc[key] is not None and not (_is_num(doc[key]) and doc[key] >= 0):
            raise UserError(f"{where}: {key}: expected a finite number >= 0, got {_clip(doc[key])}")
    if not isinstance(doc.get("lines", []), list):
        raise UserError(f"{where}: lines: expected a list")


def _check_lines(lines: list, mode: str, shots: ShotTable, where: str) -> None:
    """Fly lines are objects with finite numbers whose shots exist and belong to them."""
    n = len(shots)
    if mode == "step":
        if lines:
            raise UserError(f"{where}: lines: a step-mode plan has no fly lines")
        return
    for k, ln in enumerate(lines):
        at = f"{where}: lines[{k}]"
        if not isinstance(ln, dict):
            raise UserError(f"{at}: expected an object")
        for key in _LINE_KEYS:
            if not _is_num(ln.get(key)):
                raise UserError(f"{at}.{key}: expected a finite number, got {_clip(ln.get(key))}")
        if ln.get("line") != k:
            raise UserError(f"{at}.line: expected {k}, got {_clip(ln.get('line'))}")
        first, last = ln.get("first_seq"), ln.get("last_seq")
        if first is None and last is None:
            continue
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < n for v in (first, last)):
            raise UserError(
                f"{at}: first_seq/last_seq must be shot numbers 0..{n - 1}, got {_clip(first)}, {_clip(last)}"
            )
        if first > last:
            raise UserError(f"{at}: first_seq {first} after last_seq {last}")
        if not np.all(shots.line[first : last + 1] == k):
            raise UserError(f"{at}: shots {first}..{last} do not all belong to line {k} in {SHOTS_FILE}")
