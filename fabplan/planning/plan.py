"""Plan and ShotTable: the pure, content-hashed result of planning, and its on-disk form.

A plan directory holds two files and nothing else that varies between runs:
  plan.json  the header (metadata, estimate, hashes) plus the fly-mode `lines`
  shots.csv  one row per shot IN FIRING ORDER, fixed decimal places per column

Float columns are quantised to the decimals written in the CSV when the table is built, so a plan
loaded from disk equals the plan that was saved, and saving it again gives the same bytes.
`plan_hash` is sha256 over the design hash, the model parameters (canonical JSON) and the bytes of
shots.csv: two plans with the same hash fire the same shots.
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

FORMAT = "fabplan-plan"
FORMAT_VERSION = 1
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
    def from_csv_bytes(cls, data: bytes) -> ShotTable:
        lines = data.decode("ascii").splitlines()
        if not lines or tuple(lines[0].split(",")) != COLUMN_NAMES:
            raise UserError(f"{SHOTS_FILE}: header must be {','.join(COLUMN_NAMES)}")
        rows = [line.split(",") for line in lines[1:] if line]
        if any(len(r) != len(COLUMN_NAMES) for r in rows):
            raise UserError(f"{SHOTS_FILE}: every row needs {len(COLUMN_NAMES)} fields")
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMN_NAMES)
        out: dict[str, np.ndarray] = {}
        for (name, kind, _), values in zip(SHOT_COLUMNS, cols, strict=True):
            if kind == "i":
                out[name] = np.array(values, dtype=np.int64)
            elif kind == "f":
                out[name] = np.array(values, dtype=np.float64)
            else:
                out[name] = np.array(values, dtype=str) if values else np.empty(0, dtype="<U1")
        return cls(**out)


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


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, NaN -> null: the bytes that get hashed."""
    return json.dumps(_finite(obj), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def compute_plan_hash(design_hash: str, model: dict, shots_csv: bytes) -> str:
    return sha256_hex(design_hash.encode(), canonical_json(model), shots_csv)


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    return obj


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
        csv = shots.to_csv_bytes()
        h["plan_hash"] = compute_plan_hash(h["design_hash"], h["model"], csv)
        plan = cls(header=_finite(h), shots=shots, lines=_finite(list(lines or [])))
        plan._csv = csv
        return plan

    def to_json_bytes(self) -> bytes:
        doc = dict(self.header)
        doc["shots_file"] = SHOTS_FILE
        doc["lines"] = self.lines
        return (json.dumps(_finite(doc), indent=2, sort_keys=True, allow_nan=False) + "\n").encode()

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
        """Read a plan directory; by default refuse one whose shots do not match its plan_hash."""
        d = Path(plan_dir)
        try:
            doc = json.loads((d / PLAN_FILE).read_text())
            csv = (d / SHOTS_FILE).read_bytes()
        except FileNotFoundError as exc:
            raise UserError(f"{d}: not a plan directory (missing {Path(exc.filename).name})") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{d / PLAN_FILE}: invalid JSON ({exc})") from None
        if doc.get("format") != FORMAT:
            raise UserError(f"{d / PLAN_FILE}: not a fabplan plan (format {doc.get('format')!r})")
        if doc.get("format_version") != FORMAT_VERSION:
            raise UserError(
                f"{d / PLAN_FILE}: plan format version {doc.get('format_version')} is not supported "
                f"(this fabplan reads version {FORMAT_VERSION})"
            )
        lines = doc.pop("lines", [])
        doc.pop("shots_file", None)
        shots = ShotTable.from_csv_bytes(csv)
        if verify_hash:
            got = compute_plan_hash(doc["design_hash"], doc.get("model", {}), csv)
            if got != doc.get("plan_hash"):
                raise UserError(
                    f"{d}: shots.csv does not match plan_hash (file edited or corrupted); re-run `fabplan plan`"
                )
            if len(shots) != doc.get("n_shots"):
                raise UserError(f"{d}: n_shots {doc.get('n_shots')} but {len(shots)} rows in {SHOTS_FILE}")
        return cls(header=doc, shots=shots, lines=lines, _csv=csv)
