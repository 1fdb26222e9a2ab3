"""InfluxQL text: every identifier and string literal quoted, every time an integer in seconds.

Every condition on a tenant's points starts with its ``tenant`` tag (``where``): ingest forces
that tag on every point, so a report reads its own tenant's points only, even from a database
holding another tenant's points as well.
"""

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


def tenant_is(tenant: str) -> str:
    """The condition every query of a report carries: the points ingest wrote for ``tenant``."""
    if not tenant:
        raise ValueError("a report's queries need the tenant whose points they read")
    return f"{identifier('tenant')} = {literal(tenant)}"


def where(
    tenant: str, host: str, tags: Mapping[str, str | Sequence[str]], start: int, end: int
) -> str:
    """The tenant, the host, each tag equal to the value (or to one of the values), and the
    time range."""
    parts = [tenant_is(tenant), f"{identifier('host')} = {literal(host)}"]
    for key, wanted in tags.items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        alternatives = " OR ".join(f"{identifier(key)} = {literal(x)}" for x in values)
        parts.append(f"({alternatives})" if len(values) > 1 else alternatives)
    parts.append(time_range(start, end))
    return " AND ".join(parts)


def _buckets(step: int, offset: int) -> str:
    """``time(step)``, or ``time(step, offset)``: buckets start ``offset`` seconds past each
    multiple of the step since the epoch (a time zone's clock: timerange.clock_offset)."""
    return f"time({step}s, {offset}s)" if offset % step else f"time({step}s)"


def select(
    function: str,
    measurements: Iterable[str],
    condition: str,
    group_by: Sequence[str] = (),
    step: int | None = None,
    offset: int = 0,
) -> str:
    """``SELECT function("value") FROM m1, m2 WHERE ... GROUP BY time(step[, offset]), tags
    fill(none)``."""
    sources = ", ".join(identifier(m) for m in measurements)
    groups = ([_buckets(step, offset)] if step else []) + [identifier(tag) for tag in group_by]
    text = f"SELECT {function}({identifier('value')}) FROM {sources} WHERE {condition}"  # noqa: S608 (InfluxQL, every name quoted)
    if groups:
        text += " GROUP BY " + ", ".join(groups)
    return text + (" fill(none)" if step else "")


ELAPSED = "elapsed_ns"  # the column of sample_spans: nanoseconds


def sample_spans(
    measurements: Iterable[str],
    condition: str,
    since: int,
    end: int,
    group_by: Sequence[str],
    step: int,
    offset: int = 0,
) -> str:
    """Per bucket, the time from the last sample before the bucket's first sample to the
    bucket's last sample, in nanoseconds: the sum of ``elapsed`` (each sample's distance from
    the one before it) over the bucket's samples. With the bucket before holding a sample, it is
    the time a counter's increase between the two buckets' last samples took.

    ``condition`` selects the samples (tenant, host, tags) from ``since`` to ``end``, the range
    of the outer query too: InfluxDB narrows a subquery to its outer query's time range, so a
    bucket's first sample has the one before it only if that one is in the outer range as well.
    Give ``since`` a step before the first bucket wanted; that step's own sum lacks its first
    sample's distance and is not to be used."""
    sources = ", ".join(identifier(m) for m in measurements)
    tags = ", ".join(identifier(tag) for tag in group_by)
    inner = f"SELECT elapsed({identifier('value')}, 1ns) AS {identifier('e')} FROM {sources} WHERE {condition}"  # noqa: S608 (InfluxQL, every name quoted)
    if tags:
        inner += f" GROUP BY {tags}"
    return (
        f"SELECT sum({identifier('e')}) AS {identifier(ELAPSED)} FROM ({inner}) "  # noqa: S608 (InfluxQL, every name quoted)
        f"WHERE {time_range(since, end)} GROUP BY {_buckets(step, offset)}"
        + (f", {tags}" if tags else "")
        + " fill(none)"
    )
