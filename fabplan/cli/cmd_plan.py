"""`fabplan plan DESIGN -o PLAN_DIR`: verify, order and time every shot, write the plan."""

from __future__ import annotations

import argparse

from fabplan.cli._output import print_json
from fabplan.errors import ProblemsError


def _plan(args: argparse.Namespace) -> int:
    from fabplan.design import load_design
    from fabplan.planning import build_plan
    from fabplan.planning.summary import format_plan_summary, plan_summary
    from fabplan.planning.verify import PlanViolations

    try:
        design = load_design(args.design)
    except ProblemsError as exc:
        if args.json:
            from fabplan.cli.cmd_validate import problems_json

            print_json(problems_json(exc))
        raise
    from fabplan.design.checks import report_design_warnings

    design_warnings = report_design_warnings(design)  # unit slips: valid, but almost certainly not meant
    try:
        plan = build_plan(design)
    except PlanViolations as exc:
        if args.json:
            print_json({"ok": False, "violations": [v.to_dict() for v in exc.violations]})
        raise
    summary = plan_summary(plan)
    if design_warnings:
        summary["design_warnings"] = design_warnings
    # WGM annotation (issue 6): predicted FSR / mode count of the planned discs.
    from fabplan.wgm.design import design_wgm_summary, format_wgm_summary, public

    wgm = design_wgm_summary(design, plan.shots.diameter_um, ids=plan.shots.disc_id)
    summary["wgm"] = public(wgm)
    if args.output:
        plan.save(args.output)
        summary["plan_dir"] = str(args.output)
    if args.json:
        print_json({"ok": True, **summary})
    else:
        print(format_plan_summary(summary))
        print(format_wgm_summary(wgm))
        if args.output:
            print(f"written: {args.output}/plan.json, {args.output}/shots.csv")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="verify, order and time the shots of a design; write the plan",
        description="Turn a design into a verified, ordered, timed shot sequence. Violations are listed "
        "by class with disc ids (exit code 2). The plan files are byte-identical for the same design.",
    )
    p.add_argument("design", help="design YAML file")
    p.add_argument("-o", "--output", metavar="PLAN_DIR", help="directory for plan.json and shots.csv")
    p.add_argument("--json", action="store_true", help="print the summary (or the violations) as JSON")
    p.set_defaults(func=_plan)
