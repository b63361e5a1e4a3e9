"""Dry-run measurements: simulate lasing spectra for a set of discs, write them as a spectrometer
would (one CSV per pump fluence) plus the manifest that `fabplan lab import` reads."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

DEFAULT_FLUENCES = tuple(np.round(np.linspace(2.0, 60.0, 20), 3))


def _disc_list(discs, default_diameter_um: float) -> list[dict]:
    """Accept a DiscTable, {id: diameter}, [(id, diameter)], or [{"disc_id":..., "diameter_um":...}]."""
    if hasattr(discs, "ids") and hasattr(discs, "diameter_um"):
        items = [
            {"disc_id": str(i), "diameter_um": float(d)}
            for i, d in zip(discs.ids, discs.diameter_um, strict=False)
        ]
    elif isinstance(discs, dict):
        items = [{"disc_id": str(k), "diameter_um": float(v)} for k, v in discs.items()]
    else:
        items = [
            dict(x) if isinstance(x, dict) else {"disc_id": str(x[0]), "diameter_um": float(x[1])}
            for x in discs
        ]
    for it in items:
        d = it.get("diameter_um")
        if d is None or not math.isfinite(float(d)):
            it["diameter_um"] = default_diameter_um
    return items


def simulate_series(
    discs,
    out_dir: str | os.PathLike,
    fluences_uj_cm2=DEFAULT_FLUENCES,
    seed: int = 0,
    film_quality_sd: float = 0.12,
    dead_fraction: float = 0.1,
    damaged_fraction: float = 0.02,
    default_diameter_um: float = 10.0,
    spectrometer=None,
    beta: float = 5e-3,
    sample: str | None = None,
) -> Path:
    """Write spectra for every disc and `out_dir/manifest.csv`; returns the manifest path.

    Each disc gets a film quality ~ N(1, film_quality_sd) (clipped to 0.4-1.3; it scales the gain
    cross-section of the paper's Table 1), a `dead_fraction` of discs do not lase and a
    `damaged_fraction` are damaged at 80 % of the top fluence. Thresholds and Q are predicted from
    physics for each disc's diameter (sim/lasing.py, fabplan.physics.lasing); fluences are the peak
    fluence of a 20 um FWHM Gaussian pump spot. Per-disc overrides: items may carry film_quality,
    threshold_uj_cm2, beta, sample (files then go to out_dir/<sample>/<disc_id>/). The ground
    truth goes to `out_dir/truth.json`, keyed by disc id (by "<sample>/<disc id>" with samples).
    """
    from sim.lasing import LasingDisc, Spectrometer, write_series
    from sim.lasing import simulate_series as sim_one

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = spectrometer or Spectrometer()
    rng = np.random.default_rng(seed)
    f = np.asarray(fluences_uj_cm2, dtype=np.float64)
    rows, truth = [], {}
    for it in _disc_list(discs, default_diameter_um):
        u = rng.random()
        quality = float(np.clip(rng.normal(1.0, film_quality_sd), 0.4, 1.3))
        if u < dead_fraction:
            quality = 0.1
        damage = 0.8 * float(f.max()) if dead_fraction <= u < dead_fraction + damaged_fraction else None
        disc = LasingDisc(
            diameter_um=float(it["diameter_um"]),
            film_quality=float(it.get("film_quality", quality)),
            threshold_uj_cm2=it.get("threshold_uj_cm2"),
            beta=float(it.get("beta", beta)),
            damage_uj_cm2=damage,
        )
        s = sim_one(disc, f, spec, rng)
        smp = it.get("sample") or sample
        for disc_id, fl, path, t in write_series(s, out / smp if smp else out, it["disc_id"]):
            rows.append((disc_id, f"{fl:g}", os.path.relpath(path, out), f"{t:g}", smp or ""))
        truth[f"{smp}/{it['disc_id']}" if smp else it["disc_id"]] = {**s.truth, "damage_uj_cm2": damage}
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        head = ["disc_id", "fluence_uj_cm2", "spectrum", "integration_s", "resolution_nm"]
        with_sample = any(r[4] for r in rows)
        w.writerow(head + (["sample"] if with_sample else []))
        for r in rows:
            w.writerow([*r[:4], f"{spec.resolution_nm:g}"] + ([r[4]] if with_sample else []))
    (out / "truth.json").write_text(json.dumps(truth, indent=1, default=_nan_none), encoding="utf-8")
    return manifest


def _nan_none(o):
    return None
