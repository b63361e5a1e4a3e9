"""Calibrate CSVs an attacker of our own inputs would write: exit 2 and one located line per bad row,
in bounded time (issue 13: 152 tracebacks and 17 hangs over 30 s in 4,600 mutated files).

Regression corpus of cases that once failed, plus a hypothesis fuzzer over rows of hostile cells;
bench/bench_fuzz.py runs the same generator as a long soak."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabplan.beam.dose_csv import MAX_ROWS
from fabplan.cli import main

HEADER = "fluence_mj_cm2,pulses,diameter_um\n"
GOOD = HEADER + "".join(
    f"{f},{n},{d}\n"
    for f, n, d in [
        (50, 1, 4.1),
        (80, 1, 6.0),
        (120, 1, 7.3),
        (60, 2, 5.2),
        (90, 2, 6.6),
        (150, 5, 8.4),
        (40, 1, ""),
        (30, 5, ""),
    ]
)

CORPUS: dict[str, tuple[bytes, str]] = {
    "nothing-ablated": ((HEADER + "50,1,\n60,1,-\n70,2,none\n").encode(), "no site was ablated"),
    "pulses-inf": ((HEADER + "50,inf,5\n60,1,6\n").encode(), ":2: pulses:"),
    "pulses-1e20": ((HEADER + "50,1e20,5\n60,1,6\n").encode(), ":2: pulses:"),
    "pulses-nan": ((HEADER + "50,nan,5\n").encode(), ":2: pulses:"),
    "dose-1e400": ((HEADER + "1e400,1,5\n").encode(), ":2: fluence_mj_cm2:"),
    "diameter-inf": ((HEADER + "50,1,inf\n").encode(), ":2: diameter_um:"),
    "latin-1": (HEADER.encode() + b"50,1,5\n60,1,6\xe9\n", ":3:7: not UTF-8"),
    "huge-cell": ((HEADER + "5" * 100_000 + " mJ/cm^2,1,5\n").encode(), "100,008 characters"),
    "too-many-rows": ((HEADER + "50,1,5\n" * (MAX_ROWS + 1)).encode(), f"at most {MAX_ROWS:,}"),
    "unclosed-quote-huge-field": ((HEADER + '50,1,"5\n' + "6" * 140_000 + "\n").encode(), ": unreadable CSV"),
    "empty": (b"", "no header"),
    "nul-bytes": (b"\x00" * 100, "header is"),
    "header-only": (HEADER.encode(), "no data rows"),
}


def _run(tmp_path: Path, data: bytes, capsys) -> tuple[int, str]:
    f = tmp_path / "m.csv"
    f.write_bytes(data)
    code = main(["calibrate", str(f)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_exit_2_located(tmp_path, capsys, name):
    data, fragment = CORPUS[name]
    code, err = _run(tmp_path, data, capsys)
    assert code == 2, err
    assert "Traceback" not in err and len(err) < 2000 and fragment in err, err[:500]
    assert all(line.startswith((str(tmp_path / "m.csv"), "error: ")) for line in err.splitlines()), err[:500]


CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "-",
            "0",
            "nan",
            "inf",
            "-inf",
            "1e20",
            "1e-320",
            "5 mJ/cm^2",
            "3 uJ",
            "12 um",
            "2.5",
            "1",
            "-3",
            "x",
            "1e400",
            "0.0",
            '"5,6"',
            "none",
            "\t",
            "NaN um",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**25), 10**25).map(str),
    st.text(max_size=6),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELLS, min_size=0, max_size=4), max_size=8), keep_good=st.booleans())
def test_hostile_rows_never_crash(tmp_path, capsys, rows, keep_good):
    body = "".join(",".join(c.replace("\n", " ").replace("\r", " ") for c in r) + "\n" for r in rows)
    code, err = _run(tmp_path, ((GOOD if keep_good else HEADER) + body).encode("utf-8", "replace"), capsys)
    assert code in (0, 2), err
    assert "Traceback" not in err
