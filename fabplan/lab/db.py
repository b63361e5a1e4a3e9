"""The lab logbook database: one URL, SQLite (default, one file) or PostgreSQL (one server for a lab).

The address is a file path or `sqlite:///path` (embedded, zero set-up) or `postgresql://user@host/db`
(several hosts writing at once: SQLite's WAL needs every writer on one machine). SQLAlchemy Core
makes the engines (URL parsing, drivers: sqlite3 and psycopg 3) and renders the schema's DDL for each
dialect from one table definition (`_tables`: LargeBinary -> BLOB/bytea, Float -> REAL/double
precision, integer keys -> rowid/SERIAL). The queries are plain SQL in the subset both dialects
share, written with `?` placeholders (`Connection.execute` hands them to the driver in its style):
no GLOB, INSERT OR REPLACE (use INSERT ... ON CONFLICT ... DO UPDATE), PRAGMA, lastrowid (use
`insert_id`, i.e. RETURNING id), strftime or json_extract outside this module.

Writers: every write is a `transaction(con)`. On SQLite it is BEGIN IMMEDIATE (the writer lock is
taken up front, so two writers never deadlock); waits beyond the busy timeout are retried with
bounded backoff. On PostgreSQL a write transaction first takes a transaction-scoped advisory lock,
so writers queue exactly as on SQLite while readers never wait (MVCC); `retrying` re-runs a whole
operation on a serialization failure or deadlock. Each write transaction appends one `audit` row
(operator, host, pid, time, action) and exposes its id as `con.audit_id` for the rows it creates.

Schema versions: a fresh logbook gets the current schema in one step (`_tables`); an existing one
runs `MIGRATIONS[k]` for each version k it lacks, in its own transaction. v1-v3 are the released
SQLite-only steps (PostgreSQL logbooks start at v4). The version lives in SQLite's user_version (so
an older fabplan refuses a newer file) and in table `fabplan_schema` on PostgreSQL. To add a column:
add it to `_tables` and append a migration calling `add_column`; never edit a released migration.

Own migrations rather than Alembic: the existing files already carry their version in user_version
(Alembic would need stamping them first), a migration here is a ten-line function run inside the
same advisory-locked transaction as everything else, and there is no migration script directory
to ship as package data.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import itertools
import json
import os
import random
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fabplan.errors import UserError

DEFAULT_DB = "fabplan-lab.sqlite"
ENV_DB = "FABPLAN_DB"
ENV_OPERATOR = "FABPLAN_OPERATOR"
ENV_HOST = "FABPLAN_HOST"  # the station name for the audit rows when the host name says nothing (containers)
BUSY_TIMEOUT_MS = 60_000
LOCK_RETRIES = 30  # after the busy timeout: this many more attempts, backoff 0.05 s doubling to 5 s
PG_WRITER_LOCK = 0x6661_6270_6C61_6E  # advisory lock key ('fabplan'): one writer at a time on PG

# 'undetermined': the analysis sees a kink but cannot pin the threshold (schema v6; before, such a disc
# stayed 'untested' with an 'undetermined: ...' flag on its fit)
STATUSES = ("untested", "lasing", "ASE-only", "dead", "damaged", "undetermined")

_NOW = {
    "sqlite": "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
    "postgresql": "(to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))",
}


# ---- addresses ----------------------------------------------------------------------------------


def default_url(address: str | os.PathLike | None = None) -> str:
    """`--db` wins, then $FABPLAN_DB, then ./fabplan-lab.sqlite (as given: a path or a URL)."""
    return str(address or os.environ.get(ENV_DB) or DEFAULT_DB)


def default_path(path: str | os.PathLike | None = None) -> Path:
    """The SQLite file of `default_url(path)` (a UserError for a server URL)."""
    p = sqlite_path(default_url(path))
    if p is None:
        raise UserError(f"{redact(default_url(path))} is not a SQLite logbook file")
    return p


def sqlite_path(address: str) -> Path | None:
    """The file of a SQLite address (path or sqlite:///path), None for a server URL."""
    if "://" not in address:
        return Path(address)
    scheme, _, rest = address.partition("://")
    if scheme.lower() == "sqlite":
        return Path(rest[1:] if rest.startswith("/") else "")
    return None


def redact(address: str) -> str:
    """The address without its password (for messages)."""
    if "://" not in address or "@" not in address:
        return address
    scheme, _, rest = address.partition("://")
    cred, _, host = rest.rpartition("@")
    return f"{scheme}://{cred.split(':', 1)[0]}{':***' if ':' in cred else ''}@{host}"


def _engine_url(address: str):
    import sqlalchemy as sa

    p = sqlite_path(address)
    if p is not None:
        if str(p) in ("", ".", ":memory:"):
            raise UserError(f"{address}: the logbook must be a file (an in-memory database is lost on exit)")
        if p.parent and not p.parent.exists():
            raise UserError(f"{p}: directory {p.parent} does not exist")
        return sa.engine.URL.create("sqlite", database=str(p))
    scheme = address.partition("://")[0].lower()
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise UserError(
            f"{redact(address)}: unsupported logbook address (a file path, sqlite:///path or "
            "postgresql://user@host/db)"
        )
    try:
        url = sa.engine.make_url(address)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy.exc.ArgumentError and friends
        raise UserError(f"{redact(address)}: malformed logbook URL ({exc})") from None
    return url.set(drivername="postgresql+psycopg")


# ---- connections --------------------------------------------------------------------------------


class Row(tuple):
    """A result row: a tuple that also answers row["column"], keys() and dict(row) (like sqlite3.Row)."""

    __slots__ = ()
    _index: dict[str, int] = {}
    _keys: tuple[str, ...] = ()

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, str):
            return tuple.__getitem__(self, self._index[k])
        return tuple.__getitem__(self, k)

    def keys(self) -> list[str]:
        return list(self._keys)


