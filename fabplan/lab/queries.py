"""Read-side views of the logbook: one row per disc (latest series) or per measured spectrum."""

from __future__ import annotations

import json
import re

import numpy as np

from fabplan.errors import UserError
from fabplan.lab.db import Connection, Row, from_blob

DISC_COLUMNS = (
    "sample",
    "disc_id",
    "array_id",
    "status",
    "status_manual",
    "known",
    "fab_state",
    "diameter_um",
    "fluence_mj_cm2",
    "pulses",
    "x_um",
    "y_um",
    "run_id",
    "plan_hash",
    "design",
    "series_id",
    "n_spectra",
    "fluence_min",
    "fluence_max",
    "threshold_uj_cm2",
    "threshold_lo",
    "threshold_hi",
    "slope_efficiency",
    "threshold_scurve_uj_cm2",
    "threshold_scurve_lo",
    "threshold_scurve_hi",
    "beta",
    "fit_flag",
    "linewidth_nm",
    "linewidth_err_nm",
    "resolution_limited",
    "below_linewidth_nm",
    "peak_nm",
    "q",
    "mode_spacing_nm",
    "fsr_predicted_nm",
    "fsr_source",
    "peaks_nm",
)

_DISC_SQL = """
WITH latest AS (SELECT disc_pk, max(id) AS sid FROM series GROUP BY disc_pk)
SELECT sm.name, d.disc_id, d.array_id, d.status, d.status_manual, d.known, d.fab_state, d.diameter_um,
       d.fluence_mj_cm2, d.pulses, d.x_um, d.y_um, d.run_id, r.plan_hash, g.name, l.sid,
       (SELECT count(*) FROM spectra WHERE series_id = l.sid),
       (SELECT min(fluence_uj_cm2) FROM spectra WHERE series_id = l.sid),
       (SELECT max(fluence_uj_cm2) FROM spectra WHERE series_id = l.sid),
       a.threshold_uj_cm2, a.threshold_lo, a.threshold_hi, a.slope_efficiency,
       b.threshold_uj_cm2, b.threshold_lo, b.threshold_hi, b.beta,
       NULL,
       sp.linewidth_nm, sp.linewidth_err_nm, sp.resolution_limited, sp.below_linewidth_nm, sp.peak_nm, sp.q,
       sp.mode_spacing_nm, sp.fsr_predicted_nm, sp.fsr_source, sp.peaks_json
FROM discs d JOIN samples sm ON sm.id = d.sample_id
LEFT JOIN runs r ON r.id = d.run_id LEFT JOIN designs g ON g.id = d.design_id
LEFT JOIN latest l ON l.disc_pk = d.id
LEFT JOIN fits a ON a.series_id = l.sid AND a.method = 's-curve' AND a.has_threshold = 1
LEFT JOIN fits b ON b.series_id = l.sid AND b.method = 's-curve' AND b.has_threshold = 1
LEFT JOIN spectral sp ON sp.series_id = l.sid
"""


def disc_filter(
    pattern: str | None = None,
    sample: str | None = None,
    status: str | None = None,
    con: Connection | None = None,
) -> tuple[list[str], list]:
    """SQL conditions and arguments selecting discs by id glob, sample name and status (aliases d, sm).

    The glob (`*`, `?`, `[...]`, case-sensitive) is SQLite's GLOB there and the equivalent anchored
    regular expression (`~`) on PostgreSQL, so `con` (its dialect) is needed for a server logbook."""
    cond, args = [], []
    glob = ("d.disc_id GLOB ?", pattern)
    if pattern and con is not None and con.dialect != "sqlite":
        glob = ("d.disc_id ~ ?", glob_regex(pattern))
    for clause, value in (glob, ("sm.name = ?", sample), ("d.status = ?", status)):
        if value:
            cond.append(clause)
            args.append(value)
    return cond, args


