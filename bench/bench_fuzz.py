"""Soak the input-hardening of issue 13: mutation fuzzing of every input class a user hands fabplan.

For each class (design YAML, calibrate CSV, lab manifest, plan directory, journal) it mutates a valid
seed file N times (byte flips, cuts, inserted hostile fragments, huge fields, field replacements), feeds
each case to what the user's command calls, and classifies the outcome: accepted, user error (exit 2,
one located line), traceback (any other exception: a bug), or hang (over --timeout seconds). Prints
cases, tracebacks, hangs, worst time and worst traced memory per class, and the first tracebacks.

    .venv/bin/python bench/bench_fuzz.py                 # 300 cases per class
    .venv/bin/python bench/bench_fuzz.py --cases 3000    # the long soak

The test suite runs bounded hypothesis versions of the same generators (tests/test_fuzz_*.py,
tests/test_qa_plan_integrity.py, tests/test_qa_journal_trust.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import signal
import sys
import tempfile
import time
import traceback
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRAGMENTS = [
    "&a [*a]",
    "*nope",
    "!!python/object:os.system",
    "[" * 300,
    "{" * 80,
    "5e-324",
    "1e308",
    "-0",
    ".nan",
    "inf",
    "-inf",
    "1e20",
    "nan",
    "<<: {a: 1}",
    "x" * 100_000,
    "9" * 5000 + " um",
    "\t",
    "\x00",
    "\ufeff",
    "\xe9",
    ",",
    '"',
    "\n",
    "\r\n",
    "#",
    "-1",
    "1e400",
    "=cmd|' /C calc'!A0",
    "../../etc/passwd",
    "/etc/passwd",
    "{k: &b [1], c: *b}",
    "? [a]\n: b",
]


class Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise Hang()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random edits: flip, cut, insert a hostile fragment, duplicate or drop a line."""
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["flip", "cut", "insert", "insert", "dupline", "dropline", "latin1"])
        pos = rng.randrange(max(len(data), 1))
        if kind == "flip" and data:
            data = data[:pos] + bytes([rng.randrange(256)]) + data[pos + 1 :]
        elif kind == "cut":
            data = data[:pos]
        elif kind == "insert":
            frag = rng.choice(FRAGMENTS) * rng.choice([1, 1, 2, 10])
            data = data[:pos] + frag.encode("utf-8", "surrogatepass") + data[pos:]
        elif kind == "latin1":
            data = data[:pos] + b"\xe9\xff" + data[pos:]
        else:
            lines = data.split(b"\n")
            i = rng.randrange(len(lines))
            if kind == "dupline":
                lines.insert(i, lines[i])
            elif len(lines) > 1:
                del lines[i]
            data = b"\n".join(lines)
    return data


