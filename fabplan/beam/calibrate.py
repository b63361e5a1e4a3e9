"""Fit the ablation parameters of a donut beam to a measured dose matrix.

The donut analogue of Liu's method (Liu 1982 fits D^2 against ln E for a Gaussian spot): the
measured disc diameters are fitted with the beam's own closed-form or tabulated inner edge,
    D = 2 r_in(s),  s = F_th(1) N^(S-1) / F_pk,
with F_pk the peak fluence (given, or pulse energy / effective area of the ring). Free parameters:
F_th(1); S when more than one pulse count was measured; for LG01 also the ring diameter 2 r_p unless
fixed. Weighted non-linear least squares on the diameters: by default the measurement noise is taken
as relative (a percentage of D, as for SEM/optical sizing whose error scales with the field of view),
so each residual is divided by its measured diameter (`diameter_noise="absolute"` gives the plain
um residuals). 1-sigma uncertainties from the Jacobian covariance of the weighted fit scaled by the
weighted residual variance (the curve_fit convention). An unweighted fit under relative noise gave
sigmas 1.15-1.58x too small (2-sigma coverage 82-89 %, issue 18).
Rows marked "not ablated" are not fitted, but are checked against the fitted threshold.

Fluence definitions (`fabplan.beam.base.FLUENCE_DEFINITIONS`): fluence doses may be given in any
definition (per row, or `dose_definition` for rows that do not say); each is converted to the peak
fluence the fit works in with the beam's own areas, F_pk = F_def A_def / A_eff (the ratio depends on
the profile's shape only, so it is the same for any LG01 ring size), and the fitted threshold is
reported in `fluence_definition` (the design's; default the doses' own, or peak for energy doses).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import least_squares
from scipy.special import lambertw

from fabplan.beam.annular import AnnularBeam
from fabplan.beam.base import FLUENCE_DEFINITIONS, UJ_PER_MJ_CM2_UM2, BeamModel
from fabplan.beam.dose_csv import DoseData
from fabplan.beam.lg01 import Lg01Beam
from fabplan.errors import UserError
from fabplan.errors import summarize_ids as _summ

PARAM_UNITS = {"threshold_fluence_mj_cm2": "mJ/cm^2", "incubation_exponent": "", "ring_diameter_um": "um"}
S_BOUNDS = (0.05, 1.5)


@dataclass
class CalibrationResult:
    model: str
    values: dict[str, float]
    stderr: dict[str, float | None]  # None: held fixed
    geometry: dict[str, float]  # the profile's fixed geometry (annular mask, or a fixed LG01 ring)
    dose_kind: str
    n_rows: int
    n_fit: int
    rms_um: float
    correlation: dict[str, dict[str, float]]
    predicted_um: np.ndarray  # per row (NaN where predicted not ablated)
    residual_um: np.ndarray  # predicted - measured on fitted rows, NaN elsewhere
    peak_fluence_mj_cm2: np.ndarray  # per row, with the fitted ring (energy input) or as given
    threshold_energy_stderr_uj: float | None = None
    warnings: list[str] = field(default_factory=list)
    fluence_definition: str = "peak"  # what threshold_fluence_mj_cm2 (and the yaml block) is in
    peak_over_fluence: float = 1.0  # F_pk / F in that definition (1 for peak)
    dose_definitions: list[str] = field(default_factory=list)  # the fluence doses' definitions ([] = energies)

    def beam(self, damage_fluence_mj_cm2: float | None = None) -> BeamModel:
        """The fitted beam as a BeamModel (fluences, damage included, in `fluence_definition`)."""
        common = {
            "threshold_fluence_mj_cm2": self.values["threshold_fluence_mj_cm2"],
            "incubation_exponent": self.values["incubation_exponent"],
            "damage_fluence_mj_cm2": damage_fluence_mj_cm2,
            "fluence_definition": self.fluence_definition,
        }
        if self.model == "lg01":
            ring = self.values.get("ring_diameter_um", self.geometry.get("ring_diameter_um"))
            return Lg01Beam(ring_diameter_um=ring, **common)
        return AnnularBeam(**self.geometry, **common)

    @property
    def threshold_energy_uj(self) -> float:
        """Single-shot threshold as a pulse energy: F_th(1) x effective area of the ring."""
        return float(self.beam().pulse_energy_uj(self.values["threshold_fluence_mj_cm2"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "parameters": {
                k: {
                    "value": v,
                    "stderr": self.stderr.get(k),
                    "unit": PARAM_UNITS[k],
                    "fixed": self.stderr.get(k) is None,
                }
                for k, v in self.values.items()
            },
            "geometry": self.geometry,
            "threshold_energy_uj": self.threshold_energy_uj,
            "threshold_energy_stderr_uj": self.threshold_energy_stderr_uj,
            "dose_kind": self.dose_kind,
            "dose_fluence_definitions": self.dose_definitions,
            "fluence_definition": self.beam().fluence_definition_info(),
            "n_rows": self.n_rows,
            "n_fit": self.n_fit,
            "rms_residual_um": self.rms_um,
            "correlation": self.correlation,
            "warnings": self.warnings,
        }

    def yaml_block(self, damage_fluence_mj_cm2: float | None = None) -> str:
        """The design's `beam:` block with the fitted values, ready to paste."""
        v, e = self.values, self.stderr

        def note(k: str) -> str:
            return "held fixed" if e.get(k) is None else f"+/- {e[k]:.2g} (1 sigma, fitted)"

        if self.model == "lg01":
            ring = v.get("ring_diameter_um", self.geometry.get("ring_diameter_um"))
            ring_note = note("ring_diameter_um") if "ring_diameter_um" in v else "held fixed"
            profile = f"  profile: {{model: lg01, ring_diameter: {ring:.4g} um}}  # ring: {ring_note}"
        else:
            g = self.geometry
            profile = (
                f"  profile: {{model: annular, inner_diameter: {g['inner_diameter_um']:.4g} um, "
                f"outer_diameter: {g['outer_diameter_um']:.4g} um, na: {g['na']:.4g}}}"
            )
        lines = [
            "beam:",
            profile,
            f"  threshold_fluence: {v['threshold_fluence_mj_cm2']:.4g} mJ/cm^2  # "
            + note("threshold_fluence_mj_cm2"),
            f"  incubation_exponent: {v['incubation_exponent']:.3g}  # " + note("incubation_exponent"),
            # Say which definition these fluences are in, so the block is not pasted under another.
            f"  fluence_definition: {self.fluence_definition}  # these fluences are "
            + ("the maximum of F(r)" if self.fluence_definition == "peak" else
               FLUENCE_DEFINITIONS[self.fluence_definition].split(":", 1)[-1].strip()),
        ]
        if damage_fluence_mj_cm2 is not None:
            lines.append(
                f"  damage_fluence: {damage_fluence_mj_cm2:.4g} mJ/cm^2  # not fitted: from your design"
            )
        else:
            lines.append("  # damage_fluence: <required; not measured by this fit: keep your design's value>")
        return "\n".join(lines) + "\n"


