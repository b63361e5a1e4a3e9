"""Error types shared by every layer.

A `UserError` is something the user can fix (bad file, bad value, out-of-range target): the CLI
prints its message and exits 2 without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class UserError(Exception):
    """A problem in the user's input; printed without traceback, exit code 2."""


@dataclass(frozen=True)
class Problem:
    """One located problem: `file:line:col: path: message`."""

    message: str
    path: str = ""
    file: str | None = None
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ProblemsError(UserError):
    """Several located problems reported at once (one line each)."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def summarize_ids(ids, limit: int = 5, total: int | None = None) -> str:
    """'A-r00c01, A-r00c02, ... (+37 more)': first few ids plus a count, for violation messages.

    `total` is the full count when `ids` holds only the first few."""
    total = len(ids) if total is None else total
    head = ", ".join(str(i) for i in list(ids[:limit]))
    return head + (f" (+{total - limit} more)" if total > limit else "")
