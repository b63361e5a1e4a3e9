"""Jerk-limited single-axis move profiles (the shape of an XPS SGamma move), in closed form.

The standard 7-phase S-curve with limits v (velocity), a (acceleration) and jerk j = a / Tj, where
Tj is the SGamma jerk time: jerk +j, constant acceleration, jerk -j, cruise, and the mirror image.
Phase durations follow the planner's closed form (fabplan.planning.kinematics.move_time), so an
emulated move takes exactly the time the plan's estimate gives it for the same v, a, j; short moves
never reach v (acceleration-limited) or even a (pure jerk, t = 4 (d / 2j)^(1/3)).

Not an import of the planner's function: that one is vectorised numpy (~20 us per scalar call,
x3 axes per step shot on the emulator's instant hot path), and the emulator also needs position(t)
for position compare; tests/test_sim_motion.py checks the two agree.
Everything here is vectorised over t so position compare can solve thousands of crossings at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _phases(dist: float, v: float, a: float, j: float) -> tuple[float, float, float]:
    """(T1, T2, Tv): jerk-phase, constant-acceleration-phase and cruise durations (s) of a rest-to-rest
    move of dist >= 0; total time 4 T1 + 2 T2 + Tv. j = inf gives the trapezoid (T1 = 0)."""
    if dist <= 0:
        return 0.0, 0.0, 0.0
    if not math.isfinite(j):
        if dist >= v * v / a:
            return 0.0, v / a, dist / v - v / a
        return 0.0, math.sqrt(dist / a), 0.0
    ap = min(a, math.sqrt(v * j))  # peak acceleration when cruising
    t_acc = v / ap + ap / j
    if dist >= v * t_acc:  # cruise reached
        return ap / j, max(v / ap - ap / j, 0.0), max(dist / v - t_acc, 0.0)
    if dist >= 2.0 * a**3 / j**2:  # a reached, v not: vp^2 + vp a^2/j - a d = 0
        c = a * a / j
        vp = 0.5 * (-c + math.sqrt(c * c + 4.0 * a * dist))
        return a / j, max(vp / a - a / j, 0.0), 0.0
    return (dist / (2.0 * j)) ** (1.0 / 3.0), 0.0, 0.0  # pure jerk


def _jerk(acceleration: float, jerk_time: float) -> float:
    """SGamma: jerk = acceleration / jerk time (0 jerk time: no jerk limit)."""
    return acceleration / jerk_time if jerk_time > 0 else math.inf


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
        j = _jerk(self.acceleration, self.jerk_time)
        t1, t2, tv = _phases(dist, self.velocity, self.acceleration, j)
        ap = j * t1 if t1 > 0 else self.acceleration  # peak acceleration reached
        jj = j if t1 > 0 else 0.0
        durs = np.array([t1, t2, t1, tv, t1, t2, t1])
        acc0 = np.array([0.0, ap, ap, 0.0, 0.0, -ap, -ap])  # acceleration at each phase start
        jerk = np.array([jj, 0.0, -jj, 0.0, -jj, 0.0, jj])
        bounds = np.concatenate(([0.0], np.cumsum(durs)))
        p0, v0 = np.zeros(7), np.zeros(7)
        p, vel = 0.0, 0.0
        for k in range(7):
            p0[k], v0[k] = p, vel
            tau, a0, jk = durs[k], acc0[k], jerk[k]
            p += vel * tau + a0 * tau * tau / 2.0 + jk * tau**3 / 6.0
            vel += a0 * tau + jk * tau * tau / 2.0
        if p > 0:  # remove the float residue so the profile ends exactly at dist
            p0 *= dist / p
            v0 *= dist / p
        object.__setattr__(self, "_seg", (bounds[:-1], p0, v0, acc0, jerk))
        object.__setattr__(self, "_T", float(bounds[-1]))
        object.__setattr__(self, "_dist", dist)

    @property
    def duration(self) -> float:
        """Time from start until the setpoint reaches `end` (4 T1 + 2 T2 + Tv)."""
        return 0.0 if self._dist == 0 else self._T

    @property
    def t_end(self) -> float:
        return self.t0 + self.duration

    def _eval(self, t, deriv: int):
        """Distance travelled (deriv 0) or speed (deriv 1) at times t measured from t0."""
        b, p0, v0, a0, jk = self._seg
        tc = np.clip(t, 0.0, self._T)
        k = np.clip(np.searchsorted(b, tc, side="right") - 1, 0, 6)
        u = tc - b[k]
        if deriv == 0:
            return p0[k] + v0[k] * u + a0[k] * u * u / 2.0 + jk[k] * u**3 / 6.0
        return v0[k] + a0[k] * u + jk[k] * u * u / 2.0

    def position(self, t):
        """Setpoint at absolute time(s) t."""
        t = np.asarray(t, dtype=float) - self.t0
        if self._dist == 0:
            return np.full_like(t, self.end)
        s = self._eval(t, 0)
        s = np.where(t <= 0, 0.0, np.where(t >= self._T, self._dist, s))
        return self.start + math.copysign(1.0, self.end - self.start) * s

    def velocity_at(self, t):
        t = np.asarray(t, dtype=float) - self.t0
        if self._dist == 0:
            return np.zeros_like(t)
        v = np.where((t <= 0) | (t >= self._T), 0.0, self._eval(t, 1))
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
    """Duration of `Profile` for a move of |distance| (same phases, no object: the instant hot path)."""
    t1, t2, tv = _phases(abs(distance), velocity, acceleration, _jerk(acceleration, jerk_time))
    return 4.0 * t1 + 2.0 * t2 + tv


def jerk_time_for(velocity: float, acceleration: float, min_jerk: float, max_jerk: float) -> float:
    """SGamma picks a jerk time within [min, max]; a quarter of the acceleration time is typical.
    Set min = max = a / j to get a given jerk j (what the planner assumes)."""
    return float(min(max(0.25 * velocity / acceleration, min_jerk), max_jerk))
