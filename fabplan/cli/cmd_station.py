"""`fabplan station list|show|path`: the per-user station profiles (fabplan/station.py)."""

from __future__ import annotations

import argparse

from fabplan.cli._output import print_json

EXAMPLE = """\
# fabplan station profiles: `fabplan run DESIGN --station NAME` takes its devices from here.
# Environment variables override (FABPLAN_STAGE, FABPLAN_LASER, FABPLAN_JOURNAL_DIR, FABPLAN_DB).
# Never put passwords or tokens here (FABPLAN_XPS_PASSWORD, the devices ini, ~/.pgpass).
default = "xps-lab1"

[stations.xps-lab1]
stage = "xps://192.168.0.254:5001?group=XYZ"
laser = "pharos://192.168.0.20:20020"
journal_dir = "~/runs"
logbook = "lab.sqlite"
description = "femtosecond line 1"
"""


def _list(args) -> int:
    from fabplan.station import get_station, load_file

    path, doc = load_file()
    rows = [get_station(name) for name in sorted(doc["stations"])]
    if args.json:
        print_json({"file": str(path), "exists": path.is_file(), "default": doc["default"], "stations": rows})
        return 0
    if not rows:
        print(f"no stations yet: {path} {'has none' if path.is_file() else 'does not exist'} "
              "(`fabplan station path --example` prints a template)")
        return 0
    print(f"stations in {path}:")
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "*" if r["name"] == doc["default"] else " "
        print(f" {mark} {r['name']:<{width}}  stage {r['stage'] or '-'}  laser {r['laser'] or '-'}"
              + (f"  ({r['description']})" if r.get("description") else ""))
    return 0


def _show(args) -> int:
    from fabplan.station import get_station

    st = get_station(args.name)
    if args.json:
        print_json(st)
        return 0
    print(f"station {st['name']} ({st['file']})")
    for key in ("stage", "laser", "journal_dir", "logbook", "description"):
        src = st["sources"].get(key)
        print(f"  {key:<12} {st[key] if st[key] is not None else '-'}" + (f"   [{src}]" if src and src != "file" else ""))
    return 0


def _path(args) -> int:
    from fabplan.station import config_path

    if args.example:
        print(EXAMPLE, end="")
        return 0
    p = config_path()
    if args.json:
        print_json({"file": str(p), "exists": p.is_file()})
    else:
        print(p)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("station", help="named lab stations (stage/laser URLs, journal folder, logbook)",
                       description="Station profiles live in a per-user TOML file (`fabplan station path`); "
                       "`fabplan run DESIGN --station NAME` takes its devices and journal folder from there. "
                       "Environment variables override the file: FABPLAN_STAGE, FABPLAN_LASER, FABPLAN_JOURNAL_DIR, "
                       "FABPLAN_DB; FABPLAN_CONFIG names another file. Credentials never go in it.")
    ssub = p.add_subparsers(dest="station_command", metavar="SUBCOMMAND")
    ls = ssub.add_parser("list", help="list the stations")
    ls.add_argument("--json", action="store_true", help="print as JSON")
    ls.set_defaults(func=_list)
    sh = ssub.add_parser("show", help="one station's settings (after environment overrides)")
    sh.add_argument("name", nargs="?", help="station name (default: $FABPLAN_STATION, else the file's default)")
    sh.add_argument("--json", action="store_true", help="print as JSON")
    sh.set_defaults(func=_show)
    pa = ssub.add_parser("path", help="where the station file is (per-user config folder)")
    pa.add_argument("--example", action="store_true", help="print a template station file instead")
    pa.add_argument("--json", action="store_true", help="print as JSON")
    pa.set_defaults(func=_path)
