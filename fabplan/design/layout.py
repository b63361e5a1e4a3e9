"""Layout-level checks on the expanded discs: spacing, film region, keep-outs.

Vectorised: a KD-tree finds close pairs, shapely 2 array predicates test the region and keep-outs.
Discs given only by fluence have no known diameter before the beam model is applied; for them
only coincident positions are caught here (the planner checks the ablated trenches).
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy.spatial import cKDTree

from fabplan.design import models
from fabplan.disctable import DiscTable
from fabplan.errors import Problem, summarize_ids


def _radius(discs: DiscTable) -> np.ndarray:
    return np.nan_to_num(discs.diameter_um, nan=0.0) / 2.0


def close_pairs(discs: DiscTable, margin_um: float) -> np.ndarray:
    """Indices (k x 2) of disc pairs whose designed edges are closer than margin (or that coincide)."""
    if len(discs) < 2:
        return np.empty((0, 2), int)
    r = _radius(discs)
    xy = np.c_[discs.x_um, discs.y_um]
    tree = cKDTree(xy)
    pairs = tree.query_pairs(2.0 * float(r.max()) + margin_um, output_type="ndarray")
    if len(pairs) == 0:
        return pairs
    gap = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T) - r[pairs[:, 0]] - r[pairs[:, 1]]
    return pairs[(gap < margin_um) | (gap <= -r[pairs[:, 0]] - r[pairs[:, 1]] + 1e-9)]


def outside_region(discs: DiscTable, region) -> np.ndarray:
    """Mask of discs not wholly inside the film region."""
    inside = shapely.contains_xy(region, discs.x_um, discs.y_um)
    r = _radius(discs)
    check = np.flatnonzero(inside & (r > 0))
    if check.size:
        pts = shapely.points(discs.x_um[check], discs.y_um[check])
        inside[check] = shapely.distance(region.boundary, pts) >= r[check]
    return ~inside


def in_keepouts(discs: DiscTable, keepouts: list) -> np.ndarray:
    """Mask of discs touching any keep-out zone."""
    hit = np.zeros(len(discs), bool)
    if not keepouts or len(discs) == 0:
        return hit
    r = _radius(discs)
    pts = shapely.points(discs.x_um, discs.y_um)
    tree = shapely.STRtree(keepouts)
    # Candidate pairs within the largest radius, then exact distance per pair (vectorised).
    pt_idx, ko_idx = tree.query(pts, predicate="dwithin", distance=float(r.max()) + 1e-9)
    if len(pt_idx):
        d = shapely.distance(np.asarray(keepouts, dtype=object)[ko_idx], pts[pt_idx])
        hit[pt_idx[d < np.maximum(r[pt_idx], 1e-9)]] = True
    return hit


def _first_array_path(discs: DiscTable, mask_or_index: np.ndarray) -> tuple:
    idx = np.flatnonzero(mask_or_index) if mask_or_index.dtype == bool else mask_or_index
    return ("arrays", int(discs.array_index[idx[0]])) if len(idx) else ("arrays",)


def layout_problems(design: models.Design, discs: DiscTable) -> list[Problem]:
    """Every layout problem, one line per class, naming the first few disc ids plus a count."""
    out: list[Problem] = []
    pairs = close_pairs(discs, design.process.margin)
    if len(pairs):
        ids = discs.ids
        names = [f"{ids[a]}/{ids[b]}" for a, b in pairs[:6]]
        out.append(
            design.problem(
                _first_array_path(discs, pairs[:, 0]),
                f"{len(pairs)} disc pair(s) overlap or are closer than the margin "
                f"({design.process.margin:g} um): " + summarize_ids(names, total=len(pairs)),
            )
        )
    mask = outside_region(discs, design.sample.region_polygon())
    if mask.any():
        out.append(
            design.problem(
                _first_array_path(discs, mask),
                f"{int(mask.sum())} disc(s) not inside the film region (sample.region): "
                + summarize_ids(discs.ids[mask]),
            )
        )
    mask = in_keepouts(discs, design.sample.keepout_geometries())
    if mask.any():
        out.append(
            design.problem(
                _first_array_path(discs, mask),
                f"{int(mask.sum())} disc(s) inside a keep-out zone (sample.keepouts): "
                + summarize_ids(discs.ids[mask]),
            )
        )
    return out
