"""Planning: a design goes in, a verified, ordered, timed shot sequence (a Plan) comes out.

    from fabplan.planning import build_plan, Plan
    plan = build_plan(design)        # raises ProblemsError listing every violation class
    plan.save(plan_dir); Plan.load(plan_dir)

Modules: shots (design -> per-disc shot parameters), verify (geometry and limit checks, one
violation class per problem), order (serpentine / per-array segments / attenuator grouping),
tour (nearest neighbour, 2-opt, Or-opt, kicks, lower bounds), kinematics (S-curve move times),
flylines (position-compare rows), estimate (run time and breakdown), build (the pipeline),
plan (data structures, IO, hashing), summary (what `fabplan plan` prints).
"""

from __future__ import annotations

from typing import Any

from fabplan.planning.plan import Plan, ShotTable

__all__ = ["Plan", "ShotTable", "build_plan"]


def build_plan(design: Any, discs: Any = None, beam: Any = None) -> Plan:
    """Verify, order and time every shot of `design`: the Plan `fabplan plan` writes.

    `discs` (a DiscTable from `expand(design)`) and `beam` (from `fabplan.beam.make_beam(design)`)
    are computed when not given; pass them to reuse work already done. Raises PlanViolations (a
    ProblemsError: every violation class with its disc ids) when a shot cannot be made safely.

    >>> from fabplan.design import load_design
    >>> from fabplan.shipped import shipped_design
    >>> plan = build_plan(load_design(shipped_design("hex_sweep")))
    >>> plan  # doctest: +ELLIPSIS
    Plan('hex-sweep': 63 shots, step mode, estimated ... s, plan hash ...)
    >>> sorted(plan.shots.disc_id.tolist())[:2], round(float(plan.shots.diameter_um.max()), 2)
    (['H-r00c00', 'H-r00c01'], 11.0)
    """
    from fabplan.planning.build import build_plan as _build

    return _build(design, discs=discs, beam=beam)
