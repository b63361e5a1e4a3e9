"""Circles against the film region and keep-outs, vectorised with shapely 2.

Every footprint fabplan checks is a circle (a designed disc, a predicted disc, an ablated
annulus), so one pair of functions serves the design's layout check and the planner's
verification alike.
"""

from __future__ import annotations

import numpy as np
import shapely


def outside_region_mask(region, x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """True where the circle (x, y, r) is not wholly inside `region` (shapely, vectorised)."""
    if len(x) == 0:
        return np.zeros(0, bool)
    rmax = float(np.max(r))
    inner = region.buffer(-rmax) if rmax > 0 else region
    surely_in = shapely.contains_xy(inner, x, y) if not inner.is_empty else np.zeros(len(x), bool)
    out = np.zeros(len(x), bool)
    rest = np.flatnonzero(~surely_in)
    if rest.size:
        pts = shapely.points(x[rest], y[rest])
        inside = shapely.contains_xy(region, x[rest], y[rest])
        edge = shapely.distance(region.boundary, pts)
        out[rest] = ~inside | (edge < r[rest] - 1e-9)
    return out


def keepout_hits(keepouts: list, x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(disc index, keep-out index) pairs where a circle of radius r reaches into a keep-out."""
    if not keepouts or len(x) == 0:
        return np.empty((2, 0), np.int64)
    geoms = np.asarray(keepouts, dtype=object)
    pts = shapely.points(x, y)
    tree = shapely.STRtree(pts)
    rmax = float(np.max(r)) if len(r) else 0.0
    cand = tree.query(shapely.buffer(geoms, rmax) if rmax > 0 else geoms, predicate="intersects")
    k_idx, d_idx = cand[0], cand[1]
    if k_idx.size == 0:
        return np.empty((2, 0), np.int64)
    dist = shapely.distance(geoms[k_idx], pts[d_idx])
    hit = (dist < r[d_idx] - 1e-9) | (dist == 0)  # distance 0: the centre is inside the keep-out
    return np.vstack([d_idx[hit], k_idx[hit]])
