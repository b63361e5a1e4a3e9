"""Unit parsing: strings with units through pint, bare numbers in the field's documented unit."""

import pytest

from fabplan.units import UnitError, parse_kind


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("20 um", "length_um", 20.0),
        ("20 µm", "length_um", 20.0),
        ("1 cm", "length_um", 10000.0),
        (12.5, "length_um", 12.5),
        ("12.5", "length_um", 12.5),
        ("515 nm", "wavelength_nm", 515.0),
        ("0.515 um", "wavelength_nm", 515.0),
        ("0.1 J/cm^2", "fluence_mj_cm2", 100.0),
        ("1 mJ/mm^2", "fluence_mj_cm2", 100.0),
        ("220 fs", "duration_fs", 220.0),
        ("0.22 ps", "duration_fs", 220.0),
        ("1 kHz", "frequency_hz", 1000.0),
        ("20 mm/s", "velocity_um_s", 20000.0),
        ("1 m/s^2", "accel_um_s2", 1e6),
        ("90 deg", "angle_deg", 90.0),
        ("20 ms", "time_s", 0.02),
    ],
)
def test_parse_quantities(value, kind, expected):
    assert parse_kind(value, kind) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("20 mJ", "length_um", "expected a length, got '20 mJ'"),
        ("5 um", "fluence_mj_cm2", "expected a fluence"),
        ("fast", "velocity_um_s", "cannot read 'fast'"),
        (True, "length_um", "expected a length"),
        ([1, 2], "length_um", "expected a length"),
        ("nan", "length_um", "expected a finite length, got 'nan'"),
        (float("inf"), "fluence_mj_cm2", "expected a finite fluence"),
        ("1e400 um", "length_um", "expected a finite length"),
    ],
)
def test_wrong_dimension_or_garbage_is_a_clear_error(value, kind, message):
    with pytest.raises(UnitError, match=message.replace("(", r"\(")):
        parse_kind(value, kind)
