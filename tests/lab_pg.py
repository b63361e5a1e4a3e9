"""A throwaway PostgreSQL server for the logbook's tests (Debian's postgresql package, initdb'd into a
temporary folder, listening on a unix socket in that folder only: no TCP port, trust auth).

`.ci/run` starts one for the whole run and exports its URL as $FABPLAN_TEST_PG_URL; without that
variable the `pg_server` fixture starts its own (and stops it after the session). initdb refuses to
run as root, so as root the server runs as the `postgres` user the package creates.

    python tests/lab_pg.py start DIR   # prints the URL (server left running)
    python tests/lab_pg.py stop DIR
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ENV_URL = "FABPLAN_TEST_PG_URL"
SUPERUSER = "fabplan"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def start(folder: Path, durable: bool = False) -> str:
    """initdb + start a server in `folder`; returns its URL (database `postgres`).

    Tests run it with fsync off (a throwaway cluster); `durable` keeps PostgreSQL's defaults (fsync,
    synchronous commit) for benchmarks, as a lab's server would run."""
    bin_ = pg_bin()
    if bin_ is None:
        raise RuntimeError("no PostgreSQL binaries (apt-get install postgresql)")
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        folder.chmod(0o755)
    data = folder / "data"
    run = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    subprocess.run(
        _as_server_user([str(bin_ / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                         "-E", "UTF8", "--locale=C", "--no-sync"]),
        **run,
    )
    opts = f"-k {folder} -c listen_addresses='' -c max_connections=60" + ("" if durable else " -c fsync=off")
    subprocess.run(
        _as_server_user([str(bin_ / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(folder / "server.log"),
                         "-w", "-t", "60", "start"]),
        **run,
    )
    return f"postgresql://{SUPERUSER}@/postgres?host={folder}"


def stop(folder: Path) -> None:
    bin_ = pg_bin()
    if bin_ is not None and (folder / "data" / "postmaster.pid").exists():
        subprocess.run(_as_server_user([str(bin_ / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast",
                                        "-w", "stop"]), check=False, stdout=subprocess.DEVNULL)
    shutil.rmtree(folder, ignore_errors=True)


_counter = itertools.count()


def fresh_database(server_url: str) -> str:
    """A new empty database on the server; returns its URL."""
    import psycopg

    base, _, query = server_url.partition("?")
    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(_libpq(server_url), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def _libpq(url: str) -> str:
    """psycopg takes postgresql:// URLs itself; strip a SQLAlchemy driver suffix if any."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class Server:
    """The session's server: $FABPLAN_TEST_PG_URL, or one started here (stopped by `close`)."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.url = os.environ.get(ENV_URL, "")
        self.skip_reason = ""
        if self.url:
            return
        if pg_bin() is None:
            self.skip_reason = "no PostgreSQL binaries installed (apt-get install postgresql; .ci/run does)"
            return
        self.folder = Path(tempfile.mkdtemp(prefix="fabplan-pg-"))
        self.url = start(self.folder)

    def close(self) -> None:
        if self.folder is not None:
            stop(self.folder)


if __name__ == "__main__":
    action, where = sys.argv[1], Path(sys.argv[2])
    if action == "start":
        print(start(where))
    else:
        stop(where)


# ---- pytest fixtures (import them into a test module: `from tests.lab_pg import lab_url, pg_server`) ----

_server: Server | None = None


def server() -> Server:
    """One server per test process, stopped when the process exits."""
    global _server
    if _server is None:
        import atexit

        _server = Server()
        atexit.register(_server.close)
    return _server


try:
    import pytest
except ImportError:  # the start/stop command line does not need pytest
    pytest = None

if pytest is not None:

    @pytest.fixture
    def pg_url() -> str:
        """A fresh empty PostgreSQL database (skipped only when no PostgreSQL is installed at all)."""
        s = server()
        if s.skip_reason:
            pytest.skip(s.skip_reason)
        return fresh_database(s.url)

    @pytest.fixture(params=["sqlite", "postgresql"])
    def lab_url(request, tmp_path) -> str:
        """A new logbook address on each backend: a SQLite file, then a PostgreSQL database."""
        if request.param == "sqlite":
            return str(tmp_path / "lab.sqlite")
        return request.getfixturevalue("pg_url")
