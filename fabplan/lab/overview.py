"""One page with every measured disc's light-in/light-out curve: the report's quick look.

A detailed four-panel figure per disc costs ~1 s of CPU (matplotlib ticks and text); 63 of them made
`lab report` take minutes. This sheet draws all discs (up to `max_panels`, the first ones by id) as
small log-log panels drawn in one Axes, each with its threshold and status colour: ~0.3 s of CPU for
63 discs; the per-disc figures remain available for the discs one asks for.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

STATUS_COLORS = {
    "lasing": "#1b7837",
    "ASE-only": "#e08214",
    "dead": "#777777",
    "damaged": "#b2182b",
    "undetermined": "#8073ac",
    "untested": "#c7c7c7",
}


def overview_sheet(plt: Any, con: Any, rows: list[dict], path: Path, max_panels: int = 100) -> Path | None:
    """Write the sheet of `rows` (disc rows with series_id, status, threshold_uj_cm2, diameter_um) to
    `path` (format from its suffix); None when no disc was measured.

    One Axes holds every panel (each a cell of a grid, log pump fluence across, log emission up on
    the disc's own scale): dozens of small Axes cost seconds in tick layout alone."""
    import textwrap

    from matplotlib.collections import LineCollection

    measured = [r for r in rows if r.get("series_id")]
    if not measured:
        return None
    shown = measured[:max_panels]
    n = len(shown)
    ncol = min(n, 10 if n > 36 else 8 if n > 16 else max(1, math.ceil(math.sqrt(n))))
    nrow = math.ceil(n / ncol)
    width, height = max(1.25 * ncol + 0.4, 3.4), max(1.0 * nrow + 1.0, 2.6)
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0.01, 0.55 / height, 0.98, 1 - 1.0 / height))
    data = _ll_curves(con, [r["series_id"] for r in shown])
    fs = [f[f > 0] for f, _ in data.values() if (f > 0).any()]
    lf_lo = math.log10(min(float(f.min()) for f in fs) * 0.8) if fs else 0.0
    lf_hi = math.log10(max(float(f.max()) for f in fs) * 1.25) if fs else 2.0
    cw, ch = 0.86, 0.72  # panel size inside its unit cell (the rest: gap and label)
    pts: dict[str, list[np.ndarray]] = {}
    frames, marks = [], []
    for k, r in enumerate(shown):
        col, row = k % ncol, nrow - 1 - k // ncol
        x0, y0 = col + 0.07, row + 0.08
        frames.append([(x0, y0), (x0 + cw, y0), (x0 + cw, y0 + ch), (x0, y0 + ch), (x0, y0)])
        f, y = data.get(r["series_id"], (np.empty(0), np.empty(0)))
        ok = (f > 0) & (y > 0)
        if ok.any():
            lx = (np.log10(f[ok]) - lf_lo) / (lf_hi - lf_lo)
            ly = np.log10(y[ok])
            span = max(float(ly.max() - ly.min()), 1e-9)
            ly = 0.05 + 0.9 * (ly - ly.min()) / span
            pts.setdefault(r.get("status") or "untested", []).append(np.c_[x0 + cw * lx, y0 + ch * ly])
        th = r.get("threshold_uj_cm2")
        if th is not None and math.isfinite(float(th)) and float(th) > 0:
            tx = x0 + cw * (math.log10(float(th)) - lf_lo) / (lf_hi - lf_lo)
            marks.append([(tx, y0), (tx, y0 + ch)])
        label = r["disc_id"]
        if r.get("diameter_um") is not None and math.isfinite(float(r["diameter_um"])):
            label += f"  {float(r['diameter_um']):.3g} um"
        ax.text(x0 + cw / 2, y0 + ch + 0.03, label, ha="center", va="bottom", fontsize=5.5)
    ax.add_collection(LineCollection(frames, colors="0.3", linewidths=0.5))
    ax.add_collection(LineCollection(marks, colors="#b2182b", linewidths=0.6, linestyles="--"))
    for status, chunks in pts.items():
        xy = np.vstack(chunks)
        ax.plot(xy[:, 0], xy[:, 1], ".", ms=2.5, color=STATUS_COLORS.get(status, "k"), label=status)
    ax.set_xlim(0, ncol)
    ax.set_ylim(0, nrow)
    ax.set_axis_off()
    counts = Counter(r.get("status") or "untested" for r in measured)
    title = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    more = f"; first {n} of {len(measured)} measured discs shown" if len(measured) > n else ""
    text = (f"Light-in/light-out of every measured disc: pump fluence {10 ** lf_lo:.3g}-{10 ** lf_hi:.3g} "
            f"uJ/cm^2 across (log), emission up (log, each disc's own range); dashed: threshold. {title}{more}")
    fig.suptitle("\n".join(textwrap.wrap(text, int(width * 15))), fontsize=7, y=0.995, va="top")
    handles = [plt.Line2D([], [], ls="", marker=".", ms=5, color=c, label=st) for st, c in STATUS_COLORS.items()
               if st in counts]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=6, frameon=False)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def _ll_curves(con: Any, series_ids: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """series id -> (pump fluence, integrated emission), one query for all series."""
    out: dict[int, tuple[list, list]] = {}
    if not series_ids:
        return {}
    marks = ",".join("?" * len(series_ids))
    for sid, f, integ in con.execute(
        f"SELECT series_id, fluence_uj_cm2, integrated FROM spectra WHERE series_id IN ({marks}) "
        "ORDER BY series_id, fluence_uj_cm2, id", series_ids):
        fs, ys = out.setdefault(sid, ([], []))
        fs.append(f)
        ys.append(np.nan if integ is None else integ)
    return {k: (np.asarray(v[0], float), np.asarray(v[1], float)) for k, v in out.items()}
