"""Reading a user's text file with a size limit and a located UTF-8 error.

Its own small module (not in fabplan.design) so a reader of manifests or CSVs does not import the
design package (pydantic models, the expander) to get it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from fabplan.errors import Problem, ProblemsError


def read_bytes_limited(path: str | Path, limit: int) -> bytes:
    """At most limit + 1 bytes of the file, read in 1 MiB pieces: memory follows the file's size, not
    the limit (`f.read(limit + 1)` allocates the whole limit up front); OSError as open() raises it."""
    chunks, total = [], 0
    with open(path, "rb") as f:
        while total <= limit:
            piece = f.read(min(2**20, limit + 1 - total))
            if not piece:
                break
            chunks.append(piece)
            total += len(piece)
    return b"".join(chunks)


def read_text_limited(path: str | Path, limit: int, what: str, *, encoding: str = "utf-8-sig") -> str:
    """A user's text file as str: ProblemsError naming the file (and the line of a bad byte) when it is
    missing, unreadable, larger than `limit` bytes, or not UTF-8; never reads more than limit + 1 bytes."""
    path = Path(path)
    try:
        data = read_bytes_limited(path, limit)
    except FileNotFoundError:
        raise ProblemsError([Problem("file not found", "", str(path))]) from None
    except IsADirectoryError:
        raise ProblemsError([Problem("is a directory, not a file", "", str(path))]) from None
    except OSError as exc:
        raise ProblemsError([Problem(f"cannot read file: {exc.strerror or exc}", "", str(path))]) from None
    if len(data) > limit:
        raise ProblemsError([Problem(f"larger than {what} can be ({limit // 2**20} MiB)", "", str(path))])
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ProblemsError(
            [
                Problem(
                    f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                    "",
                    str(path),
                    line,
                    col,
                )
            ]
        ) from None


def csv_records(reader, path: str | Path) -> Iterator[list[str]]:
    """The rows of a csv.reader over a user's file: a csv error (an unclosed quote running into a field
    over the module's 131,072-char limit) is a ProblemsError at the file's line, never a traceback."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ProblemsError([Problem(f"unreadable CSV: {exc}", "", str(path), reader.line_num)]) from None
        yield row
