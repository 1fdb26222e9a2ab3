"""InfluxQL text: every identifier and string literal quoted, every time an integer in seconds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def identifier(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# InfluxDB's models.MinNanoTime and MaxNanoTime: a time beyond int64 is a parse error (400)
MIN_NANO_TIME = -(2**63) + 2
MAX_NANO_TIME = 2**63 - 2


def time_range(start: int, end: int) -> str:
    """``start <= time < end``, epoch seconds written as nanoseconds, within what InfluxDB stores
    (a grid widened to whole steps may reach past a range that starts or ends at its limits)."""
    low = max(start * 10**9, MIN_NANO_TIME)
    high = min(end * 10**9, MAX_NANO_TIME + 1)
    return f"time >= {low} AND time < {high}"


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
