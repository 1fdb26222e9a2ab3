"""Line protocol: escaping as InfluxDB 1.6.7 stores it, every field type, errors, round trips.

The expected values in the escaping table were measured by writing each line to Debian's
InfluxDB 1.6.7 and reading back what it stored (see ingest/lineprotocol.py).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.lineprotocol import (
    MAX_INT64,
    MAX_UINT64,
    MIN_INT64,
    LineProtocolError,
    Point,
    Unsigned,
    format_point,
    parse_line,
    split_lines,
    tag_value_problem,
)


def typed(point: Point) -> tuple[Any, ...]:
    """A point with field types made visible (True == 1 and Unsigned(1) == 1 otherwise)."""
    fields = tuple((key, type(value).__name__, repr(value)) for key, value in point.fields)
    return point.measurement, tuple(sorted(point.tags)), fields, point.timestamp


# ----------------------------------------------------------------------------------------------
# Escaping, as InfluxDB 1.6.7 stored each line


def test_the_reference_example_verified_on_1_6_7() -> None:
    point = parse_line(r'my\ meas\,x,tag\ key=tag\,v\=1 field\ k="str \\ back \"q\"",f2=2')
    assert point == Point("my meas,x", (("tag key", "tag,v=1"),),
                          (("field k", 'str \\ back "q"'), ("f2", 2.0)))  # fmt: skip


@pytest.mark.parametrize(
    ("line", "measurement", "tags"),
    [
        (r"m,t=a\ b v=1", "m", {"t": "a b"}),
        (r"m,t=a\b v=1", "m", {"t": "a\\b"}),  # a lone backslash is literal
        (r"m,t=a\\b v=1", "m", {"t": "a\\\\b"}),  # and so are two: not unescaped in tags
        (r"m,t=a\"b v=1", "m", {"t": 'a\\"b'}),
        (r"m,t=a\\\,x v=1", "m", {"t": "a\\\\,x"}),  # the last backslash escapes the comma
        (r"m,t=a\\\ x v=1", "m", {"t": "a\\\\ x"}),
        (r"m\\x,t=q v=1", "m\\\\x", {"t": "q"}),
        (r"m\ x v=1", "m x", {}),
        (r"m\,,t=1 v=1", "m,", {"t": "1"}),
        (r"m,\,=x v=1", "m", {",": "x"}),
        (r"m,t\ =x v=1", "m", {"t ": "x"}),
        (r"m,t=x\  v=1", "m", {"t": "x "}),
        (r'"m",t=q v=2', '"m"', {"t": "q"}),  # quotes in names are literal
        ("m,t=é v=1", "m", {"t": "é"}),
        ("m=x,t=q v=1", "m=x", {"t": "q"}),  # '=' needs no escape in a measurement
        # a tag value's first character may be an unescaped '=': 1.6.7 never checks that one
        ("m,t==v v=1", "m", {"t": "=v"}),
        ("m,t== v=1", "m", {"t": "="}),
        ("m,t==,u==w v=1", "m", {"t": "=", "u": "=w"}),
        (r"m,t==\=v v=1", "m", {"t": "==v"}),
    ],
)
def test_names_unescape_as_influxdb_stores_them(
    line: str, measurement: str, tags: dict[str, str]
) -> None:
    point = parse_line(line)
    assert point.measurement == measurement
    assert dict(point.tags) == tags


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        (r'"a\\b"', "a\\b"),
        (r'"a\b"', "a\\b"),  # a backslash before anything but \ or " is literal
        (r'"a\\\\b"', "a\\\\b"),
        (r'"a\\"', "a\\"),
        (r'"a\\\""', 'a\\"'),
        (r'"a\nb"', "a\\nb"),
        ('"tab\tb"', "tab\tb"),
        ('"a,b c=d"', "a,b c=d"),
        ('""', ""),
    ],
)
def test_string_field_values(text: str, stored: str) -> None:
    assert parse_line(f"m s={text}").fields == (("s", stored),)


@pytest.mark.parametrize("line", [r"m\=x v=1", r"m\"x v=1", r"m\\=x v=1"])
def test_measurement_escapes_that_influxdb_versions_read_differently_are_refused(
    line: str,
) -> None:
    with pytest.raises(LineProtocolError, match="read differently"):
        parse_line(line)


# ----------------------------------------------------------------------------------------------
# Field types


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0), ("1.0", 1.0), ("-1.2e+78", -1.2e78), ("1.", 1.0), (".5", 0.5),
        ("-.5", -0.5), ("1e3", 1000.0), ("1E3", 1000.0), ("1.5E-3", 0.0015), ("01", 1.0),
        ("00.5", 0.5), ("1.e5", 1e5), ("-0.0", -0.0), ("1e-400", 0.0),
        ("1.7976931348623157e+308", 1.7976931348623157e308),
    ],
)  # fmt: skip
def test_floats(text: str, value: float) -> None:
    (_, parsed), = parse_line(f"m v={text}").fields  # fmt: skip
    assert type(parsed) is float
    assert parsed == value
    assert math.copysign(1, parsed) == math.copysign(1, value)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1i", 1), ("-0i", 0), ("01i", 1), (f"{MAX_INT64}i", MAX_INT64), (f"{MIN_INT64}i", MIN_INT64)],
)
def test_integers(text: str, value: int) -> None:
    (_, parsed), = parse_line(f"m v={text}").fields  # fmt: skip
    assert type(parsed) is int
    assert parsed == value


@pytest.mark.parametrize(("text", "value"), [("0u", 0), ("5u", 5), (f"{MAX_UINT64}u", MAX_UINT64)])
def test_unsigned_integers(text: str, value: int) -> None:
    (_, parsed), = parse_line(f"m v={text}").fields  # fmt: skip
    assert type(parsed) is Unsigned
    assert parsed == value
    assert format_point(Point("m", (), (("v", parsed),))) == f"m v={value}u"


@pytest.mark.parametrize(
    ("text", "value"),
    [(t, True) for t in ("t", "T", "true", "True", "TRUE")]
    + [(f, False) for f in ("f", "F", "false", "False", "FALSE")],
)
def test_booleans(text: str, value: bool) -> None:
    assert parse_line(f"m v={text}").fields == (("v", value),)


@pytest.mark.parametrize(
    "text",
    [
        "+1", "0x10", "NaN", "nan", "Inf", "-inf", "1e400", "-1e400", "1_000", "\u0661", "-", "-i",
        "1e", ".", "-.", ".e5", "1.5i", "1e3i", "9223372036854775808i",
        "-9223372036854775809i", "18446744073709551616u", "-1u", "1.5u", "tRUE", "yes", "1 x",
        "'s'", '"unterminated', '"x"y', "t1",
    ],
)  # fmt: skip
def test_invalid_field_values(text: str) -> None:
    with pytest.raises(LineProtocolError):
        parse_line(f"m v={text} 1")


def test_field_value_formats_back_canonically() -> None:
    point = Point("m", (), (("f", 1.5), ("i", -3), ("u", Unsigned(3)), ("b", True), ("s", 'a"\\')))
    assert format_point(point) == r'm f=1.5,i=-3i,u=3u,b=true,s="a\"\\"'


# ----------------------------------------------------------------------------------------------
# Structure


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty"),
        ("# a comment", "comment"),
        ("  \t ", "empty"),
        (" \t# an indented comment", "comment"),
        (",t=x v=1", "missing measurement"),
        ("m, v=1", "missing tag key"),
        ("m,t= v=1", "missing tag value"),
        ("m,=x v=1", "missing tag key"),
        ("m,t v=1", "has no value"),
        ("m,t=a=b v=1", "unescaped '='"),
        ("m,t===v v=1", "unescaped '='"),  # 1.6.7: "invalid tag format"
        (r"m,t=\==v v=1", "unescaped '='"),  # 1.6.7: "invalid tag format"
        ("m,t=v= v=1", "unescaped '='"),
        ("m,t=q,t=r v=1", "duplicate tag keys"),
        ("m =1", "missing field key"),
        ("m", "no fields"),
        ("m,t=x", "no fields"),
        ("m v", "has no '='"),
        ("m v=", "has no value"),
        ("m v=1,", "missing field key"),
        ("m v=1,=2", "missing field key"),
        ("m v=1,v=2", "duplicate field key"),
        ("m v=1 46 47", "unexpected text after the timestamp"),
        ("m v=1  46  x", "unexpected text after the timestamp"),
        ("m   ", "no fields"),
        ("m v=1  x", "invalid timestamp"),
        ("m v=1 +5", "invalid timestamp"),
        ("m v=1 1.5", "invalid timestamp"),
        ("m v=1 1e3", "invalid timestamp"),
        ("m v=1 1_0", "invalid timestamp"),
        ("m v=1 " + "9" * 30, "out of range"),
        ("_m v=1", "reserved"),
        ("m,_t=x v=1", "reserved"),
        ("m _v=1", "reserved"),
        ("m\tx v=1", "control character"),
        ("m,t=x\x00y v=1", "control character"),
        ("m v=1\r", "invalid value"),
        (r"m\ ", "no fields"),
        (r"m,t=a\\ v=1", "unescaped '='"),  # 1.6.7: "invalid tag format"
        (r"m,t\\=q v=1", "has no value"),  # 1.6.7: "missing tag value"
    ],
)
def test_structural_errors(line: str, reason: str) -> None:
    with pytest.raises(LineProtocolError, match=reason):
        parse_line(line)


def test_a_tag_value_starting_with_an_equals_sign_is_written_escaped() -> None:
    point = parse_line("m,t==v v=1 5")
    assert format_point(point) == r"m,t=\=v v=1.0 5"
    assert parse_line(format_point(point)) == point


def test_errors_name_the_column() -> None:
    with pytest.raises(LineProtocolError) as caught:
        parse_line("cpu,host=a,=x v=1")
    assert caught.value.column == 12
    assert str(caught.value).startswith("column 12: ")


def test_columns_count_from_the_start_of_an_indented_line() -> None:
    with pytest.raises(LineProtocolError) as caught:
        parse_line("  cpu,host=a,=x v=1")
    assert caught.value.column == 14
    with pytest.raises(LineProtocolError) as caught:
        parse_line(" m v=1 46   47")
    assert caught.value.column == 13  # the 47


@pytest.mark.parametrize(
    "line",
    [
        " cpu,host=a value=1 46",  # the influx CLI's INSERT
        "\t cpu,host=a value=1 46",
        "cpu,host=a  value=1 46",
        "cpu,host=a value=1   46",
        "cpu,host=a value=1 46   ",
    ],
)
def test_spaces_influxdb_allows_around_sections_are_accepted(line: str) -> None:
    """Measured on InfluxDB 1.6.7: each of these is stored as the one-space form."""
    point = parse_line(line)
    assert point == Point("cpu", (("host", "a"),), (("value", 1.0),), 46)
    assert format_point(point) == "cpu,host=a value=1.0 46"


def test_spaces_after_the_fields_without_a_timestamp_leave_it_out() -> None:
    assert parse_line("cpu value=1  ").timestamp is None


@pytest.mark.parametrize(
    ("text", "timestamp"),
    [("0", 0), ("-1", -1), ("0045", 45), ("1700000000000000000", 1700000000000000000)],
)
def test_timestamps_are_read_as_given(text: str, timestamp: int) -> None:
    assert parse_line(f"m v=1 {text}").timestamp == timestamp


def test_format_sorts_tags_and_escapes() -> None:
    point = Point("my meas", (("z", "1"), ("a b", "x,y=z")), (("f k", 1.0),), 5)
    assert format_point(point) == r"my\ meas,a\ b=x\,y\=z,z=1 f\ k=1.0 5"
    assert format_point(point, timestamp=7).endswith(" 7")


@pytest.mark.parametrize(
    ("value", "problem"),
    [("ok", None), ("", "is empty"), ("a\\", "backslash"), ("a\nb", "control"), ("a b,c", None)],
)
def test_tag_value_problem(value: str, problem: str | None) -> None:
    found = tag_value_problem(value)
    assert (found is None) if problem is None else (problem in (found or ""))


# ----------------------------------------------------------------------------------------------
# Properties

SPECIALS = ",= \\\"#_'\té"
name_text = st.text(
    alphabet=st.one_of(st.sampled_from(SPECIALS), st.characters(codec="utf-8")),
    min_size=1,
    max_size=12,
)


def _name_ok(name: str) -> bool:
    return tag_value_problem(name) is None and not name.startswith("_")


names = name_text.filter(_name_ok)
keys = names.filter(lambda k: k != "time")  # InfluxDB refuses it as a tag or field key
measurements = names.filter(lambda m: not m.startswith("#") and "\\=" not in m and '\\"' not in m)
tag_values = name_text.filter(lambda v: tag_value_problem(v) is None)
field_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(MIN_INT64, MAX_INT64),
    st.integers(0, MAX_UINT64).map(Unsigned),
    st.booleans(),
    st.text(st.characters(codec="utf-8"), max_size=20),  # newlines too: InfluxDB keeps them
)
points = st.builds(
    Point,
    measurements,
    st.dictionaries(keys, tag_values, max_size=4).map(lambda d: tuple(d.items())),
    st.dictionaries(keys, field_values, min_size=1, max_size=4).map(lambda d: tuple(d.items())),
    st.one_of(st.none(), st.integers(-(2**63) + 2, 2**63 - 2)),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.filter_too_much])
@given(points)
def test_valid_points_round_trip_exactly(point: Point) -> None:
    line = format_point(point)
    assert split_lines(line.encode()) == ([line.encode()], [1] if '"' in line else None)
    assert typed(parse_line(line)) == typed(point)


@settings(max_examples=400)
@given(st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=80))
def test_garbage_raises_only_the_parsers_error(line: str) -> None:
    try:
        point = parse_line(line)
    except LineProtocolError:
        return
    assert typed(parse_line(format_point(point))) == typed(point)


line_pieces = st.sampled_from(
    ["m", "cpu", ",", "=", " ", "\\", '"', "1", "1i", "5u", "t", "-", ".", "e", "#", "_", "x", "é"]
)


@settings(max_examples=300)
@given(st.lists(line_pieces, max_size=20).map("".join))
def test_near_miss_lines_raise_only_the_parsers_error(line: str) -> None:
    """Lines built from protocol punctuation, where parsers' corner cases live."""
    try:
        point = parse_line(line)
    except LineProtocolError:
        return
    assert typed(parse_line(format_point(point))) == typed(point)


