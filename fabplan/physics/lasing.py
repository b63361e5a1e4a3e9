"""Threshold fluence of a microdisc laser predicted from physics, not assumed.

Chain, for each whispering-gallery mode of the disc in the gain window:
1. Cavity loss 1/Q = 1/Q_rad + 1/Q_scat.
   - Q_rad: 2-D effective-index disc (fabplan.wgm) with the substrate index as the lateral outside.
     A disc on glass leaks into the substrate once the mode's phase index outside the rim drops
     below n_sub; taking air outside gives Q_rad ~1e37-1e47 at D = 10 um, which is not physics.
   - Q_scat: sidewall-roughness scattering, Gorodetsky, Pryamikov & Ilchenko, JOSA B 17, 1051 (2000)
     surface-scattering estimate with the slab effective index as the 2-D index:
       Q_ss = 3 eps (eps + 2)^2 lambda^(7/2) D^(1/2) / ((4 pi)^3 (eps - 1)^(5/2) sigma^2 B^2),
     sigma the rms roughness, B its correlation length. An order-of-magnitude model: the roughness
     is a parameter (the paper's SEM: sidewall roughness < 50 nm, section 2.3 / Figure 4b).
   - Film absorption at the lasing wavelength is NOT added: the paper's gain model (below) has
     g(N = 0) = -sigma N_th, i.e. it already contains the unpumped absorption. The unpumped
     absorption Q, Q_abs = n_g N / (2 n_f Gamma k) (modal absorption (n_f/N) Gamma 4 pi k / lambda),
     is reported as the cold-cavity check.
2. Threshold modal gain G_th = alpha = 2 pi n_g / (lambda Q) (per cm), material gain g_th = G_th / Gamma.
3. The paper's gain model (seed paper eq. 1-2, Table 1): g = sigma (N - N_th) / (1 + N/N_s), solved for
   the carrier density N at g_th; no solution when g_th >= sigma N_s (gain saturates: no lasing).
4. Pump: absorbed fraction A of the film at the pump wavelength (thin-film transfer matrix,
   air / film n + ik / substrate, normal incidence, shipped n,k data); carriers
   N = A F / (h nu t), femtosecond pump, uniform over the thickness (100 nm < 1/alpha_pump ~ 95 nm x 2).
5. Fluence: the pump fluence needed at the disc rim (where the mode lives), converted to the
   Gaussian spot's peak fluence F_pk = 2E/(pi w^2) and to the "E / pi (FWHM/2)^2" average that
   some papers quote (1.44 x F_pk). Every result states its definition.
The disc's threshold is the lowest over its modes in the gain window (530-540 nm: where the paper
measured gain, section 2.2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

H_PLANCK = 6.62607015e-34  # J s
C_LIGHT = 2.99792458e8  # m/s

# Seed paper Table 1: (sigma cm^2, N_th cm^-3, N_s cm^-3) for the gain model of eq. (1).
GAIN_TABLE1 = {
    "lg-thin-100nm": (4e-16, 0.1e19, 5e19),
    "lg-thick-250nm": (1.5e-16, 0.1e19, 7e19),
    "sg-70nm": (4e-16, 1.5e19, 5e19),
}
DEFAULT_GAIN = "lg-thin-100nm"
GAIN_WINDOW_NM = (530.0, 540.0)  # paper section 2.2: gain measured at 530-540 nm
PUMP_NM = 515.0  # paper section 2.3: lasing pumped at 515 nm, 220 fs
SPOT_FWHM_UM = 20.0  # paper: Gaussian pump spot FWHM ~20 um
ROUGHNESS_NM = 25.0  # default sidewall rms roughness (paper: < 50 nm)
CORRELATION_NM = 50.0  # default roughness correlation length
FLUENCE_DEFINITION = (
    "threshold_local: pump fluence at the disc rim; threshold_peak: peak fluence 2E/(pi w^2) of a Gaussian "
    "spot of the stated FWHM centred on the disc; threshold_fwhm_average: E/(pi (FWHM/2)^2) = 1.44 x peak"
)


@dataclass
class ModeThreshold:
    wavelength_nm: float
    q_rad: float
    q_scat: float
    q_cavity: float
    q_abs_unpumped: float
    n_group: float
    confinement: float
    modal_gain_th_cm: float
    carriers_th_cm3: float
    threshold_local_uj_cm2: float


@dataclass
class ThresholdPrediction:
    diameter_um: float
    thickness_nm: float
    lasing_possible: bool
    wavelength_nm: float
    q_cavity: float
    q_rad: float
    q_scat: float
    q_abs_unpumped: float
    modal_gain_th_cm: float
    carriers_th_cm3: float
    pump_absorbed: float
    threshold_local_uj_cm2: float
    threshold_peak_uj_cm2: float
    threshold_fwhm_average_uj_cm2: float
    spot_fwhm_um: float
    roughness_nm: float
    correlation_nm: float
    gain_model: str
    fluence_definition: str = FLUENCE_DEFINITION
    modes: list[ModeThreshold] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def pump_absorption(thickness_nm: float, material="cspbbr3-ermolaev-o", substrate="fused-silica",
                    pump_nm: float = PUMP_NM, index_scale: float = 1.0) -> float:
    """Absorbed fraction 1 - R - T of a film on a substrate at normal incidence (transfer matrix)."""
    from fabplan.wgm.materials import get_material

    film = get_material(material, index_scale)
    sub = get_material(substrate)
    wl = np.array([float(pump_nm)])
    n1 = complex(float(film.n(wl)[0]), float(film.k(wl)[0]))
    ns = float(sub.n(wl)[0])
    delta = 2 * math.pi * n1 * thickness_nm / pump_nm
    r01, r12 = (1 - n1) / (1 + n1), (n1 - ns) / (n1 + ns)
    t01, t12 = 2 / (1 + n1), 2 * n1 / (n1 + ns)
    e1, e2 = np.exp(1j * delta), np.exp(2j * delta)
    den = 1 + r01 * r12 * e2
    r = (r01 + r12 * e2) / den
    t = t01 * t12 * e1 / den
    return float(1.0 - abs(r) ** 2 - ns * abs(t) ** 2)


def q_scattering(wavelength_nm, diameter_um: float, n_eff, roughness_nm: float = ROUGHNESS_NM,
                 correlation_nm: float = CORRELATION_NM):
    """Sidewall-scattering Q (Gorodetsky et al. 2000 surface-scattering formula, eps = n_eff^2)."""
    if roughness_nm <= 0:
        return np.full(np.shape(wavelength_nm), np.inf)
    lam = np.asarray(wavelength_nm, dtype=np.float64) * 1e-9
    eps = np.asarray(n_eff, dtype=np.float64) ** 2
    d = diameter_um * 1e-6
    s, b = roughness_nm * 1e-9, correlation_nm * 1e-9
    return 3 * eps * (eps + 2) ** 2 * lam**3.5 * math.sqrt(d) / ((4 * math.pi) ** 3 * (eps - 1) ** 2.5 * s**2 * b**2)


def carriers_for_gain(g_cm, sigma_cm2: float, n_th: float, n_s: float):
    """Carrier density giving material gain g (eq. 1 inverted); NaN where g >= sigma N_s."""
    g = np.asarray(g_cm, dtype=np.float64)
    den = sigma_cm2 - g / n_s
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (g + sigma_cm2 * n_th) / den, np.nan)


def predict_threshold(diameter_um: float, thickness_nm: float = 100.0, material="cspbbr3-ermolaev-o",
                      substrate="fused-silica", *, roughness_nm: float = ROUGHNESS_NM,
                      correlation_nm: float = CORRELATION_NM, gain: str | tuple = DEFAULT_GAIN,
                      gain_scale: float = 1.0, window_nm: tuple[float, float] = GAIN_WINDOW_NM,
                      pump_nm: float = PUMP_NM, spot_fwhm_um: float = SPOT_FWHM_UM,
                      index_scale: float = 1.0) -> ThresholdPrediction:
    """Predicted lasing threshold of one disc (see the module docstring for the chain and sources).

    `gain_scale` multiplies the cross-section sigma (a film better or worse than the paper's)."""
    if isinstance(gain, str):
        sigma, n_th, n_s = GAIN_TABLE1[gain]
        gname = f"seed paper Table 1, {gain}"
    else:
        sigma, n_th, n_s = gain
        gname = "user"
    sigma *= gain_scale
    return _predict(round(float(diameter_um), 4), float(thickness_nm), str(material), str(substrate),
                    float(roughness_nm), float(correlation_nm), float(sigma), float(n_th), float(n_s), gname,
                    tuple(float(v) for v in window_nm), float(pump_nm), float(spot_fwhm_um), float(index_scale))


@lru_cache(maxsize=2048)
def _predict(d_um, t_nm, material, substrate, rough, corr, sigma, n_th, n_s, gname, window, pump_nm, fwhm,
             index_scale) -> ThresholdPrediction:
    from fabplan.wgm.api import IndexModel, make_stack
    from fabplan.wgm.api import estimate_disc as _est

    nan = float("nan")
    a_pump = pump_absorption(t_nm, material, substrate, pump_nm, index_scale)
    if not a_pump > 1e-6:  # a film that does not absorb the pump (e.g. a constant real index): no carriers
        a_pump = float("nan")
    hnu = H_PLANCK * C_LIGHT / (pump_nm * 1e-9)
    w = fwhm / math.sqrt(2 * math.log(2))  # 1/e^2 radius
    rim = math.exp(-2 * (d_um / 2) ** 2 / w**2)  # F(rim) / F_pk for a centred Gaussian spot
    modes: list[ModeThreshold] = []
    try:
        with np.errstate(all="ignore"):
            dm = _est(d_um, t_nm, material, substrate, "substrate", window, "te", index_scale)
    except Exception:  # no guided mode / no WGM: cannot lase
        dm = None
    if dm is not None and dm.modes:
        stack = make_stack(t_nm, material, substrate, "substrate", "te", index_scale)
        wl = np.array([md.wavelength_nm for md in dm.modes])
        model = IndexModel(stack, float(wl.min()) - 0.5, float(wl.max()) + 0.5)
        n_eff = model._N(wl)
        ng = model._ng(wl)
        gam = model._gamma(wl)
        q_rad = np.array([md.q_rad for md in dm.modes])
        q_abs = model.q_abs(wl, stack.film)
        q_sc = q_scattering(wl, d_um, n_eff, rough, corr)
        q_cav = 1.0 / (1.0 / q_rad + 1.0 / q_sc)
        alpha = 2 * math.pi * ng / (wl * 1e-7 * q_cav)  # modal loss, 1/cm
        n_car = carriers_for_gain(alpha / gam, sigma, n_th, n_s)
        f_loc = n_car * t_nm * 1e-7 * hnu / a_pump * 1e6  # J/cm^2 -> uJ/cm^2
        for i in range(wl.size):
            modes.append(ModeThreshold(float(wl[i]), float(q_rad[i]), float(q_sc[i]), float(q_cav[i]),
                                       float(q_abs[i]), float(ng[i]), float(gam[i]), float(alpha[i]),
                                       float(n_car[i]), float(f_loc[i])))
    ok = [m for m in modes if math.isfinite(m.threshold_local_uj_cm2)]
    if ok:
        best = min(ok, key=lambda m: m.threshold_local_uj_cm2)
        f_loc = best.threshold_local_uj_cm2
        return ThresholdPrediction(d_um, t_nm, True, best.wavelength_nm, best.q_cavity, best.q_rad, best.q_scat,
                                   best.q_abs_unpumped, best.modal_gain_th_cm, best.carriers_th_cm3, a_pump, f_loc,
                                   f_loc / rim, f_loc / rim / math.log(2), fwhm, rough, corr, gname, modes=modes)
    q = max(modes, key=lambda m: m.q_cavity) if modes else None
    return ThresholdPrediction(d_um, t_nm, False, q.wavelength_nm if q else nan, q.q_cavity if q else nan,
                               q.q_rad if q else nan, q.q_scat if q else nan, q.q_abs_unpumped if q else nan,
                               q.modal_gain_th_cm if q else nan, nan, a_pump, math.inf, math.inf, math.inf, fwhm,
                               rough, corr, gname, modes=modes)
