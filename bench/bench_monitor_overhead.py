"""Monitor overhead as the run's own CPU time (issue 15), robust to wall-clock noise on a shared machine.

`fabplan dry-run` of a slice of designs/dense_cm2.yaml (the first ROWS rows of its lattice, step mode),
alternately without and with `--monitor` (a client polls /api/state every 0.5 s while the run lasts).
The monitor is a child process of the run; the figure compared is the run process's own user + sys CPU,
read from /proc/PID/stat (utime + stime: its own threads only, not its reaped children) while the
finished run is still a zombie (waitid WNOWAIT), so the monitor's CPU is not counted in it. The
monitor's CPU (the run's cutime + cstime, its reaped children) is printed beside it.

    python bench/bench_monitor_overhead.py [--rows 100] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def poll_state(url: str, stop: threading.Event, counter: list[int]) -> None:
    while not stop.wait(0.5):
        try:
            with urllib.request.urlopen(url + "api/state", timeout=10) as r:
                r.read()
            counter[0] += 1
        except OSError:
            pass


def run_once(design: Path, work: Path, label: str, monitor: bool) -> dict:
    journal = work / f"{label}.jsonl"
    cmd = [sys.executable, "-m", "fabplan", "dry-run", str(design), "--journal", str(journal), "--json"]
    if monitor:
        cmd += ["--monitor", "--monitor-port", "0"]
    out_f = (work / f"{label}.out").open("w+")
    proc = subprocess.Popen(cmd, stdout=out_f, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
    stop = threading.Event()
    polls = [0]
    t0 = time.perf_counter()
    err: list[str] = []
    for ln in proc.stderr:  # until the run closes stderr (exits)
        err.append(ln)
        if monitor and ln.startswith("monitor: "):
            threading.Thread(target=poll_state, args=(ln.split()[1], stop, polls), daemon=True).start()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: /proc/PID/stat readable
    wall = time.perf_counter() - t0
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)
    kids = (int(fields[13]) + int(fields[14])) / TICK  # cutime, cstime: the monitor child
    proc.wait()
    stop.set()
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit {proc.returncode}: {''.join(err)[-2000:]}")
    out_f.seek(0)
    res = json.loads(out_f.read())
    return {"label": label, "monitor": monitor, "run_cpu_s": own, "children_cpu_s": kids, "wall_s": wall,
            "shots": res.get("fired_this_session"), "polls": polls[0], "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100, help="first ROWS rows of the 500 x 500 lattice")
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-monov-"))
    doc = yaml.safe_load((ROOT / "designs" / "dense_cm2.yaml").read_text())
    doc["arrays"][0]["shape"][0] = args.rows
    design = work / "dense_slice.yaml"
    design.write_text(yaml.safe_dump(doc))
    runs = []
    for i in range(args.pairs):
        for mon in ((False, True) if i % 2 == 0 else (True, False)):
            r = run_once(design, work, f"run{i}-{'mon' if mon else 'plain'}", mon)
            runs.append(r)
            print(f"  {r['label']}: {r['shots']} shots, run CPU {r['run_cpu_s']:.2f} s (user+sys, own), "
                  f"children (monitor) {r['children_cpu_s']:.2f} s, wall {r['wall_s']:.1f} s, "
                  f"polls {r['polls']}, load {r['load']:.1f}", flush=True)
    plain = [r["run_cpu_s"] for r in runs if not r["monitor"]]
    mon = [r["run_cpu_s"] for r in runs if r["monitor"]]
    pairs = [m / p - 1 for p, m in zip(plain, mon, strict=True)]
    print("paired run-CPU overheads: " + ", ".join(f"{x * 100:+.1f} %" for x in pairs))
    print(f"run CPU median {statistics.median(plain):.2f} s without, {statistics.median(mon):.2f} s with -> "
          f"{(statistics.median(mon) / statistics.median(plain) - 1) * 100:+.1f} %")


if __name__ == "__main__":
    main()
