"""Circles drawn in a GDSII or OASIS layout (KLayout, gdsfactory, fabplan) -> disc centres and diameters.

Which cell: the layout's top cell, ignoring the meta-information cells KLayout and gdsfactory
(kfactory) write and hide (`$$$CONTEXT_INFO$$$`, any `$$$...` cell; in gdsfactory files that
cell even references every other cell, so without this rule the layout has no real top cell).

Which diameter (the nominal one the designer typed, not the polygon's):
  * "vertices": the nominal circle passes through the vertices (gdsfactory's `circle` places
    `radius * (cos t, sin t)`; gdstk's `ellipse` and fabplan's export do the same): d = 2 x mean
    vertex distance from the area centroid.
  * "edges": the nominal circle touches the edges' midpoints, the vertices sit on the circumscribed
    polygon at r / cos(pi/n) (KLayout's Basic.CIRCLE PCell): d = 2 x mean vertex distance x cos(pi/n).
  * "auto" (default): "edges" for cells KLayout's context information names as Basic.CIRCLE PCell
    variants, "vertices" for everything else.
A polygon is a circle when it has >= 8 distinct vertices, every vertex lies within 6 % of the mean
distance and its area is that of the circle within 12 %; everything else on the layer is reported.

The layout is read hierarchically: each cell's circles are fitted once in its own coordinates and
placed by every reference and array (AREF/repetition), so 250,000 placed discs cost one fit.
Flat layouts are fitted in numpy batches of polygons with the same vertex count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fabplan.errors import UserError

RULES = ("auto", "vertices", "edges")
META_PREFIX = "$$$"  # KLayout's $$$CONTEXT_INFO$$$ (also written by gdsfactory/kfactory)
REL_TOL = 0.06
MIN_VERTICES = 8
BATCH = 4096  # polygons fitted per numpy call


@dataclass
class ImportedCircles:
    x_um: np.ndarray
    y_um: np.ndarray
    diameter_um: np.ndarray
    rejected: int  # polygons on the layer that are not circles
    rejected_xy_um: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # their centres
    cell: str = ""
    rules: dict[str, int] = field(default_factory=dict)  # rule -> number of circles fitted with it


def require_gdstk():
    try:
        import gdstk
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError("GDS support needs the optional package gdstk: pip install 'fabplan[gds]'") from None
    return gdstk


def parse_layer(text: str) -> tuple[int, int]:
    """'5/0' or '5' -> (5, 0)."""
    try:
        parts = [int(p) for p in str(text).split("/")]
    except ValueError:
        raise UserError(f"--layer must be LAYER/DATATYPE like 1/0, got {text!r}") from None
    if len(parts) == 1:
        parts.append(0)
    if len(parts) != 2 or min(parts) < 0:
        raise UserError(f"--layer must be LAYER/DATATYPE like 1/0, got {text!r}")
    return parts[0], parts[1]


# ---------------------------------------------------------------------------------------------
# Fitting (pure numpy)


@dataclass
class _Fit:
    x: np.ndarray
    y: np.ndarray
    d: np.ndarray
    edges: np.ndarray  # bool per circle: diameter from the "edges" rule
    bad_xy: np.ndarray  # (k, 2) centres of polygons that are not circles

    @staticmethod
    def empty() -> _Fit:
        z = np.zeros(0)
        return _Fit(z, z, z, np.zeros(0, bool), np.zeros((0, 2)))


def _clean(p: np.ndarray) -> np.ndarray:
    """Drop a repeated closing vertex (gdsfactory writes the first point again at the end)."""
    if len(p) > 1 and p[0, 0] == p[-1, 0] and p[0, 1] == p[-1, 1]:
        p = p[:-1]
    return p


def _fit_batch(P: np.ndarray, rule: str, rel_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """P: (m, n, 2) polygons with n vertices. Returns (ok mask (m,), rows (m, 3) = cx, cy, d)."""
    n = P.shape[1]
    # shift to the first vertex: the shoelace sums then lose no digits far from the origin
    o = P[:, :1, :]
    Q = P - o
    x, y = Q[..., 0], Q[..., 1]
    x1 = np.concatenate([x[:, 1:], x[:, :1]], axis=1)  # next vertex
    y1 = np.concatenate([y[:, 1:], y[:, :1]], axis=1)
    cross = x * y1 - x1 * y
    area = cross.sum(axis=1) / 2.0
    safe = np.where(area == 0, 1.0, area)
    cx = ((x + x1) * cross).sum(axis=1) / (6 * safe)
    cy = ((y + y1) * cross).sum(axis=1) / (6 * safe)
    r = np.hypot(x - cx[:, None], y - cy[:, None])
    rm = r.mean(axis=1)
    ok = (
        (area != 0)
        & (np.abs(r - rm[:, None]).max(axis=1) <= rel_tol * rm)
        & (np.abs(np.abs(area) - np.pi * rm * rm) <= 2 * rel_tol * np.pi * rm * rm)
    )
    d = 2 * rm * (math.cos(math.pi / n) if rule == "edges" else 1.0)
    return ok, np.column_stack([cx + o[:, 0, 0], cy + o[:, 0, 1], d])


def fit_circles(
    polys: list[np.ndarray],
    rule: str = "vertices",
    rel_tol: float = REL_TOL,
    min_vertices: int = MIN_VERTICES,
) -> _Fit:
    """Fit every polygon, batched by vertex count; order of the circles follows the input."""
    if rule not in ("vertices", "edges"):
        raise ValueError(rule)
    polys = [_clean(np.asarray(p, float)) for p in polys]
    m = len(polys)
    rows = np.full((m, 3), np.nan)
    good = np.zeros(m, bool)
    counts = np.fromiter((len(p) for p in polys), int, m)
    for n in np.unique(counts):
        if n < min_vertices:
            continue
        all_idx = np.flatnonzero(counts == n)
        for k in range(0, len(all_idx), BATCH):  # batches small enough for the cache, not 100 MB temporaries
            idx = all_idx[k : k + BATCH]
            ok, r = _fit_batch(np.stack([polys[i] for i in idx.tolist()]), rule, rel_tol)
            rows[idx] = r
            good[idx] = ok
    bad = np.flatnonzero(~good)
    bad_xy = np.array([polys[i].mean(axis=0) if len(polys[i]) else (np.nan, np.nan) for i in bad]).reshape(
        -1, 2
    )
    return _Fit(
        rows[good, 0], rows[good, 1], rows[good, 2], np.full(int(good.sum()), rule == "edges"), bad_xy
    )


def circles_from_polygons(
    polys: list[np.ndarray],
    rel_tol: float = REL_TOL,
    min_vertices: int = MIN_VERTICES,
    rule: str = "vertices",
) -> ImportedCircles:
    """Circle fit per polygon (see the module docstring for the test and the diameter rules)."""
    f = fit_circles(polys, rule, rel_tol, min_vertices)
    return ImportedCircles(f.x, f.y, f.d, len(f.bad_xy), f.bad_xy, rules={rule: len(f.x)})


# ---------------------------------------------------------------------------------------------
# Layout reading


def _context(lib) -> dict[str, list[str]]:
    """Cell name -> KLayout context strings ('LIB=Basic', 'PCELL=CIRCLE', 'P(...)=...').

    GDSII: properties of the references inside `$$$CONTEXT_INFO$$$`; OASIS: the cells'
    KLAYOUT_CONTEXT property (both as gdstk exposes them)."""
    out: dict[str, list[str]] = {}

    def text(v) -> str:
        return v.decode("latin-1").rstrip("\x00") if isinstance(v, bytes) else str(v)

    for c in lib.cells:
        if c.name.startswith(META_PREFIX):
            for ref in c.references:
                name = getattr(ref.cell, "name", ref.cell)
                vals = [text(p[-1]) for p in (ref.properties or []) if p and p[0] == "S_GDS_PROPERTY"]
                out.setdefault(str(name), []).extend(vals)
        for p in c.properties or []:
            if p and p[0] == "KLAYOUT_CONTEXT":
                out.setdefault(c.name, []).extend(text(v) for v in p[1:])
    return out


def _is_klayout_circle(ctx: list[str]) -> bool:
    return "LIB=Basic" in ctx and "PCELL=CIRCLE" in ctx


def _rotation_matrix(ref) -> np.ndarray:
    m = ref.magnification or 1.0
    c, s = math.cos(ref.rotation or 0.0), math.sin(ref.rotation or 0.0)
    A = m * np.array([[c, -s], [s, c]])
    if ref.x_reflection:
        A = A @ np.diag([1.0, -1.0])
    return A


class _Walker:
    def __init__(self, layer: int, datatype: int, rule: str, ctx: dict[str, list[str]], scale: float):
        self.layer, self.datatype, self.rule, self.ctx, self.scale = layer, datatype, rule, ctx, scale
        self.memo: dict[str, _Fit] = {}

    def cell_rule(self, name: str) -> str:
        if self.rule != "auto":
            return self.rule
        return "edges" if _is_klayout_circle(self.ctx.get(name, [])) else "vertices"

    def fit(self, cell) -> _Fit:
        got = self.memo.get(cell.name)
        if got is not None:
            return got
        polys = cell.get_polygons(depth=0, layer=self.layer, datatype=self.datatype)
        rule = self.cell_rule(cell.name)
        own = fit_circles([p.points for p in polys], rule) if polys else _Fit.empty()
        if self.scale != 1.0:  # a circle fit commutes with scaling: scale the results, not every vertex
            k = self.scale
            own = _Fit(own.x * k, own.y * k, own.d * k, own.edges, own.bad_xy * k)
        parts = [own]
        # references grouped by (cell, rotation, magnification, reflection): one numpy placement per group
        groups: dict[tuple, tuple] = {}  # key -> (first reference, single origins, array offsets)
        for ref in cell.references:
            child = ref.cell
            if isinstance(child, str) or not hasattr(child, "get_polygons"):
                continue  # a reference to a cell missing from the file or a raw cell
            key = (child.name, ref.rotation, ref.magnification, ref.x_reflection)
            g = groups.get(key)
            if g is None:
                g = groups[key] = (ref, [], [])
            rep = ref.repetition
            if rep is not None and rep.size > 0:
                g[2].append(np.asarray(rep.get_offsets(), float) + ref.origin)
            else:
                g[1].append(ref.origin)
        for ref0, singles, arrays in groups.values():
            sub = self.fit(ref0.cell)
            if not len(sub.x) and not len(sub.bad_xy):
                continue
            offs = np.concatenate([np.asarray(singles, float).reshape(-1, 2), *arrays]) * self.scale
            A = _rotation_matrix(ref0)
            c = (A @ np.vstack([sub.x, sub.y])).T  # (k, 2)
            b = (A @ sub.bad_xy.T).T if len(sub.bad_xy) else np.zeros((0, 2))
            placed = (offs[:, None, :] + c[None, :, :]).reshape(-1, 2)
            bad = (offs[:, None, :] + b[None, :, :]).reshape(-1, 2)
            mag = ref0.magnification or 1.0
            k = len(offs)
            parts.append(
                _Fit(placed[:, 0], placed[:, 1], np.tile(sub.d * mag, k), np.tile(sub.edges, k), bad)
            )
        out = (
            own
            if len(parts) == 1
            else _Fit(
                *(np.concatenate([getattr(f, a) for f in parts]) for a in ("x", "y", "d", "edges", "bad_xy"))
            )
        )
        self.memo[cell.name] = out
        return out


def _tops(lib) -> list:
    """Top cells, not counting meta cells nor the references meta cells hold."""
    cells = [c for c in lib.cells if not c.name.startswith(META_PREFIX)]
    used: set[str] = set()
    for c in cells:
        for ref in c.references:
            used.add(str(getattr(ref.cell, "name", ref.cell)))
    return [c for c in cells if c.name not in used]


def read_layout(path: Path):
    """gdstk Library from a .gds/.gds2/.gdsii or .oas/.oasis file (format chosen by content)."""
    gdstk = require_gdstk()
    if not path.exists():
        raise UserError(f"{path}: no such file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(13)
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    is_oas = magic.startswith(b"%SEMI-OASIS")
    try:
        return gdstk.read_oas(str(path)) if is_oas else gdstk.read_gds(str(path))
    except Exception as exc:  # gdstk raises plain errors for bad files
        kind = "OASIS" if is_oas else "GDSII"
        raise UserError(f"{path}: cannot read as {kind} ({exc})") from None


def import_circles(
    path: str | Path, layer: int, datatype: int, cell: str | None = None, rule: str = "auto"
) -> ImportedCircles:
    """Circles on layer/datatype of the (single or named) top cell, in um, placed by references."""
    if rule not in RULES:
        raise UserError(f"--circle-rule must be one of {', '.join(RULES)}, got {rule!r}")
    p = Path(path)
    lib = read_layout(p)
    scale = lib.unit / 1e-6
    by_name = {c.name: c for c in lib.cells}
    if cell is not None:
        top = by_name.get(cell)
        if top is None:
            names = ", ".join(c.name for c in lib.cells if not c.name.startswith(META_PREFIX))
            raise UserError(f"{p}: no cell named {cell!r} (cells: {names[:200]})")
    else:
        tops = _tops(lib)
        if len(tops) > 1:  # several real tops: the one(s) with shapes on the layer
            with_layer = [t for t in tops if t.get_polygons(layer=layer, datatype=datatype)]
            tops = with_layer or tops
        if len(tops) != 1:
            names = ", ".join(c.name for c in tops) or "none"
            raise UserError(f"{p}: {len(tops)} top cells; choose one with --cell ({names[:200]})")
        top = tops[0]
    w = _Walker(layer, datatype, rule, _context(lib), scale)
    fit = w.fit(top)
    if len(fit.x) == 0:
        raise UserError(
            f"{p}: no circles on layer {layer}/{datatype} of cell {top.name} ({len(fit.bad_xy)} other polygons)"
        )
    # a stable order: rows of increasing y, then x (nm grid)
    order = np.lexsort((np.round(fit.x, 3), np.round(fit.y, 3)))
    n_edges = int(fit.edges.sum())
    rules = {k: v for k, v in (("vertices", len(fit.x) - n_edges), ("edges", n_edges)) if v}
    return ImportedCircles(
        fit.x[order], fit.y[order], fit.d[order], len(fit.bad_xy), fit.bad_xy, top.name, rules
    )


def write_disc_csv(circles: ImportedCircles, path: str | Path) -> None:
    """CSV an explicit array reads: x_um, y_um, diameter_um (nm resolution)."""
    lines = ["x_um,y_um,diameter_um"]
    cols = [np.round(c, 3) + 0.0 for c in (circles.x_um, circles.y_um, circles.diameter_um)]  # no "-0.000"
    lines += [f"{x:.3f},{y:.3f},{d:.3f}" for x, y, d in zip(*cols, strict=True)]
    Path(path).write_text("\n".join(lines) + "\n")
