"""Lab manifests an attacker of our own inputs would write: parsed before any database transaction,
exit 2 with located lines (issue 13: 53 tracebacks, e.g. non-UTF-8 and a 131,072-character field)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabplan.cli import main
from fabplan.errors import UserError
from fabplan.lab.importer import read_manifest

HEADER = "disc_id,fluence_uj_cm2,spectrum,integration_s\n"

CORPUS: dict[str, tuple[bytes, str]] = {
    "latin-1": (HEADER.encode() + b"A-r00c00,2,caf\xe9.csv,1\n", ":2:15: cannot read manifest: not UTF-8"),
    "field-over-csv-limit": (
        (HEADER + "A-r00c00,2," + "x" * 131_073 + ",1\n").encode(),
        ":2: unreadable CSV",
    ),
    "huge-quantity": (
        (HEADER + "A-r00c00," + "2" * 100_000 + " uJ/cm^2,a.csv,1\n").encode(),
        "100,008 characters",
    ),
    "huge-disc-id": ((HEADER + "A" * 10_000 + ",2,a.csv,1\n").encode(), "10,000 characters"),
    "huge-header": (("x" * 5000 + "," + HEADER).encode(), ":1: header cell"),
    "nul-in-path": (HEADER.encode() + b"A-r00c00,2,a\x00.csv,1\n", "NUL byte"),
    "unterminated-quote": ((HEADER + 'A-r00c00,2,"a.csv,1\n').encode(), "expected 4 columns"),
    "nan-exponent": (
        (HEADER + "A-r00c00,2 uJ/cm^.nan,a.csv,1\n").encode(),
        "expected a pump fluence",
    ),  # soak find
    "empty": (b"", "empty manifest"),
    "binary": (bytes(range(256)) * 4, "not UTF-8"),
}


def _write(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "manifest.csv"
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_is_a_located_user_error(tmp_path, name):
    data, fragment = CORPUS[name]
    p = _write(tmp_path, data)
    with pytest.raises(UserError) as exc:
        read_manifest(p, "default")
    msg = str(exc.value)
    assert fragment in msg and str(p) in msg and len(msg) < 1000, msg[:500]


def test_cli_exit_2_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FABPLAN_DB", str(tmp_path / "lab.sqlite"))
    p = _write(tmp_path, CORPUS["field-over-csv-limit"][0])
    assert main(["lab", "import", str(p), "--allow-unknown"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err[:500]


CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "A-r00c00",
            "2",
            "3 mJ",
            "-1",
            "nan",
            "inf",
            "1e400",
            "a.csv",
            "../x",
            '"',
            "\x00",
            "x" * 300,
            "1e20 uJ/cm^2",
        ]
    ),
    st.text(max_size=8),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELLS, max_size=5), max_size=6), header=st.booleans())
def test_hostile_manifests_never_crash(tmp_path_factory, rows, header):
    body = "".join(",".join(r) + "\n" for r in rows)
    p = _write(
        tmp_path_factory.mktemp("m"), ((HEADER if header else "") + body).encode("utf-8", "surrogatepass")
    )
    try:
        read_manifest(p, "default")
    except UserError as exc:
        assert len(str(exc)) < 20_000
