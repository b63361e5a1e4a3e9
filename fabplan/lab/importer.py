"""Putting spectra into the logbook: one file (`add_spectrum`) or a manifest CSV (`import_manifest`).

A manifest import is one transaction: every row is validated and its spectrum parsed, and the first
bad row (or any failure, including the process being killed) leaves the database exactly as before.
Files are parsed in a small process pool when there are many (text parsing dominates import time).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from fabplan.errors import Problem, ProblemsError, UserError
from fabplan.lab.db import Connection, axis_id, to_blob, transaction
from fabplan.lab.records import resolve_discs
from fabplan.lab.spectra_io import read_spectrum_info, with_selection
from fabplan.lab.workers import orphan_safe_pool
from fabplan.units import parse_kind, parse_quantity

SERIES_FIELDS = {
    # manifest column -> (series column, unit kind or None)
    "pump_wavelength": ("pump_wavelength_nm", "wavelength_nm"),
    "pulse_width": ("pulse_width_fs", "duration_fs"),
    "rep_rate": ("rep_rate_hz", "frequency_hz"),
    "spot_fwhm": ("spot_fwhm_um", "length_um"),
    "resolution": ("resolution_nm", "wavelength_nm"),
    "operator": ("operator", None),
    "notes": ("notes", None),
    "fluence_definition": ("fluence_definition", None),
}
# What a series' pump fluences mean (series.fluence_definition; empty = not stated).
PUMP_FLUENCE_DEFINITIONS = {
    "peak": "peak fluence of the Gaussian pump spot (2 E / (pi w^2), w the 1/e^2 radius)",
    "average": "pulse energy over the spot area (E / A; state the area's definition in the notes)",
}


def parse_pump_fluence_definition(value: object) -> str:
    v = str(value).strip().lower()
    if v not in PUMP_FLUENCE_DEFINITIONS:
        raise UserError(f"pump fluence definition must be one of {', '.join(PUMP_FLUENCE_DEFINITIONS)}, got {value!r}")
    return v
ALIASES = {
    "disc": "disc_id",
    "id": "disc_id",
    "disc id": "disc_id",
    "fluence": "fluence",
    "pump_fluence": "fluence",
    "fluence_uj_cm2": "fluence",
    "pump fluence": "fluence",
    "spectrum": "spectrum",
    "file": "spectrum",
    "spectrum_file": "spectrum",
    "path": "spectrum",
    "integration_s": "integration",
    "integration": "integration",
    "exposure_s": "integration",
    "pump_wavelength_nm": "pump_wavelength",
    "pulse_width_fs": "pulse_width",
    "rep_rate_hz": "rep_rate",
    "spot_fwhm_um": "spot_fwhm",
    "spot": "spot_fwhm",
    "resolution_nm": "resolution",
    "pump_fluence_definition": "fluence_definition",
}
PARALLEL_MIN_FILES = 400
CHUNK = 1000

# Paper defaults (REFERENCE.md section 1): 515 nm, 220 fs, ~20 um FWHM pump spot.
DEFAULT_META = {"pump_wavelength_nm": 515.0, "pulse_width_fs": 220.0, "spot_fwhm_um": 20.0}


def parse_fluence(value: object) -> float:
    """Pump fluence in uJ/cm^2 ("12uJ/cm^2", "0.012 mJ/cm^2", or a bare number in uJ/cm^2)."""
    f = parse_quantity(value, "uJ/cm^2", "a pump fluence (energy per area)")
    if not (f >= 0 and np.isfinite(f)):
        raise UserError(f"pump fluence must be >= 0, got {value!r}")
    return f


@dataclass
class Row:
    disc_id: str
    fluence_uj_cm2: float
    spectrum: Path
    where: str
    integration_s: float | None = None
    series_key: str = ""
    meta: dict = field(default_factory=dict)
    sample: str | None = None


def _new_series(con: Connection, disc_pk: int, meta: dict) -> int:
    m = {**DEFAULT_META, **{k: v for k, v in meta.items() if v is not None}}
    cols = ["disc_pk", "audit_id", *m.keys()]
    return con.insert_id(
        f"INSERT INTO series({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
        [disc_pk, con.audit_id, *m.values()],
    )


_INSERT_SPECTRUM = """INSERT INTO spectra(series_id, fluence_uj_cm2, axis_id, counts, integration_s, source_file,
                                          audit_id, exposure_s, accumulations) VALUES (?,?,?,?,?,?,?,?,?)"""


def _spectrum_row(con, series_id: int, row: Row, wl, counts, timing, cache) -> tuple:
    """timing: (total integration_s, exposure_s, accumulations) as the file says (or integration_s alone)."""
    integration_s, exposure_s, accumulations = timing if isinstance(timing, tuple) else (timing, None, None)
    return (
        series_id,
        row.fluence_uj_cm2,
        axis_id(con, wl, cache),
        counts if isinstance(counts, bytes) else to_blob(counts),
        row.integration_s if row.integration_s is not None else integration_s,
        str(row.spectrum),
        con.audit_id,
        exposure_s,
        accumulations,
    )


def _timing(t, acq: dict) -> tuple:
    return (t, acq.get("exposure_s"), acq.get("accumulations"))


def add_spectrum(
    con: Connection,
    disc_id: str,
    fluence,
    spectrum: str | os.PathLike,
    sample: str = "default",
    allow_unknown: bool = False,
    new_series: bool = False,
    meta: dict | None = None,
    integration_s: float | None = None,
) -> dict:
    """Add one spectrum; it joins the disc's latest series unless new_series (or none exists)."""
    f = parse_fluence(fluence)
    wl, counts, t, acq = read_spectrum_info(spectrum)
    t = _timing(t, acq)
    row = Row(disc_id, f, Path(spectrum), str(spectrum), integration_s)
    with transaction(con, "add spectrum", disc=disc_id, sample=sample, file=str(spectrum)):
        pk = resolve_discs(con, sample, [disc_id], allow_unknown)[disc_id]
        last = con.execute("SELECT max(id) FROM series WHERE disc_pk=?", (pk,)).fetchone()[0]
        sid = _new_series(con, pk, meta or {}) if (new_series or last is None) else int(last)
        spec_id = con.insert_id(_INSERT_SPECTRUM, _spectrum_row(con, sid, row, wl, counts, t, {}))
    return {"disc_id": disc_id, "series_id": sid, "spectrum_id": spec_id, "fluence_uj_cm2": f}


