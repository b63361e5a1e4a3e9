"""GDSII export of a design (for KLayout) and import of circles drawn in a layout.

Export layers (layer/datatype), all in um (library unit 1 um, precision 1 nm), sample coordinates:
  1/0  discs (predicted diameter)           2/0  ablation rings (disc edge to trench outer edge)
  10/0 film region                          11/0 keep-outs
  12/0 fiducial crosses                     100/0 labels: disc ids (text at each disc centre)
Every distinct (disc, ring) size is one cell placed by reference, so a 250,000-disc array stays a
small file. Import (GDSII and OASIS, KLayout's and gdsfactory's circle conventions): gds_import.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fabplan.export.gds_import import (  # noqa: F401  (the import side, re-exported)
    ImportedCircles,
    circles_from_polygons,
    import_circles,
    parse_layer,
    require_gdstk,
    write_disc_csv,
)

LAYERS = {
    "disc": (1, 0),
    "ring": (2, 0),
    "region": (10, 0),
    "keepout": (11, 0),
    "fiducial": (12, 0),
    "label": (100, 0),
}
CIRCLE_TOLERANCE_UM = 0.005  # polygonal approximation error of exported circles


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
