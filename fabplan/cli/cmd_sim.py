"""`fabplan sim xps|esp301|pharos|lab`: run a device emulator standalone and print where it listens."""

from __future__ import annotations

import argparse
import sys

from fabplan.cli._output import print_json
from fabplan.errors import UserError


def _speedup(value: str) -> float:
    from sim.clock import parse_speedup

    try:
        return parse_speedup(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _faults(args):
    from sim.faults import FaultPlan

    try:
        return FaultPlan(args.fault)
    except ValueError as exc:
        raise UserError(f"--fault: {exc}") from exc


def _announce(args, info: dict, text: str) -> None:
    if args.json:
        print_json(info)
    else:
        print(text)
    sys.stdout.flush()


def _serve(emulators) -> int:
    from sim.lab import serve_forever

    try:
        serve_forever()
    finally:
        for e in emulators:
            e.close()
    return 0


def _xps(args) -> int:
    from sim.xps_emulator import XpsEmulator

    emu = XpsEmulator(port=args.port, group=args.group, speedup=args.speedup, pulse_log=args.pulse_log,
                      faults=_faults(args), seed=args.seed, initialized=args.homed).start()
    _announce(args, {"url": emu.url, "host": emu.host, "port": emu.port, "pulse_log": args.pulse_log},
              f"XPS emulator listening on {emu.host}:{emu.port}  ({emu.url})")
    return _serve([emu])


def _esp301(args) -> int:
    from sim.esp301_emulator import Esp301Emulator

    emu = Esp301Emulator(speedup=args.speedup, faults=_faults(args), seed=args.seed).start()
    _announce(args, {"url": emu.url, "device": emu.port}, f"ESP301 emulator on {emu.port}  ({emu.url})")
    return _serve([emu])


def _pharos(args) -> int:
    from sim.pharos_emulator import PharosEmulator

    emu = PharosEmulator(port=args.port, pulse_log=args.pulse_log, faults=_faults(args), seed=args.seed).start()
    _announce(args, {"url": emu.url, "host": emu.host, "port": emu.port},
              f"Pharos emulator listening on {emu.host}:{emu.port}  ({emu.url})")
    return _serve([emu])


def _lab(args) -> int:
    from sim.lab import serve_forever, start_lab

    faults = {k: v for k, v in (("xps", ",".join(args.xps_fault)), ("pharos", ",".join(args.pharos_fault))) if v}
    try:
        lab = start_lab(args.pulse_log, speedup=args.speedup, seed=args.seed, faults=faults, homed=args.homed)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    _announce(args, {"stage_url": lab.stage_url, "laser_url": lab.laser_url,
                     "pulse_log_path": str(lab.pulse_log_path)},
              f"stage {lab.stage_url}\nlaser {lab.laser_url}\npulse log {lab.pulse_log_path}")
    try:
        serve_forever()
    finally:
        lab.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="run a device emulator (XPS, ESP301, Pharos) standalone",
                       description="Run an emulator that speaks the real wire protocol; prints its address and "
                                   "serves until Ctrl-C / SIGTERM.")
    s = p.add_subparsers(dest="device", metavar="DEVICE", required=True)

    def common(q, port=True, log=True):
        if port:
            q.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
        if log:
            q.add_argument("--pulse-log", help="ground-truth pulse log (CSV, or JSONL if it ends .jsonl)")
        q.add_argument("--speedup", type=_speedup, default=1.0,
                       help="time acceleration factor, or 'inf' for instant moves (default 1 = real time)")
        q.add_argument("--fault", action="append", default=[], metavar="KIND[@K][:ARG]",
                       help="inject a fault: drop, garble, split, slow:S, following, limit, estop, interlock "
                            "at command K (repeatable)")
        q.add_argument("--seed", type=int, default=0, help="random seed of the noise models")
        q.add_argument("--json", action="store_true", help="print the address as JSON")

    q = s.add_parser("xps", help="Newport XPS emulator (TCP)")
    common(q)
    q.add_argument("--group", default="XYZ", help="group name (positioners GROUP.X, .Y, .Z)")
    q.add_argument("--homed", action="store_true", help="start initialised and homed")
    q.set_defaults(func=_xps)

    q = s.add_parser("esp301", help="Newport ESP301 emulator (pseudo-terminal)")
    common(q, port=False, log=False)
    q.set_defaults(func=_esp301)

    q = s.add_parser("pharos", help="Light Conversion Pharos REST emulator (HTTP)")
    common(q)
    q.set_defaults(func=_pharos)

    q = s.add_parser("lab", help="XPS + Pharos sharing one laser and pulse log")
    q.add_argument("--pulse-log")
    q.add_argument("--speedup", type=_speedup, default=float("inf"), help="default inf (instant moves)")
    q.add_argument("--xps-fault", action="append", default=[])
    q.add_argument("--pharos-fault", action="append", default=[])
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--homed", action="store_true")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_lab)
