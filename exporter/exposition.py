"""Prometheus text format 0.0.4, byte-compatible with client_golang's encoder.

Families are sorted by name, label names alphabetically, samples by their label values, and values
are formatted like Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` so that a diff against
node_exporter's output shows only real differences.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

from exporter.model import MetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def go_float(value: float) -> str:
    """Format like Go's FormatFloat(v, 'g', -1, 64): shortest digits, %e when exp < -4 or >= 6."""
    if value.is_integer() and -1e6 < value < 1e6 and value != 0:  # exponent < 6, either sign
        return str(int(value))
    if value != value:
        return "NaN"
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    magnitude = abs(value)
    if magnitude < 1e6 and (magnitude >= 1e-4 or value == 0):
        if value == 0:
            return "-0" if math.copysign(1.0, value) < 0 else "0"
        text = repr(float(value))
        return text[:-2] if text.endswith(".0") else text
    text = repr(float(magnitude))
    sign = "-" if value < 0 else ""
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        exp = int(exponent)
        if mantissa.endswith(".0"):
            mantissa = mantissa[:-2]
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    integer, _, fraction = text.partition(".")
    digits = (integer + ("" if fraction == "0" else fraction)).rstrip("0")
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e+{len(integer) - 1:02d}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    if "\\" in text or '"' in text or "\n" in text:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return text


@lru_cache(maxsize=4096)
def _header(name: str, help_text: str, kind: str) -> str:
    return f"# HELP {name} {_escape_help(help_text)}\n# TYPE {name} {kind}\n"


@lru_cache(maxsize=256)
def _label_layout(names: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The alphabetical order of a family's label names and the ``name="`` prefix of each."""
    order = tuple(sorted(range(len(names)), key=names.__getitem__))
    return order, tuple(f'{names[i]}="' for i in order)


def render_family(fam: MetricFamily, out: list[str]) -> None:
    out.append(_header(fam.name, fam.help, fam.type))
    if not fam.label_names:
        out.append(f"{fam.name} {go_float(fam.samples[0][1])}\n")
        return
    order, prefixes = _label_layout(fam.label_names)
    rows: dict[tuple[str, ...], float] = {}
    for labels, value in fam.samples:
        # a repeated label set is emitted once, never twice: the first wins
        rows.setdefault(tuple([labels[i] for i in order]), value)
    name = fam.name
    for key in sorted(rows):
        body = '",'.join([p + _escape_label(v) for p, v in zip(prefixes, key, strict=True)])
        out.append(f'{name}{{{body}"}} {go_float(rows[key])}\n')


def render(families: Iterable[MetricFamily]) -> bytes:
    out: list[str] = []
    for fam in sorted(families, key=lambda f: f.name):
        if fam.samples:
            render_family(fam, out)
    return "".join(out).encode()
