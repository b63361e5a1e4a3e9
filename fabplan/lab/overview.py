"""One page with every measured disc's light-in/light-out curve: the report's quick look.

A detailed four-panel figure per disc costs ~1 s of CPU (matplotlib ticks and text); 63 of them made
`lab report` take minutes. This sheet draws all discs (up to `max_panels`, the first ones by id) as
small log-log panels in one figure, each with its threshold and status colour, in well under a
second per dozen discs; the per-disc figures remain available for the discs one asks for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

STATUS_COLORS = {
    "lasing": "#1b7837",
    "ASE-only": "#e08214",
    "dead": "#777777",
    "damaged": "#b2182b",
    "untested": "#c7c7c7",
}


def overview_sheet(plt: Any, con: Any, rows: list[dict], path: Path, max_panels: int = 100) -> Path | None:
    """Write the sheet of `rows` (disc rows with series_id, status, threshold_uj_cm2, diameter_um) to
    `path` (format from its suffix); None when no disc was measured."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    measured = [r for r in rows if r.get("series_id")]
    if not measured:
        return None
    shown = measured[:max_panels]
    n = len(shown)
    ncol = min(n, 10 if n > 36 else 8 if n > 16 else max(1, math.ceil(math.sqrt(n))))
    nrow = math.ceil(n / ncol)
    width, height = max(1.25 * ncol + 0.6, 3.2), max(1.05 * nrow + 0.9, 2.6)
    fig, axes = plt.subplots(nrow, ncol, figsize=(width, height), squeeze=False, sharex=True, sharey=True)
    data = _ll_curves(con, [r["series_id"] for r in shown])
    fmin = min((f[f > 0].min() for f, _ in data.values() if (f > 0).any()), default=1.0)
    fmax = max((f.max() for f, _ in data.values() if len(f)), default=10.0)
    for ax, r in zip(axes.flat, shown, strict=False):
        f, y = data.get(r["series_id"], (np.empty(0), np.empty(0)))
        color = STATUS_COLORS.get(r.get("status") or "untested", "k")
        ok = (f > 0) & (y > 0)
        ax.loglog(f[ok], y[ok], ".", ms=2.5, color=color)
        th = r.get("threshold_uj_cm2")
        if th is not None and math.isfinite(float(th)):
            ax.axvline(float(th), color="#b2182b", lw=0.6, ls="--")
        label = r["disc_id"]
        if r.get("diameter_um") is not None and math.isfinite(float(r["diameter_um"])):
            label += f"  {float(r['diameter_um']):.3g} um"
        ax.set_title(label, fontsize=5.5, pad=1.5)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(LogLocator(numticks=3))
        ax.yaxis.set_major_formatter(NullFormatter())
        ax.tick_params(labelsize=5, length=2, pad=1)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes[0, 0].set_xlim(fmin * 0.8, fmax * 1.25)
    axes[0, 0].xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes[0, 0].xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    in_last_row = n - (nrow - 1) * ncol
    for col in range(ncol):  # the lowest panel shown in each column carries the x labels
        ax = axes[nrow - 1 if col < in_last_row else nrow - 2, col]
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel("pump (uJ/cm$^2$)", fontsize=5.5, labelpad=1)
    for ax in axes[:, 0]:
        ax.set_ylabel("emission (log)", fontsize=5.5, labelpad=1)
    counts: dict[str, int] = {}
    for r in measured:
        counts[r.get("status") or "untested"] = counts.get(r.get("status") or "untested", 0) + 1
    title = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    more = f"; first {n} of {len(measured)} measured discs shown" if len(measured) > n else ""
    import textwrap

    text = f"Light-in/light-out of every measured disc (dashed: threshold); {title}{more}"
    fig.suptitle("\n".join(textwrap.wrap(text, int(width * 14))), fontsize=7)
    handles = [plt.Line2D([], [], ls="", marker=".", ms=5, color=c, label=s) for s, c in STATUS_COLORS.items()
               if s in counts]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=6, frameon=False)
    fig.subplots_adjust(left=0.02 + 0.35 / width, right=0.99, bottom=0.55 / height, top=1 - 0.45 / height,
                        wspace=0.12, hspace=0.5)
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
