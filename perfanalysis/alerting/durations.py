"""Prometheus durations (``90s``, ``1h30m``) read into seconds and written back canonically.

Thresholds hold seconds so that tests can do arithmetic on ``for:``; rule files get the canonical
spelling so that the same duration always renders the same way (no drift from ``60m`` vs ``1h``).
"""

from __future__ import annotations

import re

UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
PATTERN = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# Prometheus holds a duration in a Go time.Duration, int64 nanoseconds, and refuses anything longer
# ("duration out of range"): about 292 years.
MAX_SECONDS = (2**63 - 1) // 10**9


class DurationOutOfRange(ValueError):
    """A well-formed duration longer than Prometheus holds."""


def parse_duration(text: str) -> int:
    """Whole seconds in a duration such as ``10m`` or ``1h30m``; ValueError otherwise, also for
    one Prometheus would refuse as out of range."""
    match = PATTERN.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration such as 30s, 10m or 1h30m")
    parts = [(part, size) for part, (_, size) in zip(match.groups(), UNITS, strict=True) if part]
    # a number too long for int() (Python refuses over 4300 digits) is out of range anyway
    too_long = any(len(part.lstrip("0")) > len(str(MAX_SECONDS)) for part, _ in parts)
    seconds = 0 if too_long else sum(int(part) * size for part, size in parts)
    if too_long or seconds > MAX_SECONDS:
        shown = text if len(text) <= 40 else f"{text[:30]}...{text[-5:]}"
        raise DurationOutOfRange(
            f"{shown!r} is out of range: Prometheus durations end at about 292 years"
        )
    return seconds


def format_duration(seconds: int, units: tuple[tuple[str, int], ...] = UNITS) -> str:
    """The canonical spelling: largest ``units`` first, ``0s`` for zero."""
    parts = []
    for unit, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