class _Model:
    """Disc diameter as a function of (dose, pulses) and the parameters, for one beam geometry."""

    def __init__(self, model: str, dose_kind: str, geometry: dict[str, float]):
        self.model, self.dose_kind, self.geometry = model, dose_kind, geometry
        if model == "annular":
            self._beam = AnnularBeam(**geometry, threshold_fluence_mj_cm2=1.0)

    def area_um2(self, ring_diameter_um: float) -> float:
        if self.model == "lg01":
            return float(np.e * np.pi * (ring_diameter_um / 2) ** 2)
        return self._beam.effective_area_um2

    def peak_fluence(self, dose, ring_diameter_um: float) -> np.ndarray:
        if self.dose_kind == "fluence_mj_cm2":
            return np.asarray(dose, dtype=float)
        return np.asarray(dose, dtype=float) / (self.area_um2(ring_diameter_um) * UJ_PER_MJ_CM2_UM2)

    def levels(self, dose, pulses, fth, s_exp, ring) -> np.ndarray:
        return fth * np.asarray(pulses, dtype=float) ** (s_exp - 1.0) / self.peak_fluence(dose, ring)

    def diameter(self, dose, pulses, fth, s_exp, ring, extend: bool = True) -> np.ndarray:
        """Predicted D; beyond threshold (s > 1) continued as 2 r_peak s so the fit is pushed back."""
        s = self.levels(dose, pulses, fth, s_exp, ring)
        sc = np.clip(s, 0.0, 1.0)
        if self.model == "lg01":
            rp = ring / 2
            inner = 2 * rp * np.sqrt(np.clip(-np.real(lambertw(-sc / np.e, 0)), 0.0, 1.0))
        else:
            rp = self._beam.peak_radius_um
            inner = 2 * self._beam._inner_radius(sc)
        if not extend:
            return np.where(s <= 1, inner, np.nan)
        return np.where(s <= 1, inner, 2 * rp * s)


