"""A synthetic plan for executor unit tests, and the in-memory fakes they run it on (sim/fakes.py;
the integration tests use the wire-protocol emulators in sim/)."""

from __future__ import annotations

import numpy as np

from fabplan.planning.plan import Plan, ShotTable
from sim.fakes import FakeLaser, FakeReadback, FakeStage, lost_after_firing

__all__ = ["FakeLaser", "FakeReadback", "FakeStage", "lost_after_firing", "make_plan"]


def make_plan(n_rows=3, n_cols=4, pitch=10.0, mode="step", pulses=1) -> Plan:
    rows, cols = np.divmod(np.arange(n_rows * n_cols), n_cols)
    x = cols * pitch
    serp = rows % 2 == 1
    x = np.where(serp, (n_cols - 1 - cols) * pitch, x)
    y = rows * pitch
    ids = [f"A-r{r:02d}c{c:02d}" for r, c in zip(rows, np.where(serp, n_cols - 1 - cols, cols), strict=True)]
    n = len(x)
    shots = ShotTable.from_columns(
        disc_id=ids, x_um=x, y_um=y, z_um=np.zeros(n), sample_x_um=x, sample_y_um=y,
        fluence_mj_cm2=np.full(n, 100.0), pulse_energy_uj=np.full(n, 0.5), pulses=np.full(n, pulses),
        attenuator=np.full(n, np.nan), diameter_um=np.full(n, 5.0), trench_outer_um=np.full(n, 8.0),
        line=rows if mode == "fly" else np.full(n, -1),
    )
    lines = []
    if mode == "fly":
        for r in range(n_rows):
            first, last = r * n_cols, r * n_cols + n_cols - 1
            xs = x[first:last + 1]
            d = 1 if xs[-1] > xs[0] else -1
            lines.append({"line": r, "axis": "x", "y_um": float(y[first]), "z_um": 0.0,
                          "start_um": float(xs[0] - d * 50), "stop_um": float(xs[-1] + d * 50),
                          "velocity_um_s": 1000.0, "first_seq": first, "last_seq": last})
    header = {"design_hash": "d" * 64, "design_name": "fake", "mode": mode, "model": {},
              "estimate": {"total_s": 1.0}, "position_tolerance_um": 0.1}
    return Plan.assemble(header, shots, lines)


def test_fake_plan_is_consistent():
    plan = make_plan(mode="fly")
    assert len(plan.shots) == 12 and len(plan.lines) == 3
    assert plan.lines[1]["start_um"] > plan.lines[1]["stop_um"]
