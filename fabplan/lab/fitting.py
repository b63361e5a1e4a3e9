"""Turn stored spectra into thresholds, linewidths, Q and mode spacing; write fits and disc status.

Per series: every spectrum is analysed (`spectral.analyse`, batched per wavelength axis); its
integrated emission (counts/s when integration times are known) gives the light-in/light-out
curve for both threshold methods (`threshold`). Above threshold (F >= 1.2 F_th) the dominant-peak
Lorentzian width (deconvolved from the stated resolution) gives the linewidth and Q = lambda/FWHM;
the peaks of the brightest spectrum give the measured mode spacing, compared with the WGM
prediction for the disc's designed diameter (`modes.predicted_fsr`).

Status (unless set by hand): lasing = threshold and narrow cavity lines above it (< 2 nm; below
it the 38 nm spontaneous band or a cold-cavity mode); ASE-only = threshold but no such lines;
damaged = output collapses for good during the sweep (below 30 % of the maximum so far; the
threshold is fitted on the points before); dead = no threshold (or no signal) in the measured range;
untested = too few spectra for a threshold fit (< threshold.MIN_POINTS), flagged "insufficient data".
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from fabplan.lab import spectral, threshold
from fabplan.lab.db import connect, from_blob, load_axes, transaction, upsert_sql
from fabplan.lab.queries import disc_filter, where
from fabplan.physics.comb import predicted_fsr

DEFAULT_RESOLUTION_NM = 0.1
NARROW_NM = 2.0
SERIES_PER_CHUNK = 250


@dataclass
class SeriesResult:
    series_id: int
    disc_id: str
    n_points: int
    has_threshold: bool
    flag: str
    threshold_uj_cm2: float
    threshold_lo: float
    threshold_hi: float
    threshold_scurve: float
    beta: float
    linewidth_nm: float
    resolution_limited: bool
    q: float
    peak_nm: float
    mode_spacing_nm: float
    fsr_predicted_nm: float
    status: str


def _series_rows(con: sqlite3.Connection, pattern: str | None, sample: str | None):
    sql = """SELECT s.id, d.disc_id, d.diameter_um, d.status_manual, d.status, s.resolution_nm, d.id,
                    g.film_thickness_nm
             FROM series s JOIN discs d ON d.id = s.disc_pk JOIN samples sm ON sm.id = d.sample_id
             LEFT JOIN designs g ON g.id = d.design_id"""
    cond, args = disc_filter(pattern, sample, con=con)
    return con.execute(sql + where(cond) + " ORDER BY s.id", args).fetchall()


def fit_all(
    con: sqlite3.Connection,
    pattern: str | None = None,
    sample: str | None = None,
    window_nm: tuple[float, float] | None = None,
    resolution_nm: float | None = None,
    thickness_nm: float = 100.0,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> list[SeriesResult]:
    """Fit every measurement series (of discs matching the glob `pattern`); results are stored.

    `thickness_nm` is the film thickness for the WGM prediction when a disc's design gives none.
    """
    series = _series_rows(con, pattern, sample)
    axes = load_axes(con)
    out: list[SeriesResult] = []
    latest_per_disc: dict[int, int] = {}
    for r in series:
        latest_per_disc[r[6]] = r[0]
    chunks = [
        [tuple(r) for r in series[i : i + SERIES_PER_CHUNK]] for i in range(0, len(series), SERIES_PER_CHUNK)
    ]
    args = (window_nm, resolution_nm, thickness_nm)
    # Serial by default: on this shared 2-core machine a pool was slower (23 s vs 15 s, 2,000 series).
    n_workers = workers or 1
    path = getattr(con, "url", None)  # the logbook's address (file or server URL)
    pool = None
    if n_workers > 1 and path:
        # Workers read the (committed) logbook themselves; only this process writes.
        pool = ProcessPoolExecutor(n_workers)
        computed = pool.map(_compute_chunk_from_path, [path] * len(chunks), chunks, [args] * len(chunks))
    else:
        computed = (_compute_chunk(con, axes, c, *args) for c in chunks)
    done = 0
    try:
        for chunk, (results, spec_updates) in zip(chunks, computed, strict=True):
            done += len(chunk)
            _store(con, results, spec_updates, latest_per_disc)
            out += [x[1] for x in results]
            if progress:
                progress(done, len(series))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    return out


def _compute_chunk_from_path(path: str, chunk, args):
    con = connect(path)
    try:
        return _compute_chunk(con, load_axes(con), chunk, *args)
    finally:
        con.close()


def _compute_chunk(con, axes, chunk, window_nm, resolution_nm, thickness_nm):
    """Analyse and fit one chunk of series (reads only): ([(row, result, fits, spectral)], updates)."""
    ids = [r[0] for r in chunk]
    q = ",".join("?" * len(ids))
    spec = con.execute(
        f"""SELECT id, series_id, fluence_uj_cm2, axis_id, counts, integration_s FROM spectra
            WHERE series_id IN ({q}) ORDER BY series_id, fluence_uj_cm2, id""",
        ids,
    ).fetchall()
    per_spec = _analyse_spectra(spec, axes, window_nm)
    results, spec_updates = [], []
    lists = [per_spec.get(r[0], []) for r in chunk]
    cuts = [threshold.damage_onset(np.array([x["integrated"] for x in rows])) for rows in lists]
    fitted = [rows[:k] if k is not None else rows for rows, k in zip(lists, cuts, strict=True)]
    ll = threshold.fit_many(
        [np.array([x["fluence"] for x in rows]) for rows in fitted],
        [np.array([x["integrated"] for x in rows]) for rows in fitted],
    )
    for r, rows, all_rows, k, ab in zip(chunk, fitted, lists, cuts, ll, strict=True):
        damaged_at = all_rows[k]["fluence"] if k is not None else None
        res, fits, spectral_row = _fit_series(
            tuple(r), rows, ab, axes, resolution_nm, thickness_nm, window_nm, damaged_at
        )
        results.append((tuple(r), res, fits, spectral_row))
        spec_updates += [(x["integrated"], x["peak_nm"], x["fwhm_nm"], x["id"]) for x in all_rows]
    return results, spec_updates


_FIT_COLUMNS = ("series_id", "method", "has_threshold", "flag", "threshold_uj_cm2", "threshold_lo",
                "threshold_hi", "slope_efficiency", "beta", "params_json", "audit_id")
_SPECTRAL_COLUMNS = ("series_id", "linewidth_nm", "linewidth_err_nm", "resolution_limited", "below_linewidth_nm",
                     "peak_nm", "peaks_json", "q", "mode_spacing_nm", "fsr_predicted_nm", "fsr_source",
                     "window_lo_nm", "window_hi_nm")


def _store(con, results, spec_updates, latest_per_disc) -> None:
    with transaction(con, "fit", series=len(results)):
        con.executemany("UPDATE spectra SET integrated=?, peak_nm=?, fwhm_nm=? WHERE id=?", spec_updates)
        for r, res, fits, spectral_row in results:
            for fit in fits:
                con.execute(
                    upsert_sql("fits", _FIT_COLUMNS, ("series_id", "method"), touch="created"),
                    (
                        r[0],
                        fit.method,
                        int(fit.has_threshold),
                        fit.flag,
                        _n(fit.threshold),
                        _n(fit.lo),
                        _n(fit.hi),
                        _n(fit.slope_efficiency),
                        _n(fit.beta),
                        json.dumps(_clean(fit.params)),
                        con.audit_id,
                    ),
                )
            con.execute(upsert_sql("spectral", _SPECTRAL_COLUMNS, ("series_id",)), (r[0], *spectral_row))
            if not r[3] and latest_per_disc.get(r[6]) == r[0]:
                con.execute(
                    "UPDATE discs SET status=?, status_audit_id=? WHERE id=? AND status_manual=0",
                    (res.status, con.audit_id, r[6]),
                )


def _n(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _clean(d: dict) -> dict:
    return {k: (_n(v) if isinstance(v, float) else v) for k, v in d.items()}


def _analyse_spectra(spec, axes, window_nm) -> dict[int, list[dict]]:
    """Batch-analyse spectra grouped by wavelength axis; returns per-series lists in fluence order."""
    by_axis: dict[int, list[int]] = {}
    for k, s in enumerate(spec):
        by_axis.setdefault(s[3], []).append(k)
    rows: list[dict | None] = [None] * len(spec)
    for aid, ks in by_axis.items():
        wl = axes[aid].astype(np.float64)
        y = np.stack([from_blob(spec[k][4]) for k in ks]).astype(np.float64)
        t = np.array([spec[k][5] if spec[k][5] else 1.0 for k in ks])
        y = y / t[:, None]  # counts/s: exposures vary along a sweep
        b = spectral.analyse(wl, y, window_nm)
        for j, k in enumerate(ks):
            rows[k] = {
                "id": spec[k][0],
                "series_id": spec[k][1],
                "fluence": spec[k][2],
                "axis": aid,
                "integrated": float(b.integrated[j]),
                "peak_nm": float(b.peak_nm[j]),
                "fwhm_nm": float(b.fwhm_nm[j]),
                "fwhm_err_nm": float(b.fwhm_err_nm[j]),
                "rate": y[j],  # a view; find_modes subtracts its own baseline
            }
    out: dict[int, list[dict]] = {}
    for r in rows:
        out.setdefault(r["series_id"], []).append(r)
    return out


def _fit_series(r, rows, ab, axes, resolution_nm, thickness_nm, window_nm, damaged_at=None):
    sid, disc_id, diameter, _manual, _status, series_res, _pk, film_nm = r
    thickness_nm = film_nm or thickness_nm  # the design's film, else the caller's default
    res_nm = resolution_nm if resolution_nm is not None else (series_res or DEFAULT_RESOLUTION_NM)
    y = np.array([x["integrated"] for x in rows])
    a, b = ab
    has, why = threshold.verdict(a, b)
    nan = float("nan")
    lw = lw_err = q = peak = spacing = below = nan
    limited = False
    peaks: list[float] = []
    if has:
        above = [x for x in rows if x["fluence"] >= 1.2 * a.threshold] or rows[-1:]
        fw = np.array([x["fwhm_nm"] for x in above])
        lw_meas = float(np.median(fw))
        lw_arr, lim = spectral.deconvolve_fwhm(np.array([lw_meas]), res_nm)
        lw, limited = float(lw_arr[0]), bool(lim[0])
        lw_err = float(np.median([x["fwhm_err_nm"] for x in above]))
        brightest = max(above, key=lambda x: x["integrated"])
        peak = float(brightest["peak_nm"])
        q = peak / lw if lw > 0 else nan
        pk = spectral.find_modes(axes[brightest["axis"]].astype(np.float64), brightest["rate"])
        peaks = [float(v) for v in pk]
        spacing = spectral.mode_spacing(pk)
        below_rows = [x for x in rows if x["fluence"] < 0.8 * a.threshold]
        below = float(np.median([x["fwhm_nm"] for x in below_rows])) if below_rows else nan
    elif rows:
        below = float(np.median([x["fwhm_nm"] for x in rows]))
    fsr, src = predicted_fsr(
        diameter if diameter is not None else nan,
        peak if math.isfinite(peak) else 540.0,
        thickness_nm,
        peaks_nm=peaks,
    )

    status = "damaged" if damaged_at is not None else _status_for(rows, y, has, lw, below)
    flag = why
    if status == "untested" and rows:  # too few spectra: no verdict either way, not a dead disc
        flag = (f"insufficient data: {len(rows)} spectrum/spectra, a threshold fit needs >= "
                f"{threshold.MIN_POINTS}; status left untested")
    if damaged_at is not None:
        flag = "; ".join(
            x for x in (f"output collapsed from {damaged_at:g} uJ/cm^2 (fitted below)", why) if x
        )
    res = SeriesResult(
        sid,
        disc_id,
        len(rows),
        has,
        flag,
        a.threshold if has else nan,
        a.lo if has else nan,
        a.hi if has else nan,
        b.threshold if has else nan,
        b.beta if has else nan,
        lw,
        limited,
        q,
        peak,
        spacing,
        fsr,
        status,
    )
    win = window_nm or (nan, nan)
    spectral_row = (
        _n(lw),
        _n(lw_err),
        int(limited),
        _n(below),
        _n(peak),
        json.dumps(peaks),
        _n(q),
        _n(spacing),
        _n(fsr),
        src,
        _n(win[0]),
        _n(win[1]),
    )
    return res, (a, b), spectral_row


def _status_for(rows, y, has, lw, below) -> str:
    if len(rows) < threshold.MIN_POINTS:
        return "untested"  # no threshold fit is possible: say nothing rather than "dead"
    if not has:
        return "dead"
    return "lasing" if math.isfinite(lw) and lw < NARROW_NM else "ASE-only"


def result_dict(r: SeriesResult) -> dict:
    return asdict(r)
