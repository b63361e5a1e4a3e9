"""Layout-level checks on the expanded discs: spacing, film region, keep-outs.

Vectorised: a KD-tree finds close pairs, shapely 2 array predicates test the region and keep-outs.
Discs given only by fluence have no known diameter before the beam model is applied; for them
only coincident positions are caught here (the planner checks the ablated trenches).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from fabplan.design import models
from fabplan.design.expand import MAX_COORD_UM  # refused at expansion; checked here for any DiscTable
from fabplan.disctable import DiscTable
from fabplan.errors import Problem, summarize_ids
from fabplan.geometry import keepout_hits, outside_region_mask


def _radius(discs: DiscTable) -> np.ndarray:
    return np.nan_to_num(discs.diameter_um, nan=0.0) / 2.0


MAX_PAIRS = 1_000_000  # beyond this the layout is absurd (e.g. a pitch of 5e-324 um): count, do not list


def close_pairs(discs: DiscTable, margin_um: float) -> np.ndarray:
    """Indices (k x 2) of disc pairs whose designed edges are closer than margin (or that coincide)."""
    return close_pairs_counted(discs, margin_um)[0]


def close_pairs_counted(discs: DiscTable, margin_um: float) -> tuple[np.ndarray, int | None]:
    """(pairs, count); with more than MAX_PAIRS candidate pairs only pairs among the first 1,000
    discs are listed and count is None ("more than MAX_PAIRS"): bounded time and memory."""
    if len(discs) < 2:
        return np.empty((0, 2), int), 0
    r = _radius(discs)
    xy = np.c_[discs.x_um, discs.y_um]
    tree = cKDTree(xy)
    reach = 2.0 * float(r.max()) + margin_um
    count: int | None = None
    if (int(tree.count_neighbors(tree, reach)) - len(xy)) // 2 > MAX_PAIRS:  # dual-tree count, no list
        xy, r = xy[:1000], r[:1000]
        tree = cKDTree(xy)
    pairs = tree.query_pairs(reach, output_type="ndarray")
    if len(pairs):
        gap = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T) - r[pairs[:, 0]] - r[pairs[:, 1]]
        pairs = pairs[(gap < margin_um) | (gap <= -r[pairs[:, 0]] - r[pairs[:, 1]] + 1e-9)]
    if len(discs) == len(xy):
        count = len(pairs)
    return pairs, count


def outside_region(discs: DiscTable, region) -> np.ndarray:
    """Mask of discs not wholly inside the film region."""
    return outside_region_mask(region, discs.x_um, discs.y_um, _radius(discs))


def in_keepouts(discs: DiscTable, keepouts: list) -> np.ndarray:
    """Mask of discs touching any keep-out zone."""
    hit = np.zeros(len(discs), bool)
    hit[keepout_hits(keepouts, discs.x_um, discs.y_um, _radius(discs))[0]] = True
    return hit


def _first_array_path(discs: DiscTable, mask_or_index: np.ndarray) -> tuple:
    idx = np.flatnonzero(mask_or_index) if mask_or_index.dtype == bool else mask_or_index
    return ("arrays", int(discs.array_index[idx[0]])) if len(idx) else ("arrays",)


def layout_problems(design: models.Design, discs: DiscTable) -> list[Problem]:
    """Every layout problem, one line per class, naming the first few disc ids plus a count."""
    out: list[Problem] = []
    far = ~(np.abs(discs.x_um) <= MAX_COORD_UM) | ~(np.abs(discs.y_um) <= MAX_COORD_UM)
    if far.any():  # e.g. x = 1e308 from a disc CSV: the spacing check's KD-tree overflows on such values
        return [
            design.problem(
                _first_array_path(discs, far),
                f"{int(far.sum())} disc(s) placed beyond {MAX_COORD_UM / 1e6:g} m from the origin: "
                + summarize_ids(discs.ids[far]),
            )
        ]
    pairs, count = close_pairs_counted(discs, design.process.margin)
    if len(pairs):
        ids = discs.ids
        names = [f"{ids[a]}/{ids[b]}" for a, b in pairs[:6]]
        how_many = f"{count}" if count is not None else f"more than {MAX_PAIRS:,}"
        out.append(
            design.problem(
                _first_array_path(discs, pairs[:, 0]),
                f"{how_many} disc pair(s) overlap or are closer than the margin "
                f"({design.process.margin:g} um): " + summarize_ids(names, total=count if count is not None else len(names[:5])),
            )
        )
    masks = (
        (outside_region(discs, design.sample.region_polygon()), "not inside the film region (sample.region)"),
        (in_keepouts(discs, design.sample.keepout_geometries()), "inside a keep-out zone (sample.keepouts)"),
    )
    for mask, what in masks:
        if mask.any():
            out.append(
                design.problem(
                    _first_array_path(discs, mask),
                    f"{int(mask.sum())} disc(s) {what}: " + summarize_ids(discs.ids[mask]),
                )
            )
    return out
