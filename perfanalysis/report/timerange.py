"""Durations (``10s``, ``24h``, ``7d``), RFC 3339 instants and the report's step-aligned range.

Every bucket of a report is ``[start + i*step, start + (i+1)*step)`` in whole seconds, on the
clock of the report's time zone: buckets start where that clock shows a multiple of the step
(steps of 1h at each hour, of 1d at midnight, in Asia/Kolkata as in UTC). InfluxDB's
``GROUP BY time(step, offset)`` makes such buckets with ``offset`` the zone's UTC offset turned
into seconds past multiples of the step (``clock_offset``), and an absolute range is widened to
them: the start is rounded down and the end up (build says by how much).

A bucket is a fixed length of time, as InfluxDB's are. Where the zone's UTC offset changes within
the period (daylight saving time) by an amount the step does not divide (steps over 1h, as 1d, for
a one-hour change), buckets cannot stay on the clock on both sides: they follow the offset in force
where the grid is anchored (the start of an absolute range, the end of a ``last`` one) and are an
hour off the clock on the other side of the change, which the report says (``offset_changes``). A
local day of 23 or 25 hours would make steps of unequal lengths, which InfluxQL cannot group by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

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


def format_instant(epoch_seconds: float, zone: ZoneInfo) -> str:
    """``2025-01-31 00:00:00 CET``: a moment on the zone's clock, as the report shows times."""
    return datetime.fromtimestamp(epoch_seconds, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


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
    elif isinstance(value, date):  # YAML reads 2025-01-31 as a date: no time of day, no zone
        raise ValueError(
            f"{value.isoformat()} is a date without a time: give an RFC 3339 time, e.g. "
            f"{value.isoformat()}T00:00:00Z"
        )
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


def utc_offset(zone: ZoneInfo, epoch_seconds: float) -> int:
    """The zone's offset from UTC at that moment, in seconds (east positive)."""
    offset = datetime.fromtimestamp(epoch_seconds, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def clock_offset(step: int, zone: ZoneInfo, at: float) -> int:
    """Seconds past each multiple of ``step`` since the epoch at which the zone's clock, with
    the offset in force ``at`` that moment, shows a multiple of the step: InfluxQL's
    ``GROUP BY time(step, offset)`` offset for buckets on that clock."""
    return -utc_offset(zone, at) % step


def offset_changes(zone: ZoneInfo, start: int, end: int) -> list[tuple[int, int, int]]:
    """Each change of the zone's UTC offset in (start, end]: (the first second of the new
    offset, the offset before, the offset after). Found by probing every 6 hours (offsets
    change at most a few times a year) and bisecting to the second."""
    changes: list[tuple[int, int, int]] = []
    low, before = start, utc_offset(zone, start)
    while low < end:
        high = min(low + 6 * 3600, end)
        after = utc_offset(zone, high)
        if after != before:
            first_old, first_new = low, high
            while first_new - first_old > 1:
                middle = (first_old + first_new) // 2
                if utc_offset(zone, middle) == before:
                    first_old = middle
                else:
                    first_new = middle
            changes.append((first_new, before, utc_offset(zone, first_new)))
            low, before = first_new, utc_offset(zone, first_new)
            continue
        low = high
    return changes


@dataclass(frozen=True)
class Grid:
    """``count`` buckets of ``step`` seconds from ``start`` (epoch seconds)."""

    start: int
    step: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.step * self.count

    @property
    def offset(self) -> int:
        """The buckets' InfluxQL ``GROUP BY time(step, offset)`` offset."""
        return self.start % self.step

    def time_of(self, index: int) -> int:
        return self.start + index * self.step

    def index_of(self, epoch_seconds: float) -> int:
        return int((epoch_seconds - self.start) // self.step)

    @classmethod
    def covering(cls, start: float, end: float, step: int, offset: int = 0) -> Grid:
        """The buckets of ``step`` starting ``offset`` seconds past multiples of the step
        (clock_offset) that cover [start, end): the start rounded down, the end up."""
        first = math.floor((start - offset) / step) * step + offset
        last = math.ceil((end - offset) / step) * step + offset
        return cls(first, step, max(1, (last - first) // step))

    def chunks(self, max_buckets: int) -> list[tuple[int, int]]:
        """(first bucket, bucket count) pieces of at most ``max_buckets`` covering the grid."""
        size = max(1, max_buckets)
        return [(i, min(size, self.count - i)) for i in range(0, self.count, size)]
