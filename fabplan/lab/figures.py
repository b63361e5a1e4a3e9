"""Figures and tables from the logbook, styled for a paper (serif, inward ticks, units on axes).

Per disc: spectra waterfall, light-in/light-out on linear and log-log axes with the threshold (and
its 95 % interval) marked, and dominant-peak linewidth vs pump fluence.
Per sample: threshold map on the layout, threshold vs diameter, yield by array, measured vs
predicted mode spacing. Plus fits.csv / fits.json (one row per disc).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fabplan.lab.overview import STATUS_COLORS  # one palette for the overview and the report figures
from fabplan.lab.queries import disc_rows, series_spectra
from fabplan.physics.ratemodel import light_out_bg

STYLE = {
    "font.family": "serif",
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 7,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "xtick.minor.visible": True,
    "ytick.minor.visible": True,
    "axes.linewidth": 0.7,
    "lines.linewidth": 1.0,
    "savefig.dpi": 200,
    "figure.dpi": 100,
    "legend.frameon": False,
    "mathtext.fontset": "dejavuserif",
}
F_LABEL = r"Pump fluence ($\mu$J cm$^{-2}$)"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _fin(v) -> bool:
    return v is not None and math.isfinite(float(v))


def report(
    con: sqlite3.Connection,
    out_dir: str | os.PathLike,
    pattern: str | None = None,
    sample: str | None = None,
    max_disc_figures: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    fmt: str = "png",
) -> dict:
    """Write the report into out_dir; returns what was written. Per-disc figures take ~1 s each:
    `max_disc_figures` caps them (the table, the array figures and the one-page overview of every
    disc's light-in/light-out always cover every disc). `fmt`: png, svg or pdf."""
    if fmt not in ("png", "svg", "pdf"):
        from fabplan.errors import UserError

        raise UserError(f"report format {fmt!r}: use png, svg or pdf")
    rows = disc_rows(con, pattern=pattern, sample=sample)
    measured = [r for r in rows if r["series_id"]]
    fitted = {sid for (sid,) in con.execute("SELECT DISTINCT series_id FROM fits")}
    unfitted = [r["disc_id"] for r in measured if r["series_id"] not in fitted]
    if unfitted:  # their spectra have no integrated emission yet: the figures would be empty
        from fabplan.errors import UserError, summarize_ids

        raise UserError(
            f"{len(unfitted)} measured disc(s) not fitted yet ({summarize_ids(unfitted)}): "
            "run `fabplan lab fit` first"
        )
    plt = _plt()
    out = Path(out_dir)
    (out / "discs").mkdir(parents=True, exist_ok=True)
    table_csv, table_json = _tables(rows, out)
    n_fig = 0
    with plt.rc_context(STYLE):
        todo = measured[: max_disc_figures if max_disc_figures is not None else None]
        for r in todo:
            _disc_figure(plt, con, r, out / "discs" / f"{r['sample']}_{r['disc_id']}.{fmt}")
            n_fig += 1
            if progress:
                progress(n_fig, len(todo))
        arrays = _array_figures(plt, rows, out, fmt)
        from fabplan.lab.overview import overview_sheet

        sheet = overview_sheet(plt, con, rows, out / f"overview.{fmt}")
    return {
        "overview": str(sheet) if sheet else None,
        "out": str(out),
        "discs": len(rows),
        "measured": len(measured),
        "disc_figures": n_fig,
        "array_figures": arrays,
        "table_csv": str(table_csv),
        "table_json": str(table_json),
    }


def _tables(rows: list[dict], out: Path) -> tuple[Path, Path]:
    from fabplan.lab.tables import to_json, write_csv

    p_csv, p_json = out / "fits.csv", out / "fits.json"
    with p_csv.open("w", newline="", encoding="utf-8") as fh:
        write_csv(rows, fh)
    p_json.write_text(to_json(rows), encoding="utf-8")
    return p_csv, p_json

def _disc_figure(plt, con, r: dict, path: Path) -> None:
    wls, ys, f = series_spectra(con, r["series_id"])
    det = con.execute(
        "SELECT integrated, fwhm_nm FROM spectra WHERE series_id=? ORDER BY fluence_uj_cm2, id",
        (r["series_id"],),
    ).fetchall()
    integ = np.array([d[0] if d[0] is not None else np.nan for d in det], dtype=float)
    fwhm = np.array([d[1] if d[1] is not None else np.nan for d in det], dtype=float)
    fits = {
        m: (json.loads(p or "{}"), t, lo, hi, b, has)
        for m, p, t, lo, hi, b, has in con.execute(
            """SELECT method, params_json, threshold_uj_cm2, threshold_lo, threshold_hi, beta, has_threshold
           FROM fits WHERE series_id=?""",
            (r["series_id"],),
        )
    }
    res = con.execute("SELECT resolution_nm FROM series WHERE id=?", (r["series_id"],)).fetchone()[0]
    fig, ax = plt.subplots(2, 2, figsize=(7.0, 5.2))
    (a_w, a_lin), (a_log, a_lw) = ax
    # (a) waterfall, each spectrum normalised, offset by index, coloured by fluence
    cmap = plt.get_cmap("viridis")
    fn = (f - f.min()) / max(np.ptp(f), 1e-12)
    for k, (wl, y) in enumerate(zip(wls, ys, strict=True)):
        y = y - np.percentile(y, 2)
        a_w.plot(wl, y / max(y.max(), 1e-30) * 0.9 + k, color=cmap(fn[k]), lw=0.6)
    a_w.set_xlim(515, 555)
    a_w.set_xlabel("Wavelength (nm)")
    a_w.set_ylabel("Normalised intensity (offset)")
    a_w.set_yticks([])
    a_w.minorticks_on()
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(f.min(), f.max()))
    fig.colorbar(sm, ax=a_w, pad=0.01, fraction=0.05).set_label(F_LABEL)
    # (b, c) light-in/light-out
    th = r["threshold_uj_cm2"]
    two = fits.get("two-segment")
    scv = fits.get("s-curve")
    top = np.nanmax(np.abs(integ)) if np.isfinite(integ).any() else 1.0
    e = int(np.floor(np.log10(top))) if top > 0 else 0  # linear axis in units of 10^e (no offset text)
    # The thresholds are fitted on the first lasing mode's own L-L curve (its Voigt area per spectrum,
    # fabplan.lab.analysis); the whole-window integral is shown faintly for context.
    mode_ll = np.asarray((scv[0].get("mode_ll") if scv else None) or [], dtype=float).reshape(-1, 2)
    if mode_ll.size:
        top = np.nanmax(np.abs(mode_ll[:, 1]))
        e = int(np.floor(np.log10(top))) if top > 0 else 0
    lab = f"mode {scv[0]['mode_nm']:.2f} nm" if mode_ll.size and _fin(scv[0].get("mode_nm")) else "first mode"
    for a, k in ((a_lin, 10.0**e), (a_log, 1.0)):
        a.plot(f, integ / k, ".", ms=2, color="0.6", label="whole spectrum", zorder=2)
        if mode_ll.size:
            a.plot(mode_ll[:, 0], mode_ll[:, 1] / k, "o", ms=3, mfc="white", mec="k", mew=0.7, label=lab, zorder=3)
        a.set_xlabel(F_LABEL)
    a_lin.set_ylabel(f"Intensity ($10^{{{e}}}$ counts s$^{{-1}}$ nm)")
    a_log.set_ylabel("Intensity (counts s$^{-1}$ nm)")
    for a in (a_lin, a_log):
        if _fin(th):
            a.axvline(th, color="#b2182b", ls="--", lw=0.8)
            a.axvspan(r["threshold_lo"], r["threshold_hi"], color="#b2182b", alpha=0.12, lw=0)
    fx = np.linspace(max(f.min(), 1e-6), f.max(), 400)
    if two and two[5]:
        p = two[0]
        yl = (
            p["intercept"]
            + p["slope_below"] * fx
            + (p["slope_above"] - p["slope_below"]) * np.maximum(fx - two[1], 0)
        )
        a_lin.plot(
            fx,
            yl / 10.0**e,
            color="#2166ac",
            label=f"two-segment: $F_{{th}}$ = {two[1]:.1f} $\\mu$J cm$^{{-2}}$",
        )
    if scv and scv[5] and _fin(scv[0].get("scale")):
        ys_ = light_out_bg(fx, scv[1], scv[4], scv[0]["scale"], scv[0].get("kappa") or 0.0,
                           scv[0].get("transparency") or 0.0)
        ys_ = ys_ + (scv[0].get("offset") or 0.0)
        a_log.plot(
            fx,
            ys_,
            color="#2166ac",
            label=f"rate equation: $F_{{th}}$ = {scv[1]:.1f}, $\\beta$ = {scv[4]:.1e}",
        )
    a_log.set_xscale("log")
    a_log.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    a_log.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    a_log.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    a_log.xaxis.set_minor_formatter(NullFormatter())
    if not _fin(th):
        a_lin.text(
            0.97,
            0.05,
            "no threshold in the measured range",
            transform=a_lin.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.3",
        )
    from fabplan.plotting import legend_clear

    legend_clear(a_lin)  # never on the curve: a strip above the data if every place is taken
    legend_clear(a_log)
    # (d) linewidth vs fluence
    a_lw.semilogy(f, fwhm, "s", ms=3, mfc="white", mec="k", mew=0.7)
    if _fin(res):
        a_lw.axhline(res, color="0.5", ls=":", lw=0.8, label=f"resolution {res:g} nm")
        a_lw.legend(loc="center right")
    if _fin(th):
        a_lw.axvline(th, color="#b2182b", ls="--", lw=0.8)
    a_lw.set_xlabel(F_LABEL)
    a_lw.set_ylabel("Linewidth, FWHM (nm)")
    title = f"{r['disc_id']}  ({r['status']}"
    title += f", D = {r['diameter_um']:.2f} $\\mu$m" if _fin(r["diameter_um"]) else ""
    title += f", Q = {r['q']:.0f}" if _fin(r["q"]) else ""
    fig.suptitle(title + ")", fontsize=9, y=0.985)
    for a, lab in zip(ax.flat, "abcd", strict=True):
        a.set_title(f"({lab})", loc="left", fontsize=8, weight="bold")
    # Fixed margins: tight_layout cost half the time of a disc figure and this layout never changes.
    fig.subplots_adjust(left=0.085, right=0.985, bottom=0.085, top=0.88, wspace=0.32, hspace=0.42)
    fig.savefig(path)
    plt.close(fig)


