"""Fly mode: cut the ordered shots into lines an XPS position compare (PCO) can fire.

A PCO line is a constant-velocity move along x with triggers at equally spaced x positions
(PositionerPositionCompareSet(P, min, max, step)). So a line is a run of consecutive shots in one
lattice line with the same x step (and the same y and z step: the group moves in a straight line,
which follows a sample rotated by the alignment or tilted in z), the same attenuator setting and
the same pulse count. A row is split wherever one of those changes.

One compare event gates one laser pulse, so a shot of N pulses is N passes over its line
(`passes` in the line dict; the stage returns to the start between passes, firing nothing).
Velocity per line (x component, the PCO axis) is the largest that satisfies
  v <= motion velocity,  v * trigger_jitter <= position tolerance,
  v <= |pitch_x| * repetition_rate   (one pulse per trigger: triggers no faster than the laser).
A line of a single shot runs at SINGLE_SHOT_VELOCITY_UM_S (or slower when the limits say so).
The line starts a run-up before the first shot (S-curve acceleration distance plus settle_time of
constant velocity) and stops a deceleration distance after the last.
"""

from __future__ import annotations

import numpy as np

from fabplan.planning.kinematics import accel_distance

SINGLE_SHOT_VELOCITY_UM_S = 1000.0  # a line of one shot: 1 mm/s keeps its run-up to a few um


def split_lines(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    line_key: np.ndarray,
    attenuator: np.ndarray,
    pulses: np.ndarray,
    tol_um: float,
) -> np.ndarray:
    """Line number per ordered shot (0, 1, ...): consecutive shots fired in one PCO move."""
    n = len(x)
    if n <= 1:
        return np.zeros(n, np.int64)
    hard = np.zeros(n, bool)
    hard[0] = True
    att = np.nan_to_num(attenuator, nan=-1.0)
    hard[1:] |= (line_key[1:] != line_key[:-1]) | (att[1:] != att[:-1]) | (pulses[1:] != pulses[:-1])
    dx = np.diff(x)
    hard[1:] |= dx == 0  # no motion between two shots: cannot trigger on x
    steps = np.column_stack([np.diff(x), np.diff(y), np.diff(z)])
    # candidate breaks: the step to shot k differs from the step to shot k-1
    change = np.zeros(n, bool)
    change[2:] = np.abs(steps[1:] - steps[:-1]).max(axis=1) > tol_um
    change[1:] |= np.sign(dx) != np.sign(np.r_[dx[0], dx[:-1]])
    starts = hard.copy()
    # a change breaks the line unless shot k-1 starts a line itself (then this step defines it)
    hard_last = np.maximum.accumulate(np.where(hard, np.arange(n), 0))
    added = -1
    for k in np.flatnonzero(change & ~hard).tolist():
        s = max(int(hard_last[k - 1]), added)
        if k - 1 > s and np.abs(steps[k - 1] - steps[s]).max() > tol_um:
            starts[k] = True
            added = k
    return np.cumsum(starts) - 1


def line_velocity(
    pitch_x_um: np.ndarray,
    pulses: np.ndarray,
    v_max: float,
    tol_um: float,
    jitter_s: float,
    rep_rate_hz: float,
) -> np.ndarray:
    """Largest constant x velocity per line that the trigger and the laser allow (um/s).

    `pulses` does not lower it: multi-pulse shots are fired in several passes (see module doc).
    """
    v = np.full(len(pitch_x_um), float(v_max))
    if jitter_s > 0:
        v = np.minimum(v, tol_um / jitter_s)
    p = np.abs(pitch_x_um)
    has_pitch = p > 0
    v = np.where(has_pitch, np.minimum(v, p * rep_rate_hz), v)
    # one trigger only: any constant velocity works and a slow one has the shortest run-up
    v = np.where(has_pitch, v, np.minimum(v, SINGLE_SHOT_VELOCITY_UM_S))
    return v


def build_lines(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    line_no: np.ndarray,
    pulses: np.ndarray,
    *,
    v_max: float,
    a: float,
    j: float,
    tol_um: float,
    jitter_s: float,
    rep_rate_hz: float,
    settle_s: float,
) -> list[dict]:
    """One dict per line (plan_api.md): line, axis, y_um, z_um, start_um, stop_um, velocity_um_s,
    first_seq, last_seq; plus passes (= pulses per shot), x_um (first shot), pitch_um (signed x step), dy_dx, dz_dx (slopes of
    the straight line the group follows), n_shots. y_um / z_um are at the first shot, so at any x
    on the line y = y_um + dy_dx (x - x_um) and z = z_um + dz_dx (x - x_um).
    """
    n = len(x)
    if n == 0:
        return []
    first = np.flatnonzero(np.r_[True, line_no[1:] != line_no[:-1]])
    last = np.r_[first[1:] - 1, n - 1]
    count = last - first + 1
    multi = count > 1
    nxt = np.minimum(first + 1, n - 1)
    pitch = np.where(multi, x[nxt] - x[first], 0.0)
    dx = np.where(multi, x[nxt] - x[first], 1.0)
    dy_dx = np.where(multi, (y[nxt] - y[first]) / dx, 0.0)
    dz_dx = np.where(multi, (z[nxt] - z[first]) / dx, 0.0)
    v = line_velocity(pitch, pulses[first], v_max, tol_um, jitter_s, rep_rate_hz)
    run = accel_distance(v, a, j)
    direction = np.where(pitch < 0, -1.0, 1.0)
    start = x[first] - direction * (run + v * settle_s)
    stop = x[last] + direction * run
    out = []
    for k in range(len(first)):
        out.append(
            {
                "line": k,
                "axis": "x",
                "y_um": float(y[first[k]]),
                "z_um": float(z[first[k]]),
                "start_um": float(start[k]),
                "stop_um": float(stop[k]),
                "velocity_um_s": float(v[k]),
                "first_seq": int(first[k]),
                "last_seq": int(last[k]),
                "n_shots": int(count[k]),
                "passes": int(pulses[first[k]]),
                "x_um": float(x[first[k]]),
                "pitch_um": float(pitch[k]),
                "dy_dx": float(dy_dx[k]) + 0.0,
                "dz_dx": float(dz_dx[k]) + 0.0,
            }
        )
    return out


def line_endpoints(lines: list[dict]) -> tuple[np.ndarray, ...]:
    """(start_x, start_y, start_z, stop_x, stop_y, stop_z) arrays of the lines (stage um)."""
    if not lines:
        e = np.empty(0)
        return e, e, e, e, e, e
    sx = np.array([ln["start_um"] for ln in lines])
    ex = np.array([ln["stop_um"] for ln in lines])
    y0 = np.array([ln["y_um"] for ln in lines])
    z0 = np.array([ln["z_um"] for ln in lines])
    dydx = np.array([ln["dy_dx"] for ln in lines])
    dzdx = np.array([ln["dz_dx"] for ln in lines])
    xf = np.array([ln["x_um"] for ln in lines])  # y, z follow the straight line through the first shot
    return (
        sx,
        y0 + dydx * (sx - xf),
        z0 + dzdx * (sx - xf),
        ex,
        y0 + dydx * (ex - xf),
        z0 + dzdx * (ex - xf),
    )
