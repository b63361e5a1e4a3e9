"""The lab logbook database: SQLite in WAL mode, versioned schema, forward migrations.

Why SQLite: one file the lab can copy, safe concurrent readers plus one writer at a time (WAL), and
transactions that make a batch import all-or-nothing. Arrays (spectra) are stored as float32 blobs;
identical wavelength axes are stored once (`axes`) because a spectrometer reuses its calibration.

Schema changes are forward migrations: `MIGRATIONS[k]` takes a database at user_version k to k+1.
Never edit a released migration; append a new one.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fabplan.errors import UserError

DEFAULT_DB = "fabplan-lab.sqlite"
ENV_DB = "FABPLAN_DB"
BUSY_TIMEOUT_MS = 60_000

STATUSES = ("untested", "lasing", "ASE-only", "dead", "damaged")


def _script(con: sqlite3.Connection, sql: str) -> None:
    """Run `;`-separated DDL inside the caller's transaction (executescript would COMMIT first)."""
    for stmt in sql.split(";"):
        if stmt.strip():
            con.execute(stmt)


def _v1(con: sqlite3.Connection) -> None:
    _script(
        con,
        """
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, notes TEXT,
            created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
        CREATE TABLE designs (
            id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT, yaml TEXT NOT NULL,
            created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY, sample_id INTEGER NOT NULL REFERENCES samples(id),
            design_id INTEGER REFERENCES designs(id), plan_hash TEXT, journal_path TEXT,
            journal_sha256 TEXT UNIQUE, started TEXT, header_json TEXT, n_fired INTEGER,
            imported TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
        CREATE TABLE discs (
            id INTEGER PRIMARY KEY, sample_id INTEGER NOT NULL REFERENCES samples(id),
            disc_id TEXT NOT NULL, array_id TEXT, design_id INTEGER REFERENCES designs(id),
            run_id INTEGER REFERENCES runs(id), diameter_um REAL, fluence_mj_cm2 REAL,
            pulses INTEGER, x_um REAL, y_um REAL, known INTEGER NOT NULL DEFAULT 1,
            fab_state TEXT, energy_uj REAL,
            status TEXT NOT NULL DEFAULT 'untested'
                CHECK (status IN ('untested','lasing','ASE-only','dead','damaged')),
            status_manual INTEGER NOT NULL DEFAULT 0,
            UNIQUE (sample_id, disc_id));
        CREATE TABLE series (
            id INTEGER PRIMARY KEY, disc_pk INTEGER NOT NULL REFERENCES discs(id),
            created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            pump_wavelength_nm REAL, pulse_width_fs REAL, rep_rate_hz REAL, spot_fwhm_um REAL,
            operator TEXT, notes TEXT, resolution_nm REAL);
        CREATE TABLE axes (id INTEGER PRIMARY KEY, sha1 TEXT NOT NULL UNIQUE, n INTEGER NOT NULL,
            wavelength_nm BLOB NOT NULL);
        CREATE TABLE spectra (
            id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL REFERENCES series(id),
            fluence_uj_cm2 REAL NOT NULL, axis_id INTEGER NOT NULL REFERENCES axes(id),
            counts BLOB NOT NULL, integration_s REAL, source_file TEXT,
            acquired TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
        CREATE TABLE fits (
            id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL REFERENCES series(id),
            method TEXT NOT NULL, has_threshold INTEGER NOT NULL, flag TEXT,
            threshold_uj_cm2 REAL, threshold_lo REAL, threshold_hi REAL, slope_efficiency REAL,
            beta REAL, params_json TEXT,
            created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            UNIQUE (series_id, method));
        CREATE INDEX discs_disc_id ON discs(disc_id);
        CREATE INDEX series_disc ON series(disc_pk);
        CREATE INDEX spectra_series ON spectra(series_id);
        """,
    )


