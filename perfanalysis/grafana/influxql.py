"""InfluxQL text for node_exporter families pushed as line protocol.

The push path writes one measurement per metric family, the metric's labels plus ``host`` as tags
and one field, ``value``. Counters become rates with ``non_negative_derivative(mean("value"), 1s)``;
sums and averages over label values (CPUs, modes) need a subquery. Every query filters on the
dashboard's ``$host``, the ``$timeFilter`` and groups by ``time($__interval)`` with ``fill(null)``.

A rate between the means of two intervals is only right when both intervals are complete. The
newest interval of ``GROUP BY time($__interval)`` (aligned to the epoch) usually holds fewer
samples, whose mean lies earlier in it than a full interval's: 2 CPUs 10% busy, pushing every 10 s
into 20 s intervals, read 32.5% busy there, and a stat showing the last value showed that. So every
rate (``derivative``) query aligns its intervals to the end of the time range (``time($__interval,
${__to}ms)``, Grafana's range end in epoch ms) and stops one interval before it (``time <
${__to}ms - $__interval``): every interval it derives from is complete and had an interval's time
for its samples to arrive. (Ending at ``now() - $__interval`` is not enough: the cut falls inside an
epoch-aligned interval, which is then as partial as before.) The rate panels therefore end one
interval before the range does. Alert rules have no ``${__to}``: ``alerting()`` writes ``now()``.
"""

# ruff: noqa: S608 -- InfluxQL for dashboards, built from constants; no input reaches it

from __future__ import annotations

from collections.abc import Sequence

HOST = '"host" =~ /^$host$/'
RATE = 'non_negative_derivative(mean("value"), 1s)'
END = "${__to}ms"  # the end of the panel's time range, as Grafana's frontend writes it (epoch ms)
COMPLETE = f"time < {END} - $__interval"  # with BUCKETS: the last interval is a complete one
BUCKETS = f"time($__interval, {END})"  # intervals aligned to the end of the range, not the epoch


def _tags(tags: Sequence[str]) -> str:
    return "".join(f', "{tag}"' for tag in tags)


def _where(*conditions: str, complete: bool = False) -> str:
    return " AND ".join(
        [HOST, *[c for c in conditions if c], "$timeFilter", *([COMPLETE] if complete else [])]
    )


def alerting(query: str, interval: str | None = None) -> str:
    """A dashboard query for an alert rule: every host (there is no ``$host`` there), and the
    range ending at the evaluation (``now()``): Grafana expands ``${__to}`` in dashboards only.
    ``interval`` (an InfluxQL duration such as ``60s``) fixes the intervals, which
    ``$__interval`` would leave to Grafana's choice (the data source's minimum, 20s, or more)."""
    text = query.replace(f"{HOST} AND ", "").replace(END, "now()")
    return text if interval is None else text.replace("$__interval", interval)


def gauge(
    measurement: str, *conditions: str, by: Sequence[str] = ("host",), scale: str = ""
) -> str:
    """``mean("value")`` per interval, for gauges such as node_load1 or node_memory_*_bytes."""
    return (
        f'SELECT mean("value"){scale} FROM "{measurement}" WHERE {_where(*conditions)} '
        f"GROUP BY time($__interval){_tags(by)} fill(null)"
    )


def rate(
    measurement: str,
    *conditions: str,
    by: Sequence[str] = ("host",),
    scale: str = "",
    function: str = RATE,
) -> str:
    """Per-second rate of a counter, per series of ``by``, over complete intervals only."""
    return (
        f'SELECT {function}{scale} FROM "{measurement}" WHERE {_where(*conditions, complete=True)} '
        f"GROUP BY {BUCKETS}{_tags(by)} fill(null)"
    )


def change(
    measurement: str, *conditions: str, by: Sequence[str] = ("host",), scale: str = ""
) -> str:
    """Per-second change of a gauge (``derivative``, negative allowed), over complete intervals."""
    return rate(measurement, *conditions, by=by, scale=scale,
                function='derivative(mean("value"), 1s)')  # fmt: skip


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
        f'SELECT {RATE} AS "r" FROM "{measurement}" WHERE {_where(*conditions, complete=True)} '
        f"GROUP BY {BUCKETS}{_tags(per)} fill(null)"
    )
    group = f"{BUCKETS}{_tags(by)} fill(null)" if over_time else ", ".join(f'"{t}"' for t in by)
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
    measurement: str,
    *conditions: str,
    select: str = 'last("value")',
    alias: str = "",
    by: Sequence[str] = ("host",),
) -> str:
    """One row per series of ``by`` with the latest value in the range, for tables (and for alert
    rules, as the newest sample, which is what a PromQL instant selector reads)."""
    named = f' AS "{alias}"' if alias else ""
    group = ", ".join(f'"{tag}"' for tag in by)
    return (
        f'SELECT {select}{named} FROM "{measurement}" WHERE {_where(*conditions)} GROUP BY {group}'
    )


HOST_MODE_IDLE = "\"mode\" = 'idle'"
