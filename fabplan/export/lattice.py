"""Find rectangular lattices in a set of points on an integer grid, for GDSII arrays (AREF).

A GDSII AREF places one cell at origin + i*v1 + j*v2 (i < columns, j < rows, both <= 32767).
Points are cut into rows of equal y, each row into runs of constant x step, and runs with the
same (x0, step, length) in rows at a constant y step are merged into one block. A hexagonal
lattice becomes two blocks (even and odd rows); a rotated lattice or scattered points fall back
to single placements (blocks of 1 x 1). Every point lands in exactly one block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_REPEAT = 32767  # GDSII COLROW is a signed 16-bit integer


@dataclass(frozen=True)
class Block:
    x0: int
    y0: int
    columns: int
    rows: int
    dx: int  # column step (meaningless when columns == 1)
    dy: int  # row step (meaningless when rows == 1)
    members: np.ndarray  # indices into the input, row-major


def _runs(xs: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index ranges of sorted xs with a constant step, greedy from the left."""
    n = len(xs)
    if n <= 2:
        return [(0, n)]
    d = np.diff(xs)
    if d[0] > 0 and np.all(d == d[0]) and n <= MAX_REPEAT:
        return [(0, n)]
    out, i = [], 0
    while i < n:
        j = i + 1  # exclusive stop
        if j < n and xs[j] > xs[i]:
            step = xs[j] - xs[i]
            j += 1
            while j < n and xs[j] - xs[j - 1] == step and j - i < MAX_REPEAT:
                j += 1
        out.append((i, j))
        i = j
    return out


def find_blocks(x: np.ndarray, y: np.ndarray) -> list[Block]:
    """Blocks covering every point once; x, y integer arrays (e.g. nm)."""
    x = np.asarray(x, np.int64)
    y = np.asarray(y, np.int64)
    order = np.lexsort((x, y))
    xs, ys = x[order], y[order]
    cut = np.flatnonzero(np.diff(ys)) + 1
    starts = np.concatenate([[0], cut])
    stops = np.concatenate([cut, [len(xs)]])
    # runs keyed by (x0, step, length): y -> member indices
    runs: dict[tuple[int, int, int], list[tuple[int, np.ndarray]]] = {}
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        row = xs[a:b]
        for i, j in _runs(row):
            n = j - i
            step = int(row[i + 1] - row[i]) if n > 1 else 0
            runs.setdefault((int(row[i]), step, n), []).append((int(ys[a]), order[a + i : a + j]))
    blocks = []
    for (x0, step, n), rows in runs.items():
        yv = [r[0] for r in rows]  # ascending (rows were visited in y order)
        k = 0
        while k < len(rows):
            m = k + 1
            if m < len(rows):
                dy = yv[m] - yv[k]
                while m + 1 < len(rows) and yv[m + 1] - yv[m] == dy and m + 1 - k < MAX_REPEAT:
                    m += 1
                m += 1
            dy = yv[k + 1] - yv[k] if m - k > 1 else 0
            members = np.concatenate([r[1] for r in rows[k:m]])
            blocks.append(Block(x0, yv[k], n, m - k, step, dy, members))
            k = m
    return blocks
