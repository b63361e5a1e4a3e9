"""Design + DiscTable + beam -> one shot per disc (unordered), all columns as numpy arrays.

Discs given by diameter get the fluence that makes that diameter; discs given by fluence keep it.
Targets the beam cannot reach, or energies outside the attenuator's range, do not raise here:
they become NaN and a `bad` mask, so verification can name every such disc at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fabplan.attenuator import attenuator_setting
from fabplan.disctable import DiscTable


@dataclass
class RawShots:
    """Per-disc shot parameters in disc-table order, plus masks for targets that failed."""

    disc_index: np.ndarray
    x_um: np.ndarray
    y_um: np.ndarray
    z_um: np.ndarray
    sample_x_um: np.ndarray
    sample_y_um: np.ndarray
    fluence_mj_cm2: np.ndarray
    pulse_energy_uj: np.ndarray
    pulses: np.ndarray
    attenuator: np.ndarray
    diameter_um: np.ndarray
    trench_outer_um: np.ndarray
    unreachable: np.ndarray  # diameter target outside the beam's range for its pulse count
    attenuator_out_of_range: np.ndarray
    diameter_ranges: dict[int, tuple[float, float]]

    def __len__(self) -> int:
        return len(self.x_um)


def attenuator_energy_range(attenuator: Any) -> tuple[float, float]:
    """(min, max) pulse energy an attenuator can deliver, uJ ((0, inf) without one)."""
    if attenuator is None:
        return 0.0, float("inf")
    if attenuator.type == "waveplate":
        return float(attenuator.energy_min), float(attenuator.energy_max)
    return 0.0, float(attenuator.energy_at_100)


def make_raw_shots(design: Any, discs: DiscTable, beam: Any, to_stage=None, focus=None) -> RawShots:
    """Fluence, energy, attenuator, predicted geometry and stage position for every disc."""
    from fabplan.design.transforms import focus_z, sample_to_stage

    n = len(discs)
    pulses = discs.pulses.astype(np.int64)
    fluence = discs.fluence_mj_cm2.astype(float).copy()
    need = np.isnan(fluence)
    unreachable = np.zeros(n, bool)
    ranges: dict[int, tuple[float, float]] = {}
    if need.any():
        for nu in np.unique(pulses[need]).tolist():
            sel = need & (pulses == nu)
            try:
                lo, hi = beam.diameter_range_um(int(nu))
            except Exception:  # the beam cannot ablate at all with this pulse count
                unreachable |= sel
                continue
            ranges[int(nu)] = (lo, hi)
            tol = 1e-9 * max(hi, 1.0)
            d = discs.diameter_um[sel]
            bad = ~((d >= lo - tol) & (d <= hi + tol))
            idx = np.flatnonzero(sel)
            unreachable[idx[bad]] = True
            good = idx[~bad]
            if good.size:
                fluence[good] = beam.fluence_for_diameter(
                    np.clip(discs.diameter_um[good], lo, hi), np.full(good.size, nu)
                )
    fluence[unreachable] = np.nan
    ok = ~unreachable
    diameter = np.full(n, np.nan)
    trench = np.full(n, np.nan)
    energy = np.full(n, np.nan)
    if ok.any():
        diameter[ok] = beam.disc_diameter_um(fluence[ok], pulses[ok])
        trench[ok] = beam.trench_outer_diameter_um(fluence[ok], pulses[ok])
        energy[ok] = beam.pulse_energy_uj(fluence[ok])
    att = design.laser.attenuator
    lo_e, hi_e = attenuator_energy_range(att)
    tol = 1e-9 * max(hi_e if np.isfinite(hi_e) else 1.0, 1e-12)
    att_bad = ok & ((energy < lo_e - tol) | (energy > hi_e + tol)) if att is not None else np.zeros(n, bool)
    setting = np.full(n, np.nan)
    good = ok & ~att_bad
    if att is not None and good.any():
        setting[good] = attenuator_setting(att, energy[good])
    tr = to_stage or sample_to_stage(design)
    xs, ys = tr(discs.x_um, discs.y_um)
    zf = focus or focus_z(design)
    zs = np.asarray(zf(xs, ys), float) if n else np.empty(0)
    return RawShots(
        disc_index=np.arange(n),
        x_um=np.asarray(xs, float),
        y_um=np.asarray(ys, float),
        z_um=zs,
        sample_x_um=discs.x_um.astype(float),
        sample_y_um=discs.y_um.astype(float),
        fluence_mj_cm2=fluence,
        pulse_energy_uj=energy,
        pulses=pulses,
        attenuator=setting,
        diameter_um=diameter,
        trench_outer_um=trench,
        unreachable=unreachable,
        attenuator_out_of_range=att_bad,
        diameter_ranges=ranges,
    )
