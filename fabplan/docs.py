"""Reference documentation generated from the code itself: CLI help and the design JSON Schema.

`fabplan docs` rewrites the generated sections (between BEGIN/END GENERATED markers) of
docs/reference.md, the reference the README links to (or of the README itself, if it has them),
so the reference can never drift from what the program actually accepts; a test keeps them in sync.
"""

from __future__ import annotations

import argparse
import io
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from fabplan.design.schema import design_json_schema

MARK = "<!-- {} GENERATED: {} -->"


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:  # argparse keeps sub-commands here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            out.extend(action.choices.items())
    return out


def _help_text(parser: argparse.ArgumentParser) -> str:
    buf = io.StringIO()
    with redirect_stdout(buf):
        parser.print_help()
    text = buf.getvalue()
    return re.sub(r"^usage: ", "usage: ", text).rstrip()


def cli_reference_markdown() -> str:
    """Every command's --help, nested sub-commands included, in command-name order."""
    import os

    from fabplan.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # stable wrapping whatever the terminal
    try:
        root = build_parser()
        parts: list[str] = []

        def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
            for name, sub in sorted(_subparsers(parser)):
                full = f"{prefix} {name}"
                parts.append(f"#### `{full}`\n\n```text\n{_help_text(sub)}\n```\n")
                walk(full, sub)

        walk("fabplan", root)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


def _type_of(prop: dict[str, Any]) -> str:
    if prop.get("x-kind") == "sweep" or any(p.get("x-kind") == "sweep" for p in prop.get("anyOf", [])):
        return "list, or range {start, stop, step}"
    if "x-unit" in prop:
        return f"quantity ({prop['x-unit']})"
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in prop:
        kinds = [_type_of(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(dict.fromkeys(kinds)) or "null"
    if "oneOf" in prop:
        return " or ".join(_type_of(p) for p in prop["oneOf"])
    if "enum" in prop:
        return " / ".join(repr(v) for v in prop["enum"])
    if "const" in prop:
        return repr(prop["const"])
    if prop.get("type") == "array":
        items = prop.get("prefixItems") or ([prop["items"]] if "items" in prop else [])
        inner = ", ".join(_type_of(i) for i in items)
        return f"[{inner}]" if "prefixItems" in prop else f"list of {inner or 'any'}"
    if prop.get("type") == "object" and "additionalProperties" in prop and isinstance(prop["additionalProperties"], dict):
        return f"map of {_type_of(prop['additionalProperties'])}"
    return str(prop.get("type", "any"))


def design_reference_markdown() -> str:
    """One table per object of the design format, from the JSON Schema (fields, types, defaults)."""
    schema = design_json_schema()
    defs = schema.get("$defs", {})
    objects = [("Design (top level)", schema)] + sorted(defs.items())
    parts = []
    for name, obj in objects:
        props = obj.get("properties")
        if not props:
            continue
        required = set(obj.get("required", []))
        lines = [f"#### {name}", ""]
        if obj.get("description"):
            lines += [" ".join(obj["description"].split()), ""]
        lines += ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
        for field, prop in props.items():
            default = prop.get("default", None)
            default = "required" if field in required else ("see below" if isinstance(default, dict) else repr(default))
            desc = " ".join(str(prop.get("description", "")).split()).replace("|", "\\|")
            lines.append(f"| `{field}` | {_type_of(prop).replace('|', '/')} | {default} | {desc} |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def replace_section(text: str, name: str, body: str) -> str:
    begin, end = MARK.format("BEGIN", name), MARK.format("END", name)
    if begin not in text or end not in text:
        raise ValueError(f"README has no {begin} ... {end} section")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n\n{body.strip()}\n\n{end}{tail}"


SECTIONS = {"cli": cli_reference_markdown, "design-format": design_reference_markdown}
REFERENCE = Path("docs") / "reference.md"  # where the generated reference lives, next to README.md


def render_readme(text: str) -> str:
    """`text` with every generated section it has rewritten (ValueError when it has none)."""
    present = [name for name in SECTIONS if MARK.format("BEGIN", name) in text]
    if not present:
        raise ValueError(f"no {MARK.format('BEGIN', '...')} sections")
    for name in present:
        text = replace_section(text, name, SECTIONS[name]())
    return text


def update_readme(path: Path) -> bool:
    """Rewrite the generated sections; returns True when the file changed."""
    old = path.read_text(encoding="utf-8")
    new = render_readme(old)
    if new != old:
        path.write_text(new, encoding="utf-8")
    return new != old


def generated_files(readme: Path) -> list[Path]:
    """The files holding generated sections: the README and docs/reference.md beside it (either may
    have none, the pair must have them all)."""
    return [p for p in (readme, readme.parent / REFERENCE) if p.is_file()
            and any(MARK.format("BEGIN", name) in p.read_text(encoding="utf-8") for name in SECTIONS)]


PICTURES = {
    "hex_sweep_preview.png": "preview of designs/hex_sweep.yaml",
    "dense_cm2_preview.png": "preview of designs/dense_cm2.yaml (250,000 discs)",
    "demo_fabrication.png": "dry-run fabrication report of designs/hex_sweep.yaml",
    "demo_disc.png": "one disc's lasing measurement from the demo logbook report",
    "demo_threshold_vs_diameter.png": "lasing threshold against disc diameter, hex_sweep demo",
    "monitor.png": "the monitor page halfway through a hex_sweep dry run (fabplan dry-run --monitor)",
}


def make_pictures(out_dir: Path, designs_dir: Path) -> list[Path]:
    """Regenerate the README's pictures with fabplan itself (preview, demo reports)."""
    import shutil
    import tempfile

    from fabplan.cli import main
    from fabplan.demo import run_demo

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem in ("hex_sweep", "dense_cm2"):
        target = out_dir / f"{stem}_preview.png"
        if main(["preview", str(designs_dir / f"{stem}.yaml"), "-o", str(target)]) != 0:
            raise RuntimeError(f"preview of {stem} failed")
        written.append(target)
    with tempfile.TemporaryDirectory() as tmp:
        demo = run_demo(Path(tmp) / "demo", designs_dir / "hex_sweep.yaml")
        report = Path(demo.artefacts["lab_report"])
        disc_figs = sorted((report / "discs").glob("*.png"))
        pairs = {
            "demo_fabrication.png": Path(demo.artefacts["fabrication_report"]),
            "demo_disc.png": disc_figs[len(disc_figs) // 2],
            "demo_threshold_vs_diameter.png": report / "threshold_vs_diameter.png",
        }
        for name, src in pairs.items():
            shutil.copyfile(src, out_dir / name)
            written.append(out_dir / name)
    from fabplan.monitor.picture import monitor_picture  # headless chromium; skipped (said why) without it

    shot = monitor_picture(out_dir / "monitor.png", designs_dir / "hex_sweep.yaml")
    if shot is not None:
        written.append(shot)
    return written