def glob_regex(pattern: str) -> str:
    """A glob (SQLite GLOB rules: `*`, `?`, `[a-c]`, `[^a]`) as an anchored POSIX regular expression."""
    out, i = ["^"], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            start = i + 2 if pattern[i + 1 : i + 2] == "^" else i + 1
            j = pattern.find("]", start + 1)  # a ']' first in the set is a member
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j].replace("\\", "\\\\")
                out.append(f"[{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + "$"


def where(cond: list[str]) -> str:
    return " WHERE " + " AND ".join(cond) if cond else ""


def disc_rows(
    con: Connection,
    pattern: str | None = None,
    status: str | None = None,
    sample: str | None = None,
    measured_only: bool = False,
) -> list[dict]:
    cond, args = disc_filter(pattern, sample, status, con=con)
    if measured_only:
        cond.append("l.sid IS NOT NULL")
    sql = _DISC_SQL + where(cond) + " ORDER BY sm.name, d.disc_id"
    out = []
    for r in con.execute(sql, args):
        d = dict(zip(DISC_COLUMNS, tuple(r), strict=True))
        # Flags only matter when the series has no agreed threshold: fetch them for that case.
        d["peaks_nm"] = json.loads(d["peaks_nm"]) if d["peaks_nm"] else []
        d["resolution_limited"] = (
            bool(d["resolution_limited"]) if d["resolution_limited"] is not None else None
        )
        out.append(d)
    if out:
        flags = _flags(con, [d["series_id"] for d in out if d["series_id"]])
        for d in out:
            d["fit_flag"] = flags.get(d["series_id"], "")
    return out


def _flags(con: Connection, sids: list[int]) -> dict[int, str]:
    flags: dict[int, list[str]] = {}
    for sid, method, flag in con.execute(
        "SELECT series_id, method, flag FROM fits WHERE flag <> '' ORDER BY method"
    ):
        flags.setdefault(sid, []).append(f"{method}: {flag}")
    return {k: "; ".join(v) for k, v in flags.items()}


def measurement_rows(
    con: Connection, pattern: str | None = None, sample: str | None = None
) -> list[dict]:
    """One row per stored spectrum with its series metadata and derived scalars."""
    cond, args = disc_filter(pattern, sample, con=con)
    sql = """SELECT sm.name AS sample, d.disc_id, s.id AS series_id, s.created AS series_created,
                    s.pump_wavelength_nm, s.pulse_width_fs, s.rep_rate_hz, s.spot_fwhm_um, s.operator, s.notes,
                    s.resolution_nm, s.fluence_definition, x.id AS spectrum_id, x.fluence_uj_cm2, x.integration_s, x.source_file,
                    x.acquired, x.integrated, x.peak_nm, x.fwhm_nm
             FROM spectra x JOIN series s ON s.id = x.series_id JOIN discs d ON d.id = s.disc_pk
             JOIN samples sm ON sm.id = d.sample_id"""
    sql += where(cond)
    return [
        dict(r) for r in con.execute(sql + " ORDER BY sm.name, d.disc_id, s.id, x.fluence_uj_cm2, x.id", args)
    ]


def find_disc(con: Connection, disc_id: str, sample: str | None = None) -> Row:
    sql = "SELECT d.*, sm.name AS sample FROM discs d JOIN samples sm ON sm.id = d.sample_id WHERE d.disc_id = ?"
    args: list = [disc_id]
    if sample:
        sql += " AND sm.name = ?"
        args.append(sample)
    rows = con.execute(sql, args).fetchall()
    if not rows:
        raise UserError(f"disc {disc_id!r} is not in the lab database")
    if len(rows) > 1:
        raise UserError(
            f"disc {disc_id!r} exists in samples {', '.join(r['sample'] for r in rows)}: pass --sample"
        )
    return rows[0]


def disc_detail(con: Connection, disc_id: str, sample: str | None = None) -> dict:
    """Everything about one disc: record, every series with its fits and per-spectrum scalars."""
    d = find_disc(con, disc_id, sample)
    out = {k: d[k] for k in d.keys() if k not in ("id", "sample_id")}
    out["series"] = []
    for s in con.execute("SELECT * FROM series WHERE disc_pk=? ORDER BY id", (d["id"],)).fetchall():
        sd = dict(s)
        sd.pop("disc_pk")
        sd["fits"] = []
        for f in con.execute("SELECT * FROM fits WHERE series_id=? ORDER BY method", (s["id"],)):
            fd = {k: f[k] for k in f.keys() if k not in ("id", "series_id", "params_json")}
            fd["params"] = json.loads(f["params_json"] or "{}")
            sd["fits"].append(fd)
        sp = con.execute("SELECT * FROM spectral WHERE series_id=?", (s["id"],)).fetchone()
        if sp:
            sd["spectral"] = {k: sp[k] for k in sp.keys() if k not in ("series_id", "peaks_json")}
            sd["spectral"]["peaks_nm"] = json.loads(sp["peaks_json"] or "[]")
        sd["spectra"] = [
            dict(r)
            for r in con.execute(
                """SELECT id, fluence_uj_cm2, integration_s, integrated, peak_nm, fwhm_nm, source_file, acquired
               FROM spectra WHERE series_id=? ORDER BY fluence_uj_cm2, id""",
                (s["id"],),
            )
        ]
        out["series"].append(sd)
    return out


def series_spectra(
    con: Connection, series_id: int
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """(wavelength arrays, counts/s arrays, fluences) of one series, in fluence order."""
    rows = con.execute(
        """SELECT a.wavelength_nm, x.counts, x.integration_s, x.fluence_uj_cm2 FROM spectra x
           JOIN axes a ON a.id = x.axis_id WHERE x.series_id=? ORDER BY x.fluence_uj_cm2, x.id""",
        (series_id,),
    ).fetchall()
    wl = [from_blob(r[0]).astype(np.float64) for r in rows]
    y = [from_blob(r[1]).astype(np.float64) / (r[2] or 1.0) for r in rows]
    return wl, y, np.array([r[3] for r in rows], dtype=np.float64)


def fabricated_discs(
    con: Connection, sample: str | None = None, include_uncertain: bool = False
) -> list[dict]:
    """Discs to measure: those an imported journal says were fired (optionally also the uncertain
    ones); when no run was imported for a sample, every disc of its registered design."""
    sql = """SELECT sm.name, d.disc_id, d.diameter_um, d.fab_state, d.run_id FROM discs d
             JOIN samples sm ON sm.id = d.sample_id WHERE d.known = 1"""
    args: list = []
    if sample:
        sql += " AND sm.name = ?"
        args.append(sample)
    rows = con.execute(sql + " ORDER BY sm.name, d.disc_id", args).fetchall()
    with_runs = {r[0] for r in rows if r[4] is not None}
    ok = {"fired", "uncertain"} if include_uncertain else {"fired"}
    return [
        {"sample": r[0], "disc_id": r[1], "diameter_um": r[2] if r[2] is not None else float("nan")}
        for r in rows
        if (r[0] not in with_runs) or (r[3] in ok)
    ]
