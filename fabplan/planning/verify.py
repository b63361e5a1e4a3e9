"""Verification of every shot before anything is ordered: one violation per class, with disc ids.

All checks are array operations: the neighbour check is a KD-tree `query_pairs` at the largest
interaction radius followed by exact circle arithmetic in numpy (every footprint is a circle, so
no polygons are needed); the film region and keep-outs use shapely 2 vectorised predicates
(`contains_xy`, `distance` on point arrays, an STRtree queried with the keep-outs).

Classes: unreachable (diameter outside the beam's range), no_ablation, centre_ablated,
trench_too_narrow, damage_fluence, max_pulse_energy, attenuator_range, annulus_hits_disc,
outside_region, in_keepout, outside_travel (and runup_outside_travel for fly lines, in build).

What each footprint means: the disc (predicted diameter) must lie wholly inside the film region;
the ablated annulus (out to the trench's outer diameter) must keep `process.margin` from every
other disc and must not reach into a keep-out; the trench (outer minus inner radius) must be at
least `process.margin` wide to isolate the disc. Region and keep-outs are in sample coordinates,
travel in stage coordinates (after alignment and focus map).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from fabplan.errors import Problem, ProblemsError, summarize_ids
from fabplan.geometry import keepout_hits, outside_region_mask


@dataclass
class Violation:
    kind: str
    message: str
    index: np.ndarray  # disc-table rows involved
    ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "count": int(len(self.index)), "ids": self.ids}


class PlanViolations(ProblemsError):
    """Verification failed: one Problem per violation class (exit code 2)."""

    def __init__(self, violations: list[Violation], file: str | None = None):
        self.violations = violations
        super().__init__([Problem(v.message, path=v.kind, file=file) for v in violations])


def _violation(kind: str, what: str, index: np.ndarray, ids: np.ndarray, detail: str = "") -> Violation:
    index = np.unique(np.asarray(index, dtype=np.int64))
    sel = ids[index]
    n = len(index)
    msg = f"{n} disc{'s' if n != 1 else ''} {what}: {summarize_ids(sel)}"
    if detail:
        msg += f" ({detail})"
    return Violation(kind, msg, index, [str(s) for s in sel[:20]])


def neighbour_conflicts(
    x: np.ndarray, y: np.ndarray, disc_r: np.ndarray, trench_r: np.ndarray, margin_um: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (k x 2) where one shot's ablated annulus comes within `margin_um` of the other disc.

    Shot i ablates out to trench_r[i]; disc j must keep its full radius disc_r[j] plus the margin:
    centre distance >= trench_r[i] + disc_r[j] + margin, in both directions. Returns the pairs and
    the shortfall (um) of each.
    """
    n = len(x)
    if n < 2:
        return np.empty((0, 2), np.int64), np.empty(0)
    reach = float(np.max(trench_r)) + float(np.max(disc_r)) + margin_um
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(reach, output_type="ndarray")
    if len(pairs) == 0:
        return pairs.reshape(0, 2), np.empty(0)
    i, j = pairs[:, 0], pairs[:, 1]
    dist = np.hypot(x[i] - x[j], y[i] - y[j])
    need = np.maximum(trench_r[i] + disc_r[j], trench_r[j] + disc_r[i]) + margin_um
    bad = dist < need - 1e-9
    order = np.lexsort((pairs[bad, 1], pairs[bad, 0]))
    return pairs[bad][order], (need - dist)[bad][order]