def _v2(con: sqlite3.Connection) -> None:
    """Per-spectrum derived scalars (cached by `fit`) and per-series spectral summary."""
    _script(
        con,
        """
        ALTER TABLE spectra ADD COLUMN integrated REAL;
        ALTER TABLE spectra ADD COLUMN peak_nm REAL;
        ALTER TABLE spectra ADD COLUMN fwhm_nm REAL;
        CREATE TABLE spectral (
            series_id INTEGER PRIMARY KEY REFERENCES series(id),
            linewidth_nm REAL, linewidth_err_nm REAL, resolution_limited INTEGER,
            below_linewidth_nm REAL, peak_nm REAL, peaks_json TEXT, q REAL,
            mode_spacing_nm REAL, fsr_predicted_nm REAL, fsr_source TEXT,
            window_lo_nm REAL, window_hi_nm REAL);
        """,
    )


def _v3(con: sqlite3.Connection) -> None:
    """Film thickness per design: the WGM prediction depends on it (slab effective index)."""
    con.execute("ALTER TABLE designs ADD COLUMN film_thickness_nm REAL")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


def default_path(path: str | os.PathLike | None = None) -> Path:
    """`--db` wins, then $FABPLAN_DB, then ./fabplan-lab.sqlite."""
    return Path(path or os.environ.get(ENV_DB) or DEFAULT_DB)


def connect(path: str | os.PathLike) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    con.row_factory = sqlite3.Row
    con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise UserError(f"{path}: cannot switch the lab database to WAL mode (got {mode!r})")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=ON")
    return con


def migrate(con: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; each step is its own transaction. Returns the version."""
    while True:
        with transaction(con):
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UserError(
                    f"lab database schema v{version} is newer than this fabplan (v{SCHEMA_VERSION}): "
                    "upgrade fabplan"
                )
            if version == SCHEMA_VERSION:
                return version
            MIGRATIONS[version](con)
            con.execute(f"PRAGMA user_version={version + 1}")


def open_db(path: str | os.PathLike | None = None) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the lab database; `path` None -> `default_path()`."""
    p = default_path(path)
    if p.parent and not p.parent.exists():
        raise UserError(f"{p}: directory {p.parent} does not exist")
    con = connect(p)
    migrate(con)
    return con


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception (writers queue on the busy timeout)."""
    if con.in_transaction:  # nested: join the outer transaction
        yield con
        return
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


# ---- arrays -------------------------------------------------------------------------------------


def to_blob(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def from_blob(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4")


def axis_id(con: sqlite3.Connection, wavelength_nm: np.ndarray | bytes, cache: dict | None = None) -> int:
    """Id of this wavelength axis, inserting it once (content-addressed by its float32 bytes)."""
    blob = wavelength_nm if isinstance(wavelength_nm, bytes) else to_blob(wavelength_nm)
    key = blob if cache is not None else b""
    if cache is not None and key in cache:
        return cache[key]
    sha = hashlib.sha1(blob).hexdigest()
    row = con.execute("SELECT id FROM axes WHERE sha1=?", (sha,)).fetchone()
    if row is None:
        cur = con.execute(
            "INSERT INTO axes(sha1, n, wavelength_nm) VALUES (?,?,?)", (sha, len(blob) // 4, blob)
        )
        aid = int(cur.lastrowid)
    else:
        aid = int(row[0])
    if cache is not None:
        cache[key] = aid
    return aid


def load_axes(con: sqlite3.Connection) -> dict[int, np.ndarray]:
    return {int(r[0]): from_blob(r[1]) for r in con.execute("SELECT id, wavelength_nm FROM axes")}


# ---- samples ------------------------------------------------------------------------------------


def sample_id(con: sqlite3.Connection, name: str) -> int:
    """Id of sample `name`, created on first use."""
    row = con.execute("SELECT id FROM samples WHERE name=?", (name,)).fetchone()
    if row:
        return int(row[0])
    return int(con.execute("INSERT INTO samples(name) VALUES (?)", (name,)).lastrowid)