def _seeds(tmp: Path) -> dict:
    """Per class: (seed files {name: bytes}, the file to mutate, runner(dir) -> None or raise)."""
    from fabplan.beam.dose_csv import read_dose_csv
    from fabplan.design import loads_design
    from fabplan.execute.journal import Journal, read_journal
    from fabplan.lab.importer import read_manifest
    from fabplan.planning import build_plan
    from fabplan.planning.plan import Plan

    sys.path.insert(0, str(ROOT / "tests"))
    from exec_designs import lattice_design
    from test_fuzz_calibrate import GOOD as GOOD_DOSE_CSV

    def run_cli(*argv):
        from fabplan.cli import main
        from fabplan.errors import UserError

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(list(argv))
        text = err.getvalue()
        if code not in (0, 2, 4) or "Traceback" in text:
            raise RuntimeError(f"exit {code}: {text[:300]}")
        if code == 2:  # a user error: every line must be located (file:line: ...) or 'error: ...'
            lines = text.splitlines()
            if (
                not lines
                or not all(ln.startswith((str(Path(argv[-1]).parent), "error: ")) for ln in lines)
                or len(text) > 20_000
            ):
                raise RuntimeError(f"exit 2 without located lines: {text[:300]!r}")
            exc = UserError(text.strip())
            exc.problems = lines  # already checked: one located line per problem
            raise exc

    design = (ROOT / "designs" / "hex_sweep.yaml").read_bytes()
    dose = GOOD_DOSE_CSV.encode()  # the calibrate fuzz test's valid file: both mutate one seed
    manifest = b"disc_id,fluence_uj_cm2,spectrum,integration_s,resolution_nm\n" + b"".join(
        f"A-r00c{i:02d},{i + 1} uJ/cm^2,s{i}.csv,1,0.1\n".encode() for i in range(8)
    )
    plan = build_plan(loads_design(lattice_design("fz", "F", 3, 6, mode="fly")))
    pdir = plan.save(tmp / "plan_seed")
    jpath = tmp / "seed.jsonl"
    j = Journal.create(jpath, {"plan_hash": "abc", "n_shots": 18, "mode": "fly", "t": 1.0}, sync="none")
    j.write({"k": "session", "n": 0, "t": 1.0})
    for s in range(12):
        j.intent(s, f"F-r00c{s:02d}", 1.0 * s, 0.0, 0.0, 0.5, 1, t=1.0)
        if s < 10:
            j.fired(s, 1.0 * s, 0.0, 0.0, 0.5, t=1.0)
    j.write({"k": "end", "status": "stopped", "t": 1.0})
    j.close()

    import re

    unchained = re.sub(rb',"h":"[0-9a-f]{16}"\}', b"}", jpath.read_bytes())

    seed = (ROOT / "designs" / "seed_single_disc.yaml").read_text()
    seed_csv_design = seed.replace(
        "    lattice: square\n    pitch: 50 um\n    shape: [1, 1]\n", "    csv: pos.csv\n"
    ).encode()
    pos_csv = b"x_um,y_um,diameter_um,pulses\n" + b"".join(f"{40 * i},0,10,1\n".encode() for i in range(8))
    seed_profile_design = (
        seed.replace(
            "profile: {model: annular, inner_diameter: 10 um, outer_diameter: 16 um, na: 0.32}",
            "profile: {model: measured, csv: spot.csv}",
        )
        .replace("diameter: 10 um, fluence: 100 mJ/cm^2", "fluence: 100 mJ/cm^2")
        .encode()
    )
    spot_csv = b"r_um,intensity\n" + b"".join(
        f"{0.25 * i:.2f},{(0.25 * i) ** 2 * 2.718 ** (-((0.25 * i) ** 2) / 18):.5f}\n".encode()
        for i in range(60)
    )

    def read_all(d: Path) -> None:  # what resume, reports and the logbook read
        st = read_journal(d / "j.jsonl")
        st.counts(), st.disc_id, st.target_um, st.pulses

    def plan_runner(d: Path) -> None:
        Plan.load(d)

    return {
        "design YAML (fabplan validate)": (
            {"d.yaml": design},
            "d.yaml",
            lambda d: run_cli("validate", str(d / "d.yaml")),
        ),
        "calibrate CSV (fabplan calibrate)": ({"m.csv": dose}, "m.csv", lambda d: read_dose_csv(d / "m.csv")),
        "lab manifest (lab import, parse)": (
            {"man.csv": manifest},
            "man.csv",
            lambda d: read_manifest(d / "man.csv", "s"),
        ),
        "plan directory (run PLAN_DIR)": (
            {"plan.json": (pdir / "plan.json").read_bytes(), "shots.csv": (pdir / "shots.csv").read_bytes()},
            None,
            plan_runner,
        ),
        "disc CSV named by a design": (
            {"d.yaml": seed_csv_design, "pos.csv": pos_csv},
            "pos.csv",
            lambda d: run_cli("validate", str(d / "d.yaml")),
        ),
        "beam profile CSV named by a design": (
            {"d.yaml": seed_profile_design, "spot.csv": spot_csv},
            "spot.csv",
            lambda d: run_cli("validate", str(d / "d.yaml")),
        ),
        "journal (run --resume)": ({"j.jsonl": jpath.read_bytes()}, "j.jsonl", read_all),
        "journal, pre-chain format": ({"j.jsonl": unchained}, "j.jsonl", read_all),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=300, help="cases per input class")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds before a case counts as a hang")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--only", help="run only classes whose name contains this")
    ap.add_argument("--keep", metavar="DIR", help="copy every failing case here (for the regression corpus)")
    args = ap.parse_args()
    from fabplan.errors import UserError

    rng = random.Random(args.seed)
    signal.signal(signal.SIGALRM, _alarm)
    with tempfile.TemporaryDirectory(prefix="fabplan-fuzz-") as td:
        tmp = Path(td)
        classes = _seeds(tmp)
        print(f"bench_fuzz: {args.cases} cases per class, hang = over {args.timeout:g} s, seed {args.seed}")
        print(
            f"{'input class':<36} {'cases':>6} {'accepted':>8} {'user err':>8} {'tracebk':>7} {'hangs':>5} "
            f"{'worst s':>8} {'worst MB':>8}"
        )
        failures = []
        for name, (files, target, runner) in classes.items():
            if args.only and args.only not in name:
                continue
            counts = {"ok": 0, "user": 0, "tb": 0, "hang": 0}
            worst_t = worst_mb = 0.0
            for i in range(args.cases):
                d = tmp / f"case-{abs(hash(name)) % 1000}-{i}"
                d.mkdir()
                pick = target or rng.choice(sorted(files))
                for fname, data in files.items():
                    (d / fname).write_bytes(mutate(data, rng) if fname == pick else data)
                tracemalloc.start()
                t0 = time.perf_counter()
                signal.setitimer(signal.ITIMER_REAL, args.timeout)
                try:
                    runner(d)
                    counts["ok"] += 1
                except UserError as exc:
                    counts["user"] += 1
                    if "\n" in str(exc) and not hasattr(exc, "problems"):
                        counts["tb"] += 1
                        failures.append((name, i, f"multi-line user error: {str(exc)[:200]!r}"))
                except Hang:
                    counts["hang"] += 1
                    failures.append((name, i, "hang"))
                except Exception:  # a bug: what the user would see as a traceback
                    counts["tb"] += 1
                    failures.append((name, i, traceback.format_exc(limit=-3)))
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    dt = time.perf_counter() - t0
                    peak = tracemalloc.get_traced_memory()[1] / 2**20
                    tracemalloc.stop()
                if args.keep and failures and failures[-1][:2] == (name, i):
                    import shutil

                    shutil.copytree(
                        d, Path(args.keep) / f"{name.split()[0]}-{name.split()[1]}-{i}", dirs_exist_ok=True
                    )
                worst_t, worst_mb = max(worst_t, dt), max(worst_mb, peak)
                for f in d.iterdir():
                    if f.is_dir():
                        for g in f.iterdir():
                            g.unlink()
                        f.rmdir()
                    else:
                        f.unlink()
                d.rmdir()
            print(
                f"{name:<36} {args.cases:>6} {counts['ok']:>8} {counts['user']:>8} {counts['tb']:>7} "
                f"{counts['hang']:>5} {worst_t:>8.2f} {worst_mb:>8.1f}",
                flush=True,
            )
        for name, i, text in failures[:20]:
            print(f"\n--- {name} case {i}:\n{text}")
        print(json.dumps({"failures": len(failures)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
