"""Annotation text that is both a Go template (for Prometheus) and a Python renderer (for tests).

promtool compares rendered annotations exactly, so the generated promtool tests must know what
Prometheus will print. Each piece below pairs a Go template fragment with the Python function that
prints the same thing (``humanize``, ``humanizeDuration``... as in Prometheus's template package);
the promtool tests then check the pairing against the real Go code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Value:
    """``$value`` through a formatter."""

    go: str
    py: Callable[[float], str]


@dataclass(frozen=True)
class Label:
    """``$labels.<name>``."""

    name: str


Part = str | Value | Label


@dataclass(frozen=True)
class Text:
    parts: tuple[Part, ...]

    def go(self) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part.replace("{{", '{{ "{{" }}'))
            elif isinstance(part, Label):
                out.append(f"{{{{ $labels.{part.name} }}}}")
            else:
                out.append(f"{{{{ {part.go} }}}}")
        return "".join(out)

    def render(self, value: float, labels: Mapping[str, str]) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Label):
                out.append(labels[part.name])
            else:
                out.append(part.py(value))
        return "".join(out)


def text(*parts: Part) -> Text:
    return Text(parts)


def _go_g4(value: float) -> str:
    """Go's ``%.4g``: like Python's except that it spells infinities ``+Inf``/``-Inf``."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return f"{value:.4g}"


def humanize(value: float) -> str:
    """Prometheus's ``humanize``: SI prefixes, four significant digits (``1.5k``, ``250m``)."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _go_g4(value)
    prefix = ""
    if abs(value) >= 1:
        for candidate in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix, value = candidate, value / 1000
    else:
        for candidate in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(value) >= 1:
                break
            prefix, value = candidate, value * 1000
    return f"{_go_g4(value)}{prefix}"


def humanize_duration(value: float) -> str:
    """Prometheus's ``humanizeDuration`` for values of a second or more (``6m 40s``)."""
    if abs(value) < 1:
        raise ValueError("sub-second durations are not rendered by these rules")
    sign = "-" if value < 0 else ""
    whole = int(abs(value))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{sign}{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{sign}{minutes}m {seconds}s"
    return f"{sign}{_go_g4(abs(value))}s"


PERCENT = Value('printf "%.1f" $value', lambda v: f"{v:.1f}")  # 0-100 values; add "%"
DECIMAL = Value('printf "%.1f" $value', lambda v: f"{v:.1f}")  # any other value, one decimal
RATIO = Value("$value | humanizePercentage", lambda v: f"{_go_g4(v * 100)}%")  # 0-1 values
NUMBER = Value("$value | humanize", humanize)
DURATION = Value("$value | humanizeDuration", humanize_duration)
INSTANCE = Label("instance")
