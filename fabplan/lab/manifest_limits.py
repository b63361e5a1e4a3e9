"""Parse-side limits for lab manifests: a hostile manifest fails fast, located, before any transaction.

Issue 13: a non-UTF-8 manifest and a 131,072-character field (the csv module's own limit) were
tracebacks. Here the file is size-limited and decoded up front (a bad byte names its line and
column), csv errors become located user errors, and no cell is longer than a manifest needs: paths and
notes MAX_TEXT_CHARS, everything else (ids, quantities, numbers) MAX_CELL_CHARS (the unit parser is
quadratic in its input). Messages never echo an oversized cell whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fabplan.errors import ProblemsError, UserError

MAX_MANIFEST_BYTES = 256 * 2**20  # a 1,000,000-row manifest is ~60 MB
MAX_ROWS = 2_000_000
MAX_CELL_CHARS = 200
MAX_TEXT_CHARS = 4096  # file paths (PATH_MAX), notes, operator
_TEXT_COLUMNS = {"spectrum", "file", "spectrum_file", "path", "notes", "operator"}


@contextmanager
def manifest_reader(path: Path) -> Iterator[Iterator[list[str]]]:
    """csv rows of the manifest; UserError naming the file (and line) for anything unreadable."""
    from fabplan.textfiles import csv_records, read_text_limited

    try:
        text = read_text_limited(path, MAX_MANIFEST_BYTES, "a manifest")
    except ProblemsError as exc:  # "file not found", "not UTF-8 text", too large: keep the location
        p = exc.problems[0]
        where = f"{path}" + (f":{p.line}:{p.col}" if p.line else "")
        raise UserError(f"{where}: cannot read manifest: {p.message}") from None
    if text.count("\n") > MAX_ROWS:
        raise UserError(f"{path}: more than {MAX_ROWS:,} lines: split the manifest")
    yield csv_records(csv.reader(io.StringIO(text, newline="")), path)


def _show(cell: str) -> str:
    return repr(cell) if len(cell) <= 40 else f"{cell[:30]!r}... ({len(cell):,} chars)"


def check_cells(path: Path, line: int, row: list[str], names: list[str] | None = None) -> None:
    """UserError for the first cell longer than its column allows (header cells: MAX_CELL_CHARS)."""
    for i, cell in enumerate(row):
        name = names[i].strip() if names is not None and i < len(names) else ""
        if "\x00" in cell:  # a NUL makes any later open() a ValueError; no text manifest holds one
            raise UserError((f"{path}:{line}: " if names is None else "") + f"NUL byte in cell {i + 1}")
        limit = MAX_TEXT_CHARS if name.lower() in _TEXT_COLUMNS else MAX_CELL_CHARS
        if len(cell) > limit:
            if names is None:  # the header row: no Problem wraps it, so locate it here
                raise UserError(f"{path}:{line}: header cell of {len(cell):,} characters: {_show(cell)}")
            what = f"column {_show(name)}" if name else f"cell {i + 1}"
            raise UserError(f"{what}: {len(cell):,} characters (at most {limit:,}): {_show(cell)}")
