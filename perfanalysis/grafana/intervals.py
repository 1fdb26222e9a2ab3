"""Grafana's interval arithmetic, ported so queries can be run outside Grafana exactly as it runs them.

Sources (Grafana 11/12):

* ``calculate_interval`` and ``round_interval``: the frontend's ``rangeutil.calculateInterval`` and
  ``roundInterval`` (packages/grafana-data/src/datetime/rangeutil.ts). The panel query runner
  computes ``$__interval`` with them from the time range and the panel's max data points, with the
  panel's "Min interval" or else the data source's ``jsonData.timeInterval`` as the lower limit.
* ``round_interval_backend``, ``format_interval``, ``parse_duration``: the plugin SDK's ``gtime``
  (``RoundInterval`` compares with ``<=``, the frontend with ``<``; ``FormatInterval`` truncates).
* ``prometheus_step`` and ``rate_interval``: ``pkg/promlib/models/query.go``
  (``calculatePrometheusInterval``, ``calculateRateInterval``) and ``intervalv2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
YEAR = 365 * DAY

# Grafana's own resolution when a request carries no maxDataPoints (intervalv2.DefaultRes)
DEFAULT_MAX_DATA_POINTS = 1500
SAFE_RESOLUTION = 11000  # promlib: a step never makes more than 11,000 points
DEFAULT_SCRAPE_INTERVAL = "15s"

# (upper bound in ms, rounded value in ms): the table shared by rangeutil.ts and gtime.go
_ROUNDING: tuple[tuple[int, int], ...] = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
    (1500, SECOND), (3500, 2 * SECOND), (7500, 5 * SECOND), (12500, 10 * SECOND),
    (17500, 15 * SECOND), (25000, 20 * SECOND), (45000, 30 * SECOND), (90000, MINUTE),
    (210000, 2 * MINUTE), (450000, 5 * MINUTE), (750000, 10 * MINUTE), (1050000, 15 * MINUTE),
    (1500000, 20 * MINUTE), (2700000, 30 * MINUTE), (5400000, HOUR), (9000000, 2 * HOUR),
    (16200000, 3 * HOUR), (32400000, 6 * HOUR), (86400000, 12 * HOUR),
)  # fmt: skip

_UNITS_MS = {"ms": 1, "s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK, "y": YEAR}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|[smhdwy])")


@dataclass(frozen=True)
class Interval:
    """An interval as Grafana passes it on: milliseconds and the text put into queries."""

    ms: int
    text: str


def round_interval(ms: float) -> int:
    """The frontend's ``roundInterval``: a rounder value near ``ms`` (thresholds with ``<``)."""
    for bound, rounded in _ROUNDING:
        if ms < bound:
            return rounded
    if ms < WEEK:
        return DAY
    if ms < 3 * WEEK:
        return WEEK
    if ms < 6 * WEEK:
        return 30 * DAY
    return YEAR


def round_interval_backend(ms: float) -> int:
    """gtime's ``RoundInterval``: the same table compared with ``<=``, and 1d up to 2d."""
    for bound, rounded in _ROUNDING:
        if ms <= bound:
            return rounded
    if ms <= WEEK:
        return DAY
    if ms <= 3 * WEEK:
        return WEEK
    if ms < 6 * WEEK:
        return 30 * DAY
    return YEAR


def format_interval(ms: int) -> str:
    """gtime's ``FormatInterval`` (and rangeutil's ``secondsToHms``): the largest whole unit."""
    for unit, size in (("y", YEAR), ("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND)):
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms" if ms >= 1 else "1ms"


def go_duration(ms: int) -> str:
    """Go's ``time.Duration.String()`` for whole milliseconds: ``1m0s``, ``4m15s``, ``500ms``."""
    if ms < SECOND:
        return f"{ms}ms" if ms else "0s"
    hours, rest = divmod(ms, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    seconds = f"{rest // SECOND}" if rest % SECOND == 0 else f"{rest / SECOND:g}"
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def parse_duration(text: str) -> int:
    """Milliseconds of a Grafana interval: ``15s``, ``1m30s``, ``2h``, ``1d``; a bare number is seconds."""
    text = text.strip().lstrip("<>")
    if re.fullmatch(r"\d+", text):
        return int(text) * SECOND
    total, position = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS_MS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return round(total)


def calculate_interval(range_ms: int, max_data_points: int, low_limit: str = "") -> Interval:
    """``$__interval`` as the panel query runner computes it (rangeutil.calculateInterval)."""
    interval = round_interval(range_ms / max_data_points)
    limit = parse_duration(low_limit) if low_limit else 1
    interval = max(interval, limit)
    return Interval(interval, format_interval(interval))


def prometheus_step(
    range_ms: int, max_data_points: int, query_interval_ms: int, min_step: str = ""
) -> int:
    """The step (and ``$__interval``) promlib computes for a Prometheus range query, in ms."""
    min_interval = parse_duration(min_step) if min_step else query_interval_ms
    if not min_interval:
        min_interval = parse_duration(DEFAULT_SCRAPE_INTERVAL)
    raw = range_ms / (max_data_points or DEFAULT_MAX_DATA_POINTS)
    calculated = min_interval if raw < min_interval else round_interval_backend(raw)
    safe = round_interval_backend(range_ms / SAFE_RESOLUTION)
    return max(calculated, safe)


def rate_interval(query_interval_ms: int, scrape_interval: str = "") -> int:
    """``$__rate_interval``: max($__interval + scrape interval, 4 x scrape interval), in ms."""
    scrape = parse_duration(scrape_interval or DEFAULT_SCRAPE_INTERVAL)
    return max(query_interval_ms + scrape, 4 * scrape)
