"""Files a design names (`arrays[].csv`, a measured beam profile): resolved against the design's folder.

A design is something users pass around; `csv: /etc/passwd` or `csv: ../../secret.csv` must not make
fabplan read (and echo) files outside the design's folder. Such paths are refused unless the user sets
FABPLAN_ALLOW_OUTSIDE_FILES=1 for that command. Symbolic links are followed before the check, so a link
inside the folder that points out of it is refused as well.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

ALLOW_OUTSIDE_ENV = "FABPLAN_ALLOW_OUTSIDE_FILES"
MAX_DESIGN_CSV_BYTES = 256 * 2**20  # 1,000,000 explicit discs are ~40 MB


def outside_allowed() -> bool:
    return os.environ.get(ALLOW_OUTSIDE_ENV, "").strip().lower() not in ("", "0", "no", "false")


def design_folder(design_path: Path | None) -> Path:
    """The folder a design's file references are relative to (the working folder for text designs)."""
    return (design_path.parent if design_path is not None else Path.cwd()).resolve()


def leaves_folder(design_path: Path | None, relative: str) -> str | None:
    """Why `relative` may not be read (it leaves the design's folder), or None when it may."""
    if outside_allowed():
        return None
    folder = design_folder(design_path)
    target = (folder / relative).resolve()  # absolute `relative` replaces folder; links followed
    if target == folder or folder in target.parents:
        return None
    return (
        f"{relative!r} is outside the design's folder {folder}: copy the file next to the design, "
        f"or set {ALLOW_OUTSIDE_ENV}=1 to allow it"
    )


def file_fields(design) -> list[tuple[tuple, str]]:
    """(path in the YAML, file name) of every file the design names."""
    out = []
    for i, a in enumerate(design.arrays):
        if getattr(a, "csv", None):
            out.append((("arrays", i, "csv"), a.csv))
    profile = design.beam.profile
    if getattr(profile, "model", None) == "measured":
        out.append((("beam", "profile", "csv"), profile.csv))
    return out


MAX_CELL_CHARS = 200  # a coordinate, a quantity with units, a pulse count; the unit parser is quadratic


def csv_rows(reader, path) -> Iterator[tuple[int, list[str]]]:
    """(file line, row) of a csv.reader over a file a design names: a csv error (an unclosed quote
    running into a field over the module's 131,072-char limit) or an oversized cell is a located
    ProblemsError, never a traceback or a whole cell echoed."""
    from fabplan.errors import Problem, ProblemsError
    from fabplan.textfiles import csv_records

    for row in csv_records(reader, path):
        long = next((c for c in row if len(c) > MAX_CELL_CHARS), None)
        if long is not None:
            raise ProblemsError(
                [
                    Problem(
                        f"a cell of {len(long):,} characters (at most {MAX_CELL_CHARS}): {long[:30]!r}...",
                        "",
                        str(path),
                        reader.line_num,
                    )
                ]
            )
        yield reader.line_num, row
