"""Moved to `fabplan.physics.comb` (below both fabplan.lab and sim/); re-exported here."""

from fabplan.physics.comb import (
    DEFAULT_WINDOW_NM,
    FALLBACK_NG,
    FALLBACK_SOURCE,
    comb,
    mode_wavelengths,
    predicted_fsr,
)

__all__ = ["DEFAULT_WINDOW_NM", "FALLBACK_NG", "FALLBACK_SOURCE", "comb", "mode_wavelengths", "predicted_fsr"]
