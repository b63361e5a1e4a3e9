"""Turn stored spectra into thresholds, linewidths, Q and mode spacing; write fits and disc status.

Per series: the spectra go through `analysis.analyse_series` (multimode Voigt fits with the
spectrometer resolution, mode-resolved light-in/light-out curves, per-mode thresholds with
calibrated intervals, the first mode's threshold as the disc's, linewidth and Q with an interval,
clipped frames flagged). The quick per-spectrum layer (`spectral.analyse`) still fills the spectra
table's integrated/peak/FWHM columns. The measured mode spacing is compared with the WGM prediction
for the disc's designed diameter (`physics.comb.predicted_fsr`), and the threshold with the one
predicted from physics (`physics.lasing.predict_threshold`, peak fluence of the paper's 20 um FWHM
Gaussian pump spot; the definition is stored with it).

One truth per disc: the stored 's-curve' fit row is the disc's threshold (what fit, show, list and
export report); the 'two-segment' row is the hinge on the same mode-resolved curve, a cross-check.
Both rows carry has_threshold = the series verdict, and no number when it is false.

Status (unless set by hand): lasing = threshold and narrow cavity lines above it (< NARROW_NM: below
it the 38 nm spontaneous band or a cold-cavity mode); ASE-only = threshold but no such lines;
damaged = output collapses for good during the sweep (below 30 % of the maximum so far; the
threshold is fitted on the points before); dead = a straight line explains every mode's L-L curve
(no threshold in the measured range); undetermined = a kink, but the threshold is not pinned (sweep
starts above it, saturation, weak kink, open interval; the flag says which; logbook schema v6, before
it such discs were left untested); untested = no verdict: too few spectra ("insufficient data").
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from fabplan.lab import analysis, spectral, threshold
from fabplan.lab.db import connect, from_blob, load_axes, transaction, upsert_sql
from fabplan.lab.queries import disc_filter, where
from fabplan.lab.workers import orphan_safe_pool
from fabplan.physics.comb import predicted_fsr

DEFAULT_RESOLUTION_NM = 0.1  # nm: 1200 gr/mm grating class spectrometer, when the series gives none
# Lasing vs ASE-only: a cavity line above threshold narrower than this. The paper's spontaneous band is
# 38 nm wide and its lasing line 0.3 nm; 2 nm separates them with room for cold-cavity or broadened lines
# (one number with the line finder's limit on what counts as a cavity line).
NARROW_NM = spectral.MAX_LINE_NM
PREDICTION_STEP_UM = 0.05  # diameters rounded for the physics prediction (threshold changes < 1 % per step)
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
    verdict: str = ""  # threshold | undetermined | none | insufficient
    q_lo: float = float("nan")  # 95 % interval of Q
    q_hi: float = float("nan")
    threshold_predicted_uj_cm2: float = float("nan")  # physics prediction, peak fluence of the pump spot
    fluence_definition: str = ""


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
    pump_jitter: float = threshold.PUMP_JITTER,
) -> list[SeriesResult]:
    """Fit every measurement series (of discs matching the glob `pattern`); results are stored.

    `thickness_nm` is the film thickness for the WGM prediction when a disc's design gives none.
    `pump_jitter`: relative 1-sigma shot-to-shot pump fluence noise (default 3 %), carried into the
    threshold intervals as a fluence error; set it to what the pump's energy monitor shows.
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
    args = (window_nm, resolution_nm, thickness_nm, pump_jitter)
    # Serial by default: on this shared 2-core machine a pool was slower (23 s vs 15 s, 2,000 series).
    n_workers = workers or 1
    path = getattr(con, "url", None)  # the logbook's address (file or server URL)
    pool = None
    if n_workers > 1 and path:
        # Workers read the (committed) logbook themselves; only this process writes.
        pool = orphan_safe_pool(n_workers)  # workers die with this process, even on kill -9
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


