"""Benchmark: driver + emulator round trips on loopback (XPS TCP, Pharos HTTP) and a pty (ESP301).

Prints per-case rates; the executor's step mode needs >= 2,000 shots/s (move + position + fire)
through the XPS driver and emulator with instant moves.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sim import start_lab
from sim.esp301_emulator import Esp301Emulator
from stage_drivers import MotionParams, open_laser, open_stage


def _rate(fn, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


def bench_xps(process: bool, n: int, repeat: int, tmp: Path) -> dict:
    with start_lab(tmp / f"p{int(process)}.csv", process=process, homed=True) as lab:
        with open_stage(lab.stage_url) as st, open_laser(lab.laser_url, stage=st) as laser:
            laser.arm()

            def cycle(k):
                for i in range(k):
                    st.move_to((i % 1000) * 10.0, 0.0, 0.0)
                    st.position()

            def shot(k):
                for i in range(k):
                    st.move_to((i % 1000) * 10.0, 0.0, 0.0)
                    st.position()
                    laser.fire(1)

            def status(k):
                for _ in range(k):
                    st.status_code()

            def shot5(k):
                for i in range(k):
                    st.move_to((i % 1000) * 10.0, 0.0, 0.0)
                    st.position()
                    laser.fire(5)  # five DOPulse triggers (one per pulse)

            def fly(rows, capture=True):
                st.capture = capture
                st.set_motion_params("X", MotionParams(10000.0, 200000.0))
                xs = [10.0 * i for i in range(500)]
                for r in range(rows):
                    st.move_to(-50.0, r * 10.0, 0.0)
                    laser.arm_line("X", xs)
                    st.move_to(5050.0, r * 10.0, 0.0)
                    laser.disarm_line()
                    st.captured_positions()

            return {"single call (GroupStatusGet)": _rate(status, n, repeat),
                    "move + position": _rate(cycle, n, repeat),
                    "move + position + fire (step shot)": _rate(shot, n, repeat),
                    "step shot of 5 pulses (5 triggers)": _rate(shot5, n // 4, repeat),
                    "fly: 500-shot PCO rows, capture": _rate(fly, max(n // 100, 5), repeat) * 500,
                    "fly: 500-shot PCO rows, no capture": _rate(lambda r: fly(r, False), max(n // 100, 5),
                                                                repeat) * 500}


def bench_esp(n: int, repeat: int) -> dict:
    with Esp301Emulator(speedup="inf") as emu, open_stage(emu.url) as st:
        st.home()

        def cycle(k):
            for i in range(k):
                st.move_to((i % 100) * 10.0, 0.0, 0.0)
                st.position()

        def single(k):
            for _ in range(k):
                st.query_float("1TP?")

        return {"single query (1TP?)": _rate(single, n, repeat), "move + position": _rate(cycle, n // 4, repeat)}


GUARDED_RUN = """
import sys, time
from stage_drivers import open_laser, open_stage
from stage_drivers.guardian import Guardian
st = open_stage(sys.argv[1]); laser = open_laser(sys.argv[2], stage=st)
with Guardian(sys.argv[1], sys.argv[2]):
    st.move_to(0.0, 0.0, 0.0); laser.arm(); st.arm_compare("X", [100.0, 200.0])
    print("armed", flush=True); time.sleep(600)
"""


def bench_guardian(trials: int, tmp: Path) -> list[float]:
    """ms from SIGKILL of an armed run process to gate low + compare off + output closed."""
    import os
    import signal
    import subprocess
    import sys

    out = []
    with start_lab(tmp / "g.csv", homed=True) as lab:
        for _ in range(trials):
            p = subprocess.Popen([sys.executable, "-c", GUARDED_RUN, lab.stage_url, lab.laser_url],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert p.stdout.readline().strip() == "armed"
            t0 = time.perf_counter()
            os.kill(p.pid, signal.SIGKILL)
            while (lab.xps.gpio_do & 1 or lab.laser.output_enabled
                   or any(q.pco_enabled for q in lab.xps.group.positioners)):
                if time.perf_counter() - t0 > 5:
                    break
                time.sleep(0.0005)
            out.append((time.perf_counter() - t0) * 1000)
            p.wait()
    return out


def bench_pulse_log(n: int, repeat: int, tmp: Path) -> float:
    """Single-pulse LaserModel.fire calls per second straight to the pulse log (one os.write each,
    O_APPEND, nothing buffered: every pulse survives a SIGKILL of the emulator)."""
    from sim.laser_model import LaserModel

    def fire(k):
        m = LaserModel(tmp / f"pl{time.perf_counter_ns()}.csv", output_enabled=True)
        m.gate = True
        for i in range(k):
            m.fire(i * 1e-3, 1.0, 2.0, 0.0, "gpio")
        m.log.close()

    return _rate(fire, n, repeat)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5000, help="cycles per measurement")
    ap.add_argument("--repeat", type=int, default=3, help="best of")
    ap.add_argument("--guardian-trials", type=int, default=10, help="SIGKILLs of a guarded run process")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for label, process in (("XPS, lab in-process (threads)", False), ("XPS, lab in a child process", True)):
            for case, rate in bench_xps(process, args.n, args.repeat, tmp).items():
                unit = "shots/s" if ("shot" in case or "fly" in case) else "cycles/s"
                print(f"{label:34s} {case:36s} {rate:10,.0f} {unit}")
        for case, rate in bench_esp(args.n, args.repeat).items():
            print(f"{'ESP301 on a pty':34s} {case:36s} {rate:10,.0f} cycles/s")
        print(f"{'pulse log (LaserModel alone)':34s} {'single-pulse fire, written per pulse':36s} "
              f"{bench_pulse_log(4 * args.n, args.repeat, tmp):10,.0f} pulses/s")
        ms = sorted(bench_guardian(args.guardian_trials, tmp))
        print(f"{'guardian':34s} {'SIGKILL -> all outputs safe':36s} median {ms[len(ms) // 2]:.1f} ms, "
              f"max {ms[-1]:.1f} ms ({len(ms)} kills)")


if __name__ == "__main__":
    main()
