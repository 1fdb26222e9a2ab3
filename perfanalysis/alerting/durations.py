"""Prometheus durations (``90s``, ``1h30m``) read into seconds and written back canonically.

Thresholds hold seconds so that tests can do arithmetic on ``for:``; rule files get the canonical
spelling so that the same duration always renders the same way (no drift from ``60m`` vs ``1h``).
"""

from __future__ import annotations

import re

UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
PATTERN = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> int:
    """Whole seconds in a duration such as ``10m`` or ``1h30m``; ValueError otherwise."""
    match = PATTERN.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration such as 30s, 10m or 1h30m")
    return sum(
        int(part) * size for part, (_, size) in zip(match.groups(), UNITS, strict=True) if part
    )


def format_duration(seconds: int) -> str:
    """The canonical spelling: largest units first, ``0s`` for zero."""
    parts = []
    for unit, size in UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
