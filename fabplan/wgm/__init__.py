"""Whispering-gallery-mode estimator for thin perovskite microdiscs (slab + 2-D effective index).

Public API (plain dataclasses / numpy arrays):
    estimate_slab, estimate_disc, free_spectral_range, sweep, annotate_diameters, single_mode_limit,
    get_material
"""

from fabplan.wgm.api import (
    DEFAULT_Q_MIN,
    DEFAULT_WINDOW_NM,
    DiscModes,
    Mode,
    Sweep,
    annotate_diameters,
    estimate_disc,
    estimate_slab,
    free_spectral_range,
    mode_uncertainty,
    single_mode_limit,
    sweep,
)
from fabplan.wgm.materials import MATERIAL_NAMES, Material, get_material
from fabplan.wgm.slab import SlabMode

__all__ = [
    "DEFAULT_Q_MIN",
    "DEFAULT_WINDOW_NM",
    "MATERIAL_NAMES",
    "DiscModes",
    "Material",
    "Mode",
    "SlabMode",
    "Sweep",
    "annotate_diameters",
    "estimate_disc",
    "estimate_slab",
    "free_spectral_range",
    "mode_uncertainty",
    "get_material",
    "single_mode_limit",
    "sweep",
]
