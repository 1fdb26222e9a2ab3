"""Checking a YAML document by hand, collecting every problem with the key path at fault.

A path reads as it would be written: ``time.last``, ``devices.disk.web-01``, ``percentiles[1]``.
Readers return ``None`` after recording a problem, so checking goes on past the first mistake.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
MISSING: Any = object()


class ReportConfigError(Exception):
    """Every problem of one configuration file, each naming the file and the key path."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(f"{self.source}: {path or '(top level)'}: {message}")

    def raise_if_any(self) -> None:
        if self.errors:
            raise ReportConfigError(self.errors)


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
        raise ValueError(f"expected non-empty text, got {type_name(value)}")
    return value.strip()


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
            raise ValueError(f"item {index + 1} is {type_name(item)}, expected a name")
        items.append(item.strip())
    duplicates = sorted(item for item, count in Counter(items).items() if count > 1)
    if duplicates:
        raise ValueError(f"listed more than once: {', '.join(duplicates)}")
    return tuple(items)


def lookup(document: Mapping[str, Any] | None, key: str) -> Any:
    return MISSING if document is None else document.get(key, MISSING)
