"""Firing order: serpentine rows on lattices, nearest neighbour + 2-opt/Or-opt elsewhere.

The shots are cut into segments (one per attenuator setting when grouping, then one per array) and
each segment is ordered on its own; a segment starts at whichever of its possible first shots is
nearest to where the previous segment ended.

Serpentine (boustrophedon): the lattice index that runs along the stage's fast axis x (rows, or
columns for a lattice turned by ~90 deg) defines the lines; lines are taken in order of their mean
y and alternate direction, all in one `np.lexsort`.
"""

from __future__ import annotations

import numpy as np

from fabplan.planning.tour import improve, nearest_neighbour

IMPROVE_LIMIT = 100_000  # above this many shots in one irregular segment, nearest neighbour only
MAX_KICKS = 5000  # iterated-local-search kicks per segment: n/4, at most this (~2.5 s at 20,000 shots)


def line_index(row: np.ndarray, col: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per shot, the lattice line (row or column) that runs along stage x, for one lattice array."""
    if len(x) < 2:
        return np.zeros(len(x), np.int64)

    # spread of y within rows vs within columns: rows run along x when y barely varies inside them
    def within_spread(key: np.ndarray) -> float:
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        mean = np.bincount(inv, y) / cnt
        return float(np.abs(y - mean[inv]).sum())

    use_rows = within_spread(row) <= within_spread(col)
    return (row if use_rows else col).astype(np.int64)


def serpentine(x: np.ndarray, y: np.ndarray, line: np.ndarray, flip_lines: bool, flip_x: bool) -> np.ndarray:
    """Order (indices) visiting lines by mean y, alternating x direction; flips pick the start corner."""
    n = len(x)
    if n == 0:
        return np.empty(0, np.int64)
    keys, inv, cnt = np.unique(line, return_inverse=True, return_counts=True)
    mean_y = np.bincount(inv, y) / cnt
    rank_of_key = np.empty(len(keys), np.int64)
    rank_of_key[np.lexsort((keys, mean_y))] = np.arange(len(keys))
    rank = rank_of_key[inv]
    if flip_lines:
        rank = len(keys) - 1 - rank
    direction = np.where(rank % 2 == 0, 1.0, -1.0) * (-1.0 if flip_x else 1.0)
    return np.lexsort((np.arange(n), direction * x, rank)).astype(np.int64)


def order_serpentine(
    x: np.ndarray, y: np.ndarray, line: np.ndarray, prev: tuple[float, float] | None
) -> np.ndarray:
    """Serpentine with the start corner nearest `prev` (lowest line, +x first when there is none)."""
    if prev is None:
        return serpentine(x, y, line, False, False)
    best, best_d = None, np.inf
    for fl in (False, True):
        for fx in (False, True):
            o = serpentine(x, y, line, fl, fx)
            dd = float(np.hypot(x[o[0]] - prev[0], y[o[0]] - prev[1]))
            if dd < best_d - 1e-9:
                best, best_d = o, dd
    assert best is not None
    return best


def order_nearest(
    x: np.ndarray, y: np.ndarray, prev: tuple[float, float] | None, improve_paths: bool = True
) -> np.ndarray:
    """Nearest-neighbour path from the shot nearest `prev` (or the lowest-left one), then 2-opt/Or-opt."""
    n = len(x)
    if n == 0:
        return np.empty(0, np.int64)
    if prev is None:
        start = int(np.lexsort((x, y + x))[0])
    else:
        start = int(np.argmin(np.hypot(x - prev[0], y - prev[1])))
    order = nearest_neighbour(x, y, start)
    if improve_paths and 3 < n <= IMPROVE_LIMIT:
        order = improve(x, y, order, k=10, kicks=min(n // 4, MAX_KICKS))
        # 2-opt may have reversed the head: keep the start nearest `prev`
        if prev is not None:
            d0 = np.hypot(x[order[0]] - prev[0], y[order[0]] - prev[1])
            d1 = np.hypot(x[order[-1]] - prev[0], y[order[-1]] - prev[1])
            if d1 < d0:
                order = order[::-1].copy()
    return order


def order_shots(
    x: np.ndarray,
    y: np.ndarray,
    array_index: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    is_lattice: list[bool],
    method: str,
    group: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Firing order of all shots and, per ordered shot, its (segment, line) key for fly lines.

    method: "auto" (serpentine on lattice arrays, nearest elsewhere), "serpentine", "nearest",
    "as-listed". `group`: per-shot group labels (e.g. attenuator setting) visited in ascending
    order; None for no grouping. Returns (order, line_key) with line_key unique per lattice line
    within a segment, and a fresh key per shot where there are no lines.
    """
    n = len(x)
    if method == "as-listed" or n == 0:
        return np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    if group is None:
        group_ids = np.zeros(n, np.int64)
    else:
        _, group_ids = np.unique(group, return_inverse=True)  # NaNs sort last, one group
        group_ids = group_ids.ravel()
    pieces: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    prev: tuple[float, float] | None = None
    next_key = 0
    for g in range(int(group_ids.max()) + 1 if n else 0):
        in_g = group_ids == g
        for a in np.unique(array_index[in_g]).tolist():
            idx = np.flatnonzero(in_g & (array_index == a))
            xs, ys = x[idx], y[idx]
            lattice = is_lattice[a] if a < len(is_lattice) else False
            if method == "nearest" or (method == "auto" and not lattice) or not lattice:
                o = order_nearest(xs, ys, prev)
                k = np.full(len(o), next_key)  # no lattice lines: fly lines come from spacing alone
            else:
                line = line_index(row[idx], col[idx], xs, ys)
                o = order_serpentine(xs, ys, line, prev)
                _, k = np.unique(line[o], return_inverse=True)
                k = next_key + k.ravel()
            pieces.append(idx[o])
            keys.append(k)
            next_key = int(k.max()) + 1 if len(k) else next_key
            prev = (float(xs[o[-1]]), float(ys[o[-1]]))
    return np.concatenate(pieces), np.concatenate(keys)
