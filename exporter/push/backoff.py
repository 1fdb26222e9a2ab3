"""When to retry: exponential backoff with full jitter, and the server's Retry-After.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads a fleet of exporters
that all saw ingest fail at the same moment, so they do not come back in lockstep. A Retry-After
from ingest (429 and 503 carry one) is a floor, never a replacement: the delay is the larger of
it (plus up to 20%, so that those retries spread out as well) and the full-jitter delay for this
attempt, and at most the operator's ``--push.max-backoff``. The attempt count keeps growing while
retries continue, so a server (or a proxy in front of it) answering ``Retry-After: 0``, or a date
already past, still gets exponentially spaced retries rather than a hot loop.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

RETRY_AFTER_SPREAD = 0.2
MAX_RETRY_AFTER = 10**9  # seconds; a larger number is read as this (the cap applies anyway)
MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun",
                                        "jul", "aug", "sep", "oct", "nov", "dec"), 1)}  # fmt: skip
_IMF_FIXDATE = re.compile(
    r"^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$"
)
_RFC850 = re.compile(r"^[A-Za-z]+, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$")
_ASCTIME = re.compile(r"^[A-Za-z]{3} ([A-Za-z]{3}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$")


def full_jitter(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """A delay drawn from [0, min(cap, base * 2**attempt)); ``attempt`` counts from 0."""
    ceiling = min(cap, base * 2.0 ** min(attempt, 64))
    return rand() * ceiling


def _epoch(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float:
    """Seconds since 1970 for a UTC civil time (days_from_civil; no calendar or datetime import)."""
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second <= 60):
        raise ValueError("date out of range")
    y = year - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    return float(days * 86400 + hour * 3600 + minute * 60 + second)


def parse_http_date(text: str) -> float | None:
    """An HTTP-date (RFC 9110 5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms)."""
    try:
        if match := _IMF_FIXDATE.match(text):
            day, month, year, hour, minute, second = match.groups()
        elif match := _RFC850.match(text):
            day, month, short_year, hour, minute, second = match.groups()
            year = str(2000 + int(short_year) if int(short_year) < 70 else 1900 + int(short_year))
        elif match := _ASCTIME.match(text):
            month, day, hour, minute, second, year = match.groups()
        else:
            return None
        return _epoch(
            int(year), MONTHS[month.lower()], int(day), int(hour), int(minute), int(second)
        )
    except (KeyError, ValueError):
        return None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait according to a Retry-After header, or None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text), MAX_RETRY_AFTER))
    when = parse_http_date(text)
    return None if when is None else max(0.0, when - now)


class Backoff:
    """Successive delays for one failing destination; ``reset`` after a success."""

    def __init__(self, base: float, cap: float, rand: Callable[[], float] = random.random) -> None:
        self.base = base
        self.cap = cap
        self.rand = rand
        self.attempt = 0

    def next_delay(self, retry_after: float | None = None) -> float:
        """The wait before the next retry: full jitter, with ``retry_after`` as a floor."""
        delay = full_jitter(self.attempt, self.base, self.cap, self.rand)
        if retry_after is not None:
            delay = max(delay, retry_after * (1.0 + RETRY_AFTER_SPREAD * self.rand()))
        self.attempt += 1
        return min(self.cap, delay)

    def reset(self) -> None:
        self.attempt = 0
