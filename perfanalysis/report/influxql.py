"""InfluxQL text: every identifier and string literal quoted, every time an integer in seconds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def identifier(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_range(start: int, end: int) -> str:
    """``start <= time < end``, epoch seconds written as nanoseconds."""
    return f"time >= {start * 10**9} AND time < {end * 10**9}"


def where(host: str, tags: Mapping[str, str | Sequence[str]], start: int, end: int) -> str:
    """The host, each tag equal to the value (or to one of the values), and the time range."""
    parts = [f"{identifier('host')} = {literal(host)}"]
    for key, wanted in tags.items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        alternatives = " OR ".join(f"{identifier(key)} = {literal(x)}" for x in values)
        parts.append(f"({alternatives})" if len(values) > 1 else alternatives)
    parts.append(time_range(start, end))
    return " AND ".join(parts)


def select(
    function: str,
    measurements: Iterable[str],
    condition: str,
    group_by: Sequence[str] = (),
    step: int | None = None,
) -> str:
    """``SELECT function("value") FROM m1, m2 WHERE ... GROUP BY time(step), tags fill(none)``."""
    sources = ", ".join(identifier(m) for m in measurements)
    groups = ([f"time({step}s)"] if step else []) + [identifier(tag) for tag in group_by]
    text = f"SELECT {function}({identifier('value')}) FROM {sources} WHERE {condition}"  # noqa: S608 (InfluxQL, every name quoted)
    if groups:
        text += " GROUP BY " + ", ".join(groups)
    return text + (" fill(none)" if step else "")
