"""InfluxQL text for node_exporter families pushed as line protocol.

The push path writes one measurement per metric family, the metric's labels plus ``host`` as tags
and one field, ``value``. Counters become rates with ``non_negative_derivative(mean("value"), 1s)``;
sums and averages over label values (CPUs, modes) need a subquery. Every query filters on the
dashboard's ``$host``, the ``$timeFilter`` and groups by ``time($__interval)`` with ``fill(null)``.
"""

# ruff: noqa: S608 -- InfluxQL for dashboards, built from constants; no input reaches it

from __future__ import annotations

from collections.abc import Sequence

HOST = '"host" =~ /^$host$/'
RATE = 'non_negative_derivative(mean("value"), 1s)'


def _tags(tags: Sequence[str]) -> str:
    return "".join(f', "{tag}"' for tag in tags)


def _where(*conditions: str) -> str:
    return " AND ".join([HOST, *[c for c in conditions if c], "$timeFilter"])


def gauge(
    measurement: str, *conditions: str, by: Sequence[str] = ("host",), scale: str = ""
) -> str:
    """``mean("value")`` per interval, for gauges such as node_load1 or node_memory_*_bytes."""
    return (
        f'SELECT mean("value"){scale} FROM "{measurement}" WHERE {_where(*conditions)} '
        f"GROUP BY time($__interval){_tags(by)} fill(null)"
    )


def rate(measurement: str, *conditions: str, by: Sequence[str] = ("host",), scale: str = "") -> str:
    """Per-second rate of a counter, per series of ``by``."""
    return (
        f'SELECT {RATE}{scale} FROM "{measurement}" WHERE {_where(*conditions)} '
        f"GROUP BY time($__interval){_tags(by)} fill(null)"
    )


def rate_over(
    measurement: str,
    *conditions: str,
    per: Sequence[str],
    by: Sequence[str] = ("host",),
    select: str = 'mean("r")',
    over_time: bool = True,
) -> str:
    """A rate per series of ``per`` in a subquery, then aggregated (``select``) into ``by``."""
    inner = (
        f'SELECT {RATE} AS "r" FROM "{measurement}" WHERE {_where(*conditions)} '
        f"GROUP BY time($__interval){_tags(per)} fill(null)"
    )
    group = (
        f"time($__interval){_tags(by)} fill(null)" if over_time else ", ".join(f'"{t}"' for t in by)
    )
    return f"SELECT {select} FROM ({inner}) WHERE $timeFilter GROUP BY {group}"


def cores(by: Sequence[str] = ("host",)) -> str:
    """Online CPUs: the ``cpu`` series of the idle counter in each interval. count() reports 0,
    not null, for an empty interval, so the count is wrapped in max() to leave gaps as gaps."""
    group = f"time($__interval){_tags(by)}"
    inner = (
        f'SELECT last("value") AS "v" FROM "node_cpu_seconds_total" '
        f'WHERE {_where(HOST_MODE_IDLE)} GROUP BY {group}, "cpu" fill(none)'
    )
    counted = (
        f'SELECT count("v") AS "c" FROM ({inner}) WHERE $timeFilter GROUP BY {group} fill(none)'
    )
    return f'SELECT max("c") FROM ({counted}) WHERE $timeFilter GROUP BY {group} fill(null)'


def latest(
    measurement: str, *conditions: str, select: str = 'last("value")', alias: str = ""
) -> str:
    """One row per host with the latest value in the range, for tables."""
    named = f' AS "{alias}"' if alias else ""
    return (
        f'SELECT {select}{named} FROM "{measurement}" WHERE {_where(*conditions)} GROUP BY "host"'
    )


HOST_MODE_IDLE = "\"mode\" = 'idle'"