@pytest.mark.parametrize(
    ("body", "lines", "starts"),
    [
        (b"a v=1\r\nb v=2\n", [b"a v=1", b"b v=2", b""], None),
        (b'a s="x\ny" 1\nb v=1', [b'a s="x\ny" 1', b"b v=1"], [1, 3]),
        (b'a s="x\r\ny"\r\nb v=1', [b'a s="x\r\ny"', b"b v=1"], [1, 3]),
        # an escaped quote does not close the string; an escaped backslash before one does
        (b'a s="\\"\n\\\\"\nb v=1', [b'a s="\\"\n\\\\"', b"b v=1"], [1, 3]),
        # quotes open strings only in the fields, after more '=' than ','
        (b'a,t="x v=1\nb"c,d=1 v="\n"', [b'a,t="x v=1', b'b"c,d=1 v="\n"'], [1, 2]),
        (b'a v=1,"w\nb v=2', [b'a v=1,"w', b"b v=2"], None),
        # a comment ends at its newline, quotes or not
        (b'# c="\na v=1', [b'# c="', b"a v=1"], [1, 2]),
        # a string still open at the end is one line from where it opened
        (b'a v=1\nb s="x\nc v=1\n', [b"a v=1", b'b s="x\nc v=1\n'], [1, 2]),
        # CR LF is a newline; any other CR is part of the line, quotes in the body or not
        (b"a v=1\r\r\nb v=2\r", [b"a v=1\r", b"b v=2\r"], None),
        (b'a v=1\r\r\nb v="2"\r', [b"a v=1\r", b'b v="2"\r'], [1, 2]),
        (
            b'a v=1 1\r\r\nb v="\r\r\n"\r\r\n\r\n',
            [b"a v=1 1\r", b'b v="\r\r\n"\r', b"", b""],
            [1, 2, 4, 5],
        ),
        (b"a v=1\n\r\r\n\rb v=2", [b"a v=1", b"\r", b"\rb v=2"], None),
        (b'a v=1\n\r\r\n\rb v="2"', [b"a v=1", b"\r", b'\rb v="2"'], [1, 2, 3]),
    ],
)
def test_lines_are_split_as_influxdbs_scanner_splits_them(
    body: bytes, lines: list[bytes], starts: list[int] | None
) -> None:
    found, numbers = split_lines(body)
    assert found == lines
    assert numbers == (
        starts if starts is not None or b'"' not in body else list(range(1, len(lines) + 1))
    )


def test_a_string_field_may_hold_newlines_and_a_backslash_before_one() -> None:
    point = parse_line('m s="a\\\nb\nc"')
    assert point.fields == (("s", "a\\\nb\nc"),)
    assert parse_line(format_point(point)) == point
