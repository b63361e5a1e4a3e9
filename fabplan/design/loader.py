"""Load a design file: YAML -> pydantic Design, every problem reported at once with its location."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from fabplan.design import models
from fabplan.design.checks import check_design
from fabplan.design.files import file_fields, leaves_folder
from fabplan.design.yamlsource import YamlSource, clip, format_path, load_yaml, read_yaml_file
from fabplan.errors import Problem, ProblemsError

# Field names of every model in the design format, for "did you mean" suggestions.
_MODEL_FIELDS: list[set[str]] = [
    set(cls.model_fields)
    for cls in vars(models).values()
    if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.model_fields
]


def _yaml_path(data: Any, loc: tuple) -> tuple[tuple, Any, Any]:
    """Map a pydantic loc onto the data's path, skipping union tags and validator names.

    Returns (path, value at path, parent container of the last element)."""
    path: list = []
    cur, parent = data, None
    for part in loc:
        if isinstance(cur, dict) and part in cur:
            parent, cur = cur, cur[part]
            path.append(part)
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            parent, cur = cur, cur[part]
            path.append(part)
    return tuple(path), cur, parent


def _suggest(key: str, siblings: set[str]) -> str:
    """' did you mean 'pitch'?' using the model whose fields best match the sibling keys."""
    best = max(_MODEL_FIELDS, key=lambda fields: len(fields & siblings))
    pool = best if best & siblings else set().union(*_MODEL_FIELDS)
    match = difflib.get_close_matches(key, sorted(pool), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _message(err: dict, key: str | None, siblings: set[str]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return f"unknown key {clip(key)}" + _suggest(str(key), siblings - {key})
    if kind == "missing":
        return f"missing required field {err['loc'][-1]!r}"
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    if msg.startswith("Assertion failed, "):
        return msg[len("Assertion failed, ") :]
    if kind in ("literal_error", "union_tag_invalid", "enum"):
        return f"{msg}, got {clip(err.get('input'))}"
    if "input" in err and not isinstance(err["input"], (dict, list)):
        return f"{msg}, got {clip(err['input'])}"
    return msg


_PREFERENCE = {"value_error": 0, "extra_forbidden": 0, "missing": 1}


def problems_from_validation(exc: ValidationError, src: YamlSource) -> list[Problem]:
    """One located problem per offending path (union branches collapsed to the most useful one)."""
    chosen: dict[tuple, tuple[int, Problem]] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        path, _value, parent = _yaml_path(src.data, loc)
        if err["type"] == "missing":
            # Located at the mapping that lacks it; the path names the missing field.
            problem = src.problem(path, _message(err, None, set()))
            problem = Problem(
                problem.message, format_path(path + (loc[-1],)), problem.file, problem.line, problem.col
            )
        elif err["type"] == "extra_forbidden":
            siblings = set(parent) if isinstance(parent, dict) else set()
            problem = src.problem(path, _message(err, path[-1] if path else None, siblings), key=True)
        else:
            problem = src.problem(path, _message(err, None, set()))
        rank = _PREFERENCE.get(err["type"], 2)
        key = (problem.path, err["type"] == "extra_forbidden")
        if key not in chosen or rank < chosen[key][0]:
            chosen[key] = (rank, problem)
    return sorted((p for _, p in chosen.values()), key=lambda p: (p.line or 0, p.col or 0, p.path))


def parse_design(src: YamlSource) -> models.Design:
    """Validate parsed YAML; raise ProblemsError listing every problem with file:line:col."""
    if not isinstance(src.data, dict):
        raise ProblemsError([src.problem((), "a design must be a mapping with schema_version, sample, ...")])
    version = src.data.get("schema_version")
    if version is not None and version != 1:
        raise ProblemsError(
            [
                src.problem(
                    ("schema_version",), f"unsupported schema_version {version!r}; this fabplan reads 1"
                )
            ]
        )
    try:
        design = models.Design.model_validate(src.data)
    except ValidationError as exc:
        raise ProblemsError(problems_from_validation(exc, src)) from None
    if src.file and src.file != "<input>":
        design._path = Path(src.file)
    design._source_text = src.text
    design._yaml = src
    outside = [(path, leaves_folder(design.path, name)) for path, name in file_fields(design)]
    if any(why for _, why in outside):
        raise ProblemsError([src.problem(path, why) for path, why in outside if why])
    problems = check_design(design, src)
    if problems:
        raise ProblemsError(sorted(problems, key=lambda p: (p.line or 0, p.col or 0)))
    return design


def load_design(path: str | Path) -> models.Design:
    """Read, parse and cross-check a design file; ProblemsError lists every problem (file:line:col).

    >>> from fabplan.shipped import shipped_design
    >>> design = load_design(shipped_design("seed_single_disc"))
    >>> design.name, design.arrays[0].disc.fluence, design.sample.film.thickness
    ('seed-single-disc', 100.0, 100.0)
    """
    return parse_design(read_yaml_file(path))


def loads_design(text: str, file: str = "<input>") -> models.Design:
    """Parse a design from a YAML string (notebooks, tests); quantities carry units or are bare
    numbers in the field's unit.

    >>> d = loads_design('''
    ... schema_version: 1
    ... sample: {region: {rect: [0, 0, 200 um, 200 um]}}
    ... laser: {max_pulse_energy: 5 uJ}
    ... beam: {profile: {model: lg01, ring_diameter: 12 um}, threshold_fluence: 40 mJ/cm2,
    ...        damage_fluence: 0.4 J/cm^2}
    ... arrays: [{id: A, pitch: 40 um, shape: [2, 3], disc: {diameter: 6 micron}}]
    ... ''')
    >>> d.beam.damage_fluence, d.arrays[0].disc.diameter
    (400.0, 6.0)
    """
    return parse_design(load_yaml(text, file))
