"""`fabplan designs`: list, locate and copy the example designs that ship with fabplan."""

from __future__ import annotations

import argparse


def _list(args: argparse.Namespace) -> int:
    from fabplan.shipped import describe, designs_dir, shipped_designs

    paths = shipped_designs()
    if args.json:
        from fabplan.cli._output import print_json

        print_json({"folder": str(designs_dir()),
                    "designs": [{"name": p.stem, "path": str(p), "about": describe(p)} for p in paths]})
        return 0
    print(f"shipped designs in {designs_dir()}:")
    width = max(len(p.stem) for p in paths)
    for p in paths:
        about = describe(p)
        print(f"  {p.stem:<{width}}  {about[:100] + ('...' if len(about) > 100 else '')}")
    print("copy them to edit: fabplan designs copy [NAME ...] --to DIR")
    return 0


def _path(args: argparse.Namespace) -> int:
    from fabplan.shipped import designs_dir, shipped_design

    print(shipped_design(args.name) if args.name else designs_dir())
    return 0


def _copy(args: argparse.Namespace) -> int:
    from fabplan.shipped import copy_designs

    for written in copy_designs(args.to, args.names or None, overwrite=args.force):
        print(f"written: {written}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "designs",
        help="list, locate or copy the example designs shipped with fabplan",
        description="The example designs ship inside the package, so they work from any folder after "
        "`pip install`. Without a sub-command: list them.",
    )
    p.add_argument("--json", action="store_true", help="list as JSON")
    p.set_defaults(func=_list)
    s = p.add_subparsers(dest="designs_command", metavar="SUBCOMMAND")
    ls = s.add_parser("list", help="name and description of every shipped design (the default)")
    ls.add_argument("--json", action="store_true", help="list as JSON")
    ls.set_defaults(func=_list)
    pa = s.add_parser("path", help="print the path of a shipped design (or of their folder)")
    pa.add_argument("name", nargs="?", help="design name, e.g. hex_sweep (default: print the folder)")
    pa.set_defaults(func=_path)
    cp = s.add_parser(
        "copy",
        help="copy shipped designs (all by default) and their JSON Schema into a folder to edit",
        description="Copy shipped designs and fabplan-design.schema.json (editors validate against it) into "
        "DIR; an existing file is never overwritten without --force.",
    )
    cp.add_argument("names", nargs="*", metavar="NAME", help="designs to copy (default: all)")
    cp.add_argument("--to", default="designs", metavar="DIR", help="destination folder (default: ./designs)")
    cp.add_argument("--force", action="store_true", help="overwrite files that already exist")
    cp.set_defaults(func=_copy)