def _compute_chunk(con, axes, chunk, window_nm, resolution_nm, thickness_nm, pump_jitter=threshold.PUMP_JITTER):
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
    for r, all_rows in zip(chunk, lists, strict=True):
        k = threshold.damage_onset(np.array([x["integrated"] for x in all_rows]))
        rows = all_rows[:k] if k is not None else all_rows
        damaged_at = all_rows[k]["fluence"] if k is not None else None
        res_nm = resolution_nm if resolution_nm is not None else (r[5] or DEFAULT_RESOLUTION_NM)
        sa = _analyse_rows(rows, axes, res_nm, window_nm, pump_jitter)
        res, fits, spectral_row = _fit_series(tuple(r), rows, sa, res_nm, thickness_nm, window_nm, damaged_at)
        results.append((tuple(r), res, fits, spectral_row))
        spec_updates += [(x["integrated"], x["peak_nm"], x["fwhm_nm"], x["id"]) for x in all_rows]
    return results, spec_updates


def _analyse_rows(rows, axes, res_nm, window_nm, pump_jitter=threshold.PUMP_JITTER) -> analysis.SeriesAnalysis:
    """`analysis.analyse_series` on the spectra of one series (those on its most common axis)."""
    if not rows:
        return analysis.SeriesAnalysis("insufficient", "no spectra")
    aids = [x["axis"] for x in rows]
    aid = max(set(aids), key=aids.count)
    use = [x for x in rows if x["axis"] == aid]
    t = np.array([x["t"] for x in use])
    counts = np.stack([x["rate"] for x in use]) * t[:, None]
    sa = analysis.analyse_series(axes[aid].astype(np.float64), counts, t, [x["fluence"] for x in use], res_nm,
                                 window_nm=window_nm, pump_jitter=pump_jitter)
    if len(use) < len(rows):
        sa.flag = "; ".join(v for v in (sa.flag, f"{len(rows) - len(use)} spectra on another axis ignored") if v)
    return sa


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


def _clean(d):
    """JSON-safe copy: non-finite floats become null, at any depth."""
    if isinstance(d, dict):
        return {k: _clean(v) for k, v in d.items()}
    if isinstance(d, list | tuple):
        return [_clean(v) for v in d]
    if isinstance(d, float | np.floating):
        return _n(d)
    if isinstance(d, np.integer):
        return int(d)
    return d


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
                "rate": y[j],  # counts/s (raw counts = rate x t)
                "t": float(t[j]),
            }
    out: dict[int, list[dict]] = {}
    for r in rows:
        out.setdefault(r["series_id"], []).append(r)
    return out


def _predicted(diameter, thickness_nm) -> tuple[float, str]:
    """Physics threshold (peak fluence of the paper's pump spot) for a disc, or NaN."""
    if diameter is None or not (diameter > 0) or not math.isfinite(diameter):
        return float("nan"), ""
    from fabplan.physics.lasing import predict_threshold

    d = round(float(diameter) / PREDICTION_STEP_UM) * PREDICTION_STEP_UM
    try:
        p = predict_threshold(max(d, PREDICTION_STEP_UM), float(thickness_nm))
    except Exception:  # a prediction is context, never a reason to fail a fit
        return float("nan"), ""
    return p.threshold_peak_uj_cm2, p.fluence_definition


