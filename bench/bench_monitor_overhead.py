"""What an open monitor costs a run (issue 15 target: under 2 %), measured on the same dry run with
and without it.

The run is `fabplan dry-run designs/dense_cm2.yaml` (250,000 discs, the design bench/bench_exec.py
times; `--rows N` keeps the first N rows of its 500 x 500 lattice), started as a user starts it,
alternately without and with `--monitor`, each pair back to back in alternating order so both
members see the same machine load. While the monitor is up, a client looks at it:

    --client page     (default) what the page asks for: the event stream read continuously, plus
                      /api/state and /api/map/state every second
    --client browser  the real page in headless Chromium (Debian's chromium + chromium-driver)
    --client none     nobody looks

Pinning (default on a machine with 2+ CPUs; `--no-pin` to see without): the run's command is pinned
to CPU 0 in both arms, the monitor child to CPU 1 ($FABPLAN_MONITOR_CPUS, the knob a lab PC uses), and
this script with its client (or browser) to CPU 1 as well. Why: a dry run's driver and its in-process
emulators hand every call to each other; unpinned, the kernel spreads those threads over both cores and
each hand-off becomes a cross-core wake-up. Here that alone makes the same dry run 2.5x slower (20,000
fly shots: executor 1.4 s pinned, 3.5 s unpinned), and any other process busy on the second core
(a monitor, a browser, a `while :` loop) keeps the threads together and speeds the run up: the
unpinned comparison measures the scheduler, not the monitor.

Figures per run: the whole command's wall time (what the operator waits for), the executor's own
`duration_s`, the run process's own CPU (utime + stime from /proc/PID/stat, read while the exited
run is still a zombie, so its children are not in it) and the monitor child's CPU (its log line).

    python bench/bench_monitor_overhead.py [--rows 100] [--pairs 3] [--client page|browser|none] [--no-pin]
    python bench/bench_exec.py --monitor-pairs 3        # the same, from the executor bench
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


class PageClient:
    """What an open page asks for: the event stream, plus the state and the map every second."""

    def __init__(self, url: str):
        self.url = url
        self.stop = threading.Event()
        self.events = 0
        self.polls = 0
        self.final = False

    def start(self) -> None:
        threading.Thread(target=self._stream, daemon=True).start()
        threading.Thread(target=self._poll, daemon=True).start()

    def close(self) -> None:
        self.stop.set()

    def _stream(self) -> None:
        try:
            with urllib.request.urlopen(self.url + "api/events", timeout=60) as r:
                while not self.stop.is_set():
                    line = r.readline()
                    if not line:
                        return
                    if line.startswith(b"data: "):
                        self.events += 1
                        if b'"final": true' in line:  # as the page does: one last look at the map
                            self.final = True
                            with urllib.request.urlopen(self.url + "api/map/state", timeout=10) as m:
                                m.read()
                            return
        except OSError:
            return

    def _poll(self) -> None:
        while not self.stop.wait(1.0):
            try:
                for path in ("api/state", "api/map/state"):
                    with urllib.request.urlopen(self.url + path, timeout=10) as r:
                        r.read()
                self.polls += 1
            except OSError:
                return


class BrowserClient:
    """The page itself, in headless Chromium."""

    def __init__(self, url: str):
        from fabplan.monitor import browser

        self.driver = browser.chromium()
        self.driver.get(url)
        self.events = self.polls = None
        self.final = None

    def start(self) -> None:
        pass

    def close(self) -> None:
        try:
            self.final = "last state" in self.driver.find_element("id", "conn").text
        finally:
            self.driver.quit()


def run_once(design: Path, work: Path, label: str, monitor: bool, client: str, pin: bool = True) -> dict:
    journal = work / f"{label}.jsonl"
    cmd = [sys.executable, "-m", "fabplan", "dry-run", str(design), "--journal", str(journal), "--json"]
    if monitor:
        cmd += ["--monitor", "--monitor-port", "0"]
    out_f = (work / f"{label}.out").open("w+")
    t0 = time.perf_counter()
    env = dict(os.environ)
    if pin:
        env["FABPLAN_MONITOR_CPUS"] = "1"
    proc = subprocess.Popen(cmd, stdout=out_f, stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env=env,
                            preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pin else None)
    viewer = None
    err: list[str] = []
    for ln in proc.stderr:  # until the run closes stderr (exits)
        err.append(ln)
        if monitor and client != "none" and viewer is None and ln.startswith("monitor: "):
            viewer = (BrowserClient if client == "browser" else PageClient)(ln.split()[1])
            viewer.start()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: /proc/PID/stat readable
    wall = time.perf_counter() - t0
    exited_at = time.time()
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of proc(5))
    proc.wait()
    if viewer is not None:
        viewer.close()
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit {proc.returncode}: {''.join(err)[-2000:]}")
    out_f.seek(0)
    res = json.loads(out_f.read())
    mon_cpu = None
    log = journal.with_suffix(".log")
    if monitor and log.is_file():
        m = re.search(r"monitor cpu ([0-9.]+) s", log.read_text())
        mon_cpu = float(m.group(1)) if m else None
    start_s, end_s = phases(journal.with_suffix(".log"), exited_at)
    own_ms = [float(x) for x in re.findall(r"monitor (?:started beside the run|stopped) in ([0-9.]+) ms",
                                           journal.with_suffix(".log").read_text())] if monitor else []
    return {"label": label, "monitor": monitor, "wall_s": wall, "executor_s": res["duration_s"],
            "start_s": start_s, "end_s": end_s, "monitor_start_stop_ms": own_ms,
            "run_cpu_s": own, "monitor_cpu_s": mon_cpu, "shots": res.get("fired_this_session"),
            "events": getattr(viewer, "events", None), "polls": getattr(viewer, "polls", None),
            "final_seen": getattr(viewer, "final", None), "load": os.getloadavg()[0]}


def phases(log: Path, exited_at: float) -> tuple[float, float]:
    """From the run's log: plan logged -> run state running (the start), run state done -> process
    exit (the end). What a monitor adds to a run apart from sharing the machine is in these two."""
    from datetime import datetime

    stamps: dict[str, float] = {}
    for line in log.read_text().splitlines():
        key = ("plan" if ": journal " in line and "plan " in line else "running" if "-> running" in line
               else "done" if "running -> done" in line else None)
        if key and key not in stamps:
            stamps[key] = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return stamps["running"] - stamps["plan"], exited_at - stamps["done"]


def paired_summary(plain: list[float], mon: list[float], seed: int = 1) -> tuple[float, float, float]:
    """Median of the paired ratios (with - without) and a 90 % bootstrap interval for it."""
    import numpy as np

    r = np.asarray(mon) / np.asarray(plain) - 1
    rng = np.random.default_rng(seed)
    boots = np.median(rng.choice(r, size=(10_000, len(r)), replace=True), axis=1)
    return float(np.median(r)), float(np.percentile(boots, 5)), float(np.percentile(boots, 95))


def slice_design(work: Path, rows: int | None) -> Path:
    design = ROOT / "designs" / "dense_cm2.yaml"
    if not rows:
        return design
    import yaml

    doc = yaml.safe_load(design.read_text())
    doc["arrays"][0]["shape"][0] = rows
    out = work / "dense_slice.yaml"
    out.write_text(yaml.safe_dump(doc))
    return out


def overhead(rows: int | None, pairs: int, client: str = "page", work: Path | None = None,
             pin: bool | None = None) -> dict:
    """Alternating pairs; prints each run and the medians, returns the figures."""
    work = work or Path(tempfile.mkdtemp(prefix="bench-monov-"))
    if pin is None:
        pin = len(os.sched_getaffinity(0)) >= 2
    if pin:
        os.sched_setaffinity(0, {1})  # this script, its client threads and a browser it starts
    print(f"dense_cm2, {rows or 500} rows, {pairs} pairs, client {client}, "
          + ("run on CPU 0, monitor and client on CPU 1" if pin else "unpinned"), flush=True)
    design = slice_design(work, rows)
    runs = []
    for i in range(pairs):
        for mon in ((False, True) if i % 2 == 0 else (True, False)):
            r = run_once(design, work, f"run{i}-{'mon' if mon else 'plain'}", mon, client, pin)
            runs.append(r)
            extra = ""
            if mon:
                extra = (f", monitor CPU {r['monitor_cpu_s']} s, run's time starting/stopping it "
                         + "/".join(f"{x:.1f}" for x in r["monitor_start_stop_ms"]) + f" ms, client {client}: {r['events']} events, "
                         f"{r['polls']} polls, final state seen {r['final_seen']}")
            print(f"  {r['label']}: {r['shots']} shots, wall {r['wall_s']:.2f} s (start {r['start_s']:.3f} s, "
                  f"end {r['end_s']:.3f} s), executor {r['executor_s']:.2f} s, "
                  f"run CPU {r['run_cpu_s']:.2f} s{extra}, load {r['load']:.1f}", flush=True)
    out: dict = {"rows": rows or 500, "pairs": pairs, "client": client, "pinned": pin, "runs": runs}
    for key in ("wall_s", "executor_s", "run_cpu_s"):
        plain = [r[key] for r in runs if not r["monitor"]]
        mon = [r[key] for r in runs if r["monitor"]]
        paired = [m / p - 1 for p, m in zip(plain, mon, strict=True)]
        med, lo, hi = paired_summary(plain, mon)
        out[key] = {"median_without": statistics.median(plain), "median_with": statistics.median(mon),
                    "paired_median_percent": med * 100, "paired_90ci_percent": [lo * 100, hi * 100],
                    "paired_percent": [x * 100 for x in paired]}
        print(f"{key:>10}: median {statistics.median(plain):.2f} s without, {statistics.median(mon):.2f} s with; "
              f"paired median {med * 100:+.1f} % (90 % bootstrap {lo * 100:+.1f} .. {hi * 100:+.1f} %; pairs: "
              + ", ".join(f"{x * 100:+.1f}" for x in paired) + ")")
    for key in ("start_s", "end_s"):
        plain = [r[key] for r in runs if not r["monitor"]]
        mon = [r[key] for r in runs if r["monitor"]]
        out[key] = {"median_without": statistics.median(plain), "median_with": statistics.median(mon)}
        print(f"{key:>10}: median {statistics.median(plain):.3f} s without, {statistics.median(mon):.3f} s with "
              f"-> {statistics.median(mon) - statistics.median(plain):+.3f} s")
    starts = [r["monitor_start_stop_ms"][0] for r in runs if r["monitor"] and len(r["monitor_start_stop_ms"]) == 2]
    stops = [r["monitor_start_stop_ms"][1] for r in runs if r["monitor"] and len(r["monitor_start_stop_ms"]) == 2]
    if starts:
        out["run_time_on_monitor_ms"] = {"start_median": statistics.median(starts), "stop_median": statistics.median(stops)}
        print(f"the run's own time spent on its monitor (run log): start {statistics.median(starts):.1f} ms, "
              f"stop {statistics.median(stops):.1f} ms (medians)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, help="first ROWS rows of the 500 x 500 lattice (default: all)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--client", choices=("page", "browser", "none"), default="page")
    ap.add_argument("--no-pin", action="store_true", help="leave CPU placement to the scheduler (see above)")
    args = ap.parse_args()
    overhead(args.rows, args.pairs, args.client, pin=False if args.no_pin else None)


if __name__ == "__main__":
    main()
