"""Run-time estimate of an ordered plan: jerk-limited moves, settle, pulses, attenuator moves.

Step mode, per shot: group move from the previous shot (slowest of x, y, z; see kinematics),
settle_time, N / repetition_rate of firing, and an attenuator move wherever the setting changes.
Fly mode, per line and pass: run-up (S-curve), settle_time at constant velocity, the
constant-velocity pass over the shots, deceleration; N-pulse lines take N passes with a return
move between them; between lines a group move ("turnaround") and an attenuator move where the
setting changes. Pulses fire during the motion, so pulses_s is 0 in fly mode.
The estimate runs from the first shot (or line start) to the last; the approach is not included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fabplan.planning.flylines import line_endpoints
from fabplan.planning.kinematics import accel_time, group_move_times


def _attenuator_changes(setting: np.ndarray) -> int:
    s = np.asarray(setting, float)
    if len(s) < 2 or np.isnan(s).all():
        return 0
    s = np.nan_to_num(s, nan=-1.0)
    return int(np.count_nonzero(s[1:] != s[:-1]))


def _pack(moves: float, settle: float, pulses: float, att: float, turn: float) -> dict[str, float]:
    return {
        "total_s": moves + settle + pulses + att + turn,
        "moves_s": moves,
        "settle_s": settle,
        "pulses_s": pulses,
        "attenuator_s": att,
        "turnarounds_s": turn,
    }


def estimate_step(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    pulses: np.ndarray,
    attenuator: np.ndarray,
    *,
    v: float,
    a: float,
    j: float,
    settle_s: float,
    rep_rate_hz: float,
    attenuator_move_s: float,
) -> dict[str, float]:
    """Step-and-fire estimate for shots in firing order (seconds)."""
    n = len(x)
    moves = float(group_move_times(np.diff(x), np.diff(y), np.diff(z), v, a, j).sum()) if n > 1 else 0.0
    return _pack(
        moves,
        n * settle_s,
        float(np.sum(pulses)) / rep_rate_hz,
        _attenuator_changes(attenuator) * attenuator_move_s,
        0.0,
    )


def _inside_lines(lines: list[dict], ends: tuple, *, v: float, a: float, j: float, settle_s: float):
    """(moves_s, settle_s, turnarounds_s) of flying these lines, each at its own velocity and its
    passes; `ends` = line_endpoints(lines). The moves between the lines are the caller's."""
    sx, sy, sz, ex, ey, ez = ends
    vel = np.array([ln["velocity_um_s"] for ln in lines])
    passes = np.array([int(ln.get("passes", 1)) for ln in lines])
    # a line covers at least both run-ups, so it always reaches its cruise velocity: t = d/v + Ta
    t_line = np.abs(ex - sx) / vel + accel_time(vel, a, j)
    settle = float(passes.sum()) * settle_s
    # extra passes of multi-pulse lines: a return move at the motion limits before each
    extra = float(((passes - 1) * group_move_times(sx - ex, sy - ey, sz - ez, v, a, j)).sum())
    return float((passes * t_line).sum()) - settle, settle, extra


def estimate_fly(
    lines: list[dict],
    line_attenuator: np.ndarray,
    *,
    v: float,
    a: float,
    j: float,
    settle_s: float,
    attenuator_move_s: float,
) -> dict[str, float]:
    """Fly estimate from the lines (each run at its own velocity) and the moves between them."""
    if not lines:
        return _pack(0.0, 0.0, 0.0, 0.0, 0.0)
    ends = line_endpoints(lines)
    sx, sy, sz, ex, ey, ez = ends
    moves, settle, extra_passes = _inside_lines(lines, ends, v=v, a=a, j=j, settle_s=settle_s)
    turn = float(group_move_times(sx[1:] - ex[:-1], sy[1:] - ey[:-1], sz[1:] - ez[:-1], v, a, j).sum())
    turn += extra_passes
    return _pack(
        moves,
        settle,
        0.0,
        _attenuator_changes(line_attenuator) * attenuator_move_s,
        turn,
    )


# ---------------------------------------------------------------------- a selection of a plan


def plan_timing(header: dict) -> dict[str, float]:
    """The numbers the plan's estimate was made with, read back from its header (a saved plan too):
    v, a, j (um/s, um/s^2, um/s^3), settle_s, rep_rate_hz, attenuator_move_s."""
    model = header.get("model") or {}
    motion = model.get("motion") or {}
    att = model.get("attenuator") or {}
    return {
        "v": float(motion["velocity_um_s"]),
        "a": float(motion["acceleration_um_s2"]),
        "j": float(motion["jerk_um_s3"]),
        "settle_s": float(header.get("settle_time_s") or 0.0),
        "rep_rate_hz": float(header["repetition_rate_hz"]),
        "attenuator_move_s": float(att.get("move_time") or 0.0) if isinstance(att, dict) else 0.0,
    }


