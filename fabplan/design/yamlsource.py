"""Safe YAML loading that remembers where every key and value sits in the file.

Pydantic reports errors by location tuples ("arrays", 0, "pitch"); users need `file:line:col`.
We compose the YAML node tree (safe loader only), build plain Python data from it ourselves and
record, for each path, the position of the value node and of its key node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fabplan.errors import Problem, ProblemsError

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
_MAX_NODES = 2_000_000
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "str", "seq", "map", "timestamp")}


def _build(node: yaml.Node, path: PathKey, src: YamlSource, problems: list[Problem]) -> Any:
    src.value_pos[path] = _pos(node)
    src.node_count += 1
    if src.node_count > _MAX_NODES:  # aliases can expand a small file exponentially
        raise ProblemsError([Problem(f"the YAML expands to more than {_MAX_NODES:,} values", "", src.file)])
    if node.tag not in _PLAIN_TAGS:
        problems.append(Problem(f"unsupported YAML tag {node.tag!r}", format_path(path), src.file, *_pos(node)))
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
    return _SCALAR_CONSTRUCTOR.construct_object(node, deep=True)


def load_yaml(text: str, file: str = "<input>") -> YamlSource:
    """Parse `text` with the safe loader; raise ProblemsError with positions on syntax errors."""
    src = YamlSource(data=None, file=file, text=text)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        msg = f"YAML syntax error: {exc.problem or exc.context}"
        raise ProblemsError([Problem(msg, "", file, line, col)]) from None
    except yaml.YAMLError as exc:
        raise ProblemsError([Problem(f"YAML error: {exc}", "", file)]) from None
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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProblemsError([Problem("file not found", "", str(path))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemsError([Problem(f"cannot read file: {exc}", "", str(path))]) from None
    return load_yaml(text, str(path))
