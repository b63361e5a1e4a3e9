"""LG01 donut (Laguerre-Gauss, l=1): closed-form ablation edges via the Lambert W function.

F(r) = F_pk e x exp(-x), x = r^2 / r_p^2, maximum F_pk at the ring radius r_p, and
pulse energy E = F_pk e pi r_p^2. With s = F_th/F_pk the level set e x exp(-x) = s gives
x = -W(-s/e): the W0 branch is the inner (disc) edge, W_-1 the outer trench edge
(REFERENCE section 2; D/(2 r_p) = 0.48 at F_pk/F_th = 2).
"""

from __future__ import annotations

import numpy as np
from scipy.special import lambertw

from fabplan.beam.base import BeamModel
from fabplan.errors import UserError


class Lg01Beam(BeamModel):
    """LG01 donut with ring (peak) diameter 2 r_p in the focal plane."""

    model = "lg01"

    def __init__(self, *, ring_diameter_um: float, **threshold):
        if not (ring_diameter_um > 0 and np.isfinite(ring_diameter_um)):
            raise UserError(f"lg01 ring diameter must be > 0 um, got {ring_diameter_um}")
        self.ring_diameter_um = float(ring_diameter_um)
        self.r_p_um = self.ring_diameter_um / 2.0
        super().__init__(**threshold)

    def shape(self, r_um):
        x = (np.asarray(r_um, dtype=float) / self.r_p_um) ** 2
        return np.e * x * np.exp(-x)

    @property
    def peak_radius_um(self) -> float:
        return self.r_p_um

    @property
    def effective_area_um2(self) -> float:
        return float(np.e * np.pi * self.r_p_um**2)

    def _x(self, s, branch: int) -> np.ndarray:
        s = np.clip(np.asarray(s, dtype=float), 0.0, 1.0)
        x = -np.real(lambertw(-s / np.e, branch))
        return np.where(s >= 1.0 - 1e-12, 1.0, x)  # both branches meet at the ring peak; W is NaN-prone there

    def _inner_radius(self, s):
        return self.r_p_um * np.sqrt(np.clip(self._x(s, 0), 0.0, 1.0))

    def _outer_radius(self, s):
        s = np.asarray(s, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(s > 0, self._x(np.maximum(s, 1e-300), -1), np.inf)
        return self.r_p_um * np.sqrt(np.maximum(x, 1.0))

    def _level_at_inner_radius(self, r_um):
        return self.shape(np.minimum(np.asarray(r_um, dtype=float), self.r_p_um))

    def _params(self):
        return {"ring_diameter_um": self.ring_diameter_um}
