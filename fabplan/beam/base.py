"""BeamModel: the ablation contract shared by every donut-beam model.

A model is a radial fluence shape f(r) normalised so its maximum over r is 1; the design's "peak
fluence" F_pk is that maximum for every model, so F(r) = F_pk f(r) and the same fluence number
means the same thing whatever the model. Film is removed where F(r) >= F_th(N) = F_th(1) N^(S-1)
(Jee 1988 incubation). With s = F_th(N)/F_pk:

- disc radius     = smallest r with f(r) >= s  (the dark centre that is left standing);
- trench outer r  = largest r with f(r) >= s;
- nothing ablates when s > 1 (NaN).

Subclasses give the shape and two inverse maps s -> r (inner, outer); the base class does the
thresholds, broadcasting, de-duplication (a 250,000-disc array usually has a few unique
(fluence, pulses) pairs), range checks and the energy <-> fluence conversion.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any

import numpy as np

from fabplan.errors import UserError

# 1 mJ/cm^2 * 1 um^2 = 1e-3 J / 1e8 um^2 * 1 um^2 = 1e-11 J = 1e-5 uJ.
UJ_PER_MJ_CM2_UM2 = 1e-5

# What a fluence number of the design means (beam.fluence_definition). Every fluence of a design
# (disc fluences, threshold_fluence, damage_fluence) is in the chosen definition; diameters depend
# only on F/F_th, so the definition changes the fluence <-> pulse energy conversion and nothing else:
# E = F * A_def with A_def the "fluence area" below.
FLUENCE_DEFINITIONS = {
    "peak": "peak fluence: the maximum of F(r) over r (E = F * integral of f(r) 2 pi r dr)",
    "ring-fwhm-average": "ring average: the mean of F(r) over the ring's FWHM (where F >= peak/2)",
    "geometric-annulus": "pulse energy / geometric mask annulus area pi (r_o^2 - r_i^2) (annular beam only)",
}
DEFAULT_FLUENCE_DEFINITION = "peak"


def format_fluence_definition(info: dict[str, Any]) -> str:
    """One line from `BeamModel.fluence_definition_info()` (also read back from a plan header)."""
    return (
        f"{info['name']} ({info['meaning']}); E = F x {info['fluence_area_um2']:.4g} um^2, "
        f"100 mJ/cm^2 = {100 * info['uj_per_mj_cm2']:.4g} uJ; peak F(r) = {info['peak_over_fluence']:.4g} x F"
    )


def fluence_definition_short(info: dict[str, Any] | None) -> str:
    """'peak fluence' / 'ring-fwhm-average fluence' ...: the name to put beside a fluence number."""
    name = (info or {}).get("name") or DEFAULT_FLUENCE_DEFINITION
    return "peak fluence" if name == "peak" else f"{name} fluence"


def plan_fluence_definition(header: dict[str, Any]) -> dict[str, Any]:
    """The plan header's fluence definition; a plan written before definitions existed is in peak
    fluence (the only definition then), with the effective area its model.beam records."""
    info = header.get("fluence_definition")
    if isinstance(info, dict) and info.get("name") in FLUENCE_DEFINITIONS:
        return info
    beam = (header.get("model") or {}).get("beam") or {}
    area = float(beam.get("effective_area_um2", float("nan")))
    return {
        "name": DEFAULT_FLUENCE_DEFINITION,
        "meaning": FLUENCE_DEFINITIONS[DEFAULT_FLUENCE_DEFINITION],
        "fluence_area_um2": area,
        "peak_over_fluence": 1.0,
        "uj_per_mj_cm2": area * UJ_PER_MJ_CM2_UM2,
    }


def _unique_apply(fn, *arrays) -> np.ndarray:
    """fn on the unique combinations of the broadcast arrays, scattered back.

    A design has a handful of (fluence, pulses) pairs over 10^5-10^6 discs: per-column 1-D np.unique
    and a combined integer code are much faster than np.unique(axis=0).
    """
    b = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in arrays])
    shape = b[0].shape
    cols = [x.ravel() for x in b]
    if cols[0].size <= 64:
        return np.asarray(fn(*cols), dtype=float).reshape(shape)
    code = np.zeros(cols[0].size, dtype=np.int64)
    for c in cols:
        u, inv = np.unique(c, return_inverse=True)  # NaNs collapse to one (equal_nan default)
        code = code * u.size + inv.ravel()
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    out = np.asarray(fn(*[c[first] for c in cols]), dtype=float)
    return out[inverse.ravel()].reshape(shape)


def crossing_table(r: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(levels, radii) such that np.interp(s, levels, radii) is the first r along the arrays with f >= s.

    Built on the running maximum of f, so a dip (coherent ringing) between two rises makes the
    crossing jump across it instead of being interpolated through it. Levels strictly increase.
    """
    g = np.maximum.accumulate(f)
    k = np.flatnonzero(np.diff(g) > 0) + 1  # points that set a new maximum (there f == g)
    lev = np.empty(2 * k.size + 1)
    rad = np.empty(2 * k.size + 1)
    lev[0], rad[0] = g[0], r[0]
    # Levels in (g[k-1], g[k]] cross on the segment [r[k-1], r[k]] of the linear interpolant of f;
    # g[k-1] itself is reached there at r[k-1] + (g[k-1] - f[k-1]) / (f[k] - f[k-1]) (r[k] - r[k-1]).
    t = (g[k - 1] - f[k - 1]) / (f[k] - f[k - 1])
    lev[1::2], rad[1::2] = g[k - 1], r[k - 1] + t * (r[k] - r[k - 1])
    lev[2::2], rad[2::2] = g[k], r[k]
    dup = np.concatenate(([False], (np.diff(lev) == 0) & (np.diff(rad) == 0)))
    lev, rad = lev[~dup], rad[~dup]
    tie = np.flatnonzero(np.diff(lev) <= 0) + 1  # a plateau: same level, further out
    lev[tie] = np.nextafter(lev[tie - 1], np.inf)
    return lev, rad


