"""Mutated designs (wrong types, units, keys, deleted fields, garbage YAML) never crash fabplan:
`fabplan validate` exits 0 or 2, and a failure is always a located, traceback-free message."""

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "designs" / "hex_sweep.yaml").read_text())

junk_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["20 um", "20 mJ", "5 mJ/cm^2", "1 kHz", "-3 nm", "", "nan", "1e400 um", "hex", "[", "r99c99"]
    ),
    st.text(max_size=12),
    st.lists(st.integers(-5, 5), max_size=4),
    st.dictionaries(
        st.sampled_from(["x", "start", "stop", "step", "rect", "model"]), st.integers(-3, 30), max_size=3
    ),
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


ALL_PATHS = [p for p in _paths(BASE) if p]


def _mutate(doc, path, action, value, key):
    import copy

    doc = copy.deepcopy(doc)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif action == "add_key" and isinstance(parent, dict):
        parent[key] = value
    return doc


def _check(tmp_path, text: str, capsys) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(text)
    code = main(["validate", str(f)])  # any exception escaping here fails the test
    out = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        assert "Traceback" not in out.err
        assert out.err.startswith(str(f)) or out.err.startswith("error:")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(ALL_PATHS),
    action=st.sampled_from(["delete", "replace", "add_key"]),
    value=junk_values,
    key=st.sampled_from(["pich", "colour", "fluence", "rows", "x"]),
)
def test_structural_mutations_never_crash(tmp_path, capsys, path, action, value, key):
    doc = _mutate(BASE, path, action, value, key)
    _check(tmp_path, yaml.safe_dump(doc, sort_keys=False), capsys)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 2000), garbage=st.text(max_size=8))
def test_text_garbage_never_crashes(tmp_path, capsys, pos, garbage):
    text = (ROOT / "designs" / "dose_matrix.yaml").read_text()
    pos = pos % len(text)
    _check(tmp_path, text[:pos] + garbage + text[pos:], capsys)
