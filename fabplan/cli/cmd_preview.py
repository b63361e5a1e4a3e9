"""`fabplan preview DESIGN -o preview.png|svg|pdf`: a picture of the plan before anything moves."""

from __future__ import annotations

import argparse

from fabplan.errors import UserError

FORMATS = ("png", "svg", "pdf")


def _preview(args: argparse.Namespace) -> int:
    from fabplan.beam import make_beam
    from fabplan.design import expand, load_design
    from fabplan.export.preview import render_preview
    from fabplan.planning import build_plan
    from fabplan.planning.shots import make_raw_shots
    from fabplan.planning.verify import PlanViolations

    ext = args.output.rsplit(".", 1)[-1].lower() if "." in args.output else ""
    if ext not in FORMATS:
        raise UserError(f"preview output must end in .png, .svg or .pdf, got {args.output!r}")
    design = load_design(args.design)
    discs = expand(design)
    beam = make_beam(design.beam, design.laser, base_dir=design.path.parent if design.path else None)
    raw = make_raw_shots(design, discs, beam)
    plan, problems = None, None
    try:
        plan = build_plan(design, discs=discs, beam=beam)
    except PlanViolations as exc:
        problems = exc.violations
    fdef = beam.fluence_definition_info()  # named in the figure and below: what the fluence numbers mean
    try:
        render_preview(
            design, raw, plan, args.output, color_by=args.color, problems=problems, fluence_definition=fdef
        )
    except OSError as exc:  # e.g. -o into a folder that does not exist
        raise UserError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if args.json:
        from fabplan.cli._output import print_json

        print_json(
            {
                "output": args.output,
                "n_discs": len(discs),
                "plannable": plan is not None,
                "violations": [v.to_dict() for v in problems or []],
                "fluence_definition": fdef,
            }
        )
    else:
        from fabplan.beam.base import format_fluence_definition

        print(f"written: {args.output}" + ("" if plan else " (design has violations: marked in red)"))
        print(f"fluence: {format_fluence_definition(fdef)}")
    return 0 if plan is not None else 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preview",
        help="draw discs, trenches, path, region, keep-outs and the time estimate",
        description="Draw the design and its plan (png, svg or pdf). Violating discs are marked and the "
        "command exits 2.",
    )
    p.add_argument("design", help="design YAML file")
    p.add_argument("-o", "--output", required=True, help="preview.png | .svg | .pdf")
    p.add_argument("--color", choices=("diameter", "fluence"), default="diameter", help="colour discs by")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=_preview)