def calibrate(
    data: DoseData,
    model: str = "lg01",
    *,
    ring_diameter_um: float | None = None,
    inner_diameter_um: float | None = None,
    outer_diameter_um: float | None = None,
    na: float | None = None,
    wavelength_nm: float = 515.0,
    incubation_exponent: float | None = None,
    diameter_noise: str = "relative",
    dose_definition: str = "peak",
    fluence_definition: str | None = None,
) -> CalibrationResult:
    """Fit F_th(1), S (and the LG01 ring diameter unless given) to a dose matrix.

    `diameter_noise`: "relative" (sigma proportional to D, the default) or "absolute" (same sigma in um).
    `dose_definition`: the definition of fluence doses whose row does not state one (`data.definition`).
    `fluence_definition`: the definition the threshold is reported in (the design's); None = the
    doses' own when they share one, else peak.
    """
    for what, name in (("dose fluence", dose_definition), ("output fluence", fluence_definition or "peak")):
        if name not in FLUENCE_DEFINITIONS:
            raise UserError(f"unknown {what} definition {name!r} (expected {', '.join(FLUENCE_DEFINITIONS)})")
    if diameter_noise not in ("relative", "absolute"):
        raise UserError(f"diameter noise must be 'relative' or 'absolute', not {diameter_noise!r}")
    if model == "lg01":
        geometry = {} if ring_diameter_um is None else {"ring_diameter_um": float(ring_diameter_um)}
    elif model == "annular":
        if inner_diameter_um is None or outer_diameter_um is None or na is None:
            raise UserError(
                "annular calibration needs the mask geometry: --inner-diameter, --outer-diameter and --na "
                "(or --design with an annular beam)"
            )
        geometry = {
            "inner_diameter_um": float(inner_diameter_um),
            "outer_diameter_um": float(outer_diameter_um),
            "na": float(na),
            "wavelength_nm": float(wavelength_nm),
        }
    else:
        raise UserError(f"calibrate supports --beam lg01 or annular, not {model!r}")
    # The shape alone fixes the ratios between definitions (LG01 is self-similar in its ring size).
    shape = (
        Lg01Beam(ring_diameter_um=geometry.get("ring_diameter_um", 10.0), threshold_fluence_mj_cm2=1.0)
        if model == "lg01"
        else AnnularBeam(**geometry, threshold_fluence_mj_cm2=1.0)
    )
    dose_defs: list[str] = []
    if data.dose_kind == "fluence_mj_cm2":
        stated = data.definition if data.definition is not None else np.full(data.dose.size, "", dtype=object)
        row_defs = np.where(stated != "", stated, dose_definition)  # a row's own, else the caller's
        dose_defs = sorted(set(row_defs.tolist()))
        try:
            to_peak = {d: shape.fluence_area_for(d) / shape.effective_area_um2 for d in dose_defs}
        except UserError as exc:  # geometric-annulus doses on an LG01 fit
            raise UserError(f"{data.source}: fluence doses: {exc}") from None
        data = replace(data, dose=data.dose * np.array([to_peak[d] for d in row_defs], dtype=float))
    out_def = fluence_definition or (dose_defs[0] if len(dose_defs) == 1 else "peak")
    k_out = shape.fluence_area_for(out_def) / shape.effective_area_um2  # F_pk / F_out
    m = _Model(model, data.dose_kind, geometry)

    fit = data.ablated
    x, n, d = data.dose[fit], data.pulses[fit], data.diameter_um[fit]
    warnings: list[str] = []
    free = ["threshold_fluence_mj_cm2"]
    s_fixed = incubation_exponent
    if s_fixed is None and np.unique(n).size < 2:
        s_fixed = 0.8
        warnings.append(
            "only one pulse count measured: the incubation exponent S cannot be fitted, held at 0.8 "
            "(measure several pulse counts to fit it)"
            + (
                "; F_th(1) then rests on that assumption since no single-shot sites were measured"
                if n[0] != 1
                else ""
            )
        )
    if s_fixed is None:
        free.append("incubation_exponent")
    if model == "lg01" and ring_diameter_um is None:
        free.append("ring_diameter_um")
    if x.size <= len(free):
        raise UserError(
            f"{data.source}: {x.size} ablated row(s) cannot determine {len(free)} parameter(s) "
            f"({', '.join(free)}): need at least {len(free) + 1}"
        )

    def unpack(p: np.ndarray) -> tuple[float, float, float]:
        vals = dict(zip(free, p, strict=True))
        return (
            vals["threshold_fluence_mj_cm2"],
            vals.get("incubation_exponent", s_fixed),
            vals.get("ring_diameter_um", geometry.get("ring_diameter_um", np.nan)),
        )

    # Weights: residuals in units of the median diameter's noise, so the fit's cost and the rms check
    # below stay in um-like units whichever noise model is used.
    wts = float(np.median(d)) / d if diameter_noise == "relative" else np.ones_like(d)

    def residuals(p: np.ndarray) -> np.ndarray:
        fth, s_exp, ring = unpack(p)
        return (m.diameter(x, n, fth, s_exp, ring) - d) * wts

    p0 = _start(m, free, x, n, d, s_fixed, geometry, residuals)
    lower = [1e-9 if k != "incubation_exponent" else S_BOUNDS[0] for k in free]
    upper = [np.inf if k != "incubation_exponent" else S_BOUNDS[1] for k in free]
    res = least_squares(residuals, p0, bounds=(lower, upper), x_scale="jac", diff_step=1e-6)
    _refuse_degenerate(data.source, model, free, res, d)
    dof = x.size - len(free)
    s2 = 2.0 * res.cost / dof
    cov = s2 * np.linalg.pinv(res.jac.T @ res.jac)
    err = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(err, err)

    fth, s_exp, ring = unpack(res.x)
    values = {"threshold_fluence_mj_cm2": float(fth), "incubation_exponent": float(s_exp)}
    if model == "lg01" and "ring_diameter_um" in free:
        values["ring_diameter_um"] = float(ring)
    stderr: dict[str, float | None] = {k: None for k in values}
    stderr.update({k: float(e) for k, e in zip(free, err, strict=True)})

    # E_th(1) = F_th(1) x area(ring): often much better determined than F_th alone (they correlate).
    def e_th(p: np.ndarray) -> float:
        f, _, rg = unpack(p)
        return f * m.area_um2(rg) * UJ_PER_MJ_CM2_UM2

    grad = np.array(
        [
            (e_th(res.x + h) - e_th(res.x - h)) / (2 * h[i])
            for i, h in enumerate(np.diag(1e-6 * np.abs(res.x)))
        ]
    )
    e_th_err = float(np.sqrt(max(grad @ cov @ grad, 0.0)))

    pred = m.diameter(data.dose, data.pulses, fth, s_exp, ring, extend=False)
    resid = np.where(fit, pred - data.diameter_um, np.nan)
    _checks(data, m, values, stderr, fth, s_exp, ring, pred, warnings)
    # Fitted in peak fluence; reported in out_def (a constant factor: stderr scales with it).
    values["threshold_fluence_mj_cm2"] /= k_out
    if stderr["threshold_fluence_mj_cm2"] is not None:
        stderr["threshold_fluence_mj_cm2"] /= k_out
    return CalibrationResult(
        model=model,
        values=values,
        stderr=stderr,
        geometry=geometry,
        dose_kind=data.dose_kind,
        n_rows=int(data.dose.size),
        n_fit=int(x.size),
        rms_um=float(np.sqrt(np.mean((res.fun / wts) ** 2))),
        correlation={a: {b: float(corr[i, j]) for j, b in enumerate(free)} for i, a in enumerate(free)},
        predicted_um=pred,
        residual_um=resid,
        peak_fluence_mj_cm2=m.peak_fluence(data.dose, ring),
        threshold_energy_stderr_uj=e_th_err,
        warnings=warnings,
        fluence_definition=out_def,
        peak_over_fluence=float(k_out),
        dose_definitions=dose_defs,
    )


