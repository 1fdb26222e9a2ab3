"""Checking a YAML document by hand, collecting every problem with the key path at fault.

A path reads as it would be written: ``time.last``, ``devices.disk.web-01``, ``percentiles[1]``.
Readers return ``None`` after recording a problem, so checking goes on past the first mistake.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
MISSING: Any = object()


class ReportConfigError(Exception):
    """Every problem of one configuration file, each naming the file and the key path."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class Problems:
    """``lines``: the line of each key path in the file (``key_lines``), so that a problem reads
    ``FILE: line N: key.path: what is wrong``, as a YAML syntax error names its line; a path not
    in the file (a missing key) takes the line of the nearest key above it that is."""

    def __init__(self, source: str, lines: Mapping[str, int] | None = None) -> None:
        self.source = source
        self.lines = lines or {}
        self.errors: list[str] = []

    def add(self, path: str, message: str) -> None:
        line = self.line_of(path)
        where = f"line {line}: " if line is not None else ""
        self.errors.append(f"{self.source}: {where}{path or '(top level)'}: {message}")

    def line_of(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = _PARENT.sub("", path)
        return None

    def raise_if_any(self) -> None:
        if self.errors:
            raise ReportConfigError(self.errors)


_PARENT = re.compile(r"(?:\.[^.\[]*|\[\d+\])$|^[^.\[]*$")  # the last key or index of a path
MERGE_TAG = "tag:yaml.org,2002:merge"


def key_lines(root: yaml.Node | None) -> dict[str, int]:
    """The line (from 1) where each key path of a composed document is written: a mapping's
    keys, a list's items. Keys merged in (``<<: *base``) count where their anchor wrote them,
    unless the mapping gives them itself; what an alias repeats is not walked again, so a
    problem inside it is shown at the alias."""
    lines: dict[str, int] = {}
    seen: set[int] = set()
    pending: list[tuple[str, yaml.Node]] = [("", root)] if root is not None else []
    while pending:
        path, node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            children = [(join(path, index), item, item) for index, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            children = [(join(path, key.value), key, value) for key, value in _pairs(node)]
        else:
            continue
        for child, written, value in children:
            lines.setdefault(child, written.start_mark.line + 1)
            pending.append((child, value))
    return lines


def _pairs(node: yaml.MappingNode) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
    """A mapping's scalar keys and their values, its own first, then those merged in that it
    does not give (as YAML's merge key means), each once however deep the merges."""
    found: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
    pending, seen = [node], set()
    while pending:
        mapping = pending.pop(0)
        if id(mapping) in seen:
            continue
        seen.add(id(mapping))
        for key, value in mapping.value:
            if key.tag == MERGE_TAG:
                merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
                pending += [item for item in merged if isinstance(item, yaml.MappingNode)]
            elif isinstance(key, yaml.ScalarNode):
                found.setdefault(key.value, (key, value))
    return list(found.values())


def join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def type_name(value: object) -> str:
    if value is None:
        return "nothing (null)"
    names = {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def mapping(
    problems: Problems,
    path: str,
    value: object,
    allowed: Iterable[str],
    required: Iterable[str] = (),
) -> dict[str, Any] | None:
    """``value`` as a mapping whose keys are all ``allowed``; unknown and missing keys reported."""
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping, got {type_name(value)}")
        return None
    known = list(allowed)
    for key in value:
        if not isinstance(key, str):
            problems.add(path, f"key {key!r} is not text")
        elif key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.add(join(path, key), f"unknown key{hint}; allowed: {', '.join(known)}")
    for key in required:
        if key not in value:
            problems.add(join(path, key), "required key is missing")
    return value


def field(
    problems: Problems,
    path: str,
    value: object,
    convert: Callable[[Any], T],
) -> T | None:
    """``convert(value)``; a ValueError or TypeError becomes a problem at ``path``."""
    try:
        return convert(value)
    except (ValueError, TypeError) as exc:
        problems.add(path, str(exc))
        return None


def text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected non-empty text, got {_shown_type(value)}")
    return value.strip()


def _shown_type(value: object) -> str:
    """``type_name``, but text that is only blanks says so (``got text`` said nothing)."""
    if isinstance(value, str) and not value.strip():
        return "empty text" if not value else "only blanks"
    return type_name(value)


def number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {type_name(value)}")
    return float(value)


def bounded(value: object, low: float, high: float | None, unit: str) -> float:
    """A finite number from ``low`` to ``high`` (no upper bound when None), as the alerting
    thresholds word it: NaN would switch a rule off without a word, since it never compares."""
    result = number(value)
    if not math.isfinite(result) or result < low or (high is not None and result > high):
        upper = "" if high is None else f" and at most {high:g}"
        raise ValueError(f"must be at least {low:g}{upper} ({unit}), got {result:g}")
    return result


def integer(value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {type_name(value)}")
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}, got {value}")
    return value


def text_list(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a non-empty list of names, got {type_name(value)}")
    items = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"item {index + 1} is {_shown_type(item)}, expected a name")
        items.append(item.strip())
    duplicates = sorted(item for item, count in Counter(items).items() if count > 1)
    if duplicates:
        raise ValueError(f"listed more than once: {', '.join(duplicates)}")
    return tuple(items)


def lookup(document: Mapping[str, Any] | None, key: str) -> Any:
    return MISSING if document is None else document.get(key, MISSING)
