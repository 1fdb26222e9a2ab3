"""Numbers as people read them: binary prefixes for bytes, SI prefixes for counts per second."""

from __future__ import annotations

import math

NO_VALUE = "\u2013"  # an en dash: no value
BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
DECIMAL = ("", "k", "M", "G", "T")


def scale_for(unit: str, magnitude: float) -> tuple[float, str]:
    """(divisor, suffix) so that ``magnitude / divisor`` reads well in ``unit``."""
    magnitude = abs(magnitude)
    if unit in ("bytes", "bytes/s"):
        power = 0
        while magnitude >= 1024 ** (power + 1) and power < len(BINARY) - 1:
            power += 1
        return 1024.0**power, BINARY[power] + ("/s" if unit == "bytes/s" else "")
    if unit == "per second":
        power = 0
        while magnitude >= 1000 ** (power + 1) and power < len(DECIMAL) - 1:
            power += 1
        return 1000.0**power, DECIMAL[power] + "/s"
    return 1.0, {"percent": "%", "ms": " ms"}.get(unit, "")


def _digits(value: float) -> str:
    if value == 0:
        return "0"
    size = abs(float(f"{value:.3g}"))  # as rounded: 0.99996 reads 1.00, not 1.000
    decimals = 0 if size >= 100 else 1 if size >= 10 else 2 if size >= 1 else 3
    return f"{value:,.{decimals}f}"


def format_value(value: float | None, unit: str) -> str:
    """``12.3%``, ``1.50 GiB``, ``23.4 MiB/s``, ``1.20k/s``, ``3.40 ms``; an en dash for None."""
    if value is None:
        return NO_VALUE
    divisor, suffix = scale_for(unit, value)
    joiner = (
        "" if unit in ("percent", "per second") or suffix.startswith(" ") or not suffix else " "
    )
    return f"{_digits(value / divisor)}{joiner}{suffix}"


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """0 and round steps up to at least ``maximum`` (about ``count`` intervals)."""
    if maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(f * power for f in (1, 2, 2.5, 5, 10) if f * power >= raw)
    ticks = [0.0]
    while ticks[-1] < maximum * (1 - 1e-9):
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def tick_label(value: float) -> str:
    if value == 0:
        return "0"  # the svg module adds no unit to zero
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"
