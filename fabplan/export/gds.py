"""GDSII export of a design (for KLayout) and import of circles drawn in a layout.

Export layers (layer/datatype), all in um (library unit 1 um, precision 1 nm), sample coordinates:
  1/0  discs (predicted diameter)           2/0  ablation rings (disc edge to trench outer edge)
  10/0 film region                          11/0 keep-outs
  12/0 fiducial crosses                     100/0 labels: disc ids (text at each disc centre)
Every distinct (disc, ring) size is one cell placed by reference, so a 250,000-disc array stays a
small file. Import: polygons on one layer/datatype that are circles (vertices at a constant
distance from the area centroid) become disc centres and diameters; anything else is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fabplan.errors import UserError

LAYERS = {
    "disc": (1, 0),
    "ring": (2, 0),
    "region": (10, 0),
    "keepout": (11, 0),
    "fiducial": (12, 0),
    "label": (100, 0),
}
CIRCLE_TOLERANCE_UM = 0.005  # polygonal approximation error of exported circles


def require_gdstk():
    try:
        import gdstk
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError("GDS support needs the optional package gdstk: pip install 'fabplan[gds]'") from None
    return gdstk


def _polygons_of(gdstk, geom, layer: int, datatype: int) -> list:
    out = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        outer = gdstk.Polygon(np.asarray(poly.exterior.coords)[:-1], layer=layer, datatype=datatype)
        holes = [gdstk.Polygon(np.asarray(r.coords)[:-1]) for r in poly.interiors]
        if holes:
            out += gdstk.boolean(outer, holes, "not", layer=layer, datatype=datatype)
        else:
            out.append(outer)
    return out


def export_gds(
    design: Any, raw: Any, ids: np.ndarray, path: str | Path, labels: bool = True
) -> dict[str, int]:
    """Write the design's discs, rings, region, keep-outs, fiducials and id labels to `path`."""
    gdstk = require_gdstk()
    lib = gdstk.Library(name="fabplan", unit=1e-6, precision=1e-9)
    top = lib.new_cell(_cell_name(design.name))
    d = np.where(np.isfinite(raw.diameter_um), raw.diameter_um, np.nan)
    t = np.where(np.isfinite(raw.trench_outer_um), raw.trench_outer_um, np.nan)
    # one cell per distinct size pair, rounded to the 1 nm grid
    key = np.column_stack([np.round(np.nan_to_num(d, nan=-1.0), 3), np.round(np.nan_to_num(t, nan=-1.0), 3)])
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.ravel()
    cells = []
    for k, (dd, tt) in enumerate(uniq.tolist()):
        cell = lib.new_cell(f"DISC_{k}_D{dd:g}_T{tt:g}".replace("-", "m"))
        if dd > 0:
            cell.add(
                gdstk.ellipse(
                    (0, 0),
                    dd / 2,
                    tolerance=CIRCLE_TOLERANCE_UM,
                    layer=LAYERS["disc"][0],
                    datatype=LAYERS["disc"][1],
                )
            )
        if tt > 0 and tt > dd:
            inner = dd / 2 if dd > 0 else None
            cell.add(
                gdstk.ellipse(
                    (0, 0),
                    tt / 2,
                    inner_radius=inner,
                    tolerance=CIRCLE_TOLERANCE_UM,
                    layer=LAYERS["ring"][0],
                    datatype=LAYERS["ring"][1],
                )
            )
        cells.append(cell)
    x, y = raw.sample_x_um.tolist(), raw.sample_y_um.tolist()
    top.add(*[gdstk.Reference(cells[c], (px, py)) for c, px, py in zip(inv.tolist(), x, y, strict=True)])
    if labels:
        ll, lt = LAYERS["label"]
        top.add(
            *[
                gdstk.Label(str(s), (px, py), layer=ll, texttype=lt)
                for s, px, py in zip(ids.tolist(), x, y, strict=True)
            ]
        )
    top.add(*_polygons_of(gdstk, design.sample.region_polygon(), *LAYERS["region"]))
    for g in design.sample.keepout_geometries():
        top.add(*_polygons_of(gdstk, g, *LAYERS["keepout"]))
    fl, fd = LAYERS["fiducial"]
    for name, (fx, fy) in design.sample.fiducials.items():
        arm, w = 20.0, 2.0
        top.add(gdstk.rectangle((fx - arm, fy - w / 2), (fx + arm, fy + w / 2), layer=fl, datatype=fd))
        top.add(gdstk.rectangle((fx - w / 2, fy - arm), (fx + w / 2, fy + arm), layer=fl, datatype=fd))
        top.add(
            gdstk.Label(name, (fx + arm, fy + arm), layer=LAYERS["label"][0], texttype=LAYERS["label"][1])
        )
    lib.write_gds(str(path), timestamp=_EPOCH)
    return {"discs": len(x), "cells": len(cells) + 1}


