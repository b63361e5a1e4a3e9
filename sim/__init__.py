"""Emulators that speak the real wire protocols of the stage and laser controllers.

`start_lab()` starts an XPS + Pharos pair sharing one laser model and ground-truth pulse log;
`sim.xps_emulator`, `sim.esp301_emulator`, `sim.pharos_emulator` hold the individual devices;
`sim.fakes` has in-memory stage and laser fakes for tests, benchmarks and notebooks.

Importing `sim` registers two device URL schemes: `sim://NAME?speedup=inf&pulse_log=FILE` (an
in-process emulated lab, started on first use and shared by its stage and laser URLs) and
`fake://` (the in-memory fakes of `sim.fakes`). `max_pulse_energy=UJ` and `rep_rate=HZ` set the emulated
laser; `fabplan run` adds the design's when the URL leaves them out (fabplan.execute.session).
"""

from __future__ import annotations

from stage_drivers.urls import make_laser, make_stage, register_scheme

__driver_modules__ = ()  # the sim:// scheme registers here, no module of sim/ is a driver


def start_lab(*args, **kwargs):
    """See `sim.lab.start_lab` (imported lazily so `import sim` stays cheap)."""
    from sim.lab import start_lab as _start

    return _start(*args, **kwargs)


def _lab_url(u, which: str) -> str:
    from sim.lab import lab_for_url

    url = getattr(lab_for_url(u), which)
    return "spy+" + url if u.spy else url


def _sim_stage(u, timeout_s=None):
    return make_stage(_lab_url(u, "stage_url"), timeout_s=timeout_s)


def _sim_laser(u, trigger=None, timeout_s=None):
    return make_laser(_lab_url(u, "laser_url"), stage=trigger, timeout_s=timeout_s)


def _fake_stage(u, timeout_s=None):
    from sim.fakes import FakeStage

    return FakeStage.from_url(u, timeout_s)


def _fake_laser(u, trigger=None, timeout_s=None):
    from sim.fakes import FakeLaser

    return FakeLaser.from_url(u, trigger, timeout_s)


register_scheme("sim", stage=_sim_stage, laser=_sim_laser)
register_scheme("fake", stage=_fake_stage, laser=_fake_laser)
