"""`fabplan validate DESIGN` and `fabplan schema`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fabplan.cli._output import print_json
from fabplan.errors import ProblemsError

if TYPE_CHECKING:
    import numpy as np


def load_and_expand(path: str):
    """Load, expand, layout-check and shot-verify a design (raises ProblemsError with every problem).

    Returns (design, discs, diameters, beam): each disc's target diameter, or the beam model's
    prediction where the design gives only a fluence, and the design's beam model."""
    from fabplan.beam import make_beam
    from fabplan.design import expand, load_design
    from fabplan.design.layout import layout_problems

    design = load_design(path)
    discs = expand(design)
    problems = layout_problems(design, discs)
    if problems:
        raise ProblemsError(problems)
    beam = make_beam(design)
    return design, discs, _verify_shots(design, discs, beam), beam


def _verify_shots(design, discs, beam) -> np.ndarray:
    """The planner's shot verification (trenches vs neighbours, reachable diameters, damage,
    energies, travel), so `validate` never calls a design valid that `plan` rejects."""
    from fabplan.planning.shots import make_raw_shots
    from fabplan.planning.verify import PlanViolations, verify_shots

    raw = make_raw_shots(design, discs, beam)
    violations = verify_shots(design, raw, discs.ids, beam)
    if violations:
        raise PlanViolations(violations, str(design.path) if design.path else None)
    import numpy as np

    return np.where(np.isfinite(discs.diameter_um), discs.diameter_um, raw.diameter_um)


def problems_json(exc: ProblemsError) -> dict:
    """{"ok": false, "problems": [{message, path, file, line, col}, ...]} for --json output."""
    from dataclasses import asdict

    return {"ok": False, "problems": [asdict(p) for p in exc.problems]}


def _validate(args: argparse.Namespace) -> int:
    from fabplan.design.summary import design_summary, format_summary

    try:
        design, discs, diameters, beam = load_and_expand(args.design)
    except ProblemsError as exc:
        if args.json:  # scripts get the problems on stdout too; the lines still go to stderr, exit 2
            print_json(problems_json(exc))
        raise
    from fabplan.design.checks import report_design_warnings

    warnings = report_design_warnings(design)  # unit slips: valid, but almost certainly not meant
    summary = design_summary(design, discs, diameters)
    if warnings:
        summary["warnings"] = warnings
    # WGM annotation (issue 6): predicted FSR / mode count per disc, single-mode discs listed.
    from fabplan.wgm.design import design_wgm_summary, format_wgm_summary, public

    wgm = design_wgm_summary(design, diameters, ids=lambda idx: discs.take(idx).ids)
    import numpy as np

    by_fluence = np.isnan(discs.diameter_um) & np.isfinite(diameters)
    if by_fluence.any():
        summary["predicted_diameter_um"] = [float(diameters[by_fluence].min()), float(diameters[by_fluence].max())]
    summary["wgm"] = public(wgm)
    from fabplan.beam.base import format_fluence_definition

    summary["fluence_definition"] = beam.fluence_definition_info()  # what F numbers mean
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary))  # discs given by fluence show their predicted diameter there
        print(f"fluence: {format_fluence_definition(summary['fluence_definition'])}")
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