def _refuse_degenerate(source: str, model: str, free: list[str], res, d: np.ndarray) -> None:
    """UserError when the data cannot determine the parameters or the model cannot reproduce them."""
    reasons = []
    norms = np.linalg.norm(res.jac, axis=0)
    dead = [k for k, nrm in zip(free, norms, strict=True) if not nrm > 0]
    if dead:
        reasons.append(f"the diameters do not depend on {', '.join(dead)} at the best fit")
    else:
        sv = np.linalg.svd(res.jac / norms, compute_uv=False)
        if sv[-1] < 1e-4 * sv[0]:
            reasons.append(
                f"{', '.join(free)} are not separately determined (measure over a wider range of doses"
                + (", or hold the ring diameter with --ring-diameter" if "ring_diameter_um" in free else "")
                + ")"
            )
    rms = float(np.sqrt(np.mean(res.fun**2)))
    if rms > 0.2 * float(np.median(d)):
        reasons.append(
            f"the {model} model cannot reproduce the measured diameters (rms misfit {rms:.3g} um for a median "
            f"diameter of {float(np.median(d)):.3g} um): check the dose units, the beam model and its geometry"
        )
    if reasons:
        raise UserError(f"{source}: calibration failed: " + "; ".join(reasons))


def _start(m: _Model, free, x, n, d, s_fixed, geometry, residuals) -> np.ndarray:
    """Coarse grid over the threshold (and ring size) for a start inside the basin of the fit."""
    s0 = 0.8 if s_fixed is None else s_fixed
    rings = [geometry.get("ring_diameter_um", np.nan)]
    if "ring_diameter_um" in free:
        rings = list(np.max(d) * np.array([1.05, 1.2, 1.4, 1.7, 2.2, 3.0]))
    best, best_cost = None, np.inf
    for ring in rings:
        f = m.peak_fluence(x, ring) * np.asarray(n, dtype=float) ** (1.0 - s0)  # single-shot equivalent
        for fth in np.geomspace(f.min() / 50.0, f.max(), 120):
            vals = {"threshold_fluence_mj_cm2": fth, "incubation_exponent": s0, "ring_diameter_um": ring}
            p = np.array([vals[k] for k in free])
            cost = float(np.sum(residuals(p) ** 2))
            if cost < best_cost:
                best, best_cost = p, cost
    return best


