"""InfluxDB line protocol: split a body into lines, parse one line into a Point, and format a
Point canonically.

Ingest never forwards bytes it has not understood: every line is parsed here, so that a batch
with any bad line is refused whole instead of half-written by InfluxDB 1.x (``partial write``).

Semantics are those measured on Debian's InfluxDB 1.6.7 (docs/architecture.md, Ingest):

* A delimiter (``,``, ``=``, space) preceded by a backslash is escaped, however many
  backslashes come before it. Measurements unescape ``\\,`` and ``\\ ``; tag keys, tag values
  and field keys unescape ``\\,``, ``\\=`` and ``\\ ``. Every other backslash is literal:
  ``a\\\\b`` in a tag is stored with two backslashes.
* String field values unescape ``\\\\`` and ``\\"``; any other backslash is literal.
* 1.6.7 also unescapes ``\\=`` and ``\\"`` in measurements where the documentation says it
  should not, so those two spellings are refused as ambiguous rather than guessed.
* A tag value's first character may be an unescaped ``=``: 1.6.7 never checks it, and stores
  ``t==v`` as the value ``=v`` (measured); an unescaped ``=`` anywhere after it is refused.

Where InfluxDB is lenient and the result is surprising, this parser is strict: names and tag
values may not contain control characters, names may not start with ``_`` (InfluxDB 2's rule),
and duplicate field keys are refused. Where its leniency is harmless, it is kept: spaces and
tabs before a line (the influx CLI's ``INSERT`` sends a leading space), runs of spaces between
the sections and spaces after the last one (formatting writes one space between sections).
Nothing that passes here is refused by InfluxDB's parser, and formatting a parsed point gives
a line that parses back to the same point; tests check both properties.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

MIN_TIMESTAMP: Final = -9223372036854775806  # InfluxDB's range, in nanoseconds
MAX_TIMESTAMP: Final = 9223372036854775806
MIN_INT64: Final = -(2**63)
MAX_INT64: Final = 2**63 - 1
MAX_UINT64: Final = 2**64 - 1
MAX_STRING_BYTES: Final = 65535  # InfluxDB's limit for a string field value
# InfluxDB's limit for a series key (measurement and tags, escaped) followed by a field key: for
# every field of a line, len(series key) + len(KEY_SEPARATOR) + len(escaped field key) at most.
MAX_KEY_BYTES: Final = 65535
KEY_SEPARATOR: Final = "#!~#"  # between the series key and a field key in InfluxDB's storage keys
BOOLEANS: Final = {
    "t": True, "T": True, "true": True, "True": True, "TRUE": True,
    "f": False, "F": False, "false": False, "False": False, "FALSE": False,
}  # fmt: skip

# Nanoseconds per unit, for the precision names of both write APIs.
PRECISION_NS: Final = {
    "ns": 1, "n": 1, "us": 1_000, "u": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
}  # fmt: skip
V2_PRECISIONS: Final = ("ns", "us", "ms", "s")
V1_PRECISIONS: Final = ("n", "ns", "u", "us", "ms", "s", "m", "h")


class LineProtocolError(ValueError):
    """One line is not valid line protocol; ``reason`` says why, ``column`` (1-based) where."""

    def __init__(self, reason: str, column: int | None = None) -> None:
        self.reason = reason
        self.column = column
        super().__init__(f"column {column}: {reason}" if column else reason)


class Unsigned(int):
    """An unsigned integer field value (``5u``): its own type, so it formats back with ``u``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Unsigned({int(self)})"


FieldValue = float | int | bool | str  # int includes Unsigned; bool is checked before int


