"""Short text and HTML summaries of fabplan's public objects, for the REPL and notebooks.

A `repr` is one line that says what the object is and how big (a 250,000-disc plan must not print
250,000 numbers); `_repr_html_` is a small table (Jupyter shows it) with the first rows of a table.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np


def span(values: np.ndarray, unit: str, fmt: str = ".4g") -> str:
    """'2.93-8.24 um', '10 um', or '-' when nothing is finite."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "-"
    lo, hi = float(v.min()), float(v.max())
    text = format(lo, fmt) if lo == hi else f"{format(lo, fmt)}-{format(hi, fmt)}"
    return f"{text} {unit}".rstrip()


def html_summary(title: str, facts: list[tuple[str, str]], columns: dict[str, np.ndarray] | None = None,
                 head: int = 5) -> str:
    """A title, a two-column fact table and (optionally) the first `head` rows of `columns`."""
    esc = html.escape
    parts = [f"<div><strong>{esc(title)}</strong>", "<table>"]
    parts += [f"<tr><th style='text-align:left'>{esc(k)}</th><td style='text-align:left'>{esc(v)}</td></tr>"
              for k, v in facts]
    parts.append("</table>")
    if columns:
        n = len(next(iter(columns.values())))
        parts.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in columns) + "</tr>")
        for i in range(min(n, head)):
            parts.append("<tr>" + "".join(f"<td>{esc(_cell(v[i]))}</td>" for v in columns.values()) + "</tr>")
        if n > head:
            parts.append(f"<tr><td colspan='{len(columns)}'>... {n - head:,} more rows "
                         "(.to_pandas() for all)</td></tr>")
        parts.append("</table>")
    parts.append("</div>")
    return "\n".join(parts)


def _cell(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{float(v):.6g}"
    return str(v)


def to_pandas(columns: dict[str, np.ndarray]):
    """A pandas DataFrame of `columns` (pandas is optional: the `data` extra installs it)."""
    try:
        import pandas as pd
    except ImportError:
        from fabplan.errors import UserError

        raise UserError("to_pandas() needs pandas: pip install 'fabplan[data]' (or pandas)") from None
    return pd.DataFrame(columns)
