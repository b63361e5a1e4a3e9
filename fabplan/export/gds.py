"""GDSII export of a design (for KLayout) and import of circles drawn in a layout.

Export layers (layer/datatype), all in um (library unit 1 um, precision 1 nm), sample coordinates:
  1/0  discs (predicted diameter)           2/0  ablation rings (disc edge to trench outer edge)
  10/0 film region                          11/0 keep-outs
  12/0 fiducial crosses                     100/0 labels: disc ids (text at each disc centre)
  101/0 design notes: the fluence definition (text below the region, GDS properties 1-3 on it)
Every distinct (disc, ring) size is one cell (named by its sizes in nm: GDSII names have no '.'),
placed as GDSII arrays (AREF) where it repeats on a lattice, so a 250,000-disc array stays a small
file; disc id labels are per disc up to LABEL_ALL_MAX discs, else one per lattice row. Import (GDSII and OASIS, KLayout's and gdsfactory's circle conventions): gds_import.py.
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
    "info": (101, 0),
}
# GDS property attributes on the fluence-definition text (KLayout: shape.property(1) etc.)
FLUENCE_PROPERTIES = {1: "fluence_definition", 2: "fluence_area_um2", 3: "peak_over_fluence"}
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


LABEL_ALL_MAX = 20_000  # --labels auto: every disc up to this many, else the first disc of each row
LABEL_MODES = ("auto", "all", "rows", "none")
NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_?$")


def export_gds(
    design: Any,
    raw: Any,
    ids: np.ndarray,
    path: str | Path,
    labels: bool | str = "auto",
    fluence_definition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the design's discs, rings, region, keep-outs, fiducials and id labels to `path`.

    Discs of one (diameter, trench) size are one cell; where they sit on a lattice (rows of
    constant step at a constant row step) they are placed as one GDSII array (AREF), otherwise
    one reference each. labels: "all", "rows" (first disc of each lattice row), "none", or
    "auto" (all up to LABEL_ALL_MAX discs, else rows); True/False mean "all"/"none".
    `fluence_definition` (`BeamModel.fluence_definition_info()`): written on layer 101/0 as a text
    under the region whose GDS properties 1-3 hold name, fluence area (um^2) and peak F(r) / F, so
    a layout reader sees what the fluences behind these disc sizes mean.
    """
    from fabplan.export.lattice import find_blocks

    gdstk = require_gdstk()
    mode = {True: "all", False: "none"}.get(labels, labels) if isinstance(labels, bool) else labels
    if mode not in LABEL_MODES:
        raise ValueError(f"labels must be one of {LABEL_MODES}, got {labels!r}")
    if mode == "auto":
        mode = "all" if len(ids) <= LABEL_ALL_MAX else "rows"
    lib = gdstk.Library(name="fabplan", unit=1e-6, precision=1e-9)
    top = lib.new_cell(_cell_name(design.name))
    d = np.where(np.isfinite(raw.diameter_um), raw.diameter_um, np.nan)
    t = np.where(np.isfinite(raw.trench_outer_um), raw.trench_outer_um, np.nan)
    # one cell per distinct size pair on the 1 nm grid; names in nm (GDSII names have no '.')
    key = np.column_stack(
        [np.round(np.nan_to_num(d, nan=-1.0) * 1000), np.round(np.nan_to_num(t, nan=-1.0) * 1000)]
    )
    uniq, inv = np.unique(key.astype(np.int64), axis=0, return_inverse=True)
    inv = inv.ravel()
    cells = []
    for dd_nm, tt_nm in uniq.tolist():
        dd, tt = dd_nm / 1000, tt_nm / 1000
        cell = lib.new_cell(f"DISC_D{_nm(dd_nm)}_T{_nm(tt_nm)}")
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
    xn = np.round(np.asarray(raw.sample_x_um, float) * 1000).astype(np.int64)
    yn = np.round(np.asarray(raw.sample_y_um, float) * 1000).astype(np.int64)
    n_arrays = n_single = 0
    for c in range(len(cells)):
        sel = np.flatnonzero(inv == c)
        for b in find_blocks(xn[sel], yn[sel]):
            origin = (b.x0 / 1000, b.y0 / 1000)
            if b.columns * b.rows == 1:
                top.add(gdstk.Reference(cells[c], origin))
                n_single += 1
            else:
                spacing = (b.dx / 1000 if b.columns > 1 else 1.0, b.dy / 1000 if b.rows > 1 else 1.0)
                top.add(gdstk.Reference(cells[c], origin, columns=b.columns, rows=b.rows, spacing=spacing))
                n_arrays += 1
    x, y = raw.sample_x_um, raw.sample_y_um
    which = _label_selection(ids, xn, yn, mode)
    if len(which):
        ll, lt = LAYERS["label"]
        top.add(
            *[
                gdstk.Label(str(ids[i]), (float(x[i]), float(y[i])), layer=ll, texttype=lt)
                for i in which.tolist()
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
    if fluence_definition is not None:
        from fabplan.beam.base import format_fluence_definition

        x0, y0 = design.sample.region_polygon().bounds[:2]
        note = gdstk.Label(
            "fluences: " + format_fluence_definition(fluence_definition),
            (float(x0), float(y0) - 20.0),
            anchor="nw",
            layer=LAYERS["info"][0],
            texttype=LAYERS["info"][1],
        )
        for attr, key in FLUENCE_PROPERTIES.items():
            v = fluence_definition[key if key != "fluence_definition" else "name"]
            note.set_gds_property(attr, f"{key}={v:.6g}" if isinstance(v, float) else f"{key}={v}")
        top.add(note)
    lib.write_gds(str(path), timestamp=_EPOCH)
    return {
        "discs": len(x),
        "cells": len(cells) + 1,
        "arrays": n_arrays,
        "single_references": n_single,
        "labels": mode,
        "disc_labels": len(which),
        "fluence_definition": fluence_definition,
    }


def _nm(v: int) -> str:
    return "none" if v < 0 else str(v)


def _label_selection(ids: np.ndarray, xn: np.ndarray, yn: np.ndarray, mode: str) -> np.ndarray:
    """Indices of discs to label: all, none, or the leftmost disc of each id row ('A-r03' of 'A-r03c07')."""
    if mode == "none" or len(ids) == 0:
        return np.zeros(0, int)
    if mode == "all":
        return np.arange(len(ids))
    rows = np.char.rpartition(np.asarray(ids).astype(str), "c")[:, 0]
    order = np.lexsort((xn, rows))
    _, first = np.unique(rows[order], return_index=True)
    return np.sort(order[first])


def _cell_name(name: str) -> str:
    """A legal GDSII structure name: A-Z a-z 0-9 _ ? $, at most 32 characters."""
    s = "".join(ch if ch in NAME_CHARS else "_" for ch in name.upper())[:32]
    return s or "DESIGN"


# A fixed timestamp makes the same design give the same GDS bytes.
import datetime as _dt  # noqa: E402

_EPOCH = _dt.datetime(2000, 1, 1)
