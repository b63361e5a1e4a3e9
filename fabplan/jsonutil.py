"""JSON for everything fabplan writes: NaN/inf become null (JSON has neither), numpy scalars and
arrays become Python numbers and lists, paths become strings. The one helper for the CLI's --json,
the journal, plan files and the logbook's exports."""

from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any

import numpy as np


def finite(obj: Any) -> Any:
    """A copy of `obj` safe for `json.dumps(..., allow_nan=False)`: NaN/inf -> None, recursively;
    numpy scalars/arrays -> Python; dict keys -> str."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite(obj.tolist())
    if isinstance(obj, np.floating):
        return finite(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def default(obj: Any) -> Any:
    """`json.dumps(default=...)` for what `finite` leaves: paths, pydantic models, dataclasses."""
    if isinstance(obj, PurePath):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return finite(obj.model_dump())
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return finite(asdict(obj))
    if isinstance(obj, (np.generic, np.ndarray)):
        return finite(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` with NaN/inf as null and numpy/path/dataclass values converted."""
    return json.dumps(finite(obj), allow_nan=False, default=default, **kwargs)
