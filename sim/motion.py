"""Jerk-limited single-axis move profiles (the shape of an XPS SGamma move), in closed form.

A trapezoidal velocity profile (limits v, a) box-filtered over the jerk time Tj is a 7-segment
S-curve with jerk a/Tj and the same peak velocity and acceleration: position is the running mean
p_s(t) = (P(t) - P(t - Tj)) / Tj of the trapezoid position p, where P is the integral of p.
Everything is vectorised over t so the position-compare emulation can solve thousands of
crossing times at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Profile:
    """One axis moving from `start` to `end` beginning at time `t0` (controller units, s)."""

    start: float
    end: float
    t0: float
    velocity: float
    acceleration: float
    jerk_time: float

    def __post_init__(self):
        dist = abs(self.end - self.start)
        v, a = self.velocity, self.acceleration
        if dist <= v * v / a:  # triangular: never reaches v
            ta = math.sqrt(dist / a) if dist > 0 else 0.0
            tc = 0.0
            vp = a * ta
        else:
            ta = v / a
            tc = (dist - v * ta) / v
            vp = v
        object.__setattr__(self, "_ta", ta)
        object.__setattr__(self, "_tc", tc)
        object.__setattr__(self, "_vp", vp)
        object.__setattr__(self, "_T", 2 * ta + tc)
        object.__setattr__(self, "_dist", dist)

    @property
    def duration(self) -> float:
        """Time from start until the setpoint reaches `end` (trapezoid time + jerk time)."""
        return 0.0 if self._dist == 0 else self._T + self.jerk_time

    @property
    def t_end(self) -> float:
        return self.t0 + self.duration

    # trapezoid position (0..dist) and its integral, for t measured from t0
    def _p(self, t):
        a, ta, tc, T, D, vp = self.acceleration, self._ta, self._tc, self._T, self._dist, self._vp
        t = np.clip(t, 0.0, T)
        t2 = ta + tc
        return np.where(t < ta, 0.5 * a * t * t,
                        np.where(t < t2, 0.5 * a * ta * ta + vp * (t - ta), D - 0.5 * a * (T - t) ** 2))

    def _P(self, t):
        a, ta, tc, T, D, vp = self.acceleration, self._ta, self._tc, self._T, self._dist, self._vp
        t = np.maximum(t, 0.0)
        t2 = ta + tc
        p1 = a * ta**3 / 6.0
        p2 = p1 + 0.5 * a * ta * ta * tc + vp * tc * tc / 2.0
        p3 = p2 + D * (T - t2) - (a / 6.0) * (T - t2) ** 3
        s1 = a * np.minimum(t, ta) ** 3 / 6.0
        u = np.clip(t - ta, 0.0, tc)
        s2 = p1 + 0.5 * a * ta * ta * u + vp * u * u / 2.0
        w = np.clip(t, t2, T)
        s3 = p2 + D * (w - t2) - (a / 6.0) * ((T - t2) ** 3 - (T - w) ** 3)
        s4 = p3 + D * (t - T)
        return np.where(t <= ta, s1, np.where(t <= t2, s2, np.where(t <= T, s3, s4)))

    def position(self, t):
        """Setpoint at absolute time(s) t."""
        t = np.asarray(t, dtype=float) - self.t0
        if self._dist == 0:
            return np.full_like(t, self.end)
        tj = self.jerk_time
        if tj > 0:
            s = (self._P(t) - self._P(t - tj)) / tj
        else:
            s = self._p(t)
        s = np.where(t <= 0, 0.0, np.where(t >= self.duration, self._dist, s))
        return self.start + math.copysign(1.0, self.end - self.start) * s

    def velocity_at(self, t):
        t = np.asarray(t, dtype=float) - self.t0
        if self._dist == 0:
            return np.zeros_like(t)
        tj = self.jerk_time
        v = (self._p(t) - self._p(t - tj)) / tj if tj > 0 else np.gradient(self._p(t))
        return math.copysign(1.0, self.end - self.start) * v

    def crossing_times(self, values, lag: float = 0.0):
        """Times at which position(t - lag) equals each of `values` (NaN where never reached)."""
        values = np.asarray(values, dtype=float)
        lo_v, hi_v = min(self.start, self.end), max(self.start, self.end)
        ok = (values >= lo_v) & (values <= hi_v) & (self._dist > 0)
        lo = np.full(values.shape, self.t0)
        hi = np.full(values.shape, self.t_end)
        sign = 1.0 if self.end >= self.start else -1.0
        target = sign * (values - self.start)
        for _ in range(60):  # bisection: monotone profile, 2^-60 of the move time
            mid = 0.5 * (lo + hi)
            below = sign * (self.position(mid) - self.start) < target
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return np.where(ok, 0.5 * (lo + hi) + lag, np.nan)


def move_duration(distance: float, velocity: float, acceleration: float, jerk_time: float) -> float:
    """Duration of `Profile` for a move of |distance| (same formula, no object)."""
    d = abs(distance)
    if d == 0:
        return 0.0
    if d <= velocity * velocity / acceleration:
        return 2.0 * math.sqrt(d / acceleration) + jerk_time
    return velocity / acceleration + d / velocity + jerk_time


def jerk_time_for(velocity: float, acceleration: float, min_jerk: float, max_jerk: float) -> float:
    """SGamma picks a jerk time within [min, max]; a quarter of the acceleration time is typical."""
    return float(min(max(0.25 * velocity / acceleration, min_jerk), max_jerk))
