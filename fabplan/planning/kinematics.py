"""Jerk-limited (S-curve) point-to-point move times, vectorised over all moves.

A rest-to-rest move with limits v (velocity), a (acceleration), j (jerk) has up to seven phases:
jerk +j, constant a, jerk -j, cruise at v, and the mirror image. Closed forms (Tj = jerk time):

  peak acceleration a' = min(a, sqrt(v j));  accel phase Ta = v/a' + a'/j
  d_full = v Ta (distance to reach v and stop again):
    d >= d_full                 t = d/v + Ta                         (cruise reached)
    d >= 2 a^3/j^2 (a reached)  vp^2 + vp a^2/j - a d = 0, t = 2 (vp/a + a/j)
    otherwise (pure jerk)       Tj = (d / (2 j))^(1/3),  t = 4 Tj

Multi-axis group moves take as long as the slowest axis (each axis has its own profile).
"""

from __future__ import annotations

import numpy as np


def move_time(distance_um, v: float, a: float, j: float) -> np.ndarray:
    """Time (s) of a rest-to-rest move of |distance_um| with limits v, a, j (um/s, um/s^2, um/s^3)."""
    if not (v > 0 and a > 0 and j > 0):
        raise ValueError("velocity, acceleration and jerk must be positive")
    d = np.abs(np.asarray(distance_um, dtype=np.float64))
    a_peak = min(a, np.sqrt(v * j))
    t_acc = v / a_peak + a_peak / j
    d_full = v * t_acc
    d_a = 2.0 * a**3 / j**2
    out = np.empty_like(d)
    cruise = d >= d_full
    out[cruise] = d[cruise] / v + t_acc
    mid = ~cruise & (d >= d_a)
    if mid.any():
        c = a * a / j
        vp = 0.5 * (-c + np.sqrt(c * c + 4.0 * a * d[mid]))
        out[mid] = 2.0 * (vp / a + a / j)
    low = ~cruise & ~mid
    out[low] = 4.0 * np.cbrt(d[low] / (2.0 * j))
    return out


def accel_time(v, a: float, j: float) -> np.ndarray:
    """Time (s) from rest to velocity v (vectorised over v)."""
    v = np.asarray(v, dtype=np.float64)
    a_peak = np.minimum(a, np.sqrt(v * j))
    return v / a_peak + a_peak / j


def accel_distance(v, a: float, j: float) -> np.ndarray:
    """Distance (um) from rest to velocity v with an S-curve (the fly-mode run-up): v Ta / 2."""
    return np.asarray(v, dtype=np.float64) * accel_time(v, a, j) / 2.0


def group_move_times(
    dx_um: np.ndarray, dy_um: np.ndarray, dz_um: np.ndarray | None, v: float, a: float, j: float
) -> np.ndarray:
    """Per-move time of a simultaneous XY(Z) move: the slowest axis decides."""
    t = np.maximum(move_time(dx_um, v, a, j), move_time(dy_um, v, a, j))
    if dz_um is not None:
        t = np.maximum(t, move_time(dz_um, v, a, j))
    return np.where((np.asarray(dx_um) == 0) & (np.asarray(dy_um) == 0) & (t == 0), 0.0, t)
