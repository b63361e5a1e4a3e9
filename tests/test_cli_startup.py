"""`fabplan --help` must answer at once: building the parser may not import the heavy scientific stack.

Every command module is imported to build the parser; each must defer scipy, matplotlib, shapely
and the pint registry to its handler (a lab user types `fabplan ... --help` often)."""

import subprocess
import sys

HEAVY = ("scipy", "matplotlib", "shapely", "pint", "pydantic")


def test_parser_build_imports_nothing_heavy():
    code = (
        "import sys; from fabplan.cli import build_parser; build_parser(); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"imported while building the CLI parser: {out}"
