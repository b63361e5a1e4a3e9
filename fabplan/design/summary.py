"""One-screen summary of a design and its discs (for `fabplan validate`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fabplan.design import models
from fabplan.design.checks import lattice_shape
from fabplan.disctable import DiscTable


def _range(values: np.ndarray) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    return [float(finite.min()), float(finite.max())]


def design_summary(design: models.Design, discs: DiscTable, diameters_um: np.ndarray | None = None) -> dict[str, Any]:
    """JSON-able summary. `diameters_um`: the diameter each disc will have (its target, or the beam
    model's prediction where the design gives a fluence), so every output shows the value used."""
    arrays = []
    for i, a in enumerate(design.arrays):
        sel = discs.array_index == i
        entry: dict[str, Any] = {"id": a.id, "discs": int(sel.sum())}
        if isinstance(a, models.LatticeArray):
            entry.update(
                lattice=a.lattice, shape=list(lattice_shape(a)), pitch_um=a.pitch, skipped=len(a.skip)
            )
        else:
            entry.update(lattice="explicit")
        sub = discs.take(sel)
        entry["diameter_um"] = _range(sub.diameter_um)
        if diameters_um is not None:
            predicted = np.asarray(diameters_um, float)[sel] if len(diameters_um) == len(discs) else None
            if predicted is not None and np.isnan(sub.diameter_um).any():
                entry["predicted_diameter_um"] = _range(np.where(np.isnan(sub.diameter_um), predicted, np.nan))
        entry["fluence_mj_cm2"] = _range(sub.fluence_mj_cm2)
        entry["pulses"] = _range(sub.pulses.astype(float))
        arrays.append(entry)
    xmin, ymin, xmax, ymax = discs.bounds()
    profile = design.beam.profile
    return {
        "name": design.name,
        "file": str(design.path) if design.path else None,
        "discs": len(discs),
        "arrays": arrays,
        "extent_um": {"x": [xmin, xmax], "y": [ymin, ymax], "width": xmax - xmin, "height": ymax - ymin},
        "diameter_um": _range(discs.diameter_um),
        "fluence_mj_cm2": _range(discs.fluence_mj_cm2),
        "pulses": _range(discs.pulses.astype(float)),
        "film": {"material": design.sample.film.material, "thickness_nm": design.sample.film.thickness},
        "beam": {
            "model": profile.model,
            "threshold_fluence_mj_cm2": design.beam.threshold_fluence,
            "incubation_exponent": design.beam.incubation_exponent,
            "damage_fluence_mj_cm2": design.beam.damage_fluence,
        },
        "mode": design.process.mode,
        "fiducials": sorted(design.sample.fiducials),
        "keepouts": len(design.sample.keepouts),
        "aligned": design.process.alignment is not None,
        "focus_map": design.process.focus_map.model if design.process.focus_map else None,
    }


def _fmt_range(r: list[float] | None, unit: str) -> str:
    if r is None:
        return "-"
    return f"{r[0]:g} {unit}" if r[0] == r[1] else f"{r[0]:g} - {r[1]:g} {unit}"


def _fmt_diameter(a: dict[str, Any]) -> str:
    """Target diameters, and the beam model's prediction for discs given by fluence (marked)."""
    parts = [] if a["diameter_um"] is None else [_fmt_range(a["diameter_um"], "um")]
    pred = a.get("predicted_diameter_um")
    if pred is not None:
        lo, hi = pred
        parts.append((f"{lo:.2f}" if lo == hi else f"{lo:.2f} - {hi:.2f}") + " um predicted from F")
    return " + ".join(parts) or "-"


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"design {s['name']!r}: {s['discs']:,} discs in {len(s['arrays'])} array(s), valid"]
    for a in s["arrays"]:
        shape = f"{a['shape'][0]} x {a['shape'][1]}" if "shape" in a else "explicit"
        pitch = a.get("pitch_um")
        pitch_txt = (
            f", pitch {pitch if not isinstance(pitch, (list, tuple)) else ' x '.join(map(str, pitch))} um"
            if pitch
            else ""
        )
        lines.append(
            f"  {a['id']:<8} {a['lattice']:<8} {shape:<11} {a['discs']:>9,} discs{pitch_txt}; "
            f"D {_fmt_diameter(a)}, F {_fmt_range(a['fluence_mj_cm2'], 'mJ/cm^2')}, "
            f"pulses {_fmt_range(a['pulses'], '')}".rstrip()
        )
    e = s["extent_um"]
    lines.append(
        f"extent: x {e['x'][0]:g} .. {e['x'][1]:g} um, y {e['y'][0]:g} .. {e['y'][1]:g} um "
        f"({e['width']:g} x {e['height']:g} um)"
    )
    b = s["beam"]
    lines.append(
        f"film: {s['film']['material']} {s['film']['thickness_nm']:g} nm; beam: {b['model']}, "
        f"F_th(1) {b['threshold_fluence_mj_cm2']:g} mJ/cm^2, S {b['incubation_exponent']:g}, "
        f"damage {b['damage_fluence_mj_cm2']:g} mJ/cm^2; mode: {s['mode']}"
    )
    extras = []
    if s["fiducials"]:
        extras.append("fiducials " + ", ".join(s["fiducials"]))
    if s["keepouts"]:
        extras.append(f"{s['keepouts']} keep-out(s)")
    if s["aligned"]:
        extras.append("aligned")
    if s["focus_map"]:
        extras.append(f"focus map ({s['focus_map']})")
    if extras:
        lines.append("; ".join(extras))
    return "\n".join(lines)
