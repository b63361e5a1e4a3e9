"""Safe YAML loading that remembers where every key and value sits in the file.

Pydantic reports errors by location tuples ("arrays", 0, "pitch"); users need `file:line:col`.
We compose the YAML node tree (safe loader only), build plain Python data from it ourselves and
record, for each path, the position of the value node and of its key node.

A design is a small hand-written file, so loading refuses, with a located one-line problem and in
bounded time and memory, what no user writes: files over MAX_FILE_BYTES, nesting deeper than
MAX_DEPTH, recursive aliases, alias "bombs" that expand past MAX_NODES values, and scalars longer than
MAX_SCALAR_CHARS (a quantity parser is quadratic in the length of its input). The limits are checked on
the YAML event stream before anything is built, and no message echoes an oversized value whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fabplan.errors import Problem, ProblemsError
from fabplan.textfiles import read_text_limited

PathKey = tuple[Any, ...]


@dataclass
class YamlSource:
    """Parsed YAML data plus 1-based (line, col) positions of each path's value and key."""

    data: Any
    file: str
    text: str
    value_pos: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_pos: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    node_count: int = 0

    def locate(self, path: PathKey, *, key: bool = False) -> tuple[int | None, int | None]:
        """Position of `path`, or of its nearest ancestor that exists in the file."""
        path = tuple(path)
        while True:
            table = self.key_pos if key and path in self.key_pos else self.value_pos
            if path in table:
                return table[path]
            if not path:
                return (None, None)
            path = path[:-1]
            key = False

    def problem(self, path: PathKey, message: str, *, key: bool = False) -> Problem:
        line, col = self.locate(path, key=key)
        return Problem(message=message, path=format_path(path), file=self.file, line=line, col=col)


def format_path(path: PathKey) -> str:
    """('arrays', 0, 'pitch') -> 'arrays[0].pitch'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _pos(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


_SCALAR_CONSTRUCTOR = yaml.SafeLoader("")
# libyaml's parser when PyYAML has it (its wheels do): ~50x faster than the pure-Python scanner, which
# needs seconds per megabyte (a 1 MB comment line took 10 s to scan twice)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PURE_PYTHON_CHARS = 256 * 1024  # below this, a syntax error is re-parsed in pure Python for its message
MAX_FILE_BYTES = 16 * 2**20  # dense_cm2.yaml is 2 kB; 250,000 explicit discs inline are ~10 MB
MAX_DEPTH = 64  # designs nest about 6 deep
MAX_NODES = 2_000_000  # values after alias expansion
MAX_SCALAR_CHARS = 1_000
MAX_TEXT_CHARS = 100_000  # free text: `description`
_TEXT_KEYS = {"description"}
_MAX_NODES = MAX_NODES
_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "str", "seq", "map", "timestamp")
}


def _build(node: yaml.Node, path: PathKey, src: YamlSource, problems: list[Problem]) -> Any:
    src.value_pos[path] = _pos(node)
    src.node_count += 1
    if src.node_count > _MAX_NODES:  # aliases can expand a small file exponentially
        raise ProblemsError([Problem(f"the YAML expands to more than {_MAX_NODES:,} values", "", src.file)])
    if isinstance(node, yaml.ScalarNode) and len(node.value) > MAX_SCALAR_CHARS:
        limit = MAX_TEXT_CHARS if path and path[-1] in _TEXT_KEYS else MAX_SCALAR_CHARS
        if len(node.value) > limit:
            problems.append(
                Problem(
                    f"a value of {len(node.value):,} characters (at most {limit:,}): {clip(node.value)}",
                    format_path(path),
                    src.file,
                    *_pos(node),
                )
            )
            return None
    if node.tag not in _PLAIN_TAGS:
        problems.append(
            Problem(f"unsupported YAML tag {node.tag!r}", format_path(path), src.file, *_pos(node))
        )
        return None
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(src.problem(path, "YAML merge keys ('<<') are not supported"))
                continue
            key = _build(key_node, path + ("<key>",), src, problems)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                problems.append(
                    Problem(
                        "mapping keys must be plain scalars", format_path(path), src.file, *_pos(key_node)
                    )
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                problems.append(
                    Problem(f"duplicate key {key!r}", format_path(path + (key,)), src.file, *_pos(key_node))
                )
            src.key_pos[path + (key,)] = _pos(key_node)
            out[key] = _build(value_node, path + (key,), src, problems)
        src.value_pos.pop(path + ("<key>",), None)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), src, problems) for i, item in enumerate(node.value)]
    try:
        return _SCALAR_CONSTRUCTOR.construct_object(node, deep=True)
    except ValueError as exc:  # e.g. an integer past Python's 4,300-digit conversion limit
        problems.append(
            Problem(f"cannot read this value ({str(exc)[:60]})", format_path(path), src.file, *_pos(node))
        )
        return None


def clip(value: object, limit: int = 40) -> str:
    """repr of a user value, shortened with its length: messages never echo a huge field whole."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 4]}...{text[0]} ({len(str(value)):,} chars)"


