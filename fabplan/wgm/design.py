"""WGM annotation of a design's discs for `validate`, `plan` and `preview` summaries.

The film, thickness and substrate come from the design's `sample`; the prediction is the default
estimator (slab TE0 -> H_z, air outside, 530-545 nm window, fundamental radial family). Solved once
per unique diameter (to 1 nm), so a 250,000-disc design costs a few tens of ms. A film the estimator
has no optical constants for is reported, never fatal: the summary must not break validation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fabplan.errors import UserError, summarize_ids
from fabplan.wgm.api import DEFAULT_WINDOW_NM, annotate_diameters


def _range(v: np.ndarray) -> list[float] | None:
    v = v[np.isfinite(v)]
    return None if v.size == 0 else [float(v.min()), float(v.max())]


def design_wgm_summary(design: Any, diameters_um: np.ndarray, ids: Any = None,
                       window_nm: tuple[float, float] = DEFAULT_WINDOW_NM) -> dict[str, Any]:
    """Predicted FSR / mode count ranges and the single-mode discs, JSON-able.

    `diameters_um` are the discs' diameters (NaN where unknown); `ids` their disc ids, or a function
    of an index array returning them (ids are built only if some disc is single-mode). The per-disc
    arrays are returned under the private key `_per_disc` (see `public`).
    """
    film = design.sample.film
    sub = design.sample.substrate
    substrate = sub.index if sub.index is not None else sub.material
    out: dict[str, Any] = {
        "window_nm": [float(window_nm[0]), float(window_nm[1])],
        "film": f"{film.material} {float(film.thickness):g} nm",
        "model": "slab TE0 -> 2-D disc (H_z), air outside, fundamental radial family",
    }
    d = np.asarray(diameters_um, dtype=float)
    try:
        fsr, n_modes, single = annotate_diameters(d, float(film.thickness), material=film.material,
                                                  substrate=substrate, window_nm=window_nm)
    except UserError as exc:
        out["error"] = str(exc)
        return out
    known = np.isfinite(d)
    out.update(
        fsr_nm=_range(fsr),
        modes_in_window=_range(n_modes[known].astype(float)) if known.any() else None,
        n_single_mode=int(single.sum()),
        n_unknown_diameter=int((~known).sum()),
    )
    if ids is not None and single.any():
        idx = np.nonzero(single)[0]
        names = ids(idx) if callable(ids) else np.asarray(ids)[idx]
        out["single_mode_ids"] = summarize_ids(list(names), limit=8)
    out["_per_disc"] = {"fsr_nm": fsr, "n_modes": n_modes, "single_mode": single}
    return out


def public(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without per-disc arrays (for JSON output)."""
    return {k: v for k, v in summary.items() if not k.startswith("_")}


def format_wgm_summary(s: dict[str, Any]) -> str:
    """One or two lines for `validate` / `plan` text output."""
    w = f"{s['window_nm'][0]:g}-{s['window_nm'][1]:g} nm"
    if "error" in s:
        return f"WGM estimate ({s['film']}): not available: {s['error']}"
    if s.get("fsr_nm") is None:
        return f"WGM estimate ({s['film']}, {w}): no disc diameters known"

    def rng(r, fmt):
        return format(r[0], fmt) if r[0] == r[1] else f"{format(r[0], fmt)}-{format(r[1], fmt)}"

    centre = 0.5 * (s["window_nm"][0] + s["window_nm"][1])  # the one FSR definition: fabplan.wgm at the centre
    line = (f"WGM estimate ({s['film']}, {w}): FSR {rng(s['fsr_nm'], '.3g')} nm at {centre:g} nm, "
            f"{rng(s['modes_in_window'], '.0f')} mode(s) in window")
    if s["n_single_mode"]:
        line += f"\n  single-mode discs ({s['n_single_mode']}): {s.get('single_mode_ids', '')}".rstrip()
    else:
        line += "; no disc predicted single-mode"
    return line


def preview_lines(summary: dict[str, Any]) -> list[str]:
    """Short lines for the preview's information box."""
    if "error" in summary or summary.get("fsr_nm") is None:
        return format_wgm_summary(summary).replace("WGM estimate", "WGM").splitlines()
    f, n = summary["fsr_nm"], summary["modes_in_window"]
    w = summary["window_nm"]
    fsr = f"{f[0]:.3g}" if f[0] == f[1] else f"{f[0]:.3g}-{f[1]:.3g}"
    modes = f"{n[0]:.0f}" if n[0] == n[1] else f"{n[0]:.0f}-{n[1]:.0f}"
    single = f"{summary['n_single_mode']} single-mode" if summary["n_single_mode"] else "none single-mode"
    return [f"WGM {summary['film']}, {w[0]:g}-{w[1]:g} nm:",
            f"FSR {fsr} nm at {0.5 * (w[0] + w[1]):g} nm, {modes} modes; {single}"]


def annotate_discs(ax: Any, x: np.ndarray, y: np.ndarray, diameter_um: np.ndarray, summary: dict[str, Any],
                   max_labels: int = 40) -> None:
    """Label each disc with its predicted FSR and mode count (small designs only: labels would clutter)."""
    per = summary.get("_per_disc")
    if per is None or len(x) == 0 or len(x) > max_labels:
        return
    for xi, yi, di, f, n, s in zip(x, y, diameter_um, per["fsr_nm"], per["n_modes"], per["single_mode"],
                                   strict=True):
        if not np.isfinite(f):
            continue
        text = f"FSR {f:.2f} nm\n{n} mode{'s' if n != 1 else ''}" + (" (single)" if s else "")
        ax.annotate(text, (xi, yi - 0.5 * di), xytext=(0, -3), textcoords="offset points", ha="center",
                    va="top", fontsize=6, color="#333333", zorder=6)
