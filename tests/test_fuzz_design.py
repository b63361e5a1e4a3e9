"""Design files an attacker of our own inputs would write: exit 2, one located line, bounded time/memory.

Regression corpus from issue 13 (each once a traceback, a hang over 30 s or a memory blow-up), plus a
hypothesis fuzzer that splices hostile YAML fragments into a shipped design. The long soak of the same
generators is bench/bench_fuzz.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabplan.design import load_design
from fabplan.design.files import ALLOW_OUTSIDE_ENV
from fabplan.design.yamlsource import load_yaml
from fabplan.errors import ProblemsError, UserError

ROOT = Path(__file__).resolve().parents[1]
SEED = (ROOT / "designs" / "seed_single_disc.yaml").read_text()


def _seed_reading(csv: str, which: str = "disc") -> str:
    """SEED with its discs (which="disc") or its beam profile (which="profile") read from the CSV csv."""
    if which == "disc":
        return SEED.replace("    lattice: square\n    pitch: 50 um\n    shape: [1, 1]\n", f"    csv: {csv}\n")
    return SEED.replace(
        "profile: {model: annular, inner_diameter: 10 um, outer_diameter: 16 um, na: 0.32}",
        f"profile: {{model: measured, csv: {csv}}}",
    ).replace("diameter: 10 um, fluence: 100 mJ/cm^2", "fluence: 100 mJ/cm^2")


def _bomb(levels: int = 9, fan: int = 10) -> str:
    names = [f"l{i}" for i in range(levels)]
    out = [f"{names[0]}: &{names[0]} [" + ",".join(["x"] * fan) + "]"]
    for a, b in zip(names, names[1:], strict=False):
        out.append(f"{b}: &{b} [" + ",".join([f"*{a}"] * fan) + "]")
    return "\n".join(out) + "\n"


# name -> (design text, a fragment the single error line must contain)
CORPUS = {
    "recursive-alias": ("name: &a [*a]\n", "recursive alias"),
    "recursive-alias-map": ("a: &m {k: *m}\n", "recursive alias"),
    "deep-flow": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than"),
    "deep-block": ("".join("  " * i + f"k{i}:\n" for i in range(3000)), "nested more than"),
    "alias-bomb": (_bomb(), "expands to more than"),
    "huge-name": (SEED.replace("name: seed-single-disc", "name: " + "x" * 100_000), "100,000 characters"),
    "huge-quantity": (
        SEED.replace("threshold_fluence: 40 mJ/cm^2", "threshold_fluence: " + "4" * 100_000 + " mJ/cm^2"),
        "characters",
    ),
    "huge-unit": (
        SEED.replace("threshold_fluence: 40 mJ/cm^2", "threshold_fluence: 40 " + "m" * 100_000),
        "chars",
    ),
    "huge-key": (SEED + "y" * 100_000 + ": 1\n", "YAML syntax error"),  # PyYAML: keys < 1024 chars
    "huge-id": (SEED.replace("id: S", "id: " + "S" * 100_000), "characters"),
    "pitch-denormal": (
        SEED.replace("pitch: 50 um", "pitch: 5e-324").replace("shape: [1, 1]", "shape: [300, 300]"),
        "more than 1,000,000 disc pair(s)",
    ),
    "nul-character": (SEED.replace("name: seed-single-disc", 'name: "seed\x00disc"'), "character #x0000"),
    # soak finds (bench_fuzz.py): a megabyte the pure-Python YAML scanner needed 10-20 s for
    "megabyte-comment": ("# " + "x" * 1_000_000 + "\n", "the file is empty"),
    "megabyte-in-flow": (SEED.replace("rect: [-500 um,", "rect: [" + "x" * 1_000_000 + ","), "characters"),
    "int-past-4300-digits": (
        SEED.replace("description: One", "description: " + "9" * 5000 + "\nx: One"),
        "cannot read this value",
    ),
    "impossible-date": (SEED.replace("name: seed-single-disc", "name: 2024-02-31"), "cannot read this value"),
    "disc-at-1e308": (  # soak find: the KD-trees of validate and plan overflowed (traceback)
        SEED.replace(
            "    lattice: square\n    pitch: 50 um\n    shape: [1, 1]\n",
            "    discs: [{x: 1e308, y: 0}, {x: 0, y: 0}]\n",
        ),
        "beyond 1 m from the origin",
    ),
    "origin-at-1e300": (
        SEED.replace("    lattice: square\n", "    lattice: square\n    origin: [1e300, 0]\n"),
        "beyond 1 m",
    ),
    "shape-huge": (SEED.replace("shape: [1, 1]", "shape: [100000, 100000]"), "more than 20 million"),
    "csv-outside-folder": (
        _seed_reading("/etc/passwd"),
        "outside the design's folder",
    ),
    "csv-parent-folder": (
        _seed_reading("../x.csv"),
        "outside the design's folder",
    ),
}


def _validate(tmp_path: Path, text: str | bytes, capsys) -> tuple[int, str]:
    from fabplan.cli import main

    f = tmp_path / "d.yaml"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = main(["validate", str(f)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_exit_2_one_located_line(tmp_path, capsys, name):
    text, fragment = CORPUS[name]
    code, err = _validate(tmp_path, text, capsys)
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") <= 2 and len(err) < 600, err[:600]
    assert err.startswith(str(tmp_path / "d.yaml")) and fragment in err, err[:600]


def test_csv_in_design_folder_still_reads(tmp_path, monkeypatch):
    sub = tmp_path / "data"
    sub.mkdir()
    (sub / "pos.csv").write_text("x_um,y_um,diameter_um\n0,0,10\n")
    text = _seed_reading("data/pos.csv")
    (tmp_path / "d.yaml").write_text(text)
    from fabplan.design.expand import expand

    assert len(expand(load_design(tmp_path / "d.yaml"))) == 1
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    outside.write_text("x_um,y_um,diameter_um\n0,0,10\n")
    (tmp_path / "e.yaml").write_text(text.replace("data/pos.csv", str(outside)))
    with pytest.raises(ProblemsError, match="outside the design's folder"):
        load_design(tmp_path / "e.yaml")
    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, "1")  # the explicit opt-in
    assert len(expand(load_design(tmp_path / "e.yaml"))) == 1


def test_symlink_out_of_folder_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "secret.csv").write_text("x_um,y_um\n0,0\n")
    (tmp_path / "d" / "link.csv").symlink_to(tmp_path / "secret.csv")
    text = _seed_reading("link.csv")
    (tmp_path / "d" / "d.yaml").write_text(text)
    with pytest.raises(ProblemsError, match="outside"):
        load_design(tmp_path / "d" / "d.yaml")


@pytest.mark.parametrize("which", ["disc", "profile"])
def test_non_utf8_csv_named_by_design_is_located(tmp_path, which):
    from fabplan.beam import make_beam
    from fabplan.design.expand import expand

    (tmp_path / "f.csv").write_bytes(b"x_um,y_um,r_um,intensity\n0,0,0,1\n1,1,caf\xe9,1\n")
    text = _seed_reading("f.csv", which)
    (tmp_path / "d.yaml").write_text(text)
    with pytest.raises(UserError) as exc:
        design = load_design(tmp_path / "d.yaml")
        expand(design) if which == "disc" else make_beam(design)
    msg = str(exc.value)
    assert f"{tmp_path / 'f.csv'}:3:" in msg and "UTF-8" in msg, msg


def test_non_utf8_design_is_located(tmp_path, capsys):
    code, err = _validate(tmp_path, SEED.encode().replace(b"seed-single-disc", b"caf\xe9"), capsys)
    assert code == 2 and ":6:" in err and "UTF-8" in err and "Traceback" not in err, err


def test_oversize_design_is_refused_without_reading_it_all(tmp_path, capsys):
    code, err = _validate(tmp_path, SEED + "#" * (17 * 2**20) + "\n", capsys)
    assert code == 2 and "MiB" in err, err


# ---------------------------------------------------------------- fuzzer

FRAGMENTS = st.sampled_from(
    [
        "&a [*a]",
        "*undefined",
        "!!python/object:os.system ls",
        "[" * 200,
        "{" * 70 + "}" * 70,
        "5e-324",
        "1e308 um",
        "-0",
        ".nan",
        "<<: {a: 1}",
        "x" * 5000,
        "'" + "9" * 3000 + " um'",
        "\t",
        "\x00",
        "\ufeff",
        "? [a, b]\n: c",
        "&x 1",
        "{a: &b [1,2], c: *b}",
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 10**6), frag=FRAGMENTS, n=st.integers(1, 3))
def test_hostile_fragments_never_crash(tmp_path, capsys, pos, frag, n):
    pos %= len(SEED)
    code, err = _validate(tmp_path, SEED[:pos] + frag * n + SEED[pos:], capsys)
    assert code in (0, 2), err
    if code == 2:
        assert "Traceback" not in err and len(err) < 20_000, err[:500]


def test_limits_are_far_beyond_real_designs():
    # Every shipped design loads well inside the limits (nodes, depth, scalar length).
    for path in sorted((ROOT / "designs").glob("*.yaml")):
        src = load_yaml(path.read_text(), str(path))
        assert src.node_count < 100_000


def test_measured_profile_of_absurd_extent_is_refused(tmp_path, capsys):
    # r up to 1e9 um: the 5 nm interpolation grid tried to allocate 1.46 TiB (a traceback)
    (tmp_path / "f.csv").write_text("r_um,intensity\n0,0\n5,1\n1e9,0\n")
    text = _seed_reading("f.csv", "profile")
    code, err = _validate(tmp_path, text, capsys)
    assert code == 2 and "at most 1000 um" in err and "Traceback" not in err, err


@pytest.mark.parametrize("which", ["disc", "profile"])
@pytest.mark.parametrize(
    "body",
    ['0,0,"5\n' + "6" * 140_000 + "\n", "0,0," + "1" * 100_000 + " um\n"],
    ids=["csv-limit", "huge-cell"],
)
def test_hostile_csv_named_by_design_is_one_bounded_line(tmp_path, capsys, which, body):
    # soak finds: csv's 131,072-char field limit was a traceback, a 100,000-char cell was echoed whole
    (tmp_path / "f.csv").write_text(
        ("x_um,y_um,diameter_um\n" if which == "disc" else "r_um,intensity,x\n") + body
    )
    text = _seed_reading("f.csv", which)
    code, err = _validate(tmp_path, text, capsys)
    assert code == 2 and "Traceback" not in err and len(err) < 500 and "f.csv" in err, err[:600]


def test_far_disc_in_csv_is_refused_by_plan_too(tmp_path, capsys):
    from fabplan.cli import main

    (tmp_path / "pos.csv").write_text("x_um,y_um,diameter_um\n1e308,0,10\n40,0,10\n")
    (tmp_path / "d.yaml").write_text(_seed_reading("pos.csv"))
    assert main(["plan", str(tmp_path / "d.yaml"), "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "beyond 1 m" in err and "Traceback" not in err, err
