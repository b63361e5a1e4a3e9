"""Shared output helpers for CLI commands (JSON for scripts, plain text for people)."""

from __future__ import annotations

import sys
from typing import Any

from fabplan.jsonutil import dumps


def print_json(obj: Any) -> None:
    """One JSON document on stdout, NaN/inf as null, numpy types converted."""
    sys.stdout.write(dumps(obj, indent=2) + "\n")
