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

A derivative skips the intervals without samples: after a gap (a host that stopped pushing, a
paused VM) it divides the change across the whole gap by its length, and drew one long-window
average where the data has none: a VM paused for 20 minutes, its counters stalled, read 99% busy
and 262 bps for 16,000 right after. So every dashboard rate also carries ``elapsed()``, the time
since the interval before it with samples, and the level above keeps it only where that is at
most two intervals or a minute (``JOINED``): one empty interval (a push or two lost) or pushes up
to a minute apart still make a line; a longer gap is null, and Grafana draws it as a gap. The
rates of the intervals on a gap's edges are still read from means of fewer samples, off the
intervals' centres; a ratio of two rates of the same samples (CPU busy) is exact there too.
"""

# ruff: noqa: S608 -- InfluxQL for dashboards, built from constants; no input reaches it

from __future__ import annotations

from collections.abc import Sequence

HOST = '"host" =~ /^$host$/'
RATE = 'non_negative_derivative(mean("value"), 1s)'
END = "${__to}ms"  # the end of the panel's time range, as Grafana's frontend writes it (epoch ms)
COMPLETE = f"time < {END} - $__interval"  # with BUCKETS: the last interval is a complete one
BUCKETS = f"time($__interval, {END})"  # intervals aligned to the end of the range, not the epoch
SPAN = 'elapsed(mean("value"), 1ms) AS "span"'  # ms since the previous interval with samples
MAX_SPAN_MS = 60_000  # a rate may always span a minute: pushes up to a minute apart draw a line
JOINED = f'("span" <= 2 * $__interval_ms OR "span" <= {MAX_SPAN_MS})'  # no rate across a gap


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
    if interval is None:
        return text
    milliseconds = _duration_ms(interval)  # before $__interval, which it begins with
    return text.replace("$__interval_ms", str(milliseconds)).replace("$__interval", interval)


_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def _duration_ms(duration: str) -> int:
    """``60s`` as 60000: a fixed interval's ``$__interval_ms``."""
    number = duration.rstrip("smh")
    unit = duration[len(number) :]
    if not number.isdigit() or unit not in _DURATION_MS:
        raise ValueError(f"not an InfluxQL duration of ms, s, m or h: {duration!r}")
    return int(number) * _DURATION_MS[unit]


def gauge(
    measurement: str, *conditions: str, by: Sequence[str] = ("host",), scale: str = ""
) -> str:
    """``mean("value")`` per interval, for gauges such as node_load1 or node_memory_*_bytes."""
    return (
        f'SELECT mean("value"){scale} FROM "{measurement}" WHERE {_where(*conditions)} '
        f"GROUP BY time($__interval){_tags(by)} fill(null)"
    )


def _rates(
    measurement: str,
    conditions: Sequence[str],
    per: Sequence[str],
    function: str = RATE,
    joined: bool = True,
) -> str:
    """``function`` (a derivative, ``"r"``) per series of ``per`` over complete intervals, and,
    unless rates may span gaps (not ``joined``), the ``"span"`` each covers, for ``JOINED``."""
    span = f", {SPAN}" if joined else ""
    return (
        f'SELECT {function} AS "r"{span} FROM "{measurement}" '
        f"WHERE {_where(*conditions, complete=True)} GROUP BY {BUCKETS}{_tags(per)} fill(null)"
    )


def _kept(joined: bool) -> str:
    return f"{JOINED} AND $timeFilter" if joined else "$timeFilter"


def rate(
    measurement: str,
    *conditions: str,
    by: Sequence[str] = ("host",),
    scale: str = "",
    function: str = RATE,
) -> str:
    """Per-second rate of a counter, per series of ``by``, over complete intervals only, null
    across a gap."""
    each = _rates(measurement, conditions, by, function)
    return (
        f'SELECT mean("r"){scale} FROM ({each}) WHERE {_kept(True)} '
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
    across_gaps: bool = False,
) -> str:
    """A rate per series of ``per`` in a subquery, then aggregated (``select``) into ``by``;
    ``across_gaps`` keeps the rates that span a gap (the Grafana CPU rule's, unchanged)."""
    inner = _rates(measurement, conditions, per, joined=not across_gaps)
    group = f"{BUCKETS}{_tags(by)} fill(null)" if over_time else ", ".join(f'"{t}"' for t in by)
    return f"SELECT {select} FROM ({inner}) WHERE {_kept(not across_gaps)} GROUP BY {group}"


def rate_sum(
    measurement: str, *conditions: str, per: Sequence[str], by: Sequence[str] = ("host",),
    alias: str = "",
) -> str:  # fmt: skip
    """The rates of the series of ``per`` (every CPU and mode) summed into ``by``, per interval.

    Each series' ``derivative`` is summed, falls included, and an interval whose sum fell is left
    out: a reboot resets every counter at once. Summing ``non_negative_derivative`` instead keeps
    the counters that stayed at 0 (iowait, steal) where the others fell, a partial sum: a host's
    idle CPU time read 0 at its reboot, and 100% busy. A counter that steps back a little (a
    CPU's iowait may) only lowers the sum by as much.
    """
    each = _rates(measurement, conditions, per, function='derivative(mean("value"), 1s)')
    group = f"{BUCKETS}{_tags(by)} fill(null)"
    summed = f'SELECT sum("r") AS "r" FROM ({each}) WHERE {_kept(True)} GROUP BY {group}'
    named = f' AS "{alias}"' if alias else ""
    return (
        f'SELECT mean("r"){named} FROM ({summed}) WHERE "r" >= 0 AND $timeFilter GROUP BY {group}'
    )


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
