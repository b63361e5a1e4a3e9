"""Small lattice designs shared by the executor tests: 6 um LG01 discs on a 20 um square lattice.

One factory instead of a YAML copy per test file; each test says only what differs."""

from __future__ import annotations

SLOW_MOTION = "{velocity: 20 mm/s, acceleration: 1 m/s^2, jerk: 100 m/s^3}"


def lattice_design(
    name: str,
    array_id: str,
    rows: int,
    cols: int,
    *,
    mode: str = "step",
    pulses: int = 1,
    motion: str | None = SLOW_MOTION,
    tolerance: str | None = None,
    extra_sample: str = "",
    extra_process: str = "",
) -> str:
    """YAML text of a `rows` x `cols` design; `motion=None` keeps the design defaults (100 mm/s)."""
    xmax, ymax = 20 * cols + 70, 20 * rows + 70
    process = [f"  mode: {mode}", "  ordering: serpentine"]
    if tolerance:
        process.append(f"  position_tolerance: {tolerance}")
    if motion:
        process.append(f"  motion: {motion}")
    return f"""schema_version: 1
name: {name}
sample:
  film: {{thickness: 100 nm}}
  region: {{rect: [-50 um, -50 um, {xmax} um, {ymax} um]}}
{extra_sample}laser:
  max_pulse_energy: 5 uJ
  repetition_rate: 10 kHz
beam:
  profile: {{model: lg01, ring_diameter: 12 um}}
  threshold_fluence: 40 mJ/cm^2
  damage_fluence: 400 mJ/cm^2
arrays:
  - id: {array_id}
    lattice: square
    origin: [10 um, 10 um]
    pitch: 20 um
    shape: [{rows}, {cols}]
    disc: {{diameter: 6 um, pulses: {pulses}}}
process:
""" + "\n".join(process) + "\n" + extra_process
