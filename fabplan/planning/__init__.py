"""Planning: a design goes in, a verified, ordered, timed shot sequence (a Plan) comes out.

    from fabplan.planning import build_plan, Plan
    plan = build_plan(design)        # raises ProblemsError listing every violation class
    plan.save(plan_dir); Plan.load(plan_dir)

Modules: shots (design -> unordered ShotTable), verify (geometry and limit checks), order
(serpentine / nearest neighbour + 2-opt / Or-opt), kinematics (S-curve move times), flylines
(position-compare rows), build (the pipeline), plan (data structures, IO, hashing).
"""

from __future__ import annotations

from typing import Any

from fabplan.planning.plan import Plan, ShotTable

__all__ = ["Plan", "ShotTable", "build_plan"]


def build_plan(design: Any, **kwargs: Any) -> Plan:
    """Verify, order and time every shot of `design` (see fabplan.planning.build.build_plan)."""
    from fabplan.planning.build import build_plan as _build

    return _build(design, **kwargs)
