"""Every docstring example in the public API runs and prints what it says (doctest).

Listed explicitly: a module is added here when its examples are written to be run. Options:
ELLIPSIS for numbers that may move with the models (plan times, hashes).
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util

import pytest

MODULES = [
    "fabplan.units",
    "fabplan.shipped",
    "fabplan.disctable",
    "fabplan.design.checks",
    "fabplan.design.expand",
    "fabplan.design.loader",
    "fabplan.design.models",
    "fabplan.planning",
    "fabplan.planning.plan",
    "fabplan.cli.cmd_stage",
]
# single objects of modules whose other docstrings are prose, not runnable examples
OBJECTS = [("fabplan.wgm.api", "estimate_disc"), ("fabplan.planning.estimate", "estimate_selection")]
NEEDS_PANDAS = ("to_pandas",)


def _tests():
    finder = doctest.DocTestFinder()
    out = []
    for name in MODULES:
        module = importlib.import_module(name)
        out += [t for t in finder.find(module) if t.examples]
    for name, attr in OBJECTS:
        module = importlib.import_module(name)
        out += [t for t in finder.find(getattr(module, attr), f"{name}.{attr}", globs=vars(module)) if t.examples]
    return out


TESTS = _tests()


def test_the_api_has_examples():
    names = {t.name.rsplit(".", 1)[-1] for t in TESTS}
    assert {"build_plan", "expand", "load_design", "loads_design", "estimate_disc", "to_pandas"} <= names


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_docstring_examples(test):
    if any(n in test.name for n in NEEDS_PANDAS) and importlib.util.find_spec("pandas") is None:
        pytest.skip("pandas not installed (the data extra)")
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=lambda text: print(text, end=""))
    assert result.failed == 0, f"{test.name}: {result.failed} example(s) failed (output above)"
