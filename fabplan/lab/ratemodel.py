"""Moved to `fabplan.physics.ratemodel` (below both fabplan.lab and sim/); re-exported here."""

from fabplan.physics.ratemodel import light_out, light_out_bg, photon_number

__all__ = ["light_out", "light_out_bg", "photon_number"]
