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
    if args.only or args.skip:
        summary["selection"] = _selection(plan, args.only, args.skip)
    if args.output:
        plan.save(args.output)
        summary["plan_dir"] = str(args.output)
    if args.json:
        print_json({"ok": True, **summary})
    else:
        print(format_plan_summary(summary))
        if "selection" in summary:
            print(_format_selection(summary["selection"]))
        print(format_wgm_summary(wgm))
        if args.output:
            print(f"written: {args.output}/plan.json, {args.output}/shots.csv")
    return 0


def _selection(plan, only: str | None, skip: str | None) -> dict:
    """The estimate of what `run --only/--skip` would fire of this plan (from its first shot: where the
    stage will be is known only at the run, which adds the move from there)."""
    from fabplan.execute.runner import selection_mask
    from fabplan.execute.selection_estimate import session_estimate

    mask = selection_mask(plan.shots.disc_id, only=only, skip_file=skip)
    est = session_estimate(plan, mask)
    parts = ("total_s", "moves_s", "settle_s", "pulses_s", "attenuator_s", "turnarounds_s")
    return {"only": only, "skip": skip, "n_shots": int(mask.sum()), "estimate": {k: est[k] for k in parts}}


def _format_selection(sel: dict) -> str:
    from fabplan.planning.summary import format_duration

    e = sel["estimate"]
    what = " and ".join(x for x in (f"--only {sel['only']}" if sel["only"] else "",
                                    f"--skip {sel['skip']}" if sel["skip"] else "") if x)
    return (f"selection ({what}): {sel['n_shots']} shots, estimated time {format_duration(e['total_s'])} from its "
            "first shot (a run adds the move from where the stage is)\n"
            f"  moves {format_duration(e['moves_s'])}, settle {format_duration(e['settle_s'])}, "
            f"pulses {format_duration(e['pulses_s'])}, attenuator {format_duration(e['attenuator_s'])}, "
            f"turnarounds {format_duration(e['turnarounds_s'])}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="verify, order and time the shots of a design; write the plan",
        description="Turn a design into a verified, ordered, timed shot sequence. Violations are listed "
        "by class with disc ids (exit code 2). The plan files are byte-identical for the same design.",
    )
    p.add_argument("design", help="design YAML file")
    p.add_argument("-o", "--output", metavar="PLAN_DIR", help="directory for plan.json and shots.csv")
    p.add_argument("--only", metavar="PATTERN", help="also estimate the time of firing only these discs (glob, "
                   "comma separated; as `run --only` fires them); the plan still holds every shot")
    p.add_argument("--skip", metavar="FILE", help="also estimate the time without the disc ids in FILE (one per "
                   "line, as `run --skip`)")
    p.add_argument("--json", action="store_true", help="print the summary (or the violations) as JSON")
    p.set_defaults(func=_plan)