@functools.lru_cache(maxsize=256)
def _row_class(keys: tuple[str, ...]) -> type[Row]:
    index: dict[str, int] = {}
    for i, k in enumerate(keys):
        index.setdefault(k, i)
    return type("Row", (Row,), {"__slots__": (), "_index": index, "_keys": keys})


class Result:
    """What `Connection.execute` returns: iterate, fetchone, fetchall; `rowcount`."""

    def __init__(self, con: Connection, res) -> None:
        self._con = con
        self._res = res
        self._cls = _row_class(tuple(res.keys())) if res.returns_rows else None
        self.rowcount = res.rowcount

    def __iter__(self) -> Iterator[Row]:
        if self._cls is None:
            return iter(())
        cls = self._cls
        return (cls(r) for r in self._res)

    def fetchone(self) -> Row | None:
        r = self._res.fetchone() if self._cls is not None else None
        return None if r is None else self._cls(r)

    def fetchall(self) -> list[Row]:
        return list(self)

    @property
    def lastrowid(self) -> int:
        """Id of the row an INSERT created. Prefer `Connection.insert_id` (RETURNING) in new code."""
        if self._con.dialect == "sqlite":
            return self._res.lastrowid
        return int(self._con.execute("SELECT lastval()").fetchone()[0])


class Connection:
    """One logbook connection: `execute(sql, args)` with `?` placeholders on either backend.

    Statements outside `transaction()` commit on their own (autocommit), as the sqlite3 module did
    with isolation_level=None.
    """

    def __init__(self, address: str) -> None:
        import sqlalchemy as sa

        self.address = address
        self.url = address  # what a worker process passes to `connect` to open the same logbook
        self.operator = os.environ.get(ENV_OPERATOR) or _os_user()
        self.host = os.environ.get(ENV_HOST) or socket.gethostname()
        self.action = "python API"  # what the audit rows say was done (the CLI names its command)
        self.audit_id: int | None = None
        self.has_audit = False
        self.in_transaction = False
        url = _engine_url(address)
        self.dialect = url.get_backend_name()
        kw: dict[str, Any] = {"poolclass": sa.pool.NullPool, "isolation_level": "AUTOCOMMIT"}
        if self.dialect == "sqlite":
            kw["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        else:
            kw["connect_args"] = {"connect_timeout": 10, "application_name": "fabplan"}
        try:
            self.engine = sa.create_engine(url, **kw)
            self._c = self.engine.connect()
        except ModuleNotFoundError as exc:
            raise UserError(
                f"{redact(address)}: PostgreSQL logbooks need psycopg ({exc}); pip install 'psycopg[binary]'"
            ) from None
        except sa.exc.DBAPIError as exc:
            raise UserError(f"{redact(address)}: cannot open the logbook ({_first_line(exc.orig)})") from None
        if self.dialect == "postgresql":  # results in binary: bytea arrives as bytes, not hex text
            self._c.connection.dbapi_connection.cursor_factory = _binary_cursor()
        if self.dialect == "sqlite":
            self.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = self.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise UserError(f"{address}: cannot switch the lab database to WAL mode (got {mode!r})")
            self.execute("PRAGMA synchronous=NORMAL")
            self.execute("PRAGMA foreign_keys=ON")

    # -- statements

    def _sql(self, sql: str, args: tuple) -> str:
        if self.dialect == "sqlite":
            return sql
        # bytes parameters go in binary (%b): a spectrum is 4 kB, twice that as bytea hex text
        return _pg_sql(sql, tuple(a.__class__ is bytes for a in args) if bytes in map(type, args) else ())

    def _args(self, args):
        args = tuple(args)
        if self.dialect != "sqlite":  # psycopg sends bool as boolean; the flag columns are integers
            args = tuple(int(a) if a.__class__ is bool else a for a in args)
        return args

    def execute(self, sql: str, args: Iterable = ()) -> Result:
        args = self._args(args)
        return Result(self, self._c.exec_driver_sql(self._sql(sql, args), args))

    def executemany(self, sql: str, rows: Iterable[Iterable]) -> None:
        rows = [self._args(r) for r in rows]
        if rows:
            self._c.exec_driver_sql(self._sql(sql, rows[0]), rows)

    def insert_id(self, sql: str, args: Iterable = ()) -> int:
        """Run one `INSERT` and return the new row's id (RETURNING id: SQLite >= 3.35 and PostgreSQL)."""
        return int(self.execute(sql.rstrip().rstrip(";") + " RETURNING id", args).fetchone()[0])

    def close(self) -> None:
        try:
            self._c.close()
        finally:
            self.engine.dispose()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions

    def _begin_write(self) -> None:
        if self.dialect == "sqlite":
            self.execute("BEGIN IMMEDIATE")
        else:
            self.execute("BEGIN")
            try:
                self.execute("SELECT pg_advisory_xact_lock(?)", (PG_WRITER_LOCK,))
            except BaseException:
                self.execute("ROLLBACK")
                raise


@functools.lru_cache(maxsize=1024)
def _pg_sql(sql: str, binary: tuple[bool, ...] = ()) -> str:
    """`?` -> `%s` outside string literals (`%b`, binary, where `binary[i]`), literal `%` doubled
    (psycopg's paramstyle)."""
    out, quoted, k = [], False, 0
    for ch in sql:
        if ch == "'":
            quoted = not quoted
            out.append(ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%b" if k < len(binary) and binary[k] else "%s")
            k += 1
        else:
            out.append(ch)
    return "".join(out)


@functools.lru_cache(maxsize=1)
def _binary_cursor():
    """A psycopg cursor class that asks the server for results in binary format."""
    import psycopg

    class BinaryCursor(psycopg.Cursor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.format = psycopg.pq.Format.BINARY

    return BinaryCursor


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def is_lock_error(exc: BaseException) -> bool:
    """A wait for another writer that gave up: SQLite 'database is locked/busy', PostgreSQL
    serialization failure (40001), deadlock (40P01) or lock timeout (55P03)."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if code in ("40001", "40P01", "55P03"):
        return True
    msg = str(orig).lower()
    return "database is locked" in msg or "database is busy" in msg or "database table is locked" in msg


def _backoff(attempt: int) -> float:
    return min(5.0, 0.05 * 2**attempt) * (0.5 + random.random())  # jitter: writers do not march in step


def connect(address: str | os.PathLike) -> Connection:
    """Open a connection (no migration: `open_db` is the usual entry point)."""
    return Connection(str(address))


def open_db(address: str | os.PathLike | None = None) -> Connection:
    """Open (creating if needed) and migrate the logbook at `address` (None -> `default_url()`)."""
    con = connect(default_url(address))
    try:
        migrate(con)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def transaction(con: Connection, action: str | None = None, **detail) -> Iterator[Connection]:
    """A write transaction: commit at the end, roll back on any exception (nested: joins the outer).

    Waiting for the writer lock is retried (bounded backoff) once the driver's own wait gives up;
    the body runs once. The audit row says who (operator, host, pid) did `action` (default
    `con.action`) and when; `con.audit_id` is its id while the transaction is open.
    """
    if con.in_transaction:
        yield con
        return
    from sqlalchemy.exc import DBAPIError

    for attempt in range(LOCK_RETRIES + 1):
        try:
            con._begin_write()
            break
        except DBAPIError as exc:
            if not is_lock_error(exc) or attempt == LOCK_RETRIES:
                raise UserError(f"{redact(con.address)}: could not start a write ({_first_line(exc.orig)})") from None
            time.sleep(_backoff(attempt))
    con.in_transaction = True
    try:
        if con.has_audit:
            con.audit_id = con.insert_id(
                "INSERT INTO audit(operator, host, pid, action, detail) VALUES (?,?,?,?,?)",
                (con.operator, con.host, os.getpid(), action or con.action,
                 json.dumps(detail, sort_keys=True, default=str) if detail else None),
            )
        yield con
    except BaseException:
        con.in_transaction = False
        con.audit_id = None
        try:
            con.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection may be gone (server restart): report the cause
            pass
        raise
    con.in_transaction = False
    con.audit_id = None
    con.execute("COMMIT")


def retrying(fn: Callable[[], Any], attempts: int = 8) -> Any:
    """Run `fn` (a whole write operation), again after a serialization failure, deadlock or lock
    timeout: its transaction rolled back, so nothing of the failed attempt remains."""
    from sqlalchemy.exc import DBAPIError

    for attempt in range(attempts):
        try:
            return fn()
        except DBAPIError as exc:
            if not is_lock_error(exc) or attempt == attempts - 1:
                raise
            time.sleep(_backoff(attempt))
    raise AssertionError("unreachable")


def upsert_sql(table: str, columns: list[str] | tuple[str, ...], key: tuple[str, ...], touch: str = "") -> str:
    """`INSERT ... ON CONFLICT (key) DO UPDATE SET` every other column: what INSERT OR REPLACE did, on
    SQLite and PostgreSQL alike (the row keeps its id; `touch` names a timestamp column to renew from
    its default: `excluded` carries the defaults on both)."""
    sets = [f"{c}=excluded.{c}" for c in (*columns, *([touch] if touch else [])) if c not in key]
    return (
        f"INSERT INTO {table}({', '.join(columns)}) VALUES ({','.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(sets)}"
    )


# ---- schema -------------------------------------------------------------------------------------


def _tables(dialect: str):
    """The current schema (SCHEMA_VERSION) as SQLAlchemy tables, for `dialect`'s server defaults."""
    import sqlalchemy as sa

    md = sa.MetaData()
    now = sa.text(_NOW[dialect])
    pk = functools.partial(sa.Column, "id", sa.Integer, primary_key=True)
    T, F, I, B = sa.Text, sa.Float, sa.Integer, sa.LargeBinary  # noqa: E741, N806

    def fk(name, target, **kw):
        return sa.Column(name, I, sa.ForeignKey(target), **kw)

    def created(name="created"):
        return sa.Column(name, T, nullable=False, server_default=now)

    sa.Table("samples", md, pk(), sa.Column("name", T, nullable=False, unique=True), sa.Column("notes", T),
             created())
    sa.Table("designs", md, pk(), sa.Column("hash", T, nullable=False, unique=True), sa.Column("name", T),
             sa.Column("yaml", T, nullable=False), created(), sa.Column("film_thickness_nm", F))
    sa.Table("runs", md, pk(), fk("sample_id", "samples.id", nullable=False), fk("design_id", "designs.id"),
             sa.Column("plan_hash", T), sa.Column("journal_path", T), sa.Column("journal_sha256", T, unique=True),
             sa.Column("started", T), sa.Column("header_json", T), sa.Column("n_fired", I), created("imported"))
    statuses = ",".join(f"'{s}'" for s in STATUSES)
    sa.Table("discs", md, pk(), fk("sample_id", "samples.id", nullable=False),
             sa.Column("disc_id", T, nullable=False), sa.Column("array_id", T), fk("design_id", "designs.id"),
             fk("run_id", "runs.id"), sa.Column("diameter_um", F), sa.Column("fluence_mj_cm2", F),
             sa.Column("pulses", I), sa.Column("x_um", F), sa.Column("y_um", F),
             sa.Column("known", I, nullable=False, server_default=sa.text("1")), sa.Column("fab_state", T),
             sa.Column("energy_uj", F),
             sa.Column("status", T, sa.CheckConstraint(f"status IN ({statuses})"), nullable=False,
                       server_default=sa.text("'untested'")),
             sa.Column("status_manual", I, nullable=False, server_default=sa.text("0")),
             sa.Column("status_audit_id", I),
             sa.UniqueConstraint("sample_id", "disc_id"), sa.Index("discs_disc_id", "disc_id"))
    sa.Table("series", md, pk(), fk("disc_pk", "discs.id", nullable=False), created(),
             *(sa.Column(c, F) for c in ("pump_wavelength_nm", "pulse_width_fs", "rep_rate_hz", "spot_fwhm_um")),
             sa.Column("operator", T), sa.Column("notes", T), sa.Column("resolution_nm", F),
             sa.Column("audit_id", I), sa.Column("fluence_definition", T), sa.Index("series_disc", "disc_pk"))
    sa.Table("axes", md, pk(), sa.Column("sha1", T, nullable=False, unique=True), sa.Column("n", I, nullable=False),
             sa.Column("wavelength_nm", B, nullable=False))
    sa.Table("spectra", md, pk(), fk("series_id", "series.id", nullable=False),
             sa.Column("fluence_uj_cm2", F, nullable=False), fk("axis_id", "axes.id", nullable=False),
             sa.Column("counts", B, nullable=False), sa.Column("integration_s", F), sa.Column("source_file", T),
             created("acquired"), sa.Column("integrated", F), sa.Column("peak_nm", F), sa.Column("fwhm_nm", F),
             sa.Column("audit_id", I), sa.Column("exposure_s", F), sa.Column("accumulations", I),
             sa.Index("spectra_series", "series_id"))
    sa.Table("fits", md, pk(), fk("series_id", "series.id", nullable=False), sa.Column("method", T, nullable=False),
             sa.Column("has_threshold", I, nullable=False), sa.Column("flag", T),
             *(sa.Column(c, F) for c in ("threshold_uj_cm2", "threshold_lo", "threshold_hi", "slope_efficiency",
                                         "beta")),
             sa.Column("params_json", T), created(), sa.Column("audit_id", I),
             sa.UniqueConstraint("series_id", "method"))
    sa.Table("spectral", md,
             sa.Column("series_id", I, sa.ForeignKey("series.id"), primary_key=True, autoincrement=False),
             sa.Column("linewidth_nm", F), sa.Column("linewidth_err_nm", F), sa.Column("resolution_limited", I),
             sa.Column("below_linewidth_nm", F), sa.Column("peak_nm", F), sa.Column("peaks_json", T),
             sa.Column("q", F), sa.Column("mode_spacing_nm", F), sa.Column("fsr_predicted_nm", F),
             sa.Column("fsr_source", T), sa.Column("window_lo_nm", F), sa.Column("window_hi_nm", F))
    _audit_table(md, dialect)
    return md


def _audit_table(md, dialect: str):
    import sqlalchemy as sa

    return sa.Table("audit", md, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("at", sa.Text, nullable=False, server_default=sa.text(_NOW[dialect])),
                    sa.Column("operator", sa.Text), sa.Column("host", sa.Text), sa.Column("pid", sa.Integer),
                    sa.Column("action", sa.Text, nullable=False), sa.Column("detail", sa.Text))


def _ddl(con: Connection, element) -> str:
    return str(element.compile(dialect=con.engine.dialect)).strip()


def _create(con: Connection, md) -> None:
    from sqlalchemy.schema import CreateIndex, CreateTable

    for t in md.sorted_tables:
        con.execute(_ddl(con, CreateTable(t)))
        for ix in sorted(t.indexes, key=lambda i: i.name):
            con.execute(_ddl(con, CreateIndex(ix)))


def add_column(con: Connection, table: str, column) -> None:
    """ALTER TABLE ... ADD COLUMN for a migration, the type rendered for this backend."""
    col_type = column.type.compile(dialect=con.engine.dialect)
    con.execute(f"ALTER TABLE {table} ADD COLUMN {column.name} {col_type}")


def _script(con: Connection, sql: str) -> None:
    for stmt in sql.split(";"):
        if stmt.strip():
            con.execute(stmt)


def _v1(con: Connection) -> None:
    """Released SQLite schema v1 (kept verbatim: old files replay it)."""
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


def _v2(con: Connection) -> None:
    """Per-spectrum derived scalars (cached by `fit`) and per-series spectral summary (SQLite)."""
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


def _v3(con: Connection) -> None:
    """Film thickness per design: the WGM prediction depends on it (slab effective index)."""
    con.execute("ALTER TABLE designs ADD COLUMN film_thickness_nm REAL")


def _v4(con: Connection) -> None:
    """Who did what: the audit table and the audit ids of series, spectra, fits and status changes."""
    import sqlalchemy as sa
    from sqlalchemy.schema import CreateTable

    con.execute(_ddl(con, CreateTable(_audit_table(sa.MetaData(), con.dialect))))
    for table, col in (("series", "audit_id"), ("spectra", "audit_id"), ("fits", "audit_id"),
                       ("discs", "status_audit_id")):
        add_column(con, table, sa.Column(col, sa.Integer))


def _v5(con: Connection) -> None:
    """How each spectrum was taken, as the camera file says: exposure of one accumulation and the number
    of accumulations (integration_s stays the total the counts integrate)."""
    import sqlalchemy as sa

    add_column(con, "spectra", sa.Column("exposure_s", sa.Float))
    add_column(con, "spectra", sa.Column("accumulations", sa.Integer))


_V5_STATUS_LIST = "'untested','lasing','ASE-only','dead','damaged'"


def _v6(con: Connection) -> None:
    """Disc status 'undetermined' allowed by discs' CHECK constraint.

    PostgreSQL: drop the status CHECK, add the wider one. SQLite cannot alter a CHECK: the table is
    rebuilt from its own stored CREATE statement (column order, defaults and other constraints kept;
    only the status list widened), inside the migration's transaction. foreign_keys is ON and cannot
    be switched off inside a transaction, so the FK checks are deferred to the commit and the rebuild
    goes: copy the rows aside, DROP discs (series rows now dangle: counted), CREATE the new discs,
    INSERT the rows back with the same ids (each resolves its series rows: count back to 0), recreate
    the indexes; `PRAGMA foreign_key_check` must then be empty, else the migration rolls back.
    """
    new_list = ",".join(f"'{s}'" for s in STATUSES)
    if con.dialect != "sqlite":
        rows = con.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'discs'::regclass AND contype = 'c'"
        ).fetchall()
        for name, definition in rows:
            if "status" in definition:
                con.execute(f'ALTER TABLE discs DROP CONSTRAINT "{name}"')
        con.execute(f"ALTER TABLE discs ADD CONSTRAINT discs_status_check CHECK (status IN ({new_list}))")
        return
    table_sql = con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='discs'").fetchone()[0]
    if table_sql.count(_V5_STATUS_LIST) != 1:
        raise UserError(f"{con.address}: unexpected discs table definition, cannot widen its status check")
    index_sql = [r[0] for r in con.execute(
        "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='discs' AND sql IS NOT NULL ORDER BY name"
    ).fetchall()]
    n_before = con.execute("SELECT count(*) FROM discs").fetchone()[0]
    bad_before = len(con.execute("PRAGMA foreign_key_check").fetchall())
    con.execute("PRAGMA defer_foreign_keys=ON")  # switches itself off at COMMIT/ROLLBACK
    con.execute("CREATE TEMP TABLE discs__v5 AS SELECT * FROM discs")
    con.execute("DROP TABLE discs")
    con.execute(table_sql.replace(_V5_STATUS_LIST, new_list))
    con.execute("INSERT INTO discs SELECT * FROM discs__v5")
    con.execute("DROP TABLE discs__v5")
    for sql in index_sql:
        con.execute(sql)
    n_after = con.execute("SELECT count(*) FROM discs").fetchone()[0]
    bad = len(con.execute("PRAGMA foreign_key_check").fetchall()) - bad_before
    if bad or n_after != n_before:
        raise UserError(f"{con.address}: schema v6 rebuild of discs failed its checks ({bad} new dangling "
                        f"references, {n_before} -> {n_after} discs); the logbook is unchanged")


def _v7(con: Connection) -> None:
    """What each series' pump fluences mean: 'peak' (of the Gaussian spot) or 'average' (energy over
    the spot area); NULL where the series did not say (issue 18, "Fluence definitions")."""
    import sqlalchemy as sa

    # Idempotent: a logbook created by this version's `_tables` and stamped older (tests do) has it.
    if "fluence_definition" not in {c["name"] for c in sa.inspect(con._c).get_columns("series")}:
        add_column(con, "series", sa.Column("fluence_definition", sa.Text))


MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]
SCHEMA_VERSION = len(MIGRATIONS)
FIRST_PG_VERSION = 4


def schema_version(con: Connection) -> int:
    if con.dialect == "sqlite":
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    if not con.execute("SELECT to_regclass('fabplan_schema')").fetchone()[0]:
        return 0
    row = con.execute("SELECT max(version) FROM fabplan_schema").fetchone()
    return int(row[0] or 0)


def _set_version(con: Connection, version: int) -> None:
    if con.dialect == "sqlite":
        con.execute(f"PRAGMA user_version={int(version)}")
        return
    con.execute("CREATE TABLE IF NOT EXISTS fabplan_schema (version INTEGER NOT NULL)")
    con.execute("DELETE FROM fabplan_schema")
    con.execute("INSERT INTO fabplan_schema(version) VALUES (?)", (version,))


def _has_tables(con: Connection) -> bool:
    import sqlalchemy as sa

    return "samples" in sa.inspect(con._c).get_table_names()


def migrate(con: Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; each step is its own transaction. Returns the version."""
    con.has_audit = False
    version = schema_version(con)  # the usual case, up to date: no writer lock (readers never queue)
    while version != SCHEMA_VERSION:
        with transaction(con, "migrate"):
            version = schema_version(con)
            if version > SCHEMA_VERSION:
                raise UserError(
                    f"lab database schema v{version} is newer than this fabplan (v{SCHEMA_VERSION}): "
                    "upgrade fabplan"
                )
            if version == SCHEMA_VERSION:  # another process migrated while this one waited
                break
            if version == 0 and not _has_tables(con):
                _create(con, _tables(con.dialect))  # a new logbook: the current schema at once
                version = SCHEMA_VERSION
            elif con.dialect != "sqlite" and version < FIRST_PG_VERSION:
                raise UserError(f"{redact(con.address)}: tables exist but no fabplan schema version: "
                                "not a fabplan logbook?")
            else:
                MIGRATIONS[version](con)
                version += 1
            _set_version(con, version)
    con.has_audit = True
    return SCHEMA_VERSION


# ---- arrays -------------------------------------------------------------------------------------


def to_blob(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def from_blob(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4")


def axis_id(con: Connection, wavelength_nm: np.ndarray | bytes, cache: dict | None = None) -> int:
    """Id of this wavelength axis, inserting it once (content-addressed by its float32 bytes)."""
    blob = wavelength_nm if isinstance(wavelength_nm, bytes) else to_blob(wavelength_nm)
    if cache is not None and blob in cache:
        return cache[blob]
    sha = hashlib.sha1(blob).hexdigest()
    con.execute(
        "INSERT INTO axes(sha1, n, wavelength_nm) VALUES (?,?,?) ON CONFLICT (sha1) DO NOTHING",
        (sha, len(blob) // 4, blob),
    )
    aid = int(con.execute("SELECT id FROM axes WHERE sha1=?", (sha,)).fetchone()[0])
    if cache is not None:
        cache[blob] = aid
    return aid


def load_axes(con: Connection) -> dict[int, np.ndarray]:
    return {int(r[0]): from_blob(r[1]) for r in con.execute("SELECT id, wavelength_nm FROM axes")}


# ---- samples ------------------------------------------------------------------------------------


def sample_id(con: Connection, name: str) -> int:
    """Id of sample `name`, created on first use."""
    row = con.execute("SELECT id FROM samples WHERE name=?", (name,)).fetchone()
    if row:
        return int(row[0])
    con.execute("INSERT INTO samples(name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,))
    return int(con.execute("SELECT id FROM samples WHERE name=?", (name,)).fetchone()[0])


# ---- moving a logbook ---------------------------------------------------------------------------

COPY_ORDER = ("audit", "samples", "designs", "runs", "discs", "series", "axes", "spectra", "fits", "spectral")


def copy_logbook(src: Connection, dst: Connection, batch: int = 1000,
                 progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every row of logbook `src` into the empty logbook `dst` (e.g. a lab's SQLite file into its
    new PostgreSQL server), ids kept so every reference stays valid; one transaction on `dst`."""
    if schema_version(src) != SCHEMA_VERSION or schema_version(dst) != SCHEMA_VERSION:
        raise UserError("both logbooks must be open (migrated) by this fabplan")
    counts: dict[str, int] = {}
    with transaction(dst, "copy", source=redact(src.address)):
        if dst.has_audit and dst.audit_id is not None:  # this copy's own audit row: keep it after the copied ones
            dst.execute("DELETE FROM audit WHERE id=?", (dst.audit_id,))
        for t in COPY_ORDER:
            n = dst.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            if n:
                raise UserError(f"{redact(dst.address)}: not empty (table {t} has {n} rows): copy into a new logbook")
        for t in COPY_ORDER:
            res = src.execute(f"SELECT * FROM {t}")
            rows = iter(res)
            cols = res._cls._keys if res._cls else ()
            sql = f"INSERT INTO {t}({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})"
            n = 0
            while True:
                chunk = [tuple(r) for r in itertools.islice(rows, batch)]
                if not chunk:
                    break
                dst.executemany(sql, chunk)
                n += len(chunk)
            counts[t] = n
            if progress:
                progress(t, n)
        if dst.dialect == "postgresql":  # ids were given explicitly: move each id sequence past them
            for t in COPY_ORDER:
                if t != "spectral":
                    dst.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                                f"coalesce((SELECT max(id) FROM {t}), 0) + 1, false)")
        dst.audit_id = dst.insert_id(
            "INSERT INTO audit(operator, host, pid, action, detail) VALUES (?,?,?,?,?)",
            (dst.operator, dst.host, os.getpid(), "copy",
             json.dumps({"source": redact(src.address), "rows": counts}, sort_keys=True)),
        )
    return counts