def _xy(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Disc centres; discs without coordinates are placed on their array's row/col grid (pitch 1)."""
    from fabplan.disctable import parse_id

    xs, ys = [], []
    arrays = sorted({r["array_id"] or "" for r in rows})
    for r in rows:
        if _fin(r["x_um"]) and _fin(r["y_um"]):
            xs.append(float(r["x_um"]))
            ys.append(float(r["y_um"]))
        else:
            _, row, col = parse_id(r["disc_id"])
            xs.append(col + 1.5 * 40 * arrays.index(r["array_id"] or ""))
            ys.append(-row)
    return np.array(xs), np.array(ys)


def _array_figures(plt, rows: list[dict], out: Path, fmt: str = "png") -> list[str]:
    written = []
    if not rows:
        return written
    th = np.array(
        [r["threshold_uj_cm2"] if _fin(r["threshold_uj_cm2"]) else np.nan for r in rows], dtype=float
    )
    has_xy = all(_fin(r["x_um"]) for r in rows)
    # Threshold map
    x, y = _xy(rows)
    from fabplan.plotting import count_limits, legend_clear, sample_map, span_limits

    fig, ax = plt.subplots(figsize=(5.0, 4.0))
    ok = np.isfinite(th)
    meas = np.array([bool(r["series_id"]) for r in rows])
    if (~meas).any():  # a category only when it has discs (no legend entries for nothing)
        sample_map(ax, x[~meas], y[~meas], color="#dddddd", size=6, label=f"not measured ({(~meas).sum():,})")
    if (meas & ~ok).any():
        ax.scatter(x[meas & ~ok], y[meas & ~ok], s=10, c="#777777", marker="x", lw=0.6,
                   label=f"no threshold ({(meas & ~ok).sum():,})")
    if ok.any():  # above 20,000 discs a binned image of the mean threshold per bin
        sc = sample_map(ax, x[ok], y[ok], c=th[ok], size=14)
        fig.colorbar(sc, ax=ax).set_label(r"Threshold ($\mu$J cm$^{-2}$)")
    dmax = max((float(r["diameter_um"]) for r in rows if _fin(r["diameter_um"])), default=10.0)
    span_limits(ax, x, y, min_span_um=4 * dmax if has_xy else 4.0)  # one disc: not +-0.04 um
    ax.set_xlabel(r"$x$ ($\mu$m)" if has_xy else "column (array offset)")
    ax.set_ylabel(r"$y$ ($\mu$m)" if has_xy else "row")
    legend_clear(ax, fontsize=6, markerscale=1.5)
    written.append(_save(fig, out / f"threshold_map.{fmt}", plt))
    # Threshold vs diameter
    d = np.array([r["diameter_um"] if _fin(r["diameter_um"]) else np.nan for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(3.4, 2.8))
    sel = ok & np.isfinite(d)
    if sel.any():
        lo = np.array([rows[i]["threshold_lo"] for i in np.flatnonzero(sel)], dtype=float)
        hi = np.array([rows[i]["threshold_hi"] for i in np.flatnonzero(sel)], dtype=float)
        ax.errorbar(
            d[sel],
            th[sel],
            yerr=[th[sel] - lo, hi - th[sel]],
            fmt="o",
            ms=3,
            mfc="white",
            mec="k",
            ecolor="0.4",
            elinewidth=0.6,
            capsize=1.5,
            mew=0.7,
            label="measured (first mode, 95 %)",
        )
        # Physics prediction (fabplan.physics.lasing) over the measured diameters, 100 nm film: peak
        # fluence of the paper's 20 um FWHM spot; a comparison, not a fit.
        from fabplan.physics.lasing import predict_threshold

        dd = np.linspace(float(np.nanmin(d[sel])), float(np.nanmax(d[sel])), 12)
        if dd[-1] - dd[0] < 0.5:
            dd = np.linspace(max(dd[0] - 1.0, 1.0), dd[-1] + 1.0, 12)
        pt = np.array([predict_threshold(round(float(x), 2)).threshold_peak_uj_cm2 for x in dd])
        ax.plot(dd, pt, "-", color="#2166ac", lw=1.0, label="predicted (physics)")
        legend_clear(ax)
    else:
        ax.text(
            0.5,
            0.5,
            "no thresholds with a designed diameter",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.set_xlabel(r"Designed diameter ($\mu$m)")
    ax.set_ylabel(r"Threshold ($\mu$J cm$^{-2}$)")
    written.append(_save(fig, out / f"threshold_vs_diameter.{fmt}", plt))
    # Yield by array (stacked status counts)
    arrays = sorted({r["array_id"] or "?" for r in rows})
    fig, ax = plt.subplots(figsize=(max(3.4, 0.5 * len(arrays) + 1.5), 2.8))
    bottom = np.zeros(len(arrays))
    for st, col in STATUS_COLORS.items():
        n = np.array(
            [sum(1 for r in rows if (r["array_id"] or "?") == a and r["status"] == st) for a in arrays]
        )
        if n.any():
            ax.bar(arrays, n, bottom=bottom, color=col, label=st, width=0.7)
            bottom += n
    for i, a in enumerate(arrays):
        tot = sum(1 for r in rows if (r["array_id"] or "?") == a and r["status"] not in ("untested", "undetermined"))
        las = sum(1 for r in rows if (r["array_id"] or "?") == a and r["status"] == "lasing")
        if tot:
            ax.text(i, bottom[i], f"{100 * las / tot:.0f}% lasing", ha="center", va="bottom", fontsize=6)
    ax.set_xlabel("Array")
    ax.set_ylabel("Discs")
    count_limits(ax, float(bottom.max()) * 1.1 if len(bottom) else 1.0)  # whole discs; room for the % labels
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    written.append(_save(fig, out / f"yield_by_array.{fmt}", plt))
    # Measured vs predicted FSR
    ms = np.array([r["mode_spacing_nm"] if _fin(r["mode_spacing_nm"]) else np.nan for r in rows], dtype=float)
    pr = np.array(
        [r["fsr_predicted_nm"] if _fin(r["fsr_predicted_nm"]) else np.nan for r in rows], dtype=float
    )
    fig, ax = plt.subplots(figsize=(3.4, 3.0))
    sel = np.isfinite(ms) & np.isfinite(pr)
    if sel.any():
        if np.isfinite(d[sel]).all():
            sc = ax.scatter(pr[sel], ms[sel], s=8, c=d[sel], cmap="plasma", lw=0)
            fig.colorbar(sc, ax=ax).set_label(r"Designed diameter ($\mu$m)")
        else:
            ax.scatter(pr[sel], ms[sel], s=8, c="k", lw=0)
        lim = [0.9 * min(pr[sel].min(), ms[sel].min()), 1.1 * max(pr[sel].max(), ms[sel].max())]
        ax.plot(lim, lim, color="0.5", lw=0.7, ls="--", label="measured = predicted")
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        src = {r["fsr_source"] for r in rows if r["fsr_source"]}
        legend_clear(ax, title="prediction: " + ", ".join(sorted(src)), title_fontsize=6)
    else:
        ax.text(0.5, 0.5, "no mode spacings to compare", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("Predicted FSR at the measured peaks (nm)")
    ax.set_ylabel("Measured mode spacing (nm)")
    written.append(_save(fig, out / f"mode_spacing.{fmt}", plt))
    return written


def _save(fig, path: Path, plt) -> str:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)
