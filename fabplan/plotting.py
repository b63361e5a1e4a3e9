"""Small helpers that keep fabplan's figures readable from 1 disc to 250,000.

Each figure module (preview, dry-run report, lab report) calls these instead of its own copies:
counts on integer axes, sample maps that never zoom into a single point (a one-disc map spans
at least `min_span_um`) and turn into binned images when there are too many discs to draw one by
one, and legends placed where they cover no data (in a strip added above the data if need be).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SCATTER_MAX = 20_000  # above this, sample maps are binned (one mean per bin) instead of one marker per disc


def integer_counts(axis: Any) -> None:
    """Whole-number ticks on a count axis (no 0.5 shots, no minor ticks between them)."""
    from matplotlib.ticker import MaxNLocator, NullLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axis.set_minor_locator(NullLocator())


def count_limits(ax: Any, top: float, axis: str = "y") -> None:
    """A count axis from 0 to a little above `top` (at least 1), with integer ticks."""
    hi = max(float(top), 1.0) * 1.08
    (ax.set_ylim if axis == "y" else ax.set_xlim)(0, hi)
    integer_counts(ax.yaxis if axis == "y" else ax.xaxis)


def span_limits(ax: Any, x: np.ndarray, y: np.ndarray, min_span_um: float = 20.0, margin: float = 0.05,
                equal: bool = True) -> None:
    """Axis limits around the points with a margin; a single disc (or one row) still gets a
    `min_span_um` window instead of +-0.04 um around one point."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return
    x, y = x[ok], y[ok]
    spans = []
    for v in (x, y):
        lo, hi = float(v.min()), float(v.max())
        span = max(hi - lo, min_span_um)
        pad = span * margin
        mid = 0.5 * (lo + hi)
        spans.append((mid - span / 2 - pad, mid + span / 2 + pad))
    if equal:
        half = max(spans[0][1] - spans[0][0], spans[1][1] - spans[1][0]) / 2
        spans = [(0.5 * (a + b) - half, 0.5 * (a + b) + half) for a, b in spans]
    ax.set_xlim(*spans[0])
    ax.set_ylim(*spans[1])
    if equal:
        ax.set_aspect("equal", adjustable="box")


def sample_map(ax: Any, x: np.ndarray, y: np.ndarray, c: np.ndarray | None = None, *, color: str = "C0",
               cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None, size: float = 12.0,
               label: str | None = None, max_points: int = SCATTER_MAX, bins: int = 200) -> Any:
    """Discs as markers, or (more than `max_points`) as a binned image: the mean of `c` per bin, or
    the disc count per bin without `c`. Returns the mappable (for a colorbar) or the scatter."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = len(x)
    if n <= max_points:
        if c is None:
            return ax.scatter(x, y, s=size, color=color, lw=0, label=label)
        return ax.scatter(x, y, s=size, c=c, cmap=cmap, vmin=vmin, vmax=vmax, lw=0, label=label)
    ok = np.isfinite(x) & np.isfinite(y)
    xe = np.linspace(x[ok].min(), x[ok].max() + 1e-9, bins + 1)
    ye = np.linspace(y[ok].min(), y[ok].max() + 1e-9, bins + 1)
    if c is None:
        counts, _, _ = np.histogram2d(x[ok], y[ok], bins=(xe, ye))
        img = np.where(counts > 0, counts, np.nan)
        return ax.pcolormesh(xe, ye, img.T, cmap="Greys", vmin=0, rasterized=True, label=label)
    cv = np.asarray(c, float)[ok]
    good = np.isfinite(cv)
    sums, _, _ = np.histogram2d(x[ok][good], y[ok][good], bins=(xe, ye), weights=cv[good])
    nums, _, _ = np.histogram2d(x[ok][good], y[ok][good], bins=(xe, ye))
    with np.errstate(invalid="ignore", divide="ignore"):
        img = np.where(nums > 0, sums / nums, np.nan)
    return ax.pcolormesh(xe, ye, img.T, cmap=cmap, vmin=vmin, vmax=vmax, rasterized=True, label=label)


def fraction_map(ax: Any, x: np.ndarray, y: np.ndarray, selected: np.ndarray, bins: int = 200,
                 cmap: str = "Greens") -> Any:
    """Fraction of the discs in each bin that are `selected` (e.g. fired), 0..1: uniform where the
    whole area is done, with no moire from how many disc rows happen to fall in a bin: the binned
    mean of `selected` as 0/1, at any number of discs."""
    c = np.asarray(selected, dtype=bool).astype(float)
    return sample_map(ax, x, y, c, cmap=cmap, vmin=0.0, vmax=1.0, max_points=0, bins=bins)


def legend_clear(ax: Any, **kwargs: Any) -> Any:
    """A legend with only the entries that are there, at the place matplotlib finds emptiest;
    when every place holds data, the y axis grows a strip above the data for it. Nothing when there
    is nothing to label."""
    handles, labels = ax.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels, strict=True) if lab and not lab.startswith("_")]
    if not keep:
        return None
    handles, labels = zip(*keep, strict=True)
    leg = ax.legend(handles, labels, loc="best", **kwargs)
    if _covers_data(ax, leg):  # make a strip above the data as tall as the legend, and put it there
        renderer = ax.figure.canvas.get_renderer()
        h = leg.get_window_extent(renderer).height / max(ax.get_window_extent(renderer).height, 1.0)
        leg.remove()
        lo, hi = ax.get_ylim()
        grow = 1.0 / max(1.0 - h - 0.04, 0.3)
        if ax.get_yscale() == "log" and lo > 0 and hi > 0:
            ax.set_ylim(lo, lo * (hi / lo) ** grow)
        else:
            ax.set_ylim(lo, lo + (hi - lo) * grow)
        leg = ax.legend(handles, labels, loc="upper left", **kwargs)
    return leg


def _covers_data(ax: Any, leg: Any) -> bool:
    """True when the legend box overlaps any plotted point (lines' vertices, scatter offsets)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    box = leg.get_window_extent(renderer)
    pts = []
    for line in ax.get_lines():
        xy = line.get_xydata()
        if len(xy):
            pts.append(ax.transData.transform(xy[:: max(1, len(xy) // 2000)]))
    for coll in ax.collections:
        off = getattr(coll, "get_offsets", lambda: np.empty((0, 2)))()
        if len(off) and coll.get_transform() is not None and coll.get_offset_transform() is ax.transData:
            pts.append(ax.transData.transform(np.asarray(off)[:: max(1, len(off) // 2000)]))
    full = ax.get_window_extent(renderer).height
    for patch in ax.patches:  # bars: the middle of their top edge (not full-height bands: axvspan)
        ext = patch.get_window_extent(renderer)
        if ext.width > 0 and 0 < ext.height < 0.98 * full:
            pts.append(np.array([[0.5 * (ext.x0 + ext.x1), ext.y1]]))
    if not pts:
        return False
    p = np.vstack(pts)
    m = 4.0 * fig.dpi / 72.0  # a marker's half-width: a point at the edge is covered too
    inside = (p[:, 0] >= box.x0 - m) & (p[:, 0] <= box.x1 + m) & (p[:, 1] >= box.y0 - m) & (p[:, 1] <= box.y1 + m)
    return bool(inside.any())
