"""The map's static part: where every disc is, and the sample's region, keep-outs and fiducials.

Disc centres come from the plan the run fires (the journal header names its folder; `run` saves it
as JOURNAL.plan/ next to the journal), in sample coordinates, so they line up with the design's
keep-outs and fiducials. Up to DISC_LIMIT discs the page draws every disc; above it the server bins
them into a grid of at most GRID_MAX cells a side and sends one state code per cell, so a
250,000-disc wafer costs the page a 300 x 300 image, not 250,000 circles.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DISC_LIMIT = 20_000
GRID_MAX = 300

# map codes (per disc, or per cell: the most telling state of the discs inside)
MAP_PENDING, MAP_FIRED, MAP_UNCERTAIN, MAP_SKIPPED, MAP_NOT_FIRED, MAP_PARTIAL = 0, 1, 2, 3, 4, 5
MAP_NAMES = ["pending", "fired", "uncertain", "skipped", "not fired", "partly fired"]


@dataclass
class Layout:
    x: np.ndarray  # disc centres in map coordinates (um)
    y: np.ndarray
    r: np.ndarray  # drawn radius (um)
    ids: np.ndarray  # disc ids, ASCII bytes (id_of decodes)
    coords: str  # "sample" | "stage"
    source: str  # where the positions came from
    region: list[list[list[float]]] = field(default_factory=list)
    keepouts: list[dict[str, Any]] = field(default_factory=list)
    fiducials: list[dict[str, Any]] = field(default_factory=list)
    planned_e: np.ndarray | None = None
    estimate_s: float = math.nan
    cell: np.ndarray | None = None  # bins mode: cell index per disc
    grid: dict[str, Any] | None = None
    _tree: Any = None

    @property
    def n(self) -> int:
        return len(self.x)

    def id_of(self, seq: int) -> str:
        v = self.ids[seq]
        return v.decode("ascii") if isinstance(v, bytes) else str(v)

    def seq_of(self, disc_id: str) -> int | None:
        key = disc_id.encode("ascii", "replace") if self.ids.dtype.kind == "S" else disc_id
        hit = np.flatnonzero(self.ids == key)
        return int(hit[0]) if len(hit) else None

    def id_strings(self) -> np.ndarray:
        return self.ids.astype(str) if self.ids.dtype.kind == "S" else self.ids

    @property
    def binned(self) -> bool:
        return self.grid is not None

    def nearest(self, x: float, y: float) -> int:
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(np.column_stack([self.x, self.y]))
        _, i = self._tree.query([x, y])
        return int(i)

    def to_json(self) -> dict[str, Any]:
        """Static map description (sent to the page once)."""
        ok = np.isfinite(self.x) & np.isfinite(self.y)
        bounds = ([float(self.x[ok].min()), float(self.y[ok].min()), float(self.x[ok].max()), float(self.y[ok].max())]
                  if ok.any() else [0.0, 0.0, 1.0, 1.0])
        for ring in self.region:
            xs, ys = [p[0] for p in ring], [p[1] for p in ring]
            bounds = [min(bounds[0], *xs), min(bounds[1], *ys), max(bounds[2], *xs), max(bounds[3], *ys)]
        out: dict[str, Any] = {"n": self.n, "coords": self.coords, "source": self.source, "bounds": bounds,
                               "region": self.region, "keepouts": self.keepouts, "fiducials": self.fiducials,
                               "codes": MAP_NAMES, "mode": "bins" if self.binned else "discs"}
        if self.binned:
            out["grid"] = self.grid
        else:
            out["x"] = np.round(self.x, 2).tolist()
            out["y"] = np.round(self.y, 2).tolist()
            out["r"] = np.round(self.r, 2).tolist()
        return out

    def codes(self, state: np.ndarray, selected: np.ndarray, skipped: np.ndarray, not_fired: np.ndarray) -> np.ndarray:
        """Per-disc map code from the journal state (0 pending, 1 uncertain, 2 fired)."""
        code = np.full(self.n, MAP_PENDING, np.uint8)
        code[~selected | skipped] = MAP_SKIPPED
        code[not_fired & (state == 0)] = MAP_NOT_FIRED
        code[state == 2] = MAP_FIRED
        code[state == 1] = MAP_UNCERTAIN
        return code

    def map_bytes(self, code: np.ndarray) -> str:
        """base64 of one code per disc, or per grid cell in bins mode."""
        if not self.binned:
            return base64.b64encode(code.tobytes()).decode()
        assert self.cell is not None and self.grid is not None
        ncell = int(self.grid["nx"]) * int(self.grid["ny"])
        valid = self.cell >= 0
        cells = self.cell[valid]
        c = code[valid]
        per = np.bincount(cells * 8 + c, minlength=ncell * 8).reshape(ncell, 8)  # one pass: cell x code
        counts = {k: per[:, k] for k in range(5)}
        total = per.sum(axis=1)
        out = np.full(ncell, 255, np.uint8)  # 255: no disc in this cell
        has = total > 0
        out[has] = MAP_PENDING
        out[has & (counts[MAP_SKIPPED] == total)] = MAP_SKIPPED
        out[(counts[MAP_FIRED] > 0)] = MAP_PARTIAL
        out[has & (counts[MAP_FIRED] + counts[MAP_SKIPPED] == total) & (counts[MAP_FIRED] > 0)] = MAP_FIRED
        out[counts[MAP_NOT_FIRED] > 0] = MAP_NOT_FIRED
        out[counts[MAP_UNCERTAIN] > 0] = MAP_UNCERTAIN
        return base64.b64encode(out.tobytes()).decode()


def _bin(layout: Layout) -> None:
    ok = np.isfinite(layout.x) & np.isfinite(layout.y)
    x0, x1 = float(layout.x[ok].min()), float(layout.x[ok].max())
    y0, y1 = float(layout.y[ok].min()), float(layout.y[ok].max())
    span = max(x1 - x0, y1 - y0, 1e-9)
    cell_um = span / (GRID_MAX - 1)
    nx = int((x1 - x0) / cell_um) + 1
    ny = int((y1 - y0) / cell_um) + 1
    ix = np.clip(((layout.x - x0) / cell_um).astype(np.int64, copy=False), 0, nx - 1)
    iy = np.clip(((layout.y - y0) / cell_um).astype(np.int64, copy=False), 0, ny - 1)
    cell = np.where(ok, iy * nx + ix, -1)
    layout.cell = cell
    layout.grid = {"nx": nx, "ny": ny, "x0": x0, "y0": y0, "cell_um": cell_um}


def _rings(geom) -> list[list[list[float]]]:
    """Exterior rings of a shapely (multi)polygon as [[x, y], ...] lists (holes are not drawn)."""
    parts = getattr(geom, "geoms", [geom])
    out = []
    for g in parts:
        ext = getattr(g, "exterior", None)
        if ext is not None:
            out.append([[round(float(a), 2), round(float(b), 2)] for a, b in ext.coords])
    return out


def _design_shapes(layout: Layout, design_file: str | None) -> None:
    if not design_file or not Path(design_file).is_file():
        return
    try:
        from fabplan.design import load_design

        design = load_design(design_file)
    except Exception:  # a design edited since the run started: the map simply goes without shapes
        return
    s = design.sample
    layout.region = _rings(s.region.geometry())
    layout.keepouts = [{"name": k.name or f"keep-out {i + 1}", "rings": _rings(k.geometry())}
                       for i, k in enumerate(s.keepouts)]
    layout.fiducials = [{"name": name, "x": float(p[0]), "y": float(p[1])} for name, p in s.fiducials.items()]


def _find_plan_dir(header: dict[str, Any], journal: Path) -> Path | None:
    candidates = []
    if header.get("plan_dir"):
        candidates.append(Path(str(header["plan_dir"])))
    candidates.append(journal.with_name(journal.name + ".plan"))  # moved with its journal
    for c in candidates:
        if (c / "plan.json").is_file() and (c / "shots.csv").is_file():
            return c
    return None


def _plan_columns(plan_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """plan.json's header and the few shots.csv columns the map needs. Faster than Plan.load (which
    parses and checks all fourteen columns; the run already verified this plan): the rows are one
    flat split of the file (shots.csv has no quoting: disc ids never hold commas), each column a
    strided slice. Disc ids stay ASCII bytes (`Layout.id_of` decodes the ones asked for)."""
    import json

    header = json.loads((plan_dir / "plan.json").read_bytes())
    data = (plan_dir / "shots.csv").read_bytes()
    nl = data.index(b"\n")
    names = data[:nl].decode("ascii").strip().split(",")
    k = len(names)
    flat = data[nl + 1:].rstrip(b"\n").replace(b"\n", b",").split(b",") if len(data) > nl + 1 else []
    if len(flat) % k:
        raise ValueError(f"{plan_dir / 'shots.csv'}: ragged rows")
    n = len(flat) // k
    out: dict[str, np.ndarray] = {"disc_id": np.array(flat[names.index("disc_id")::k], dtype="S") if n
                                  else np.empty(0, "S1")}
    for w in ("sample_x_um", "sample_y_um", "pulse_energy_uj", "diameter_um"):
        out[w] = np.array(flat[names.index(w)::k]).astype(float) if n else np.empty(0)
    return header, out


def load_layout(header: dict[str, Any], journal: str | Path) -> Layout | None:
    """The map of the run whose journal header is `header`; None when its plan cannot be found."""
    plan_dir = _find_plan_dir(header, Path(journal))
    if plan_dir is None:
        return None
    try:
        plan_header, s = _plan_columns(plan_dir)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if plan_header.get("plan_hash") != header.get("plan_hash") or len(s["disc_id"]) != int(header.get("n_shots") or 0):
        return None  # another plan: its discs would be drawn in the wrong places
    d = s["diameter_um"]
    r = np.where(np.isfinite(d), d / 2.0, 2.0)
    layout = Layout(x=s["sample_x_um"], y=s["sample_y_um"], r=r, ids=s["disc_id"], coords="sample",
                    source=str(plan_dir), planned_e=s["pulse_energy_uj"],
                    estimate_s=float((plan_header.get("estimate") or {}).get("total_s") or math.nan))
    if layout.n > DISC_LIMIT:
        _bin(layout)
    _design_shapes(layout, header.get("design_file"))
    return layout
