"""`fabplan stage status URL` and `fabplan stage move URL X Y Z`: talk to a real or emulated controller."""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict

from fabplan.cli._output import print_json
from fabplan.errors import UserError
from fabplan.units import parse_kind


def _open(url: str, timeout_s: float, monitor: bool = False):
    """monitor: leave the controller's outputs alone (the XPS driver otherwise disables position
    compare and lowers the gate on connect, which would cut a run in progress short)."""
    from stage_drivers import DeviceError, open_stage

    try:
        stage = open_stage(url, timeout_s=timeout_s, connect=False)
        if monitor and hasattr(stage, "reset_on_connect"):
            stage.reset_on_connect = False
        return stage.connect()
    except DeviceError as exc:
        raise UserError(str(exc)) from exc


def _status(args) -> int:
    from stage_drivers import DeviceError

    stage = _open(args.url, args.timeout, monitor=True)
    try:
        with stage:
            st = stage.status()
            limits = {ax: [lim.min_um, lim.max_um] for ax, lim in stage.travel_limits().items()}
    except DeviceError as exc:
        raise UserError(str(exc)) from exc
    info = {"url": args.url, **asdict(st), "travel_limits_um": limits}
    if args.json:
        print_json(info)
    else:
        pos = ", ".join(f"{a}={v:.4f}" for a, v in zip(st.axes, st.position_um, strict=False))
        print(f"{args.url}: status {st.code} ({st.text})")
        print(f"  initialized={st.initialized} homed={st.homed} ready={st.ready} moving={st.moving} "
              f"fault={st.fault}")
        print(f"  position um: {pos}")
        for ax, (lo, hi) in limits.items():
            print(f"  {ax} travel: {lo:.3f} .. {hi:.3f} um")
    return 0


def move_target(tokens: list[str]) -> tuple[float, float, float | None]:
    """X Y [Z] in um from the command line's words: "100um 0 0", "100 um 0 0" (a unit on its own
    belongs to the number before it), "-5um 0", "0.1 mm" quoted.

    >>> move_target(["100", "mm", "-5um", "0"])
    (100000.0, -5.0, 0.0)
    """
    coords: list[str] = []
    for tok in tokens:
        if coords and not re.search(r"\d", tok):  # a bare unit word: "mm", "um", "µm"
            coords[-1] += f" {tok}"
        else:
            coords.append(tok)
    if len(coords) not in (2, 3):
        raise UserError(f"stage move: expected a target X Y [Z] (e.g. 100um 0 0, or 100 um 0 0), got "
                        f"{len(coords)} value(s): {' '.join(tokens)!r}")
    x, y, *rest = (parse_kind(c, "length_um") for c in coords)
    return x, y, (rest[0] if rest else None)


# "-5um", "-0.1 mm", "-1e3": negative targets are values, not options (no `--` needed)
_NEGATIVE_QUANTITY = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*[A-Za-zµμ]*$")


def _move(args) -> int:
    from stage_drivers import DeviceError, NotReadyError

    x, y, z = move_target(args.target)
    stage = _open(args.url, args.timeout)
    try:
        with stage:
            stage.check_limits(x, y, z)
            if args.home:
                stage.home()
            stage.move_to(x, y, z)
            pos = stage.position()
    except NotReadyError as exc:  # e.g. XPS -22 "Not allowed action" on a group that is not homed
        hint = "" if args.home else f"; if the stage is not homed: fabplan stage home {args.url} (or move --home)"
        raise UserError(f"{exc}{hint}") from exc
    except DeviceError as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print_json({"url": args.url, "target_um": [x, y, z], "position_um": list(pos)})
    else:
        print("position um: " + ", ".join(f"{v:.4f}" for v in pos))
    return 0


def _home(args) -> int:
    from stage_drivers import DeviceError

    stage = _open(args.url, args.timeout)
    try:
        with stage:
            stage.home()
            st = stage.status()
    except DeviceError as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print_json({"url": args.url, **asdict(st)})
    else:
        print(f"{args.url}: status {st.code} ({st.text})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stage", help="query or move a stage controller by URL",
                       description="URLs: xps://host:5001?group=XYZ, esp301:///dev/ttyUSB0?baud=19200, "
                                   "sim://lab (in-process emulator).")
    s = p.add_subparsers(dest="stage_cmd", metavar="ACTION", required=True)
    q = s.add_parser("status", help="group status, position and travel limits")
    q.add_argument("url")
    q.add_argument("--timeout", type=float, default=5.0, help="per-call timeout, s")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_status)
    q = s.add_parser("move", help="absolute move (limits checked before anything is sent)",
                     usage="fabplan stage move [-h] [--home] [--timeout TIMEOUT] [--json] url X Y [Z]")
    q.add_argument("url")
    q.add_argument("target", nargs="+", metavar="X Y [Z]",
                   help='target position, e.g. 100um 0 0, 100 um -5um 0, "0.1 mm" 0 (bare numbers are um)')
    # argparse reads "-5um" as an unknown option; this parser has no option that looks like a number
    q._negative_number_matcher = _NEGATIVE_QUANTITY
    q.add_argument("--home", action="store_true", help="initialise and home first if needed")
    q.add_argument("--timeout", type=float, default=5.0, help="per-call timeout, s")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_move)
    q = s.add_parser("home", help="initialise and home the stage if it is not already referenced")
    q.add_argument("url")
    q.add_argument("--timeout", type=float, default=5.0, help="per-call timeout, s")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_home)
