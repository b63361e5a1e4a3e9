"""Attenuator settings: inverse of the calibration laws stated in fabplan/attenuator.py.

Waveplate + polariser: E = E_min + (E_max - E_min) sin^2(2 (theta - theta0)) (Malus's law through a
rotated half-wave plate); Pharos percent: E = E_100 (p - offset) / (100 - offset) (design model doc).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from fabplan.attenuator import attenuator_setting, percent_energy_uj, waveplate_energy_uj
from fabplan.errors import UserError


def test_waveplate_round_trip_and_known_points():
    att = SimpleNamespace(type="waveplate", energy_min=0.02, energy_max=4.0, theta0=7.0)
    e = np.linspace(0.02, 4.0, 50)
    theta = attenuator_setting(att, e)
    np.testing.assert_allclose(waveplate_energy_uj(theta, 0.02, 4.0, 7.0), e, rtol=1e-12)
    # half-way in energy is sin^2 = 1/2 -> 2 (theta - theta0) = 45 deg
    assert float(attenuator_setting(att, 2.01)) == pytest.approx(7.0 + 22.5)
    assert float(attenuator_setting(att, 4.0)) == pytest.approx(7.0 + 45.0)
    assert np.all(np.diff(theta) > 0)


def test_percent_round_trip_with_offset():
    att = {"type": "percent", "energy_at_100": 2.0, "offset_percent": 4.0}
    e = np.array([0.0, 0.5, 2.0])
    p = attenuator_setting(att, e)
    np.testing.assert_allclose(p, [4.0, 4.0 + 0.25 * 96.0, 100.0])
    np.testing.assert_allclose(percent_energy_uj(p, 2.0, 4.0), e)


def test_no_attenuator_gives_nan():
    assert np.all(np.isnan(attenuator_setting(None, [0.1, 0.2])))


@pytest.mark.parametrize(
    "att, energy",
    [
        ({"type": "waveplate", "energy_min": 0.1, "energy_max": 2.0}, [0.5, 2.5]),
        ({"type": "waveplate", "energy_min": 0.1, "energy_max": 2.0}, 0.05),
        ({"type": "percent", "energy_at_100": 2.0}, [1.0, 3.0]),
    ],
)
def test_out_of_range_energy_names_the_range(att, energy):
    with pytest.raises(UserError, match=r"outside the .* attenuator range .* uJ"):
        attenuator_setting(att, energy)


def test_design_attenuator_objects():
    models = pytest.importorskip("fabplan.design.models")
    wp = models.WaveplateAttenuator(type="waveplate", energy_min=0.0, energy_max=3.0, theta0=0.0)
    assert float(attenuator_setting(wp, 1.5)) == pytest.approx(22.5)
    pc = models.PercentAttenuator(type="percent", energy_at_100=3.0)
    assert float(attenuator_setting(pc, 1.5)) == pytest.approx(50.0)