def _checks(data, m, values, stderr, fth, s_exp, ring, pred, warnings) -> None:
    """Consistency warnings a lab should see before pasting the numbers."""
    s = m.levels(data.dose, data.pulses, fth, s_exp, ring)
    lines = data.line
    wrong_off = ~data.ablated & (s <= 1)
    if np.any(wrong_off):
        warnings.append(
            "rows recorded as not ablated but above the fitted threshold (check them): lines "
            + _summ([int(v) for v in lines[wrong_off]])
        )
    wrong_on = data.ablated & (s > 1)
    if np.any(wrong_on):
        warnings.append(
            "rows with a measured disc but below the fitted threshold (check them): lines "
            + _summ([int(v) for v in lines[wrong_on]])
        )
    k = "incubation_exponent"
    if stderr.get(k) is not None and not S_BOUNDS[0] + 1e-6 < values[k] <= 1.0:
        warnings.append(
            f"fitted S = {values[k]:.3g} is outside (0, 1] or at the fit bound {S_BOUNDS} "
            "(designs accept 0 < S <= 1)"
        )
    for k in ("incubation_exponent", "ring_diameter_um"):
        e = stderr.get(k)
        if e is not None and e > 0.3 * abs(values[k]):
            warnings.append(f"{k} poorly determined: {values[k]:.3g} +/- {e:.2g}")
    e = stderr.get("threshold_fluence_mj_cm2")
    if e is not None and e > 0.3 * values["threshold_fluence_mj_cm2"]:
        hint = (
            " (the annular mask fixes the disc edge; diameters barely depend on fluence: add sites near "
            "the ablation threshold)"
            if m.model == "annular"
            else ""
        )
        warnings.append(f"threshold fluence poorly determined (+/- {e:.2g} mJ/cm^2){hint}")
