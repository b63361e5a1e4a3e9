"""The example designs that ship with fabplan, found wherever fabplan is installed.

The repository keeps them in its top-level `designs/` folder (the one the README's tour uses). A
wheel (`pip install .`, not editable) carries a copy inside the package, `fabplan/shipped_designs/`,
made by `setup.py` at build time from that same folder, so there is one source. This module finds
whichever exists: the packaged copy first, then the checkout's `designs/` (editable installs and
running from a clone).

>>> sorted(p.name for p in shipped_designs())[:2]
['demo_array.yaml', 'dense_cm2.yaml']
>>> shipped_design("seed_single_disc").name
'seed_single_disc.yaml'
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fabplan.errors import UserError

PACKAGED = Path(__file__).resolve().parent / "shipped_designs"
CHECKOUT = Path(__file__).resolve().parents[1] / "designs"
SCHEMA_NAME = "fabplan-design.schema.json"
SEED = "seed_single_disc.yaml"


def designs_dir() -> Path:
    """The folder holding the shipped designs (packaged copy, else the checkout's `designs/`)."""
    for folder in (PACKAGED, CHECKOUT):
        if (folder / SEED).is_file():
            return folder
    raise UserError(
        f"the shipped designs are missing (looked in {PACKAGED} and {CHECKOUT}); reinstall fabplan"
    )


def shipped_designs() -> list[Path]:
    """Every shipped design YAML, sorted by name."""
    return sorted(designs_dir().glob("*.yaml"))


def shipped_design(name: str) -> Path:
    """The shipped design called `name` (with or without `.yaml`); UserError naming the choices."""
    stem = name[:-5] if name.endswith(".yaml") else name
    path = designs_dir() / f"{stem}.yaml"
    if not path.is_file():
        names = ", ".join(p.stem for p in shipped_designs())
        raise UserError(f"{name}: no shipped design of that name (shipped: {names})")
    return path


def describe(path: Path) -> str:
    """The design's leading comment (after the schema line), joined into one sentence-ish line."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text and not text.startswith("yaml-language-server"):
            lines.append(text)
    return " ".join(lines)


def sample_files() -> list[Path]:
    """The tour's sample inputs: a (synthetic) measured dose matrix and a layout drawn in KLayout."""
    folder = designs_dir() / "samples"
    return sorted(p for p in folder.glob("*") if p.suffix in (".csv", ".gds", ".md")) if folder.is_dir() else []


def copy_designs(dest: str | Path, names: list[str] | None = None, *, overwrite: bool = False) -> list[Path]:
    """Copy shipped designs (all by default, then with the tour's sample inputs in `samples/`) and
    the JSON Schema editors validate them against into `dest`; refuses to overwrite an existing file
    unless `overwrite`. Returns the files written."""
    sources = [shipped_design(n) for n in names] if names else shipped_designs()
    schema = designs_dir() / SCHEMA_NAME
    if schema.is_file():
        sources.append(schema)
    out = Path(dest)
    targets = [(src, out / src.name) for src in sources]
    if not names:
        targets += [(src, out / "samples" / src.name) for src in sample_files()]
    clashes = [str(t) for _, t in targets if t.exists()]
    if clashes and not overwrite:
        raise UserError(f"{', '.join(clashes)}: already exists (pass --force to overwrite)")
    written = []
    for src, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        written.append(target)
    return written