def estimate_selection(
    plan: Any,
    fire: np.ndarray,
    *,
    mode: str | None = None,
    start_um: tuple[float, ...] | None = None,
    fly_lines: np.ndarray | None = None,
) -> dict[str, float]:
    """Estimate of firing only the shots `fire` (bool mask over the plan's shots, or their seqs) of
    `plan`, in plan order, with the plan's own motion, settle, rate and attenuator numbers.

    What is fired is timed as the executor fires it: step mode shot by shot; fly mode line by line,
    a line flown when `fly_lines[k]` says so (default: when every shot of it is selected) and
    otherwise its selected shots stepped (the executor steps a partly done row). Turnarounds are
    the moves between two flown lines; a move to or from a stepped shot counts as a move.
    `start_um` (x, y[, z]): where the stage is before the first shot; the move from there to the
    first shot (or run-up start) is in moves_s and also given alone as approach_s. Without it
    (as in the plan's own estimate) the estimate runs from the first shot.
    The whole plan selected, with no start, gives the plan's estimate (same estimator, same parts).
    Adds n_shots (shots timed) and n_lines_flown to the parts.

    >>> from fabplan.design import load_design
    >>> from fabplan.planning import build_plan
    >>> from fabplan.shipped import shipped_design
    >>> plan = build_plan(load_design(shipped_design("hex_sweep")))
    >>> row0 = np.char.startswith(plan.shots.disc_id.astype(str), "H-r00")  # as `run --only "H-r00*"`
    >>> est = estimate_selection(plan, row0)
    >>> int(est["n_shots"]), est["total_s"] < plan.estimate["total_s"]
    (8, True)
    >>> whole = estimate_selection(plan, np.ones(len(plan.shots), bool))
    >>> abs(whole["total_s"] - plan.estimate["total_s"]) < 1e-6  # the plan's own estimate
    True
    """
    shots = plan.shots
    n = len(shots)
    fire = np.asarray(fire)
    mask = fire.astype(bool) if fire.dtype == bool and len(fire) == n else np.isin(np.arange(n), fire)
    t = plan_timing(plan.header)
    kin = {"v": t["v"], "a": t["a"], "j": t["j"]}
    mode = mode or plan.mode
    lines = sorted(plan.lines, key=lambda ln: int(ln["first_seq"])) if mode == "fly" else []
    # segments in firing order: ("step", seq) or ("fly", line index)
    seg_fly: list[bool] = []
    seg_ref: list[int] = []
    if lines:
        for k, ln in enumerate(lines):
            first, last = int(ln["first_seq"]), int(ln["last_seq"])
            sel = np.flatnonzero(mask[first:last + 1]) + first
            if not len(sel):
                continue
            flies = (len(sel) == last - first + 1) if fly_lines is None else bool(fly_lines[k])
            if flies:
                seg_fly.append(True)
                seg_ref.append(k)
            else:
                seg_fly += [False] * len(sel)
                seg_ref += sel.tolist()
    else:
        seg_ref = np.flatnonzero(mask).tolist()
        seg_fly = [False] * len(seg_ref)
    is_fly = np.array(seg_fly, bool)
    ref = np.array(seg_ref, np.int64)
    m = len(ref)
    # entry and exit point of each segment (a stepped shot: its position; a line: run-up start, stop)
    entry = np.zeros((m, 3))
    exit_ = np.zeros((m, 3))
    step_seq = ref[~is_fly]
    for arr in (entry, exit_):
        arr[~is_fly] = np.column_stack([shots.x_um[step_seq], shots.y_um[step_seq], shots.z_um[step_seq]])
    fly_lines_sel = [lines[k] for k in ref[is_fly].tolist()]
    if fly_lines_sel:
        ends = line_endpoints(fly_lines_sel)
        entry[is_fly] = np.column_stack(ends[:3])
        exit_[is_fly] = np.column_stack(ends[3:])
    # inside the segments
    n_step = int((~is_fly).sum())
    settle = n_step * t["settle_s"]
    pulses = float(np.sum(shots.pulses[step_seq])) / t["rep_rate_hz"]
    line_moves = 0.0
    turn = 0.0
    if fly_lines_sel:  # inside the flown lines: the plan estimate's own per-line timing
        line_moves, fly_settle, extra_passes = _inside_lines(fly_lines_sel, ends, **kin, settle_s=t["settle_s"])
        settle += fly_settle
        turn += extra_passes
    # between the segments: a turnaround from line to line, a move otherwise
    moves = line_moves
    if m > 1:
        d = entry[1:] - exit_[:-1]
        hop = group_move_times(d[:, 0], d[:, 1], d[:, 2], **kin)
        both_fly = is_fly[1:] & is_fly[:-1]
        turn += float(hop[both_fly].sum())
        moves += float(hop[~both_fly].sum())
    approach = 0.0
    if start_um is not None and m:
        s = np.array([*list(start_um)[:3], *[np.nan] * max(0, 3 - len(start_um))], float)
        d0 = entry[0] - np.where(np.isfinite(s), s, entry[0])  # no z given: no z move counted
        approach = float(group_move_times(d0[:1], d0[1:2], d0[2:3], **kin)[0])
        moves += approach
    # attenuator: the setting each segment fires at (a line: its first shot's), changes counted
    seg_first = ref.copy()
    seg_first[is_fly] = [int(ln["first_seq"]) for ln in fly_lines_sel]
    att = _attenuator_changes(shots.attenuator[seg_first]) * t["attenuator_move_s"]
    out = _pack(moves, settle, pulses, att, turn)
    out.update(approach_s=approach, n_shots=float(mask.sum()), n_lines_flown=float(is_fly.sum()))
    return out
