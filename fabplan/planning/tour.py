"""Short open paths through irregular point sets: nearest neighbour, then 2-opt and Or-opt.

Both improvers use k-nearest-neighbour candidate lists from a KD-tree and "don't look" bits (a
work queue of cities whose surroundings changed), so each pass costs O(n k) distance evaluations
rather than O(n^2). The path is open (no return to the start): moves at either end of the path
remove one edge only. Lower bounds for reporting are in `lower_bound`.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree


def path_length(x: np.ndarray, y: np.ndarray, order: np.ndarray | None = None) -> float:
    """Sum of straight-line segment lengths along `order` (default: as given)."""
    if order is not None:
        x, y = x[order], y[order]
    if len(x) < 2:
        return 0.0
    return float(np.hypot(np.diff(x), np.diff(y)).sum())


def nearest_neighbour(x: np.ndarray, y: np.ndarray, start: int = 0) -> np.ndarray:
    """Greedy nearest-unvisited tour from `start` (KD-tree queries, brute force when boxed in)."""
    n = len(x)
    if n == 0:
        return np.empty(0, np.int64)
    pts = np.column_stack([x, y])
    tree = cKDTree(pts)
    visited = np.zeros(n, bool)
    order = np.empty(n, np.int64)
    cur = int(start)
    kmax = min(n, 32)
    for step in range(n):
        order[step] = cur
        visited[cur] = True
        if step == n - 1:
            break
        _, idx = tree.query(pts[cur], k=kmax)
        idx = np.atleast_1d(idx)
        free = idx[~visited[idx]]
        if free.size:
            cur = int(free[0])
            continue
        rest = np.flatnonzero(~visited)  # all close ones taken: exact search over the rest
        d2 = (x[rest] - x[cur]) ** 2 + (y[rest] - y[cur]) ** 2
        cur = int(rest[np.argmin(d2)])
    return order


def improve(
    x: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    k: int = 8,
    max_moves: int | None = None,
    kicks: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """2-opt + Or-opt (segments of 1-3) on an open path, with neighbour lists and a work queue.

    kicks > 0 adds an iterated local search: that many random local double-bridge moves (segments
    B and C within a window swapped: A B C D -> A C B D, which 2-opt cannot undo), each followed
    by local search around the changed edges and kept only if the path got shorter. The count,
    not a time budget, bounds it so the result is deterministic.
    """
    n = len(order)
    if n < 4:
        return np.asarray(order, np.int64)
    tour = np.asarray(order, np.int64).copy()
    pos = np.empty(n, np.int64)
    pos[tour] = np.arange(n)
    X, Y = x.tolist(), y.tolist()
    kk = min(k + 1, n)
    nd, nb = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=kk)
    nbrs = [list(zip(a, b, strict=True)) for a, b in zip(nb[:, 1:].tolist(), nd[:, 1:].tolist(), strict=True)]
    hyp = math.hypot

    def d(a: int, b: int) -> float:
        return hyp(X[a] - X[b], Y[a] - Y[b])

    queue: deque[int] = deque()
    queued = [False] * n
    budget = [max_moves if max_moves is not None else 50 * n]

    def push(*cities: int) -> None:
        for c in cities:
            if c >= 0 and not queued[c]:
                queued[c] = True
                queue.append(c)

    touched = [n, -1]  # range of positions changed since the last reset (for a cheap undo)

    def mark(i: int, j: int) -> None:
        if i < touched[0]:
            touched[0] = i
        if j > touched[1]:
            touched[1] = j

    def reverse(i: int, j: int) -> None:  # positions i..j inclusive
        seg = tour[i : j + 1][::-1].copy()
        tour[i : j + 1] = seg
        pos[seg] = np.arange(i, j + 1)
        mark(i, j)

    def relocate(lo: int, hi: int, seg: np.ndarray, jc: int, side: int) -> None:
        """Move tour[lo..hi] (as `seg`, maybe reversed) next to the city at position jc."""
        if jc > hi:
            end = jc if side == 1 else jc - 1
            new = np.concatenate([tour[hi + 1 : end + 1], seg])
            start = lo
        else:
            begin = jc + 1 if side == 1 else jc
            new = np.concatenate([seg, tour[begin:lo]])
            start, end = begin, hi
        tour[start : end + 1] = new
        pos[new] = np.arange(start, end + 1)
        mark(start, end)

    def two_opt(a: int, X=X, Y=Y, hyp=hyp, tour=tour, pos=pos) -> float:
        """Best-first 2-opt move around city a (successor and predecessor side); returns the gain."""
        for direction in (1, -1):
            i = int(pos[a])
            ib = i + direction
            if ib < 0 or ib >= n:
                continue
            b = int(tour[ib])
            dab = d(a, b)
            for c, dac in nbrs[a]:
                if dac >= dab:
                    break
                j = int(pos[c])
                je = j + direction
                e = int(tour[je]) if 0 <= je < n else -1
                if e == a or c == b:
                    continue
                if e >= 0:
                    xe, ye = X[e], Y[e]
                    dce = hyp(X[c] - xe, Y[c] - ye)
                    dbe = hyp(X[b] - xe, Y[b] - ye)
                else:
                    dce = dbe = 0.0
                gain = dab + dce - dac - dbe
                if gain > 1e-9:
                    if direction == 1:
                        lo, hi = (i + 1, j) if j > i else (j + 1, i)
                    else:
                        lo, hi = (j, i - 1) if j < i else (i, j - 1)
                    reverse(lo, hi)
                    push(a, b, c, e)
                    return gain
        return 0.0

    def or_opt(a: int, X=X, Y=Y, hyp=hyp, tour=tour, pos=pos) -> float:
        """Move the segment (1-3 cities) starting or ending at a next to a neighbour; returns the gain."""
        i = int(pos[a])
        for length in (1, 2, 3):
            for lo in (i, i - length + 1):
                hi = lo + length - 1
                if lo < 0 or hi >= n or (length == 1 and lo != i):
                    continue
                s0, s1 = int(tour[lo]), int(tour[hi])
                p = int(tour[lo - 1]) if lo > 0 else -1
                q = int(tour[hi + 1]) if hi + 1 < n else -1
                if p >= 0 and q >= 0:
                    gain_out = d(p, s0) + d(s1, q) - d(p, q)
                elif p >= 0:
                    gain_out = d(p, s0)
                elif q >= 0:
                    gain_out = d(s1, q)
                else:
                    continue
                seg_set = (s0,) if length == 1 else set(tour[lo : hi + 1].tolist())
                best = None
                for end, other in ((s0, s1), (s1, s0)):
                    for c, dce in nbrs[end]:
                        if dce >= gain_out:
                            break
                        if c in seg_set:
                            continue
                        jc = int(pos[c])
                        for side in (1, -1):  # insert between c and its successor / predecessor
                            jn = jc + side
                            if lo <= jn <= hi:
                                continue
                            if 0 <= jn < n:
                                nn = int(tour[jn])
                                xn, yn = X[nn], Y[nn]
                                added = dce + (hyp(X[other] - xn, Y[other] - yn) - hyp(X[c] - xn, Y[c] - yn))
                            else:
                                added = dce
                            delta = gain_out - added
                            if delta > 1e-9 and (best is None or delta > best[0]):
                                best = (delta, c, side, end)
                if best is not None:
                    delta, c, side, end = best
                    seg = tour[lo : hi + 1].copy()
                    if side == 1:  # c, seg..., next: the end touching c comes first
                        seg = seg if end == int(seg[0]) else seg[::-1]
                    else:  # prev, seg..., c
                        seg = seg if end == int(seg[-1]) else seg[::-1]
                    relocate(lo, hi, seg, int(pos[c]), side)
                    push(s0, s1, p, q, c)
                    pc = int(pos[c])
                    push(int(tour[min(pc + 1, n - 1)]), int(tour[max(pc - 1, 0)]))
                    return delta
        return 0.0

    def local_search() -> float:
        total = 0.0
        while queue and budget[0] > 0:
            a = queue.popleft()
            queued[a] = False
            g = two_opt(a)
            if g <= 0:
                g = or_opt(a)
            if g > 0:
                total += g
                budget[0] -= 1
        return total

    push(*tour.tolist())
    local_search()
    if kicks > 0 and n >= 8:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, 1 << 30, size=(kicks, 3)).tolist()
        for r0, r1, r2 in draws:
            # A = ..p0 | B = p0+1..p1 | C = p1+1..p2 | D = p2+1..   (B, C of 1-25 cities)
            p0 = r0 % (n - 2)
            p1 = p0 + 1 + r1 % 25
            p2 = p1 + 1 + r2 % 25
            if p2 > n - 1:
                continue
            t = tour
            a0, b0, b1, c0, c1_, d0 = (
                int(t[p0]),
                int(t[p0 + 1]),
                int(t[p1]),
                int(t[p1 + 1]),
                int(t[p2]),
                int(t[p2 + 1]) if p2 + 1 < n else -1,
            )
            removed = d(a0, b0) + d(b1, c0) + (d(c1_, d0) if d0 >= 0 else 0.0)
            added = d(a0, c0) + d(c1_, b0) + (d(b1, d0) if d0 >= 0 else 0.0)
            saved = tour.copy()
            touched[0], touched[1] = n, -1
            tour[p0 + 1 : p2 + 1] = np.concatenate([t[p1 + 1 : p2 + 1], t[p0 + 1 : p1 + 1]])
            pos[tour[p0 + 1 : p2 + 1]] = np.arange(p0 + 1, p2 + 1)
            mark(p0 + 1, p2)
            push(a0, b0, b1, c0, c1_, d0)
            gain = local_search() - (added - removed)
            if gain <= 1e-9:  # not better: undo the kick and whatever followed it
                lo_, hi_ = touched
                tour[lo_ : hi_ + 1] = saved[lo_ : hi_ + 1]
                pos[tour[lo_ : hi_ + 1]] = np.arange(lo_, hi_ + 1)
                while queue:
                    queued[queue.popleft()] = False
    return tour


def lower_bound(x: np.ndarray, y: np.ndarray, mst_limit: int = 200_000) -> tuple[float, str]:
    """A lower bound on any open path through the points, and how it was obtained.

    - neighbour bound: every interior path vertex has two path edges, at least its nearest and
      second-nearest neighbour distances, each edge counted twice: L >= sum (d1 + d2) / 2, minus the
      two largest d2 for the path ends.
    - MST bound: a path is a spanning tree, so L >= the Euclidean MST, computed exactly on the
      Delaunay graph (which contains the Euclidean MST).
    The larger one is returned (the MST bound only for n <= mst_limit, Delaunay cost).
    """
    n = len(x)
    if n < 2:
        return 0.0, "none (fewer than 2 shots)"
    pts = np.column_stack([x, y])
    k = min(3, n)
    dist, _ = cKDTree(pts).query(pts, k=k)
    d1 = dist[:, 1]
    d2 = dist[:, 2] if k > 2 else dist[:, 1]
    top2 = np.sort(d2)[-2:].sum() if n > 2 else d2.sum()
    nn_bound = float(0.5 * (d1.sum() + d2.sum() - top2))
    best, how = nn_bound, "nearest-neighbour bound sum((d1+d2)/2)"
    if n <= mst_limit and n >= 3:
        mst = mst_length(pts)
        if mst is not None and mst > best:
            best, how = mst, "Euclidean minimum spanning tree (Delaunay graph)"
    elif n == 2:
        best, how = float(np.hypot(*(pts[1] - pts[0]))), "exact (2 shots)"
    return best, how


def mst_length(pts: np.ndarray) -> float | None:
    """Euclidean MST length via the Delaunay graph; None if the points are degenerate (collinear)."""
    from scipy.spatial import Delaunay, QhullError

    try:
        tri = Delaunay(pts)
    except (QhullError, ValueError):
        # collinear points: the MST is the sorted chain along the line
        centred = pts - pts.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        t = np.sort(centred @ vt[0])
        return float(np.diff(t).sum())
    s = tri.simplices
    edges = np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]])
    edges.sort(axis=1)
    edges = np.unique(edges, axis=0)
    w = np.hypot(*(pts[edges[:, 0]] - pts[edges[:, 1]]).T)
    w = np.where(w == 0, 1e-12, w)  # csgraph treats 0 as "no edge"
    n = len(pts)
    g = coo_matrix((w, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    return float(minimum_spanning_tree(g).sum())
