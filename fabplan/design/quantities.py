"""Pydantic field types for physical quantities: accept "20 um" or a bare number in the field's unit.

Each type converts to a plain float in fabplan's internal unit (see fabplan.units) and publishes a
JSON Schema that tells editors both forms are allowed.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

from fabplan.units import KINDS, parse_kind

_QUANTITY_PATTERN = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*[A-Za-zµμ%°/^*·²³0-9 -]*$"


def _quantity(kind: str) -> object:
    unit, word = KINDS[kind]
    schema = {
        "anyOf": [
            {"type": "number"},
            {"type": "string", "pattern": _QUANTITY_PATTERN},
        ],
        "description": f"{word}: a number in {unit}, or a string with units (e.g. '12 {unit}')",
        "x-unit": unit,
    }
    return Annotated[float, BeforeValidator(lambda v: parse_kind(v, kind)), WithJsonSchema(schema)]


LengthUm = _quantity("length_um")
WavelengthNm = _quantity("wavelength_nm")
FluenceMjCm2 = _quantity("fluence_mj_cm2")
EnergyUj = _quantity("energy_uj")
TimeS = _quantity("time_s")
DurationFs = _quantity("duration_fs")
FrequencyHz = _quantity("frequency_hz")
VelocityUmS = _quantity("velocity_um_s")
AccelUmS2 = _quantity("accel_um_s2")
JerkUmS3 = _quantity("jerk_um_s3")
AngleDeg = _quantity("angle_deg")
