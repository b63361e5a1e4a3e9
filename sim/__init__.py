"""Emulators that speak the real wire protocols of the stage and laser controllers.

`start_lab()` starts an XPS + Pharos pair sharing one laser model and ground-truth pulse log;
`sim.xps_emulator`, `sim.esp301_emulator`, `sim.pharos_emulator` hold the individual devices.
"""

from __future__ import annotations


def start_lab(*args, **kwargs):
    """See `sim.lab.start_lab` (imported lazily so `import sim` stays cheap)."""
    from sim.lab import start_lab as _start

    return _start(*args, **kwargs)
