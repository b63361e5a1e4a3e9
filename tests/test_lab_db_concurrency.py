"""Many writers at once: processes standing for two hosts (two fabrication setups' worth of lab
commands each) import, add, fit and set status on one logbook, SQLite file or PostgreSQL server.
Nothing is lost, nothing fails with a lock error, and the audit says which host/process did what."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from fabplan.lab import open_db
from fabplan.lab.simulate import simulate_series
from tests import lab_pg

lab_url, pg_url = lab_pg.lab_url, lab_pg.pg_url  # fixtures: SQLite file, PostgreSQL database

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = 2

# One writer: ROUNDS x (import a manifest as a new sample, add single spectra to a disc every writer
# shares, fit the new sample, set the shared disc's status by hand), all through the CLI entry point.
WRITER = textwrap.dedent("""
    import sys
    from fabplan.cli import main
    url, manifest, spectrum, me = sys.argv[1:5]
    def ok(*argv):
        rc = main([*argv, "--db", url])
        assert rc == 0, (argv, rc)
    for k in range(ROUNDS):
        ok("lab", "import", manifest, "--sample", f"{me}-{k}", "--allow-unknown")
        for f in (5, 10, 20):
            ok("lab", "add", "--disc", "Z-r00c00", "--fluence", str(f), "--spectrum", spectrum,
               "--sample", "shared", "--allow-unknown")
        ok("lab", "fit", "--sample", f"{me}-{k}", "--json")
        ok("lab", "set-status", "Z-r00c00", "dead" if k % 2 else "lasing", "--sample", "shared")
""").replace("ROUNDS", str(ROUNDS))


def test_two_hosts_many_writers_lose_nothing(tmp_path, lab_url):
    writers = [("hostA", 0), ("hostA", 1), ("hostB", 0), ("hostB", 1)]
    manifests = {}
    for host, n in writers:
        discs = [(f"{host[-1]}{n}-r00c{i:02d}", 10.0) for i in range(3)]
        manifests[(host, n)] = simulate_series(
            discs, tmp_path / f"{host}{n}", np.linspace(2, 60, 8), seed=n, dead_fraction=0
        )
    spectrum = next(p for p in (tmp_path / "hostA0").rglob("*.csv") if p.name != "manifest.csv")
    open_db(lab_url).close()  # created once; every writer then opens an up-to-date logbook
    procs = []
    for host, n in writers:
        env = {**os.environ, "FABPLAN_HOST": host, "FABPLAN_OPERATOR": f"op{n}", "MPLBACKEND": "Agg"}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WRITER, lab_url, str(manifests[(host, n)]), str(spectrum), f"{host}{n}"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        ))
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(writers), errors
    assert not any("locked" in e or "Traceback" in e for e in errors), errors

    con = open_db(lab_url)
    count = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("spectra", "series", "samples")}
    n_w = len(writers)
    assert count["spectra"] == n_w * ROUNDS * (3 * 8 + 3)  # every imported and every added spectrum
    assert count["samples"] == n_w * ROUNDS + 1  # one per import, plus "shared"
    # The shared disc: one series (adds join the latest), its first add created it.
    shared = con.execute(
        """SELECT count(DISTINCT s.id), count(x.id) FROM discs d JOIN samples sm ON sm.id = d.sample_id
           JOIN series s ON s.disc_pk = d.id JOIN spectra x ON x.series_id = s.id WHERE sm.name = 'shared'"""
    ).fetchone()
    assert tuple(shared) == (1, n_w * ROUNDS * 3)
    assert count["series"] == n_w * ROUNDS * 3 + 1
    # Every imported series fitted (the shared disc's series is never fitted here).
    assert con.execute("SELECT count(DISTINCT series_id) FROM fits").fetchone()[0] == count["series"] - 1
    # Who did what: each writer's commands, in its own name and host.
    audit = [dict(r) for r in con.execute("SELECT operator, host, pid, action, detail FROM audit")]
    for host, n in writers:
        mine = [a for a in audit if a["host"] == host and a["operator"] == f"op{n}"]
        acts = [a["action"] for a in mine]
        assert acts.count("import") == ROUNDS and acts.count("add spectrum") == 3 * ROUNDS
        assert acts.count("set-status") == ROUNDS and acts.count("fit") >= ROUNDS
        assert len({a["pid"] for a in mine}) == 1
    last = con.execute(
        """SELECT a.operator, a.host, a.detail, d.status FROM discs d JOIN audit a ON a.id = d.status_audit_id
           JOIN samples sm ON sm.id = d.sample_id WHERE sm.name = 'shared'"""
    ).fetchone()
    assert json.loads(last["detail"])["status"] == last["status"]  # the status is the last writer's