@dataclass(frozen=True, slots=True)
class Point:
    """One point as written: tags in the order given, timestamp in the batch's precision."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, FieldValue], ...]
    timestamp: int | None = None


# ----------------------------------------------------------------------------------------------
# Parsing

# A run of backslashes escapes the delimiter right after it (if any); the others are literal.
_MEASUREMENT_TOKEN = re.compile(r"(?:[^\\, ]++|\\++[, ]?+)*+")
_KEY_TOKEN = re.compile(r"(?:[^\\,= ]++|\\++[,= ]?+)*+")
_STRING_VALUE = re.compile(r'"((?:[^"\\]++|\\.)*+)"', re.DOTALL)
_PLAIN_VALUE = re.compile(r"[^, ]*+")
_MEASUREMENT_ESCAPED = re.compile(r"\\([, ])")
_KEY_ESCAPED = re.compile(r"\\([,= ])")
_STRING_ESCAPED = re.compile(r'\\([\\"])')
_AMBIGUOUS_MEASUREMENT_ESCAPE = re.compile(r'\\[="]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INTEGER = re.compile(r"-?[0-9]+i")
_UNSIGNED = re.compile(r"[0-9]+u")
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIMESTAMP = re.compile(r"-?[0-9]+")
_MAX_NUMBER_DIGITS = 25  # longer integers and timestamps are out of range whatever they say
_TIME_KEY = "{what} 'time' names the timestamp: InfluxDB refuses it as a key"


# What moves InfluxDB's line scanner (models.scanLine): an escaped byte, and the bytes it counts.
_SCANNED = re.compile(rb'\\.|[ =,"]', re.DOTALL)


def split_lines(body: bytes) -> tuple[list[bytes], list[int] | None]:
    """The body's lines as InfluxDB 1.x splits them, and where each begins (1-based line numbers
    of the body; None when every newline ends a line, as in most bodies).

    A newline inside a quoted string field value belongs to the value: InfluxDB stores it, so
    influxdb-client and Telegraf send it raw. Such a line ends at the first newline after its
    string closes. Its strings are found as InfluxDB's scanner finds them (a quote opens or
    closes one after the first space, once more ``=`` than ``,`` have been seen). CR LF ends a
    line as LF does (one CR, that of the CR LF); any other CR is part of the line, and one inside
    a string is kept. A comment ends at its newline whatever quotes it holds (InfluxDB would let
    a quote in a comment hide the lines after it).
    """
    if b'"' not in body:
        return (body.replace(b"\r\n", b"\n") if b"\r" in body else body).split(b"\n"), None
    physical = body.split(b"\n")
    last = len(physical)  # the one part no newline ends: a CR at its end is no CR LF
    lines: list[bytes] = []
    starts: list[int] = []
    pending: list[bytes] = []
    state = _ScanState()
    for number, part in enumerate(physical, 1):
        if not pending:
            if b'"' not in part or part.lstrip(b" \t")[:1] == b"#":
                lines.append(part[:-1] if part[-1:] == b"\r" and number < last else part)
                starts.append(number)
                continue
            state = _ScanState()
        pending.append(part)
        if state.scan(part):
            continue  # inside a string: the newline is part of its value
        line = b"\n".join(pending)
        lines.append(line[:-1] if line[-1:] == b"\r" and number < last else line)
        starts.append(number - len(pending) + 1)
        pending = []
    if pending:  # a string still open at the end: one line, which the parser refuses
        lines.append(b"\n".join(pending))
        starts.append(len(physical) - len(pending) + 1)
    return lines, starts


class _ScanState:
    """InfluxDB's scanLine state for one line: past the first space, ``=`` and ``,`` counted
    there outside strings, and whether a string is open."""

    __slots__ = ("commas", "equals", "fields", "quoted")

    def __init__(self) -> None:
        self.fields = False
        self.equals = 0
        self.commas = 0
        self.quoted = False

    def scan(self, part: bytes) -> bool:
        """Advance over one physical line (no newline); return whether a string is open."""
        for token in _SCANNED.findall(part):
            if token == b" ":
                self.fields = True
            elif not self.fields or len(token) == 2:
                continue  # before the fields nothing counts; an escaped byte never does
            elif token == b'"':
                if self.equals > self.commas:
                    self.quoted = not self.quoted
            elif not self.quoted:
                if token == b"=":
                    self.equals += 1
                else:
                    self.commas += 1
        return self.quoted


def parse_line(line: str) -> Point:
    """Parse one line (no newline); raises LineProtocolError naming the first problem."""
    start = len(line) - len(line.lstrip(" \t"))
    if start == len(line):
        raise LineProtocolError("empty line")
    if line[start] == "#":
        raise LineProtocolError("a comment is not a point")
    token = _MEASUREMENT_TOKEN.match(line, start)
    assert token is not None  # the pattern also matches the empty string
    pos = token.end()
    if _AMBIGUOUS_MEASUREMENT_ESCAPE.search(token.group()):
        raise LineProtocolError(
            'measurement: \\= and \\" are read differently by InfluxDB versions; '
            'write = or " without the backslash',
            1,
        )
    measurement = _MEASUREMENT_ESCAPED.sub(r"\1", token.group())
    _check_name(measurement, "measurement", start + 1)
    tags: list[tuple[str, str]] = []
    while pos < len(line) and line[pos] == ",":
        key_at = pos + 1
        key, pos = _scan_key(line, key_at, "tag key")
        if key == "time":
            raise LineProtocolError(_TIME_KEY.format(what="tag key"), key_at + 1)
        if pos >= len(line) or line[pos] != "=":
            raise LineProtocolError(f"tag key {key!r} has no value", pos + 1)
        value, pos = _scan_tag_value(line, pos + 1)
        if pos < len(line) and line[pos] == "=":
            raise LineProtocolError(f"tag {key!r}: unescaped '=' in the value", pos + 1)
        tags.append((key, value))
    if len({key for key, _ in tags}) != len(tags):
        raise LineProtocolError("duplicate tag keys")
    if pos >= len(line):
        raise LineProtocolError("no fields: expected a space and key=value after the tags")
    if line[pos] != " ":  # the token stops only at ',', ' ' or the end
        raise LineProtocolError("unexpected character after the tags", pos + 1)
    pos = _after_spaces(line, pos)
    if pos >= len(line):
        raise LineProtocolError("no fields: expected key=value after the tags", pos)
    fields, pos = _scan_fields(line, pos)
    timestamp = None
    pos = _after_spaces(line, pos)  # the fields stop only at ' ' or the end
    if pos < len(line):
        end = line.find(" ", pos)
        end = len(line) if end < 0 else end
        timestamp = _parse_timestamp(line[pos:end], pos + 1)
        after = _after_spaces(line, end)
        if after < len(line):
            raise LineProtocolError("unexpected text after the timestamp", after + 1)
    return Point(measurement, tuple(tags), tuple(fields), timestamp)


def _after_spaces(line: str, pos: int) -> int:
    """The position of the first character at or after ``pos`` that is not a space."""
    while pos < len(line) and line[pos] == " ":
        pos += 1
    return pos


def _check_name(name: str, what: str, column: int) -> None:
    if not name:
        raise LineProtocolError(f"missing {what}", column)
    if what != "tag value" and name[0] == "_":
        raise LineProtocolError(f"{what} {name!r}: names starting with '_' are reserved", column)
    if _CONTROL.search(name):
        raise LineProtocolError(f"{what} {name!r} contains a control character", column)


def _scan_key(line: str, pos: int, what: str) -> tuple[str, int]:
    """A tag key, tag value or field key starting at ``pos``; returns it unescaped and the end."""
    token = _KEY_TOKEN.match(line, pos)
    assert token is not None
    name = _KEY_ESCAPED.sub(r"\1", token.group())
    _check_name(name, what, pos + 1)
    return name, token.end()


def _scan_tag_value(line: str, pos: int) -> tuple[str, int]:
    """A tag value starting at ``pos``, unescaped, and its end. Its first character may be an
    unescaped '=' (InfluxDB 1.6.7 checks only the characters after the first for one)."""
    first = "=" if line.startswith("=", pos) else ""
    token = _KEY_TOKEN.match(line, pos + len(first))
    assert token is not None
    value = first + _KEY_ESCAPED.sub(r"\1", token.group())
    _check_name(value, "tag value", pos + 1)
    return value, token.end()


def _scan_fields(line: str, pos: int) -> tuple[list[tuple[str, FieldValue]], int]:
    fields: list[tuple[str, FieldValue]] = []
    seen: set[str] = set()
    while True:
        key_at = pos
        key, pos = _scan_key(line, key_at, "field key")
        if key == "time":
            raise LineProtocolError(_TIME_KEY.format(what="field key"), key_at + 1)
        if pos >= len(line) or line[pos] != "=":
            raise LineProtocolError(f"field {key!r} has no '=' and value", pos + 1)
        if key in seen:
            raise LineProtocolError(f"duplicate field key {key!r}", pos)
        seen.add(key)
        value, pos = _scan_field_value(line, pos + 1, key)
        fields.append((key, value))
        if pos >= len(line) or line[pos] == " ":
            return fields, pos
        # the value stops only at ',', ' ' or the end
        pos += 1


def _scan_field_value(line: str, pos: int, key: str) -> tuple[FieldValue, int]:
    if pos < len(line) and line[pos] == '"':
        match = _STRING_VALUE.match(line, pos)
        if match is None:
            raise LineProtocolError(f"field {key!r}: unterminated string", pos + 1)
        end = match.end()
        if end < len(line) and line[end] not in ", ":
            raise LineProtocolError(f"field {key!r}: unexpected text after the string", end + 1)
        text = _STRING_ESCAPED.sub(r"\1", match.group(1))
        if len(text) > MAX_STRING_BYTES // 4 and len(text.encode()) > MAX_STRING_BYTES:
            raise LineProtocolError(
                f"field {key!r}: string longer than {MAX_STRING_BYTES} bytes", pos + 1
            )
        return text, end
    token = _PLAIN_VALUE.match(line, pos)
    assert token is not None
    return _number_or_boolean(token.group(), key, pos + 1), token.end()


def _number_or_boolean(text: str, key: str, column: int) -> FieldValue:
    if not text:
        raise LineProtocolError(f"field {key!r} has no value", column)
    boolean = BOOLEANS.get(text)
    if boolean is not None:
        return boolean
    if _INTEGER.fullmatch(text):
        if len(text) <= _MAX_NUMBER_DIGITS and MIN_INT64 <= (number := int(text[:-1])) <= MAX_INT64:
            return number
        raise LineProtocolError(f"field {key!r}: integer out of the signed 64-bit range", column)
    if _UNSIGNED.fullmatch(text):
        if len(text) <= _MAX_NUMBER_DIGITS and (number := int(text[:-1])) <= MAX_UINT64:
            return Unsigned(number)
        raise LineProtocolError(f"field {key!r}: unsigned integer out of 64-bit range", column)
    if _FLOAT.fullmatch(text):
        value = float(text)
        if math.isfinite(value):
            return value
        raise LineProtocolError(f"field {key!r}: float out of range", column)
    raise LineProtocolError(
        f"field {key!r}: invalid value {text[:40]!r} (expected a float, 1i, 1u, a boolean "
        'or a "string")',
        column,
    )


def _parse_timestamp(text: str, column: int) -> int:
    if not _TIMESTAMP.fullmatch(text):
        raise LineProtocolError(f"invalid timestamp {text[:40]!r}", column)
    if len(text) > _MAX_NUMBER_DIGITS:
        raise LineProtocolError("timestamp out of range", column)
    return int(text)


# ----------------------------------------------------------------------------------------------
# Formatting


def escape_measurement(name: str) -> str:
    return name.replace(",", "\\,").replace(" ", "\\ ") if ("," in name or " " in name) else name


def escape_key(name: str) -> str:
    """Escape a tag key, tag value or field key."""
    if "," in name or "=" in name or " " in name:
        return name.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
    return name


def escape_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_field_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Unsigned):
        return f"{int(value)}u"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return escape_string(value)


def format_point(point: Point, timestamp: int | str | None = None, key: str | None = None) -> str:
    """Canonical line protocol: tags sorted by key, as InfluxDB keeps them.

    ``timestamp`` replaces the point's own (e.g. converted to nanoseconds); ``key`` is the
    point's ``series_key`` where the caller has it already. The point must be one that
    ``parse_line`` could produce; ``representable`` says whether it is.
    """
    parts = [series_key(point) if key is None else key, " "]
    parts.append(
        ",".join(f"{escape_key(key)}={format_field_value(value)}" for key, value in point.fields)
    )
    stamp = point.timestamp if timestamp is None else timestamp
    if stamp is not None:
        parts.append(f" {stamp}")
    return "".join(parts)


def series_key(point: Point) -> str:
    """The series key as InfluxDB keeps it: the escaped measurement and tags sorted by key."""
    parts = [escape_measurement(point.measurement)]
    for key, value in sorted(point.tags):
        parts.append(f",{escape_key(key)}={escape_key(value)}")
    return "".join(parts)


def tag_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be written as a tag value, or None.

    Names ending in a backslash cannot be written at all: the backslash would escape the
    delimiter after it. Ingest checks its own forced tag values with this.
    """
    if not value:
        return "is empty"
    if _CONTROL.search(value):
        return "contains a control character"
    if value.endswith("\\"):
        return "ends with a backslash, which line protocol cannot express"
    return None
