"""`fabplan validate DESIGN` and `fabplan schema`."""

from __future__ import annotations

import argparse

from fabplan.cli._output import print_json
from fabplan.errors import ProblemsError


def load_and_expand(path: str):
    """Load, expand and layout-check a design (raises ProblemsError with every problem)."""
    from fabplan.design import expand, load_design
    from fabplan.design.layout import layout_problems

    design = load_design(path)
    discs = expand(design)
    problems = layout_problems(design, discs)
    if problems:
        raise ProblemsError(problems)
    return design, discs


def _validate(args: argparse.Namespace) -> int:
    from fabplan.design.summary import design_summary, format_summary

    design, discs = load_and_expand(args.design)
    summary = design_summary(design, discs)
    # WGM annotation (issue 6): predicted FSR / mode count per disc, single-mode discs listed.
    from fabplan.wgm.design import design_wgm_summary, format_wgm_summary, public

    wgm = design_wgm_summary(design, discs.diameter_um, ids=lambda idx: discs.take(idx).ids)
    summary["wgm"] = public(wgm)
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary))
        print(format_wgm_summary(wgm))
    return 0


def _schema(args: argparse.Namespace) -> int:
    from fabplan.design.schema import design_json_schema_text

    text = design_json_schema_text()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        print(text, end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a design file and summarise it",
        description=_validate.__doc__
        or "Check a design file (all problems at once, file:line:col) and print a summary.",
    )
    p.add_argument("design", help="design YAML file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_validate)

    s = sub.add_parser(
        "schema",
        help="print the JSON Schema of the design format",
        description="Print the JSON Schema of design files (for editors).",
    )
    s.add_argument("-o", "--output", help="write to this file instead of stdout")
    s.set_defaults(func=_schema)
