"""`fabplan demo`: validate, plan, preview, dry-run, simulated lasing, logbook, fits and report."""

from __future__ import annotations

import argparse


def _demo(args: argparse.Namespace) -> int:
    from fabplan.cli._output import print_json
    from fabplan.demo import run_demo

    if args.json:  # stdout carries the JSON document only; the step-by-step log goes to stderr
        import contextlib
        import sys

        with contextlib.redirect_stdout(sys.stderr):
            result = run_demo(args.out, args.design)
    else:
        result = run_demo(args.out, args.design)
    if args.json:
        print_json({"artefacts": result.artefacts, **result.summary})
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole experiment on emulators: design to lasing report",
        description="Validate, plan and preview a design (by default the paper's 10 um disc among 6-14 um discs, "
        "designs/demo_array.yaml, shipped with fabplan), dry-run its "
        "fabrication through the real drivers against the emulators, simulate the lasing measurements "
        "of the discs made, log and fit them, and write the report.",
    )
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--design", help="design YAML (default: the shipped designs/demo_array.yaml; "
                   "designs/seed_single_disc.yaml is the paper's single disc)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (the progress log goes to stderr)")
    p.set_defaults(func=_demo)
