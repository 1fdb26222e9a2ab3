"""Durations (``10s``, ``24h``, ``7d``), RFC 3339 instants and the report's step-aligned range.

Every bucket of a report is ``[start + i*step, start + (i+1)*step)`` in whole seconds. InfluxDB
aligns ``GROUP BY time(step)`` buckets to multiples of the step since the epoch, so the range is
widened to multiples of the step: the start is rounded down and the end up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from perfanalysis.alerting.durations import UNITS, DurationOutOfRange
from perfanalysis.alerting.durations import format_duration as prometheus_spelling
from perfanalysis.alerting.durations import parse_duration as prometheus_duration

DAYS_AND_SMALLER = tuple(unit for unit in UNITS if unit[0] != "w")  # 7d, not 1w: as people write it
# steps an automatic choice picks from: each divides a day, so buckets line up with clock times
NICE_STEPS = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
)


def parse_duration(text: str) -> int:
    """Seconds of a positive duration as Prometheus writes it: an integer and a unit (s, m, h, d
    or w), or several, largest first (``90s``, ``24h``, ``7d``, ``1h30m``)."""
    try:
        seconds = prometheus_duration(text.strip())
    except DurationOutOfRange:
        raise  # well-formed, but longer than any range the report takes
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ValueError(
            f"{text!r} is not a duration: expected a positive integer and a unit "
            "(s, m, h, d or w), or several as in 1h30m, e.g. 30s, 24h or 7d"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """A short human reading: ``45s``, ``12m``, ``3h 20m``, ``2d 4h``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}m" + (f" {rest}s" if rest else "")
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours}h" + (f" {rest // 60}m" if rest >= 60 else "")
    days, rest = divmod(seconds, 86400)
    return f"{days}d" + (f" {rest // 3600}h" if rest >= 3600 else "")


def written_duration(seconds: int) -> str:
    """``seconds`` as a configuration writes it, exactly (``90s`` -> ``1m30s``, ``86400`` -> ``1d``),
    for a message to suggest a value that can be pasted."""
    return prometheus_spelling(seconds, DAYS_AND_SMALLER)


def parse_instant(value: object) -> datetime:
    """An aware datetime from RFC 3339 text (or the datetime YAML already parsed)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is not an RFC 3339 time, e.g. 2025-01-31T00:00:00Z"
            ) from None
    else:
        raise ValueError(f"expected an RFC 3339 time, got {type(value).__name__}")
    if moment.tzinfo is None:
        raise ValueError(f"{value!s} has no time zone: add Z or an offset such as +02:00")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"{value!s} is out of range in UTC") from None


def nice_step(minimum_seconds: float) -> int:
    """The smallest of NICE_STEPS at least ``minimum_seconds`` (whole days beyond a day)."""
    for step in NICE_STEPS:
        if step >= minimum_seconds:
            return step
    return 86400 * math.ceil(minimum_seconds / 86400)


@dataclass(frozen=True)
class Grid:
    """``count`` buckets of ``step`` seconds from ``start`` (epoch seconds)."""

    start: int
    step: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.step * self.count

    def time_of(self, index: int) -> int:
        return self.start + index * self.step

    def index_of(self, epoch_seconds: float) -> int:
        return int((epoch_seconds - self.start) // self.step)

    @classmethod
    def covering(cls, start: float, end: float, step: int) -> Grid:
        first = math.floor(start / step) * step
        last = math.ceil(end / step) * step
        return cls(first, step, max(1, (last - first) // step))

    def chunks(self, max_buckets: int) -> list[tuple[int, int]]:
        """(first bucket, bucket count) pieces of at most ``max_buckets`` covering the grid."""
        size = max(1, max_buckets)
        return [(i, min(size, self.count - i)) for i in range(0, self.count, size)]