def _cell_name(name: str) -> str:
    s = "".join(ch if ch.isalnum() or ch in "_$" else "_" for ch in name.upper())
    return s or "DESIGN"


# A fixed timestamp makes the same design give the same GDS bytes.
import datetime as _dt  # noqa: E402

_EPOCH = _dt.datetime(2000, 1, 1)


@dataclass
class ImportedCircles:
    x_um: np.ndarray
    y_um: np.ndarray
    diameter_um: np.ndarray
    rejected: int  # polygons on the layer that are not circles


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


def circles_from_polygons(
    polys: list[np.ndarray], rel_tol: float = 0.06, min_vertices: int = 8
) -> ImportedCircles:
    """Circle fit per polygon: centre = area centroid, diameter = 2 x mean vertex distance.

    A polygon counts as a circle when every vertex is within rel_tol of that mean distance (a
    regular octagon deviates ~0 at the vertices, but a square has 4 vertices and is refused by
    min_vertices) and its area matches pi r^2 within rel_tol.
    """
    xs, ys, ds = [], [], []
    rejected = 0
    for p in polys:
        p = np.asarray(p, float)
        if len(p) < min_vertices:
            rejected += 1
            continue
        x, y = p[:, 0], p[:, 1]
        x1, y1 = np.roll(x, -1), np.roll(y, -1)
        cross = x * y1 - x1 * y
        area = cross.sum() / 2.0
        if abs(area) <= 0:
            rejected += 1
            continue
        cx = ((x + x1) * cross).sum() / (6 * area)
        cy = ((y + y1) * cross).sum() / (6 * area)
        r = np.hypot(x - cx, y - cy)
        rm = r.mean()
        if (
            np.abs(r - rm).max() > rel_tol * rm
            or abs(abs(area) - np.pi * rm * rm) > 2 * rel_tol * np.pi * rm * rm
        ):
            rejected += 1
            continue
        xs.append(cx)
        ys.append(cy)
        ds.append(2 * rm)
    return ImportedCircles(np.array(xs), np.array(ys), np.array(ds), rejected)


def import_gds_circles(
    path: str | Path, layer: int, datatype: int, cell: str | None = None
) -> ImportedCircles:
    """Circles on layer/datatype of the (single or named) top cell, in um, references flattened."""
    gdstk = require_gdstk()
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file")
    try:
        lib = gdstk.read_gds(str(p))
    except Exception as exc:  # gdstk raises plain errors for bad files
        raise UserError(f"{p}: cannot read as GDSII ({exc})") from None
    scale = lib.unit / 1e-6
    if cell is not None:
        found = [c for c in lib.cells if c.name == cell]
        if not found:
            raise UserError(
                f"{p}: no cell named {cell!r} (cells: {', '.join(c.name for c in lib.cells)[:200]})"
            )
        top = found[0]
    else:
        tops = lib.top_level()
        if len(tops) != 1:
            raise UserError(
                f"{p}: {len(tops)} top cells; choose one with --cell ({', '.join(c.name for c in tops)})"
            )
        top = tops[0]
    polys = top.get_polygons(layer=layer, datatype=datatype)
    out = circles_from_polygons([pp.points * scale for pp in polys])
    if len(out.x_um) == 0:
        raise UserError(
            f"{p}: no circles on layer {layer}/{datatype} of cell {top.name} ({out.rejected} other polygons)"
        )
    # a stable order: rows of increasing y, then x (nm grid)
    order = np.lexsort((np.round(out.x_um, 3), np.round(out.y_um, 3)))
    return ImportedCircles(out.x_um[order], out.y_um[order], out.diameter_um[order], out.rejected)


def write_disc_csv(circles: ImportedCircles, path: str | Path) -> None:
    """CSV an explicit array reads: x_um, y_um, diameter_um (nm resolution)."""
    lines = ["x_um,y_um,diameter_um"]
    cols = [np.round(c, 3) + 0.0 for c in (circles.x_um, circles.y_um, circles.diameter_um)]  # no "-0.000"
    lines += [f"{x:.3f},{y:.3f},{d:.3f}" for x, y, d in zip(*cols, strict=True)]
    Path(path).write_text("\n".join(lines) + "\n")