# An inner edge that jumps by more than this when the fluence changes infinitesimally crosses a dip.
JUMP_UM = 0.05


def _widest_run(levels: np.ndarray, radii: np.ndarray, jump_um: float) -> tuple[float, float]:
    """Level bounds of the widest (in radius) stretch of a crossing table with no radius jump."""
    cuts = np.flatnonzero(np.diff(radii) > jump_um)
    starts = np.concatenate(([0], cuts + 1))
    ends = np.concatenate((cuts, [radii.size - 1]))
    k = int(np.argmax(radii[ends] - radii[starts]))
    lo = float(levels[starts[k]]) if starts[k] > 0 else float(levels[0])
    return lo, float(levels[ends[k]])


class BeamModel(ABC):
    """Radial donut fluence profile plus multi-pulse ablation threshold.

    threshold_fluence_mj_cm2: F_th(1), single-shot; a calibrated number (`fabplan calibrate`).
    incubation_exponent: S in F_th(N) = F_th(1) N^(S-1).
    damage_fluence_mj_cm2: optional upper limit on the peak fluence (film damage), bounds the range.
    max_pulse_energy_uj: optional laser limit, bounds the range too.
    """

    model: str = "?"

    def __init__(
        self,
        *,
        threshold_fluence_mj_cm2: float,
        incubation_exponent: float = 0.8,
        damage_fluence_mj_cm2: float | None = None,
        max_pulse_energy_uj: float | None = None,
        fluence_definition: str = DEFAULT_FLUENCE_DEFINITION,
    ):
        if not (threshold_fluence_mj_cm2 > 0 and np.isfinite(threshold_fluence_mj_cm2)):
            raise UserError(f"threshold fluence must be > 0 mJ/cm^2, got {threshold_fluence_mj_cm2}")
        if not (0 < incubation_exponent <= 1.5):
            raise UserError(f"incubation exponent S must be in (0, 1.5], got {incubation_exponent}")
        if damage_fluence_mj_cm2 is not None and not damage_fluence_mj_cm2 > threshold_fluence_mj_cm2:
            raise UserError(
                f"damage fluence {damage_fluence_mj_cm2} mJ/cm^2 must exceed the threshold fluence "
                f"{threshold_fluence_mj_cm2} mJ/cm^2"
            )
        if max_pulse_energy_uj is not None and not max_pulse_energy_uj > 0:
            raise UserError(f"max pulse energy must be > 0 uJ, got {max_pulse_energy_uj}")
        self.threshold_fluence_mj_cm2 = float(threshold_fluence_mj_cm2)
        self.incubation_exponent = float(incubation_exponent)
        self.damage_fluence_mj_cm2 = None if damage_fluence_mj_cm2 is None else float(damage_fluence_mj_cm2)
        self.max_pulse_energy_uj = None if max_pulse_energy_uj is None else float(max_pulse_energy_uj)
        self._check_definition(fluence_definition)
        self.fluence_definition = str(fluence_definition)

    # ---- what a subclass provides -------------------------------------------------------------
    @abstractmethod
    def shape(self, r_um: np.ndarray) -> np.ndarray:
        """f(r), maximum 1 at `peak_radius_um`."""

    @property
    @abstractmethod
    def peak_radius_um(self) -> float:
        """Radius of the ring maximum, where ablation starts as F_pk -> F_th."""

    @property
    @abstractmethod
    def effective_area_um2(self) -> float:
        """Integral of f(r) 2 pi r dr: pulse energy = F_pk * this area."""

    @abstractmethod
    def _inner_radius(self, s: np.ndarray) -> np.ndarray:
        """Smallest r with f(r) >= s, for s in (0, 1]; 0 where the centre itself ablates."""

    @abstractmethod
    def _outer_radius(self, s: np.ndarray) -> np.ndarray:
        """Largest r with f(r) >= s, for s in (0, 1]."""

    @abstractmethod
    def _level_at_inner_radius(self, r_um: np.ndarray) -> np.ndarray:
        """Inverse of `_inner_radius`: the level s whose inner edge is at r (0 <= r <= peak radius)."""

    def _params(self) -> dict[str, Any]:
        return {}

    def geometric_area_um2(self) -> float | None:
        """Geometric area that defines 'geometric-annulus' fluence; None where the model has none."""
        return None

    def _radial_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(r, f) on a grid fine enough to integrate over the ring (subclasses with a table reuse it)."""
        r_max = float(self._outer_radius(np.array(1e-9)))
        r = np.linspace(0.0, r_max, 200_001)
        return r, self.shape(r)

    def ring_fwhm_mean(self) -> float:
        """Mean of f over the ring's FWHM region {r: f(r) >= 1/2}, area-weighted (f_max = 1)."""
        r, f = self._radial_grid()
        ring = np.where(f >= 0.5, 1.0, 0.0)
        # Area-weighted integrals on the grid; the edges are resolved to the grid step.
        num = float(np.trapezoid(ring * f * 2.0 * np.pi * r, r))
        den = float(np.trapezoid(ring * 2.0 * np.pi * r, r))
        return num / den

    @property
    def fluence_area_um2(self) -> float:
        """A_def with pulse energy = F * A_def, F a fluence in this beam's `fluence_definition`."""
        return self.fluence_area_for(self.fluence_definition)

    def _check_definition(self, definition: str) -> None:
        """UserError for an unknown definition, or one this beam has no area for."""
        if definition not in FLUENCE_DEFINITIONS:
            raise UserError(
                f"unknown fluence definition {definition!r} (expected {', '.join(FLUENCE_DEFINITIONS)})"
            )
        if definition == "geometric-annulus" and self.geometric_area_um2() is None:
            raise UserError(
                f"fluence definition 'geometric-annulus' needs an annular beam (this is {self.model!r}); "
                "use 'peak' or 'ring-fwhm-average'"
            )

    @cached_property
    def _fwhm_mean(self) -> float:
        return float(self.ring_fwhm_mean())

    def fluence_area_for(self, definition: str) -> float:
        """A_def of any definition for this beam's shape (UserError naming the known ones otherwise)."""
        self._check_definition(definition)
        if definition == "peak":
            return self.effective_area_um2
        if definition == "ring-fwhm-average":
            return self.effective_area_um2 / self._fwhm_mean
        return self.geometric_area_um2()

    def convert_fluence(self, fluence_mj_cm2, from_definition: str, to_definition: str | None = None) -> np.ndarray:
        """The same pulse's fluence in another definition: F_to = F_from A_from / A_to (E is the same).

        `to_definition` defaults to this beam's own. Example: an LG01 ring's FWHM-average fluence is
        0.8048 of its peak fluence, so 100 mJ/cm^2 peak is about 80.5 mJ/cm^2 ring-average:

        >>> from fabplan.beam import Lg01Beam
        >>> b = Lg01Beam(ring_diameter_um=10, threshold_fluence_mj_cm2=40)
        >>> round(float(b.convert_fluence(100.0, "peak", "ring-fwhm-average")), 1)
        80.5
        """
        to = self.fluence_definition if to_definition is None else to_definition
        f = np.asarray(fluence_mj_cm2, dtype=float)
        if from_definition == to:
            return f
        return f * (self.fluence_area_for(from_definition) / self.fluence_area_for(to))

    def fluence_definition_info(self) -> dict[str, Any]:
        """What the design's fluence numbers mean, for validate/plan output and the plan header."""
        area = self.fluence_area_um2
        return {
            "name": self.fluence_definition,
            "meaning": FLUENCE_DEFINITIONS[self.fluence_definition],
            "fluence_area_um2": area,
            "peak_over_fluence": area / self.effective_area_um2,  # F_pk A_eff = E = F A_def
            "uj_per_mj_cm2": area * UJ_PER_MJ_CM2_UM2,
        }

    def fluence_definition_text(self) -> str:
        return format_fluence_definition(self.fluence_definition_info())

    # ---- thresholds and energy ----------------------------------------------------------------
    def threshold_mj_cm2(self, pulses: np.ndarray | int = 1) -> np.ndarray:
        """F_th(N) = F_th(1) N^(S-1)."""
        n = np.asarray(pulses, dtype=float)
        if np.any(n < 1):
            raise UserError(f"pulses per shot must be >= 1, got {n[n < 1].ravel()[:3].tolist()}")
        return self.threshold_fluence_mj_cm2 * n ** (self.incubation_exponent - 1.0)

    def pulse_energy_uj(self, fluence_mj_cm2) -> np.ndarray:
        """Pulse energy that gives this fluence (in `fluence_definition`; default the peak)."""
        return np.asarray(fluence_mj_cm2, dtype=float) * self.fluence_area_um2 * UJ_PER_MJ_CM2_UM2

    def fluence_from_energy(self, energy_uj) -> np.ndarray:
        """Fluence (in `fluence_definition`; default the peak) of a pulse of this energy."""
        return np.asarray(energy_uj, dtype=float) / (self.fluence_area_um2 * UJ_PER_MJ_CM2_UM2)

    def fluence_at(self, r_um, peak_fluence_mj_cm2) -> np.ndarray:
        """F(r) for a shot of the given peak fluence (broadcasts)."""
        return np.asarray(peak_fluence_mj_cm2, dtype=float) * self.shape(np.asarray(r_um, dtype=float))

    def max_fluence_mj_cm2(self) -> float:
        """Highest usable peak fluence: the damage limit and the laser's energy, whichever is lower."""
        limits = [np.inf]
        if self.damage_fluence_mj_cm2 is not None:
            limits.append(self.damage_fluence_mj_cm2)
        if self.max_pulse_energy_uj is not None:
            limits.append(float(self.fluence_from_energy(self.max_pulse_energy_uj)))
        return float(min(limits))

    # ---- forward: fluence -> geometry ---------------------------------------------------------
    def _levels(self, fluence, pulses) -> np.ndarray:
        f = np.asarray(fluence, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(f > 0, self.threshold_mj_cm2(pulses) / f, np.inf)

    def _edge_diameter(self, radius_at_level, fluence_mj_cm2, pulses) -> np.ndarray:
        """2 x radius_at_level(F_th(N)/F) where the pulse ablates at all, NaN elsewhere."""

        def one(f, n):
            s = self._levels(f, n)
            ok = s <= 1.0
            out = np.full(s.shape, np.nan)
            out[ok] = 2.0 * radius_at_level(s[ok])
            return out

        return _unique_apply(one, fluence_mj_cm2, pulses)

    def disc_diameter_um(self, fluence_mj_cm2, pulses=1) -> np.ndarray:
        """Diameter of the standing disc (inner ablation edge x 2); NaN where nothing ablates."""
        return self._edge_diameter(self._inner_radius, fluence_mj_cm2, pulses)

    def trench_outer_diameter_um(self, fluence_mj_cm2, pulses=1) -> np.ndarray:
        """Outer diameter of the ablated annulus; NaN where nothing ablates."""
        return self._edge_diameter(self._outer_radius, fluence_mj_cm2, pulses)

    # ---- inverse: diameter -> fluence ---------------------------------------------------------
    def level_window(self) -> tuple[float, float]:
        """(s_lo, s_hi): levels over which the disc edge moves continuously along the inner flank.

        (0, 1) for a clean ring (LG01). A coherent image has ringing: below s_lo the dark centre (or a
        ripple in it) ablates too, above s_hi the edge jumps across a dip to the ring peak. Targets
        there are not makeable, so the range and the inverse stay inside this window.
        """
        return 0.0, 1.0

    def diameter_range_um(self, pulses: int = 1) -> tuple[float, float]:
        """(smallest, largest) disc diameter this beam can make with N pulses.

        Largest: the inner edge at F_pk -> F_th(N) (the ring peak for LG01; just before the edge
        would jump across a ringing dip for a coherent image). Smallest: at the highest usable
        fluence (damage limit / laser energy), or where the centre would start to ablate.
        """
        n = int(pulses)
        s_lo, s_hi = self.level_window()
        s_min = max(float(self.threshold_mj_cm2(n)) / self.max_fluence_mj_cm2(), s_lo)
        if s_min >= s_hi:
            raise UserError(
                f"{self.model} beam cannot make a disc with {n} pulse(s): threshold "
                f"{float(self.threshold_mj_cm2(n)):.4g} mJ/cm^2 needs a peak fluence above "
                f"{float(self.threshold_mj_cm2(n)) / s_hi:.4g} mJ/cm^2 but the maximum usable is "
                f"{self.max_fluence_mj_cm2():.4g} mJ/cm^2"
            )
        r = self._inner_radius(np.array([s_min, s_hi]))
        return 2.0 * float(r[0]), 2.0 * float(r[1])

    def fluence_for_diameter(self, diameter_um, pulses=1) -> np.ndarray:
        """Peak fluence that makes a disc of this diameter with N pulses (vectorised).

        Raises UserError naming the achievable range when any target is outside it; NaN -> NaN.
        """
        d = np.asarray(diameter_um, dtype=float)
        n = np.broadcast_to(np.asarray(pulses), d.shape) if d.ndim else np.asarray(pulses)
        d, n = np.broadcast_arrays(d, np.asarray(n))
        for nu in np.unique(n):
            sel = n == nu
            lo, hi = self.diameter_range_um(int(nu))
            tol = 1e-9 * max(hi, 1.0)
            bad = sel & ~np.isnan(d) & ~((d >= lo - tol) & (d <= hi + tol))  # NaN target -> NaN
            if np.any(bad):
                vals = np.unique(d[bad])
                what = (
                    f"disc diameter {vals[0]:.4g} um"
                    if vals.size == 1
                    else f"{int(bad.sum())} disc diameters ({vals[0]:.4g} to {vals[-1]:.4g} um)"
                )
                raise UserError(
                    f"{what} not achievable with the {self.model} beam and {int(nu)} pulse(s): "
                    f"achievable range is {lo:.4g} - {hi:.4g} um"
                )

        def one(dd, nn):
            lo, hi = self._inner_radius(np.array(self.level_window()))
            s = self._level_at_inner_radius(np.clip(dd / 2.0, lo, hi))
            return self.threshold_mj_cm2(nn) / s

        return _unique_apply(one, d, n)

    # ---- description --------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """JSON-able parameters (go into the plan hash and reports)."""
        out = {
            "model": self.model,
            **self._params(),
            "threshold_fluence_mj_cm2": self.threshold_fluence_mj_cm2,
            "incubation_exponent": self.incubation_exponent,
            "damage_fluence_mj_cm2": self.damage_fluence_mj_cm2,
            "max_pulse_energy_uj": self.max_pulse_energy_uj,
            "peak_radius_um": self.peak_radius_um,
            "effective_area_um2": self.effective_area_um2,
        }
        if self.fluence_definition != DEFAULT_FLUENCE_DEFINITION:  # the default keeps existing plan hashes
            out["fluence_definition"] = self.fluence_definition
            out["fluence_area_um2"] = self.fluence_area_um2
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k != "model")
        return f"{type(self).__name__}({inner})"