def _fit_series(r, rows, sa, res_nm, thickness_nm, window_nm, damaged_at=None):
    sid, disc_id, diameter, _manual, _status, _series_res, _pk, film_nm = r
    thickness_nm = film_nm or thickness_nm  # the design's film, else the caller's default
    nan = float("nan")
    has = sa.has_threshold
    lw = sa.linewidth_nm
    lw_err = (sa.linewidth_hi - sa.linewidth_lo) / 3.92 if has else nan
    peaks = list(sa.peaks_nm)
    peak = sa.mode_nm if math.isfinite(sa.mode_nm) else nan
    spacing = spectral.mode_spacing(np.asarray(peaks)) if len(peaks) >= 2 else nan
    if has:
        below_rows = [x for x in rows if x["fluence"] < 0.8 * sa.threshold]
        below = float(np.median([x["fwhm_nm"] for x in below_rows])) if below_rows else nan
    else:
        below = float(np.median([x["fwhm_nm"] for x in rows])) if rows else nan
    fsr, src = predicted_fsr(
        diameter if diameter is not None else nan,
        peak if math.isfinite(peak) else 540.0,
        thickness_nm,
        peaks_nm=peaks,
    )
    pred, fdef = _predicted(diameter, thickness_nm)
    status = "damaged" if damaged_at is not None else _status_for(rows, sa, lw)
    flag = sa.flag
    if sa.verdict == "undetermined" and not flag.startswith("insufficient"):
        flag = "undetermined: " + flag
    if status == "untested" and len(rows) < threshold.MIN_POINTS and rows:
        flag = (f"insufficient data: {len(rows)} spectrum/spectra, a threshold fit needs >= "
                f"{threshold.MIN_POINTS}; status left untested")
    if damaged_at is not None:
        flag = "; ".join(x for x in (f"output collapsed from {damaged_at:g} uJ/cm^2 (fitted below)", flag) if x)
    extra = {
        "verdict": sa.verdict,
        "mode_nm": peak,
        "mode_thresholds": sa.mode_thresholds,
        "q_lo": sa.q_lo,
        "q_hi": sa.q_hi,
        "linewidth_lo_nm": sa.linewidth_lo,
        "linewidth_hi_nm": sa.linewidth_hi,
        "clipped_fluences": sa.clipped,
        "threshold_predicted_uj_cm2": pred,
        "fluence_definition_predicted": fdef,
        "resolution_nm": res_nm,
        "integration": "mode-resolved (Voigt area of each mode)",
        "mode_ll": sa.first_mode_ll,
    }
    fits = []
    ll = sa.fits.get("s-curve")
    if ll is not None:
        tf = ll.as_threshold_fit("s-curve")
        tf.params.update(extra)
    else:
        tf = threshold.ThresholdFit("s-curve", False, flag, params=dict(extra))
    fits.append(tf)
    hinge = sa.fits.get("two-segment")
    if hinge is not None:
        fits.append(hinge)
    for ft in fits:  # one truth: no number where the series has no threshold
        ft.has_threshold = bool(has and (ft.has_threshold or ft.method == "s-curve"))
        if not has:
            ft.threshold = ft.lo = ft.hi = ft.slope_efficiency = nan
        if not ft.has_threshold and not ft.flag:
            ft.flag = flag
    res = SeriesResult(
        sid,
        disc_id,
        len(rows),
        has,
        flag,
        sa.threshold if has else nan,
        sa.lo if has else nan,
        sa.hi if has else nan,
        sa.threshold if has else nan,
        sa.beta if has else nan,
        lw,
        bool(sa.resolution_limited),
        sa.q,
        peak,
        spacing,
        fsr,
        status,
        sa.verdict,
        sa.q_lo,
        sa.q_hi,
        pred,
        fdef,
    )
    win = window_nm or (nan, nan)
    spectral_row = (
        _n(lw),
        _n(lw_err),
        int(sa.resolution_limited),
        _n(below),
        _n(peak),
        json.dumps(peaks),
        _n(sa.q),
        _n(spacing),
        _n(fsr),
        src,
        _n(win[0]),
        _n(win[1]),
    )
    return res, fits, spectral_row


def _status_for(rows, sa, lw) -> str:
    if len(rows) < threshold.MIN_POINTS or sa.verdict == "insufficient":
        return "untested"  # too little data for any verdict: say nothing rather than "dead"
    if sa.verdict == "undetermined":
        return "undetermined"  # a kink, threshold not pinned (schema v6; the flag says why)
    if sa.verdict == "none":
        return "dead"
    return "lasing" if math.isfinite(lw) and lw < NARROW_NM else "ASE-only"


def result_dict(r: SeriesResult) -> dict:
    return asdict(r)
