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


def build_plan(design: Any, **kwargs: Any) -> Plan:
    """Verify, order and time every shot of `design` (see fabplan.planning.build.build_plan)."""
    from fabplan.planning.build import build_plan as _build

    return _build(design, **kwargs)
