"""Preview figure of a design and its plan: discs, trenches, path, region, keep-outs, fiducials.

Readable from 1 disc to 10^6: up to DRAW_LIMIT discs every disc and trench is a true circle
(matplotlib collections in data units) and the firing path is drawn; above it the discs are a
rasterised scatter coloured by value, and a zoomed inset shows the first shots at true size with
their trenches and path. All coordinates are sample coordinates (um), as in the design.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DRAW_LIMIT = 3000
INSET_SHOTS = 60


def _nice_length(span: float) -> float:
    """1, 2 or 5 x 10^k, about a fifth of `span`."""
    target = max(span / 5.0, 1e-3)
    k = math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * 10**k <= target:
            return m * 10.0**k
    return 10.0**k


def _fmt_len(um: float) -> str:
    if um >= 1000:
        return f"{um / 1000:g} mm"
    return f"{um:g} um"


def _add_geometry(ax, geom, **kw) -> None:
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MPath

    polys = getattr(geom, "geoms", [geom])
    for poly in polys:
        if poly.geom_type != "Polygon":
            continue
        rings = [np.asarray(poly.exterior.coords)] + [np.asarray(r.coords) for r in poly.interiors]
        verts = np.concatenate(rings)
        codes = np.concatenate(
            [[MPath.MOVETO] + [MPath.LINETO] * (len(r) - 2) + [MPath.CLOSEPOLY] for r in rings]
        )
        ax.add_patch(PathPatch(MPath(verts, codes), **kw))


def _circles(ax, x, y, d, colors=None, face=True, **kw):
    from matplotlib.collections import EllipseCollection

    d = np.nan_to_num(np.asarray(d, float), nan=0.0)
    coll = EllipseCollection(
        d,
        d,
        np.zeros_like(d),
        units="xy",
        offsets=np.column_stack([x, y]),
        offset_transform=ax.transData,
        **kw,
    )
    if face and colors is not None:
        coll.set_array(np.asarray(colors, float))
    ax.add_collection(coll)
    return coll


def _draw_shots(ax, sx, sy, diam, trench, value, order_x, order_y, norm, cmap, path=True):
    _circles(ax, sx, sy, trench, face=False, facecolors="none", edgecolors="0.55", linewidths=0.4)
    coll = _circles(ax, sx, sy, diam, colors=value, cmap=cmap, norm=norm, edgecolors="none")
    if path and len(order_x) > 1:
        ax.plot(order_x, order_y, "-", color="tab:red", lw=0.6, alpha=0.8, zorder=3)
        ax.plot(order_x[:1], order_y[:1], "o", color="tab:red", ms=4, zorder=4)
    return coll


def render_preview(
    design: Any,
    raw: Any,
    plan: Any | None,
    output: str,
    color_by: str = "diameter",
    problems: list | None = None,
    fluence_definition: dict | None = None,
) -> None:
    """Write the preview to `output` (.png, .svg or .pdf by extension).

    `fluence_definition` (`BeamModel.fluence_definition_info()`, else the plan header's) is named in
    the title, the fluence colour bar and the text box: a fluence number means nothing without it.
    """
    from fabplan.beam.base import fluence_definition_short, format_fluence_definition, plan_fluence_definition

    fdef = fluence_definition or (plan_fluence_definition(plan.header) if plan is not None else None)
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    if plan is not None:
        s = plan.shots
        sx, sy = s.sample_x_um, s.sample_y_um
        diam, trench = s.diameter_um, s.trench_outer_um
        value = s.diameter_um if color_by == "diameter" else s.fluence_mj_cm2
        ox, oy = sx, sy
    else:
        sx, sy = raw.sample_x_um, raw.sample_y_um
        diam, trench = raw.diameter_um, raw.trench_outer_um
        value = raw.diameter_um if color_by == "diameter" else raw.fluence_mj_cm2
        ox, oy = np.empty(0), np.empty(0)
    n = len(sx)
    label = "disc diameter (um)" if color_by == "diameter" else f"{fluence_definition_short(fdef)} (mJ/cm^2)"
    finite = value[np.isfinite(value)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    norm = Normalize(lo, hi)
    cmap = "viridis"

    dense = n > DRAW_LIMIT
    pitch = float(np.median(np.hypot(np.diff(sx[:500]), np.diff(sy[:500])))) if n > 1 else 0.0
    tr_max = float(np.nanmax(np.nan_to_num(trench, nan=0.0))) if n else 0.0
    rb = design.sample.region_polygon().bounds
    span_main = max(
        rb[2] - rb[0], rb[3] - rb[1], float(np.ptp(sx)) if n else 0.0, float(np.ptp(sy)) if n else 0.0
    )
    zoom = n >= 1 and (dense or (tr_max > 0 and tr_max < span_main / 60))
    if zoom:
        fig, (ax, az) = plt.subplots(1, 2, figsize=(13, 7), dpi=130, gridspec_kw={"width_ratios": [2.3, 1]})
    else:
        fig, ax = plt.subplots(figsize=(9, 7.5), dpi=130)
        az = None
    region = design.sample.region_polygon()
    _add_geometry(ax, region, facecolor="#f3efe0", edgecolor="#b0a070", lw=1.0, zorder=0)
    for k, geom in zip(design.sample.keepouts, design.sample.keepout_geometries(), strict=True):
        _add_geometry(ax, geom, facecolor="#f4c7c3", edgecolor="#c0392b", hatch="//", lw=0.8, zorder=1)
        c = geom.representative_point()
        if k.name:
            ax.annotate(k.name, (c.x, c.y), color="#c0392b", fontsize=8, ha="center", zorder=5)
    for name, (fx, fy) in design.sample.fiducials.items():
        ax.plot([fx], [fy], "+", color="k", ms=10, mew=1.5, zorder=5)
        ax.annotate(name, (fx, fy), xytext=(4, 4), textcoords="offset points", fontsize=8, zorder=5)

    if not dense:
        mappable = _draw_shots(ax, sx, sy, diam, trench, value, ox, oy, norm, cmap)
    else:
        mappable = _binned_image(ax, sx, sy, value, norm, cmap)
    fig.colorbar(mappable, ax=ax, label=label, shrink=0.8)

    xmin, ymin, xmax, ymax = region.bounds
    if n:
        r = float(np.nanmax(np.nan_to_num(trench, nan=0.0))) / 2.0 + 1.0
        xmin, xmax = min(xmin, float(sx.min()) - r), max(xmax, float(sx.max()) + r)
        ymin, ymax = min(ymin, float(sy.min()) - r), max(ymax, float(sy.max()) + r)
    pad = 0.04 * max(xmax - xmin, ymax - ymin, 1.0)
    ax.set_xlim(xmin - pad, xmax + pad)
    ax.set_ylim(ymin - pad, ymax + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("x (um, sample)")
    ax.set_ylabel("y (um, sample)")
    bar = _nice_length(xmax - xmin)
    ax.add_artist(
        AnchoredSizeBar(
            ax.transData, bar, _fmt_len(bar), "lower left", pad=0.5, frameon=True, size_vertical=0
        )
    )

    if az is not None:
        _zoom_panel(ax, az, region, sx, sy, diam, trench, value, ox, oy, norm, cmap, max(pitch, tr_max))

    title = f"{design.name}: {n:,} disc{'s' if n != 1 else ''}"
    lines = []
    if fdef is not None:
        what, _, conversion = format_fluence_definition(fdef).partition("; ")
        lines += [f"fluence definition: {what}", f"  {conversion}"]
    if plan is not None:
        h = plan.header
        e = h["estimate"]
        from fabplan.planning.summary import format_duration

        title += f", {h['mode']} mode"
        lines.append(f"estimated time {format_duration(e['total_s'])}")
        lines.append(
            f"moves {format_duration(e['moves_s'])}, settle {format_duration(e['settle_s'])}, "
            f"pulses {format_duration(e['pulses_s'])}"
        )
        lines.append(
            f"attenuator {format_duration(e['attenuator_s'])}, turnarounds {format_duration(e['turnarounds_s'])}"
        )
        lines.append(
            f"path {h['path_length_um'] / 1000:.3f} mm (lower bound {h['path_lower_bound_um'] / 1000:.3f} mm)"
        )
        if n > DRAW_LIMIT:
            lines.append(
                "path: see zoom" + (f" ({h.get('n_lines', 0)} fly lines)" if h["mode"] == "fly" else "")
            )
    # WGM annotation (issue 6): predicted FSR / mode count (per disc on small designs).
    from fabplan.wgm.design import annotate_discs, design_wgm_summary, preview_lines

    wgm = design_wgm_summary(design, diam)
    lines += preview_lines(wgm)
    if not dense:
        annotate_discs(ax, sx, sy, diam, wgm)
    if problems:
        title += " - NOT PLANNABLE"
        lines += [p.kind + ": " + p.message[:90] for p in problems[:5]]
        bad = np.unique(np.concatenate([p.index for p in problems]))
        bad = bad[bad < n]
        ax.plot(sx[bad], sy[bad], "x", color="red", ms=6, mew=1.2, zorder=6)
    ax.set_title(title + (f" (fluences: {fdef['name']})" if fdef is not None else ""))
    if lines:
        ax.annotate(  # below the axes, under the x label: the box never hides a disc, a keep-out or the path
            "\n".join(lines),
            (0.0, 0.0),
            xycoords="axes fraction",
            xytext=(0, -34),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=7.5,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85},
            zorder=7,
        )
    fig.savefig(output, bbox_inches="tight", metadata=_metadata(output))
    plt.close(fig)


def _binned_image(ax, x, y, value, norm, cmap):
    """Mean value per bin as an image: a dense array without moire or a million markers."""
    bins = int(min(400, max(20, math.sqrt(len(x)) / 2)))
    rng = [[float(x.min()), float(x.max()) + 1e-9], [float(y.min()), float(y.max()) + 1e-9]]
    v = np.nan_to_num(value, nan=0.0)
    count, xe, ye = np.histogram2d(x, y, bins=bins, range=rng)
    total, _, _ = np.histogram2d(x, y, bins=bins, range=rng, weights=v)
    with np.errstate(invalid="ignore", divide="ignore"):
        img = np.ma.masked_where(count == 0, total / count)
    return ax.imshow(
        img.T,
        origin="lower",
        extent=(xe[0], xe[-1], ye[0], ye[-1]),
        cmap=cmap,
        norm=norm,
        interpolation="nearest",
        aspect="auto",
        zorder=2,
        rasterized=True,
    )


def _zoom_panel(ax, az, region, sx, sy, diam, trench, value, ox, oy, norm, cmap, scale):
    """True-size view around the first turn of the path (or the first shots without a plan)."""
    if len(ox) > 2:
        step = np.diff(ox[: min(len(ox), 200_000)])
        turn = np.flatnonzero(np.sign(step[1:]) != np.sign(step[:-1]))
        k = int(turn[0]) + 1 if turn.size else 0
        cx, cy = float(ox[k]), float(oy[k])
    else:
        cx, cy = float(sx[0]), float(sy[0])
    half = 5 * scale
    # keep the turn near a corner of the window, with the array filling the rest
    cx += float(np.clip(np.mean(sx) - cx, -0.7 * half, 0.7 * half))
    cy += float(np.clip(np.mean(sy) - cy, -0.7 * half, 0.7 * half))
    sel = np.flatnonzero((np.abs(sx - cx) <= half + scale) & (np.abs(sy - cy) <= half + scale))
    _add_geometry(az, region, facecolor="#f3efe0", edgecolor="#b0a070", lw=1.0, zorder=0)
    _draw_shots(az, sx[sel], sy[sel], diam[sel], trench[sel], value[sel], [], [], norm, cmap, path=False)
    if len(ox) > 1:
        inside = np.flatnonzero((np.abs(ox - cx) <= 2 * half) & (np.abs(oy - cy) <= 2 * half))
        if inside.size:
            lo, hi = int(inside.min()), int(min(inside.max(), inside.min() + 20_000))
            az.plot(ox[lo : hi + 1], oy[lo : hi + 1], "-", color="tab:red", lw=0.8, zorder=3)
            az.plot(ox[:1], oy[:1], "o", color="tab:red", ms=4, zorder=4)
    az.set_xlim(cx - half, cx + half)
    az.set_ylim(cy - half, cy + half)
    az.set_aspect("equal")
    az.set_title("zoom, true size: discs, trenches (grey), path (red)", fontsize=8)
    az.tick_params(labelsize=7)
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    bar = _nice_length(2 * half)
    az.add_artist(AnchoredSizeBar(az.transData, bar, _fmt_len(bar), "lower right", pad=0.4, frameon=True))
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle(
            (cx - half, cy - half), 2 * half, 2 * half, fill=False, edgecolor="tab:red", lw=1.2, zorder=8
        )
    )


def _metadata(output: str) -> dict:
    """No creation dates in the files, so previews of one design are comparable."""
    ext = output.rsplit(".", 1)[-1].lower()
    if ext == "svg":
        return {"Date": None}
    if ext == "pdf":
        return {"CreationDate": None}
    return {}
