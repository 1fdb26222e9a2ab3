"""A parser of the Prometheus text format (0.0.4) for the textfile collector, as Go's expfmt reads it.

The exporter does not import prometheus_client (its memory budget, docs/architecture.md), so this
is a small line-oriented parser with expfmt's rules as node_exporter 1.5.0 applies them: HELP and
TYPE lines (a second one for a name, or a TYPE after the name's samples, is an error; TYPE names
are case-insensitive), other comments ignored, labels with ``\\\\``, ``\\"`` and ``\\n`` escapes,
a trailing comma allowed, ``__name__`` and repeated label names refused, values as Go's
ParseFloat reads them (no hexadecimal), an optional integer timestamp, summaries and histograms grouped under their base
name. Families declared without any sample are dropped. Errors name the line, as expfmt's do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from exporter.collectors.goparse import go_parse_float as strconv_float

TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TIMESTAMP = re.compile(r"[+-]?[0-9]+")


class ParseError(ValueError):
    pass


@dataclass
class Sample:
    suffix: str  # "" or, in a summary or histogram, "_sum", "_count" or "_bucket"
    labels: dict[str, str]
    value: float
    timestamp: int | None = None


@dataclass
class Family:
    name: str
    help: str | None = None
    type: str | None = None  # None: untyped, no TYPE line
    samples: list[Sample] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.type or "untyped"


def go_parse_float(text: str) -> float:
    """expfmt's parseFloat: Go's ParseFloat, but refusing "p", "P" and "_" (so no hexadecimal
    floats nor underscores); ValueError where it returns an error."""
    value = None if any(c in "pP_" for c in text) else strconv_float(text)
    if value is None:
        raise ValueError(text)
    return value


def parse(text: str) -> dict[str, Family]:
    """Families by name, in the order first seen; raises ParseError."""
    families: dict[str, Family] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        raise ParseError(
            f"text format parsing error in line {len(lines)}: unexpected end of input stream"
        )
    for number, raw in enumerate(lines, 1):
        try:
            _parse_line(raw.lstrip(" \t"), families)
        except ParseError as exc:
            raise ParseError(f"text format parsing error in line {number}: {exc}") from None
    return {name: fam for name, fam in families.items() if fam.samples}


def _parse_line(line: str, families: dict[str, Family]) -> None:
    if not line:
        return
    if line.startswith("#"):
        _comment(line[1:].lstrip(" \t"), families)
        return
    _sample(line, families)


def _comment(rest: str, families: dict[str, Family]) -> None:
    keyword, _, rest = _split_token(rest)
    if keyword not in ("HELP", "TYPE"):
        return
    rest = rest.lstrip(" \t")
    name, _, value = _split_token(rest)
    if not name:
        return  # "# HELP" alone: a comment, as expfmt reads it
    if not METRIC_NAME.fullmatch(name):
        raise ParseError("invalid metric name in comment")
    value = value.lstrip(" \t")
    fam = families.setdefault(name, Family(name))
    if keyword == "HELP":
        if fam.help is not None:
            raise ParseError(f'second HELP line for metric name "{name}"')
        fam.help = _unescape_help(value)
        return
    if fam.type is not None or fam.samples:
        raise ParseError(
            f'second TYPE line for metric name "{name}", or TYPE reported after samples'
        )
    kind = value.rstrip(" \t").lower()
    if kind not in TYPES:
        raise ParseError(f'unknown metric type "{value.rstrip()}"')
    fam.type = kind


def _split_token(text: str) -> tuple[str, str, str]:
    match = re.match(r"[^ \t]*", text)
    assert match
    token = match.group(0)
    rest = text[len(token) :]
    return token, rest[:1], rest


def _unescape_help(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "\\n":
            out.append("\\" if text[i + 1] == "\\" else "\n")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _sample(line: str, families: dict[str, Family]) -> None:
    match = METRIC_NAME.match(line)
    if not match:
        raise ParseError("invalid metric name")
    name = match.group(0)
    pos = match.end()
    labels: dict[str, str] = {}
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    if pos < len(line) and line[pos] == "{":
        pos = _labels(line, pos + 1, labels)
    rest = line[pos:].strip(" \t").split()
    if not rest:
        raise ParseError(f'expected float as value, got "{rest[0] if rest else ""}"')
    if len(rest) > 2:
        raise ParseError(f'spurious string after timestamp: "{rest[2]}"')
    try:
        value = go_parse_float(rest[0])
    except ValueError:
        raise ParseError(f'expected float as value, got "{rest[0]}"') from None
    timestamp = None
    if len(rest) == 2:
        if not _TIMESTAMP.fullmatch(rest[1]):
            raise ParseError(f'expected integer as timestamp, got "{rest[1]}"')
        timestamp = int(rest[1])
    fam, suffix = _family_for(name, families)
    if fam.type == "summary" and suffix == "" and "quantile" not in labels:
        raise ParseError("expected quantile label")
    if fam.type == "histogram" and suffix == "_bucket" and "le" not in labels:
        raise ParseError("expected le label")
    if fam.type == "histogram" and suffix == "":
        raise ParseError(f'histogram sample without suffix: "{name}"')
    fam.samples.append(Sample(suffix, labels, value, timestamp))


def _family_for(name: str, families: dict[str, Family]) -> tuple[Family, str]:
    for suffix in ("_sum", "_count", "_bucket"):
        if name.endswith(suffix):
            base = families.get(name[: -len(suffix)])
            if base is not None and base.type in ("summary", "histogram"):
                if suffix == "_bucket" and base.type == "summary":
                    break
                return base, suffix
    return families.setdefault(name, Family(name)), ""


def _labels(line: str, pos: int, labels: dict[str, str]) -> int:
    while True:
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos < len(line) and line[pos] == "}":
            return pos + 1
        match = LABEL_NAME.match(line, pos)
        if not match:
            raise ParseError("invalid label name for metric")
        label = match.group(0)
        if label == "__name__":
            raise ParseError('label name "__name__" is reserved')
        if label in labels:
            raise ParseError(f'duplicate label name "{label}"')
        pos = match.end()
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if line[pos : pos + 1] != "=":
            raise ParseError(f'expected "=" after label name "{label}"')
        pos += 1
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if line[pos : pos + 1] != '"':
            raise ParseError("expected '\"' at start of label value")
        pos, value = _label_value(line, pos + 1)
        labels[label] = value
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if line[pos : pos + 1] == ",":
            pos += 1
        elif line[pos : pos + 1] != "}":
            raise ParseError("unexpected end of label value")


def _label_value(line: str, pos: int) -> tuple[int, str]:
    out: list[str] = []
    while pos < len(line):
        ch = line[pos]
        if ch == '"':
            return pos + 1, "".join(out)
        if ch == "\\":
            nxt = line[pos + 1 : pos + 2]
            if nxt == "n":
                out.append("\n")
            elif nxt in ('"', "\\"):
                out.append(nxt)
            else:
                raise ParseError(f"invalid escape sequence '\\{nxt}'")
            pos += 2
            continue
        out.append(ch)
        pos += 1
    raise ParseError("unexpected end of input stream")
