"""`fabplan docs`: regenerate README's reference sections from the CLI help and the JSON Schema."""

from __future__ import annotations

import argparse
from pathlib import Path

from fabplan.errors import UserError


def _docs(args: argparse.Namespace) -> int:
    from fabplan.docs import render_readme, update_readme

    if args.pictures:
        from fabplan.docs import make_pictures

        for written in make_pictures(Path(args.pictures), Path(args.designs)):
            print(f"written: {written}")
        return 0
    from fabplan.docs import generated_files

    readme = Path(args.readme)
    if not readme.is_file():
        raise UserError(f"{readme}: no such file")
    paths = generated_files(readme)
    if not paths:
        raise UserError(f"{readme}: neither it nor docs/reference.md beside it has generated sections")
    stale = 0
    for path in paths:
        try:
            if args.check:
                text = path.read_text(encoding="utf-8")
                if render_readme(text) != text:
                    print(f"{path}: generated reference sections are out of date (run `fabplan docs`)")
                    stale += 1
                else:
                    print(f"{path}: up to date")
                continue
            changed = update_readme(path)
        except ValueError as exc:
            raise UserError(f"{path}: {exc}") from None
        print(f"{path}: {'updated' if changed else 'already up to date'}")
    return 1 if stale else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "docs",
        help="regenerate the CLI and design-format reference (docs/reference.md)",
        description="Rewrite the generated reference sections (in docs/reference.md beside the README, or the "
        "README itself) from the --help texts and the JSON Schema.",
    )
    p.add_argument("--readme", default="README.md", help="README file to update (default: README.md)")
    p.add_argument("--check", action="store_true", help="only check; exit 1 when out of date")
    p.add_argument("--pictures", metavar="DIR", help="instead: regenerate the README's pictures into DIR")
    p.add_argument("--designs", default="designs", help="folder of the shipped designs (default: designs)")
    p.set_defaults(func=_docs)
