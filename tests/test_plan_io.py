"""Plan / ShotTable save-load round trip, byte determinism and hash checking."""

import numpy as np
import pytest

from fabplan.errors import UserError
from fabplan.planning import Plan, ShotTable
from fabplan.planning.plan import quantize


def _shots(n=5):
    x = np.linspace(-3.123456789, 200.0, n)
    return ShotTable.from_columns(
        disc_id=np.array([f"A-r00c{i:02d}" for i in range(n)]),
        x_um=x,
        y_um=-x,
        z_um=np.zeros(n),
        sample_x_um=x,
        sample_y_um=x * 0.5,
        fluence_mj_cm2=np.full(n, 100.0),
        pulse_energy_uj=np.full(n, 0.1234567891),
        pulses=np.ones(n, int),
        attenuator=np.full(n, np.nan),
        diameter_um=np.full(n, 5.0),
        trench_outer_um=np.full(n, 12.0),
    )


def _plan(shots):
    header = {"design_hash": "d" * 64, "design_name": "t", "mode": "step", "model": {"k": 1.0}}
    return Plan.assemble(header, shots, [])


def test_round_trip_is_exact_and_bytes_stable(tmp_path):
    plan = _plan(_shots())
    plan.save(tmp_path / "p")
    again = Plan.load(tmp_path / "p")
    assert again.shots.equals(plan.shots)
    assert again.plan_hash == plan.plan_hash and len(plan.plan_hash) == 64
    again.save(tmp_path / "q")
    for name in ("plan.json", "shots.csv"):
        assert (tmp_path / "p" / name).read_bytes() == (tmp_path / "q" / name).read_bytes()
    assert np.isnan(again.shots.attenuator).all()
    assert again.shots.row(1)["disc_id"] == "A-r00c01"


def test_quantize_round_trips_through_text():
    v = np.random.default_rng(0).uniform(-1e5, 1e5, 2000)
    q = quantize(v, 4)
    assert np.array_equal(np.array([f"{a:.4f}" for a in q], float), q)


def test_edited_shots_are_refused(tmp_path):
    _plan(_shots()).save(tmp_path)
    csv = (tmp_path / "shots.csv").read_text().replace("100.0000", "150.0000", 1)
    (tmp_path / "shots.csv").write_text(csv)
    with pytest.raises(UserError, match="plan_hash"):
        Plan.load(tmp_path)


def test_take_renumbers_and_empty_table_saves(tmp_path):
    s = _shots().take(np.array([4, 0, 2]))
    assert s.seq.tolist() == [0, 1, 2] and s.disc_id.tolist() == ["A-r00c04", "A-r00c00", "A-r00c02"]
    empty = _shots(0)
    _plan(empty).save(tmp_path)
    assert len(Plan.load(tmp_path).shots) == 0