class TabulatedBeam(BeamModel):
    """A beam known as f(r) on a fine radial grid (annular image, measured profile).

    The inner edge is the first crossing of the level going out from the centre, the outer edge the
    first crossing coming in from outside (`crossing_table`); both are np.interp on cached arrays, so
    any number of discs costs one interpolation.
    """

    def __init__(self, r_um: np.ndarray, f: np.ndarray, **threshold):
        super().__init__(**threshold)
        r = np.asarray(r_um, dtype=float)
        f = np.clip(np.asarray(f, dtype=float), 0.0, None)
        peak = float(f.max())
        if not peak > 0:
            raise UserError("beam profile is zero everywhere")
        f = f / peak
        self._r = r
        self._f = f
        ipk = int(np.argmax(f))
        self._r_peak = float(r[ipk])
        self._area = float(np.trapezoid(f * 2.0 * np.pi * r, r))
        self._in_s, self._in_r = crossing_table(r[: ipk + 1], f[: ipk + 1])
        self._out_s, self._out_r = crossing_table(r[ipk:][::-1], f[ipk:][::-1])
        self._window = _widest_run(self._in_s, self._in_r, JUMP_UM)

    def level_window(self) -> tuple[float, float]:
        return self._window

    def shape(self, r_um):
        return np.interp(np.abs(np.asarray(r_um, dtype=float)), self._r, self._f, right=0.0)

    @property
    def peak_radius_um(self) -> float:
        return self._r_peak

    @property
    def effective_area_um2(self) -> float:
        return self._area

    def _inner_radius(self, s):
        s = np.asarray(s, dtype=float)
        out = np.interp(s, self._in_s, self._in_r)
        return np.where(s <= self._in_s[0], 0.0, out)

    def _outer_radius(self, s):
        return np.interp(np.asarray(s, dtype=float), self._out_s, self._out_r)

    def _level_at_inner_radius(self, r_um):
        return np.interp(np.asarray(r_um, dtype=float), self._in_r, self._in_s)

    def _radial_grid(self) -> tuple[np.ndarray, np.ndarray]:
        return self._r, self._f

    def radial_table(self) -> tuple[np.ndarray, np.ndarray]:
        """The cached (r_um, f) grid."""
        return self._r, self._f