def _memo(fn: Callable) -> Callable:
    """fn with its results remembered by argument (successes only)."""
    seen: dict = {}

    def call(*args):
        try:
            return seen[args]
        except KeyError:
            seen[args] = value = fn(*args)
            return value

    return call


def read_manifest(path: Path, default_sample: str) -> list[Row]:
    """Parse (outside any database transaction) and check every row; all bad rows reported at once."""
    from fabplan.lab.manifest_limits import check_cells, manifest_reader

    with manifest_reader(path) as reader:
        try:
            header = next(reader)
        except StopIteration:
            raise UserError(f"{path}: empty manifest") from None
        check_cells(path, 1, header)
        cols = [ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
        for need in ("disc_id", "fluence", "spectrum"):
            if need not in cols:
                raise UserError(f"{path}:1: manifest needs a {need!r} column (got {', '.join(header)})")
        rows, problems = [], []
        names = dict(zip(cols, (h.strip() for h in header), strict=True))  # alias -> the user's column name
        base = path.parent
        # A manifest repeats a few fluences and one set of series values on every row: parse each
        # distinct cell once (the parsers are pure; a failure is not remembered and raises again).
        fluence_of, kind_of = _memo(parse_fluence), _memo(parse_kind)
        for lineno, rec in enumerate(reader, 2):
            if not rec or all(not c.strip() for c in rec) or rec[0].lstrip().startswith("#"):
                continue
            where = f"{path}:{lineno}"
            try:
                check_cells(path, lineno, rec, names=header)
            except UserError as exc:
                problems.append(Problem(str(exc), file=str(path), line=lineno))
                continue
            d = dict(zip(cols, (c.strip() for c in rec), strict=False))
            field = ""  # the column being read, named in the problem
            try:
                if len(rec) != len(cols):
                    raise UserError(f"expected {len(cols)} columns, got {len(rec)}")
                meta = {}
                for key, (col, kind) in SERIES_FIELDS.items():
                    if d.get(key):
                        field = key
                        meta[col] = kind_of(d[key], kind) if kind else d[key]
                        if col == "fluence_definition":
                            meta[col] = parse_pump_fluence_definition(d[key])
                field = "fluence"
                fluence = fluence_of(d["fluence"])
                field = "integration"
                integration = float(d["integration"]) if d.get("integration") else None
                field = "frame"  # a kinetic-series frame / image rows of a camera file (.sif, .spe)
                frame = int(d["frame"]) if d.get("frame") else None
                field = ""
                spec = Path(base, with_selection(d["spectrum"], frame, d.get("rows") or None))  # absolute: as is
                rows.append(
                    Row(
                        d["disc_id"],
                        fluence,
                        spec,
                        where,
                        integration,
                        d.get("series", ""),
                        meta,
                        d.get("sample") or default_sample,
                    )
                )
            except (UserError, ValueError) as exc:
                problems.append(Problem(str(exc), path=names.get(field, ""), file=str(path), line=lineno))
        if problems:
            raise ProblemsError(problems)
    if not rows:
        raise UserError(f"{path}: manifest has no rows")
    return rows


def _read_one(path: str | Path):
    """Parse one file into float32 blobs (what is stored; half the bytes to ship from a worker)."""
    try:
        wl, counts, t, acq = read_spectrum_info(path)
    except UserError as exc:
        return exc
    return _axis_blob(wl), to_blob(counts), _timing(t, acq)


_AXIS_BLOBS: dict[int, tuple[np.ndarray, bytes]] = {}


def _axis_blob(wl: np.ndarray) -> bytes:
    """to_blob(wl), the same bytes object for the same (cached, read-only) axis array: a worker's
    chunk of results is pickled once, and pickle sends an object it has already sent as a reference,
    so the axis travels once per chunk instead of once per spectrum."""
    hit = _AXIS_BLOBS.get(id(wl))
    if hit is not None and hit[0] is wl:  # the entry holds wl, so its id cannot be reused meanwhile
        return hit[1]
    blob = to_blob(wl)
    if not wl.flags.writeable:  # the parsers' cached axes; a fresh array is not worth remembering
        if len(_AXIS_BLOBS) >= 32:
            _AXIS_BLOBS.clear()
        _AXIS_BLOBS[id(wl)] = (wl, blob)
    return blob


def import_manifest(
    con: Connection,
    manifest: str | os.PathLike,
    sample: str = "default",
    allow_unknown: bool = False,
    meta: dict | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = CHUNK,
) -> dict:
    """Import every row of a manifest atomically; returns counts. Rows of one disc (and one `series`
    value, when that column exists) form one new measurement series."""
    path = Path(manifest)
    rows = read_manifest(path, sample)
    n_workers = (
        workers
        if workers is not None
        else (min(2, os.cpu_count() or 1) if len(rows) >= PARALLEL_MIN_FILES else 1)
    )
    pool = orphan_safe_pool(n_workers) if n_workers > 1 else None  # workers die with this process (kill -9)
    # Workers parse ahead (in order) while this process stores the previous chunk.
    # (paths go as str: cheaper to pickle than Path objects, and read the same)
    stream = pool.map(_read_one, [str(r.spectrum) for r in rows], chunksize=32) if pool else None
    series: dict[tuple, int] = {}
    cache: dict = {}
    done = 0
    try:
        with transaction(con, "import", manifest=str(path), spectra=len(rows)):
            by_sample: dict[str, list[Row]] = {}
            for r in rows:
                by_sample.setdefault(r.sample or sample, []).append(r)
            pks: dict[tuple[str, str], int] = {}
            for smp, rs in by_sample.items():
                got = resolve_discs(con, smp, [r.disc_id for r in rs], allow_unknown, [r.where for r in rs])
                pks.update({(smp, k): v for k, v in got.items()})
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                parsed = (
                    list(islice(stream, len(part)))
                    if stream is not None
                    else [_read_one(r.spectrum) for r in part]
                )
                bad = [
                    Problem(
                        f"{r.spectrum}: {str(p).removeprefix(str(r.spectrum) + ': ')}",
                        file=r.where.rsplit(":", 1)[0],
                        line=int(r.where.rsplit(":", 1)[1]),
                    )
                    for r, p in zip(part, parsed, strict=False)
                    if isinstance(p, UserError)
                ]
                if bad:
                    raise ProblemsError(bad)
                batch = []
                for r, (wl, counts, t) in zip(part, parsed, strict=False):
                    smp = r.sample or sample
                    key = (smp, r.disc_id, r.series_key)
                    if key not in series:
                        series[key] = _new_series(con, pks[(smp, r.disc_id)], {**(meta or {}), **r.meta})
                    batch.append(_spectrum_row(con, series[key], r, wl, counts, t, cache))
                con.executemany(_INSERT_SPECTRUM, batch)  # one batch per chunk (pipelined on PostgreSQL)
                done += len(part)
                if progress:
                    progress(done, len(rows))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    return {
        "manifest": str(path),
        "spectra": done,
        "series": len(series),
        "discs": len({(k[0], k[1]) for k in series}),
    }
