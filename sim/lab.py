"""Start an emulated lab (XPS stage controller + Pharos laser sharing one laser model and pulse log).

    lab = start_lab(pulse_log="run/pulses.csv")          # in-process, instant moves
    lab = start_lab(pulse_log=..., process=True)         # child process: survives a SIGKILL of the caller
    lab.stage_url, lab.laser_url, lab.pulse_log_path; lab.close()

In process mode the child runs `python -m sim.lab --ready-json ...`, prints one JSON line with the
URLs once it listens, and serves until SIGTERM/SIGINT (or `lab.close()`); every pulse is on disk as it fires.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sim.faults import FaultPlan
from sim.laser_model import LaserModel
from sim.pharos_emulator import PharosEmulator
from sim.xps_emulator import XpsEmulator


@dataclass
class Lab:
    """Handle on a running emulated lab (in this process or a child)."""

    stage_url: str
    laser_url: str
    pulse_log_path: Path
    xps: XpsEmulator | None = None
    pharos: PharosEmulator | None = None
    laser: LaserModel | None = None
    process: subprocess.Popen | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else os.getpid()

    def inject(self, device: str, kind: str, at: int | None = None, arg: str = "") -> None:
        """Schedule a fault on 'xps' or 'pharos' (in-process labs only)."""
        emu = {"xps": self.xps, "pharos": self.pharos}[device]
        if emu is None:
            raise RuntimeError("inject() needs an in-process lab; pass faults= to start_lab instead")
        emu.inject(kind, at, arg)

    def flush(self) -> None:
        """Kept for callers that flush before reading: the pulse log is written per trigger call, unbuffered."""
        if self.laser is not None and self.laser.log is not None:
            self.laser.log.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
            if self.process.stdout is not None:
                self.process.stdout.close()
            return
        for emu in (self.xps, self.pharos):
            if emu is not None:
                emu.close()
        if self.laser is not None:
            self.laser.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_lab(pulse_log=None, *, speedup: float | str = math.inf, process: bool = False, faults: dict | None = None,
              seed: int = 0, group: str = "XYZ", travel_mm: dict | None = None,
              max_pulse_energy_uj: float = 10.0, laser_base_rate_hz: float = 200e3, homed: bool = False,
              rep_rate_hz: float = 0.0, startup_timeout_s: float = 20.0) -> Lab:
    """Start the XPS and Pharos emulators on 127.0.0.1 (free ports) sharing one laser and pulse log.

    rep_rate_hz: the pulse picker divides the amplifier (laser_base_rate_hz) down to this output rate
    (a design's repetition_rate; 0: the amplifier's own rate), as the laser reports it and fires.

    faults: {"xps": "drop@12,slow@20:3", "pharos": "interlock@5"} (see sim.faults).
    homed=True starts the group already initialised and homed (status 11).
    """
    path = (Path(pulse_log) if pulse_log else Path(tempfile.mkdtemp(prefix="fabplan-lab-")) / "pulses.csv").resolve()
    faults = faults or {}
    if process:
        cmd = [sys.executable, "-m", "sim.lab", "--ready-json", "--pulse-log", str(path), "--speedup", str(speedup),
               "--seed", str(seed), "--group", group, "--max-pulse-energy", str(max_pulse_energy_uj),
               "--base-rate", str(laser_base_rate_hz), "--rep-rate", str(rep_rate_hz)]
        if homed:
            cmd.append("--homed")
        for dev, spec in faults.items():
            cmd += [f"--{dev}-fault", spec]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True,
                                cwd=str(Path(__file__).resolve().parent.parent))
        line = _readline_with_timeout(proc, startup_timeout_s)
        info = json.loads(line)
        return Lab(info["stage_url"], info["laser_url"], Path(info["pulse_log_path"]), process=proc)
    laser = LaserModel(path, max_pulse_energy_uj=max_pulse_energy_uj, base_rate_hz=laser_base_rate_hz, seed=seed)
    laser.set_output_rate(rep_rate_hz)  # before any emulator listens: a bad rate starts nothing
    xps = XpsEmulator(group=group, speedup=speedup, laser=laser, faults=FaultPlan(faults.get("xps")), seed=seed,
                      travel_mm=travel_mm, initialized=homed).start()
    pharos = PharosEmulator(laser=laser, faults=FaultPlan(faults.get("pharos"))).start()
    return Lab(xps.url, pharos.url, path, xps=xps, pharos=pharos, laser=laser)


def _readline_with_timeout(proc: subprocess.Popen, timeout_s: float) -> str:
    box: list[str] = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(timeout_s)
    if not box or not box[0].strip():
        proc.kill()
        proc.wait(timeout=5)
        raise RuntimeError(f"emulated lab did not start within {timeout_s} s (exit code {proc.returncode})")
    return box[0]


# ---------------------------------------------------------------------- sim:// URLs

_LABS: dict[str, Lab] = {}
_LABS_LOCK = threading.Lock()


def _lab_key(u) -> str:
    return (u.host or "default") + "?" + "&".join(f"{k}={v}" for k, v in sorted(u.params.items()))


def lab_for_url(u) -> Lab:
    """The in-process lab named by a sim:// URL (started on first use, shared by stage and laser).

    It lives until `close_lab_for_url` / `close_all_labs` (a run closes its own when it ends) or,
    at the latest, interpreter exit, which closes every lab still open so its pulse log is complete."""
    key = _lab_key(u)
    with _LABS_LOCK:
        if not _LABS:
            _register_atexit()
        lab = _LABS.get(key)
        if lab is None or lab._closed:
            p = u.params
            energy = u.float_param("max_pulse_energy", 10.0)  # uJ at 100 %
            rate = u.float_param("rep_rate", 0.0)  # Hz the pulse picker delivers; 0: the amplifier's rate
            if not (energy > 0 and rate >= 0):
                from stage_drivers.urls import DeviceUrlError

                raise DeviceUrlError("max_pulse_energy (uJ) and rep_rate (Hz) must be positive", device=u.raw)
            lab = start_lab(p.get("pulse_log"), speedup=p.get("speedup", "inf"), seed=int(p.get("seed", 0)),
                            homed=p.get("homed", "0") in ("1", "true", "yes"), max_pulse_energy_uj=energy,
                            # the picker divides the amplifier down to the asked rate (an amplifier at
                            # least that fast: a 1 MHz design gets a 1 MHz amplifier, not an error)
                            rep_rate_hz=rate, laser_base_rate_hz=max(200e3, rate),
                            faults={k: v for k, v in (("xps", p.get("xps_fault")), ("pharos", p.get("pharos_fault")))
                                    if v})
            _LABS[key] = lab
        return lab


def close_lab_for_url(url) -> bool:
    """Close (and flush the pulse log of) the in-process lab a sim:// URL names, if one is running.

    Accepts a URL string or a parsed DeviceUrl; anything that is not sim:// is ignored. Returns
    whether a lab was closed."""
    if isinstance(url, str):
        if not url.removeprefix("spy+").lower().startswith("sim://"):
            return False
        from stage_drivers.urls import parse_device_url

        url = parse_device_url(url)
    if getattr(url, "scheme", None) != "sim":
        return False
    with _LABS_LOCK:
        lab = _LABS.pop(_lab_key(url), None)
    if lab is None:
        return False
    lab.close()
    return True


def close_all_labs() -> None:
    with _LABS_LOCK:
        labs = list(_LABS.values())
        _LABS.clear()
    for lab in labs:
        lab.close()


_ATEXIT_REGISTERED = False


def _register_atexit() -> None:
    global _ATEXIT_REGISTERED
    if not _ATEXIT_REGISTERED:
        import atexit

        atexit.register(close_all_labs)
        _ATEXIT_REGISTERED = True


# ---------------------------------------------------------------------- standalone process


def serve_forever(stop: threading.Event | None = None) -> threading.Event:
    """Block until SIGTERM/SIGINT (or `stop` is set)."""
    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    return stop


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.lab", description="Run an emulated XPS + Pharos lab.")
    ap.add_argument("--pulse-log")
    ap.add_argument("--speedup", default="inf")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--group", default="XYZ")
    ap.add_argument("--max-pulse-energy", type=float, default=10.0)
    ap.add_argument("--base-rate", type=float, default=200e3)
    ap.add_argument("--rep-rate", type=float, default=0.0, help="output rate (Hz) the pulse picker gives; 0: base rate")
    ap.add_argument("--homed", action="store_true")
    ap.add_argument("--xps-fault", action="append", default=[])
    ap.add_argument("--pharos-fault", action="append", default=[])
    ap.add_argument("--ready-json", action="store_true", help="print one JSON line with the URLs when ready")
    args = ap.parse_args(argv)
    faults = {k: ",".join(v) for k, v in (("xps", args.xps_fault), ("pharos", args.pharos_fault)) if v}
    lab = start_lab(args.pulse_log, speedup=args.speedup, seed=args.seed, group=args.group, faults=faults,
                    max_pulse_energy_uj=args.max_pulse_energy, laser_base_rate_hz=args.base_rate, homed=args.homed,
                    rep_rate_hz=args.rep_rate)
    info = {"stage_url": lab.stage_url, "laser_url": lab.laser_url, "pulse_log_path": str(lab.pulse_log_path),
            "pid": os.getpid()}
    print(json.dumps(info) if args.ready_json else
          f"stage {lab.stage_url}\nlaser {lab.laser_url}\npulse log {lab.pulse_log_path}", flush=True)
    try:
        serve_forever()
    finally:
        lab.close()
    return 0


__all__ = ["Lab", "close_all_labs", "close_lab_for_url", "lab_for_url", "start_lab"]

if __name__ == "__main__":
    sys.exit(main())
