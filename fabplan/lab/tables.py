"""Logbook rows (lists of dicts from fabplan.lab.queries) as CSV or JSON, for export and reports."""

from __future__ import annotations

import csv
from typing import IO, Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _neutral(text: str) -> str:
    """User text that a spreadsheet would run as a formula (`=cmd|...`, `@SUM(...)`) gets a leading
    apostrophe (OWASP "CSV injection"); plain numbers such as "-3.5" are left alone."""
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def _cell(value: Any) -> Any:
    """None -> empty; a list (peak wavelengths) -> space-separated; text formula-neutralised."""
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(f"{v:.4f}" for v in value)
    if isinstance(value, str):
        return _neutral(value)
    return value


def write_csv(rows: list[dict], fh: IO[str]) -> None:
    cols = list(rows[0].keys()) if rows else []
    w = csv.writer(fh)
    w.writerow(cols)
    w.writerows([_cell(r[c]) for c in cols] for r in rows)


def to_json(rows: list[dict]) -> str:
    """JSON text with NaN/inf as null (JSON has none)."""
    from fabplan.jsonutil import dumps

    return dumps(rows, indent=1)
