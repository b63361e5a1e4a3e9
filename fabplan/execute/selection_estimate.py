"""The time estimate of what a session will actually fire (its selection, less what is done).

A run under --only/--skip, or a resume, fires a subset of the plan: the plan header's estimate is the
whole plan's. `session_estimate` times the subset with the planner's own estimator
(`fabplan.planning.estimate.estimate_selection`), from where the stage is, and with the executor's
own decision of which fly rows are flown and which are stepped (`fabplan.execute.fly.row_plan`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from fabplan.planning.estimate import estimate_selection


def fly_decisions(plan, todo: np.ndarray, multi_pulse: str = "auto") -> np.ndarray:
    """Per plan line (in first_seq order): True where the executor flies it (`row_plan` says 'fly')."""
    from fabplan.execute.fly import row_plan

    ctx = SimpleNamespace(plan=plan, options=SimpleNamespace(fly_fallback=multi_pulse))
    lines = sorted(plan.lines, key=lambda ln: int(ln["first_seq"]))
    return np.array([row_plan(ctx, ln, todo)[0] == "fly" for ln in lines], bool)  # type: ignore[arg-type]


def session_estimate(plan, todo: np.ndarray, *, mode: str | None = None, start_um=None,
                     multi_pulse: str = "auto") -> dict[str, Any]:
    """Estimate (s, by part) of firing the shots `todo` (bool mask) of `plan` as the executor will,
    starting from `start_um` (the stage's position; None: from the first shot). `plan_total_s` is the
    whole plan's estimate, for comparison."""
    mode = mode or plan.mode
    fly = fly_decisions(plan, todo, multi_pulse) if mode == "fly" and plan.lines else None
    try:
        est: dict[str, Any] = estimate_selection(plan, todo, mode=mode, start_um=start_um, fly_lines=fly)
    except (KeyError, TypeError, ValueError):  # a plan made without a motion model: nothing to time it with
        nan = float("nan")
        est = {k: nan for k in ("total_s", "moves_s", "settle_s", "pulses_s", "attenuator_s", "turnarounds_s")}
        est.update(approach_s=0.0, n_shots=float(np.count_nonzero(todo)), n_lines_flown=0.0)
    est["plan_total_s"] = float((plan.header.get("estimate") or {}).get("total_s", np.nan))
    return est


def describe(est: dict[str, Any], n_plan: int) -> str:
    """One line for the start of a session: what will fire and how long it should take."""
    from fabplan.execute.report import _fmt_s

    n = int(est["n_shots"])
    parts = [(k, est.get(k + "_s", 0.0)) for k in ("moves", "settle", "pulses", "attenuator", "turnarounds")]
    text = ", ".join(f"{k} {_fmt_s(v)}" for k, v in parts if v > 0)
    subset = f"{n} of {n_plan} shot(s)" if n != n_plan else f"{n} shot(s)"
    line = f"firing {subset}: estimated {_fmt_s(est['total_s'])}" + (f" ({text})" if text else "")
    if est.get("approach_s"):
        line += f", the move from the stage's position {_fmt_s(est['approach_s'])} included"
    if n != n_plan:
        line += f"; whole plan {_fmt_s(est['plan_total_s'])}"
    return line
