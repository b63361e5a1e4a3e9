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
    sx, sy, sz, ex, ey, ez = line_endpoints(lines)
    vel = np.array([ln["velocity_um_s"] for ln in lines])
    dist = np.abs(ex - sx)
    passes = np.array([int(ln.get("passes", 1)) for ln in lines])
    # a line covers at least both run-ups, so it always reaches its cruise velocity: t = d/v + Ta
    t_line = dist / vel + accel_time(vel, a, j)
    settle = float(passes.sum()) * settle_s
    turn = float(group_move_times(sx[1:] - ex[:-1], sy[1:] - ey[:-1], sz[1:] - ez[:-1], v, a, j).sum())
    # extra passes of multi-pulse lines: a return move at the motion limits before each
    turn += float(((passes - 1) * group_move_times(sx - ex, sy - ey, sz - ez, v, a, j)).sum())
    return _pack(
        float((passes * t_line).sum()) - settle,
        settle,
        0.0,
        _attenuator_changes(line_attenuator) * attenuator_move_s,
        turn,
    )