def _mark_problem(message: str, file: str, mark) -> ProblemsError:
    return ProblemsError([Problem(message, "", file, mark.line + 1, mark.column + 1)])


def _scan(text: str, file: str, loader=yaml.SafeLoader) -> None:
    """Refuse deep nesting, recursive aliases and alias bombs from the event stream (iterative, cheap),
    before the recursive composer and builder ever see them."""
    stack: list[list] = []  # [expanded size, anchor] of each open collection
    sizes: dict[str, int] = {}  # expanded size of each finished anchored node
    open_anchors: set[str] = set()

    def add(n: int, mark) -> None:
        if stack:
            stack[-1][0] += n
            if stack[-1][0] > MAX_NODES:
                raise _mark_problem(
                    f"the YAML expands to more than {MAX_NODES:,} values (aliases repeating aliases?)",
                    file,
                    mark,
                )

    for ev in yaml.parse(text, Loader=loader):
        if isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise _mark_problem(f"nested more than {MAX_DEPTH} levels deep", file, ev.start_mark)
            stack.append([1, ev.anchor])
            if ev.anchor:
                open_anchors.add(ev.anchor)
        elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            n, anchor = stack.pop()
            if anchor:
                sizes[anchor] = n
                open_anchors.discard(anchor)
            add(n, ev.start_mark)
        elif isinstance(ev, yaml.ScalarEvent):
            if ev.anchor:
                sizes[ev.anchor] = 1
            add(1, ev.start_mark)
        elif isinstance(ev, yaml.AliasEvent):
            if ev.anchor in open_anchors:
                raise _mark_problem(
                    f"recursive alias *{clip(ev.anchor)[1:-1]} (refers to itself)", file, ev.start_mark
                )
            add(sizes.get(ev.anchor, 1), ev.start_mark)


def load_yaml(text: str, file: str = "<input>") -> YamlSource:
    """Parse `text` with the safe loader; raise ProblemsError with positions on syntax errors."""
    src = YamlSource(data=None, file=file, text=text)
    if len(text) > MAX_FILE_BYTES:
        raise ProblemsError(
            [
                Problem(
                    f"{len(text):,} characters: larger than a design can be ({MAX_FILE_BYTES // 2**20} MiB)",
                    "",
                    file,
                )
            ]
        )
    try:
        try:
            _scan(text, file, _LOADER)
            root = yaml.compose(text, Loader=_LOADER)
        except yaml.YAMLError:
            if _LOADER is yaml.SafeLoader or len(text) > _PURE_PYTHON_CHARS:
                raise
            # the pure-Python parser words its errors better ("expected the node content, but found
            # '<stream end>'"): let it explain a hand-sized file that libyaml refused
            _scan(text, file, yaml.SafeLoader)
            root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        msg = f"YAML syntax error: {exc.problem or exc.context}"
        raise ProblemsError([Problem(msg, "", file, line, col)]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML forbids (NUL, other controls)
        pos = exc.position
        line, col = text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1
        what = f"character #x{exc.character:04x}" if isinstance(exc.character, int) else "character"
        raise ProblemsError(
            [Problem(f"YAML error: {what} not allowed in YAML ({exc.reason})", "", file, line, col)]
        ) from None
    except yaml.YAMLError as exc:
        raise ProblemsError([Problem(f"YAML error: {str(exc).splitlines()[0]}", "", file)]) from None
    problems: list[Problem] = []
    if root is None:
        raise ProblemsError([Problem("the file is empty", "", file, 1, 1)])
    try:
        src.data = _build(root, (), src, problems)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ProblemsError([Problem(f"YAML error: {exc}", "", file, line, col)]) from None
    if problems:
        raise ProblemsError(problems)
    return src


def read_yaml_file(path: str | Path) -> YamlSource:
    """Read a YAML file as UTF-8 text, with a user error (not a traceback) when it cannot be read."""
    path = Path(path)
    text = read_text_limited(path, MAX_FILE_BYTES, "a design")
    return load_yaml(text, str(path))