def verify_shots(design: Any, raw: Any, ids: np.ndarray, beam: Any) -> list[Violation]:
    """Every violation class found in the raw (unordered) shots; empty list when all is well."""
    proc = design.process
    out: list[Violation] = []
    n = len(raw)
    if n == 0:
        return out
    if raw.unreachable.any():
        ranges = "; ".join(
            f"N={k}: {lo:.3g}-{hi:.3g} um" for k, (lo, hi) in sorted(raw.diameter_ranges.items())
        )
        out.append(
            _violation(
                "unreachable",
                "have a target diameter the beam cannot make",
                np.flatnonzero(raw.unreachable),
                ids,
                f"achievable {ranges}" if ranges else "the beam cannot ablate with these pulse counts",
            )
        )
    no_abl = ~raw.unreachable & ~np.isfinite(raw.diameter_um)
    if no_abl.any():
        out.append(
            _violation(
                "no_ablation",
                "get a fluence below the ablation threshold F_th(N) (nothing ablates)",
                np.flatnonzero(no_abl),
                ids,
                f"F_th(1) = {beam.threshold_fluence_mj_cm2:g} mJ/cm^2",
            )
        )
    d = raw.diameter_um
    centre = np.isfinite(d) & (d <= 0)
    if centre.any():
        out.append(
            _violation(
                "centre_ablated",
                "would have their centre ablated too (fluence too high for this beam: no disc is left)",
                np.flatnonzero(centre),
                ids,
            )
        )
    width = (raw.trench_outer_um - d) / 2.0
    min_width = float(proc.margin)
    narrow = np.isfinite(width) & (d > 0) & (width < min_width - 1e-9)
    if narrow.any():
        out.append(
            _violation(
                "trench_too_narrow",
                f"have an ablated trench narrower than {min_width:g} um (process.margin): not isolated",
                np.flatnonzero(narrow),
                ids,
                f"narrowest {np.nanmin(width[narrow]):.3g} um",
            )
        )
    dmg = beam.damage_fluence_mj_cm2
    if dmg is not None:
        over = np.isfinite(raw.fluence_mj_cm2) & (raw.fluence_mj_cm2 > dmg)  # the beam range includes the limit itself
        if over.any():
            out.append(
                _violation(
                    "damage_fluence",
                    f"need a fluence above the film damage limit {dmg:g} mJ/cm^2",
                    np.flatnonzero(over),
                    ids,
                    f"highest {np.nanmax(raw.fluence_mj_cm2[over]):.4g} mJ/cm^2",
                )
            )
    emax = getattr(design.laser, "max_pulse_energy", None)
    if emax is not None:
        over = np.isfinite(raw.pulse_energy_uj) & (raw.pulse_energy_uj > emax * (1 + 1e-9))
        if over.any():
            out.append(
                _violation(
                    "max_pulse_energy",
                    f"need more than the laser's {emax:g} uJ per pulse",
                    np.flatnonzero(over),
                    ids,
                    f"highest {np.nanmax(raw.pulse_energy_uj[over]):.4g} uJ",
                )
            )
    if raw.attenuator_out_of_range.any():
        from fabplan.planning.shots import attenuator_energy_range

        lo, hi = attenuator_energy_range(design.laser.attenuator)
        out.append(
            _violation(
                "attenuator_range",
                f"need a pulse energy outside the attenuator's range {lo:.4g}-{hi:.4g} uJ",
                np.flatnonzero(raw.attenuator_out_of_range),
                ids,
            )
        )
    disc_r = np.nan_to_num(d, nan=0.0).clip(min=0) / 2.0
    trench_r = np.nan_to_num(raw.trench_outer_um, nan=0.0) / 2.0
    pairs, short = neighbour_conflicts(raw.sample_x_um, raw.sample_y_um, disc_r, trench_r, float(proc.margin))
    if len(pairs):
        a, b = pairs[0]
        out.append(
            _violation(
                "annulus_hits_disc",
                f"are within reach of a neighbour's ablated annulus (margin {proc.margin:g} um)",
                pairs.ravel(),
                ids,
                f"{len(pairs)} pairs, first {ids[a]} / {ids[b]} short by {short[0]:.3g} um",
            )
        )
    region = design.sample.region_polygon()
    outside = outside_region_mask(region, raw.sample_x_um, raw.sample_y_um, disc_r)
    if outside.any():
        out.append(
            _violation(
                "outside_region", "are not wholly inside the film region", np.flatnonzero(outside), ids
            )
        )
    keepouts = design.sample.keepout_geometries()
    hits = keepout_hits(keepouts, raw.sample_x_um, raw.sample_y_um, trench_r)
    if hits.shape[1]:
        names = [k.name or f"keepouts[{i}]" for i, k in enumerate(design.sample.keepouts)]
        which = sorted({names[k] for k in hits[1].tolist()})
        out.append(
            _violation(
                "in_keepout",
                "would ablate inside a keep-out",
                hits[0],
                ids,
                "keep-outs: " + ", ".join(which),
            )
        )
    trav = proc.travel
    bad = np.zeros(n, bool)
    for axis, v in (("x", raw.x_um), ("y", raw.y_um), ("z", raw.z_um)):
        lo, hi = getattr(trav, axis)
        bad |= (v < lo) | (v > hi)
    if bad.any():
        out.append(
            _violation(
                "outside_travel",
                "are outside the stage travel (stage coordinates after alignment and focus map)",
                np.flatnonzero(bad),
                ids,
                f"travel x {tuple(trav.x)}, y {tuple(trav.y)}, z {tuple(trav.z)} um",
            )
        )
    return out
