"""Batches: forced tags, precision, limits, the time window, bad-line reports, fast = exact."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.batch import (
    BatchPreparer,
    BatchRules,
    ForcedTags,
    InvalidBatch,
    LineIssue,
    PreparedBatch,
    TooManyPoints,
    _Window,
)
from ingest.lineprotocol import PRECISION_NS, parse_line

NOW = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
SECOND = 1_000_000_000
FORCED = ForcedTags("acme", "web-01")


def prepare(body: str | bytes, precision: str = "ns", fast: bool = True, **rules: Any) -> list[str]:
    preparer = BatchPreparer(BatchRules(**rules))
    data = body.encode() if isinstance(body, str) else body
    batch = preparer.prepare(data, FORCED, precision, NOW, fast=fast)
    return batch.payload.decode().split("\n") if batch.points else []


def issues(body: str, **rules: Any) -> list[tuple[int, str]]:
    with pytest.raises(InvalidBatch) as caught:
        prepare(body, **rules)
    return [(issue.line, issue.reason) for issue in caught.value.issues]


def test_forced_tags_are_inserted_in_sorted_order() -> None:
    assert prepare(f"cpu,cpu=0,host=h1,zone=z value=1.5 {NOW}") == [
        f"cpu,collector=web-01,cpu=0,host=h1,tenant=acme,zone=z value=1.5 {NOW}"
    ]


def test_a_clients_own_tenant_and_collector_tags_are_replaced() -> None:
    body = f"cpu,tenant=evil,collector=spoof,host=h1 v=1 {NOW}\ncpu,tenant=a\\ b v=2 {NOW}"
    assert prepare(body) == [
        f"cpu,collector=web-01,host=h1,tenant=acme v=1 {NOW}",
        f"cpu,collector=web-01,tenant=acme v=2.0 {NOW}",
    ]


def test_unsorted_tags_come_out_sorted_and_points_without_tags_get_the_forced_ones() -> None:
    assert prepare(f"m,z=1,a=2 v=1i {NOW}\nm v=t {NOW}") == [
        f"m,a=2,collector=web-01,tenant=acme,z=1 v=1i {NOW}",
        f"m,collector=web-01,tenant=acme v=t {NOW}",
    ]


def test_forced_tag_values_are_escaped() -> None:
    preparer = BatchPreparer(BatchRules())
    forced = ForcedTags("acme", "rack 1,a=b")
    payload = preparer.prepare(f"m v=1 {NOW}".encode(), forced, "ns", NOW).payload
    assert payload == f"m,collector=rack\\ 1\\,a\\=b,tenant=acme v=1 {NOW}".encode()
    assert parse_line(payload.decode()).tags == (("collector", "rack 1,a=b"), ("tenant", "acme"))


def test_a_forced_tag_value_that_line_protocol_cannot_express_is_refused() -> None:
    with pytest.raises(ValueError, match="backslash"):
        ForcedTags("acme", "host\\")


@pytest.mark.parametrize(
    ("precision", "stamp"),
    [
        ("ns", NOW), ("n", NOW), ("us", NOW // 1000), ("u", NOW // 1000),
        ("ms", NOW // 10**6), ("s", NOW // 10**9), ("m", NOW // (60 * 10**9)),
        ("h", NOW // (3600 * 10**9)),
    ],
)  # fmt: skip
def test_precision_is_converted_to_nanoseconds(precision: str, stamp: int) -> None:
    multiplier = {"m": 60, "h": 3600}.get(precision, 1)
    expected = NOW - NOW % (multiplier * SECOND) if precision in ("m", "h") else NOW
    for fast in (True, False):
        (line,) = prepare(f"m v=1 {stamp}", precision, fast=fast)
        assert line.endswith(f" {expected}"), (fast, line)


def test_points_without_a_timestamp_get_the_receive_time() -> None:
    assert prepare("m v=1\nm,t=x\\ y v=2") == [
        f"m,collector=web-01,tenant=acme v=1 {NOW}",
        f"m,collector=web-01,t=x\\ y,tenant=acme v=2.0 {NOW}",
    ]


def test_leading_zeros_and_crlf_are_normalised() -> None:
    assert prepare(f"m v=1 0{NOW // SECOND}\r\nm v=2 {NOW // SECOND}\r\n", "s") == [
        f"m,collector=web-01,tenant=acme v=1 {NOW}",
        f"m,collector=web-01,tenant=acme v=2 {NOW}",
    ]


def test_comments_and_blank_lines_are_skipped_but_counted_in_line_numbers() -> None:
    body = f"# header\n\n   \nm v=1 {NOW}\nbad\n\t\n#x\nm v=2 {NOW}\n"
    assert issues(body) == [(5, "no fields: expected a space and key=value after the tags")]
    assert prepare("# only comments\n\n") == []


@pytest.mark.parametrize("fast", [True, False])
def test_a_string_spanning_lines_is_one_point_and_keeps_its_newlines(fast: bool) -> None:
    body = (
        f"m v=1.5 {NOW}\r\n"
        f'm s="one\r\ntwo\n# three\nm v=9 {NOW}",n=1i {NOW}\r\n'
        f'# say s="x\n'
        f"m v=2.5 {NOW}\n"
    )
    batch = BatchPreparer(BatchRules()).prepare(body.encode(), FORCED, "ns", NOW, fast=fast)
    assert batch.points == 3
    assert batch.payload.decode() == (
        f"m,collector=web-01,tenant=acme v=1.5 {NOW}\n"
        f'm,collector=web-01,tenant=acme s="one\r\ntwo\n# three\nm v=9 {NOW}",n=1i {NOW}\n'
        f"m,collector=web-01,tenant=acme v=2.5 {NOW}"
    )


def test_bad_lines_after_a_string_spanning_lines_keep_their_line_numbers() -> None:
    body = f'm s="a\nb\nc" {NOW}\nbad\nm v=1 {NOW}\nm s="open {NOW}\nm v=2 {NOW}\n'
    assert issues(body) == [
        (4, "no fields: expected a space and key=value after the tags"),
        (6, "column 5: field 's': unterminated string"),
    ]


def test_indented_lines_and_extra_spaces_are_written_in_the_canonical_form() -> None:
    """The influx CLI's INSERT sends a leading space; InfluxDB 1.6.7 skips it, and takes runs
    of spaces between sections, so ingest does too. The same series one-spaced (cached on the
    fast path) and indented give the same line."""
    preparer = BatchPreparer(BatchRules())
    expected = f"m,collector=web-01,t=a,tenant=acme v=1.0 {NOW}"
    body = f"m,t=a v=1.0 {NOW}\n m,t=a v=1.0 {NOW}\n\t# indented comment\nm,t=a  v=1.0  {NOW}  \n"
    batch = preparer.prepare(body.encode(), FORCED, "ns", NOW)
    assert batch.payload.decode().split("\n") == [expected] * 3
    assert batch.points == 3


def test_an_empty_body_has_no_points() -> None:
    assert BatchPreparer(BatchRules()).prepare(b"", FORCED, "ns", NOW) == PreparedBatch(b"", 0)


def test_every_bad_line_is_listed_with_its_number() -> None:
    body = "\n".join(
        [f"m v=1 {NOW}", "m v=+1", f"m v=1 {NOW}", "m,t=a=b v=1", f"_m v=1 {NOW}", "m v=1 1.5"]
    )
    with pytest.raises(InvalidBatch) as caught:
        prepare(body)
    assert caught.value.count == 4
    assert caught.value.points == 6
    assert [issue.line for issue in caught.value.issues] == [2, 4, 5, 6]
    assert "invalid value '+1'" in caught.value.issues[0].reason


def test_the_list_of_bad_lines_is_capped_but_all_are_counted() -> None:
    with pytest.raises(InvalidBatch) as caught:
        prepare("\n".join(["bad"] * 250), max_issues=100)
    assert caught.value.count == 250
    assert len(caught.value.issues) == 100
    assert caught.value.issues[-1].line == 100


def test_time_window() -> None:
    old = NOW - 8 * 86400 * SECOND
    future = NOW + 11 * 60 * SECOND
    found = issues(f"m v=1 {old}\nm v=1 {future}\nm v=1 {NOW + 9 * 60 * SECOND}\nm v=1 1")
    assert found[0] == (1, "timestamp 2023-11-06T22:13:20Z is older than 7d: check the "
                           "precision and the clock")  # fmt: skip
    assert found[1][0] == 2
    assert "more than 10m in the future" in found[1][1]
    assert found[2][0] == 4  # nanoseconds sent with precision s look 54 years old
    assert prepare(f"m v=1 {old}", max_age_ns=9 * 86400 * SECOND)


def test_timestamps_beyond_influxdbs_range_are_refused_after_conversion() -> None:
    rules = {"max_age_ns": 2**70, "max_future_ns": 2**70}
    assert "out of range" in issues("m v=1 9223372036854775807", **rules)[0][1]
    assert "out of range" in issues("m v=1 9223372036854775", precision="ms", **rules)[0][1]


def test_limits_on_line_length_tags_and_fields() -> None:
    long_line = "m,t=" + "x" * 100 + " v=1"
    assert "longer than 64 bytes" in issues(long_line, max_line_bytes=64)[0][1]
    assert "longer than 64 bytes" in issues("m,t=" + "é" * 40 + " v=1", max_line_bytes=64)[0][1]
    assert "3 tags; at most 2" in issues("m,a=1,b=2,c=3 v=1", max_tags=2)[0][1]
    assert "3 tags; at most 2" in issues("m,a=1,b=2,c=\\ 3 v=1", max_tags=2)[0][1]
    assert prepare("m,a=1,b=2,tenant=x v=1", max_tags=2)  # the replaced tag does not count
    assert "3 fields; at most 2" in issues("m a=1,b=2,c=3", max_fields=2)[0][1]


def test_unsigned_integers_only_when_the_storage_has_them() -> None:
    assert "unsigned integers" in issues(f"m v=5u {NOW}")[0][1]
    assert prepare(f"m v=5u {NOW}", allow_unsigned=True) == [
        f"m,collector=web-01,tenant=acme v=5u {NOW}"
    ]


def test_too_many_points() -> None:
    with pytest.raises(TooManyPoints, match="3 points in one request; at most 2"):
        prepare("m v=1\nm v=2\n# c\nm v=3", max_points=2)
    assert len(prepare("m v=1\n# c\n\nm v=3\n", max_points=2)) == 2


def test_invalid_utf8_is_reported_by_line() -> None:
    with pytest.raises(InvalidBatch) as caught:
        prepare(b"m v=1\nm,t=\xff v=1\n# \xfe\nm v=2\r\n")
    assert [(i.line, i.reason) for i in caught.value.issues] == [
        (2, "not valid UTF-8 at byte 5"),
        (3, "not valid UTF-8 at byte 3"),
    ]
    assert caught.value.points == 4


# (native, fast): the C whole-batch path where it is built, the Python one, the exact parser
PATHS = [(True, True), (False, True), (False, False)]


def on_every_path(body: bytes, warm: bytes = b"") -> Any:
    """What prepare() gives for ``body`` on every path, each twice (the second time with the
    series the first learnt cached), after ``warm`` has cached its series: the same each time
    (the points; the fast paths keep a float's spelling, the exact one writes it canonically).
    """
    outcomes: list[Any] = []
    for native, fast in PATHS:
        preparer = BatchPreparer(BatchRules(), native=native)
        if warm:
            preparer.prepare(warm, FORCED, "ns", NOW)
        for _ in range(2):
            try:
                batch = preparer.prepare(body, FORCED, "ns", NOW, fast=fast)
                lines = batch.payload.decode().split("\n") if batch.points else []
                outcomes.append(("prepared", _points(lines), batch.points))
            except InvalidBatch as exc:
                issues = [(issue.line, issue.reason) for issue in exc.issues]
                outcomes.append(("invalid", issues, exc.count, exc.points))
    assert all(outcome == outcomes[0] for outcome in outcomes), outcomes
    return outcomes[0]


WARM = b"a v=1 %d\nb v=1 %d" % (NOW, NOW)


def test_every_bad_line_is_reported_when_some_are_not_utf8() -> None:
    body = b'a v=1 %d\na v="\xff" %d\na v= %d\n# \xfe\nb v=1 %d\n\x0b\n' % ((NOW,) * 4)
    assert on_every_path(body, WARM) == (
        "invalid",
        [
            (2, "not valid UTF-8 at byte 6"),
            (3, "column 5: field 'v' has no value"),
            (4, "not valid UTF-8 at byte 3"),
            (6, "column 1: measurement '\\x0b' contains a control character"),
        ],
        4,
        6,
    )
    with pytest.raises(InvalidBatch) as caught:
        prepare(b"m v=1\n" * 3 + b"m,t=\xff v=1\n" + b"m v=\n" * 200, max_issues=100)
    assert (caught.value.count, caught.value.points, len(caught.value.issues)) == (201, 204, 100)
    assert caught.value.issues[0] == LineIssue(4, "not valid UTF-8 at byte 5")


@pytest.mark.parametrize("quote", [False, True])
def test_only_the_cr_of_a_cr_lf_ends_a_line_whatever_quotes_the_body_holds(quote: bool) -> None:
    """Any other CR is part of the line: InfluxDB 1.6.7 refuses ``a v=1 <t>\\r`` (bad
    timestamp) and a line of ``\\r`` (missing fields), measured."""
    value = b'"x"' if quote else b"1"
    body = b"a v=1 %d\r\r\nb v=%s %d\r\n\r\r\n" % (NOW, value, NOW)
    assert on_every_path(body, WARM) == (
        "invalid",
        [
            (1, f"column 7: invalid timestamp '{NOW}\\r'"),
            (3, "column 1: measurement '\\r' contains a control character"),
        ],
        2,
        3,
    )
    accepted = on_every_path(body.replace(b"\r\r", b"\r"), WARM)
    assert accepted[0] == "prepared"
    assert accepted[2] == 2


@pytest.mark.parametrize(
    ("char", "reason"),
    [
        ("\x0b", "measurement {!r} contains a control character"),
        ("\x0c", "measurement {!r} contains a control character"),
        ("\x1c", "measurement {!r} contains a control character"),
        ("\x85", "no fields: expected a space and key=value after the tags"),
        ("\xa0", "no fields: expected a space and key=value after the tags"),
        ("\u2003", "no fields: expected a space and key=value after the tags"),
    ],
)
def test_a_line_of_whitespace_other_than_spaces_and_tabs_is_refused(char: str, reason: str) -> None:
    """str.isspace() is true for these, and such lines were skipped; InfluxDB 1.6.7 refuses them
    (missing fields), and ingest refuses the control characters among them anywhere in a name."""
    body = f"a v=1 {NOW}\n{char}\n\t {char}{char}\nb v=1 {NOW}\n \t \n\n".encode()
    column = "column {}: " if "measurement" in reason else ""
    assert on_every_path(body, WARM) == (
        "invalid",
        [
            (2, column.format(1) + reason.format(char)),
            (3, column.format(3) + reason.format(char * 2)),
        ],
        2,
        4,
    )


def test_a_tag_value_starting_with_an_equals_sign_is_taken_as_influxdb_takes_it() -> None:
    """InfluxDB 1.6.7 stores ``t==v`` as the tag value ``=v`` (measured): so does ingest, on
    every path, writing it escaped."""
    warm = f"m,t=v v=1 {NOW}\nm,t=x,u=x v=1 {NOW}".encode()
    body = f"m,t==v v=1 {NOW}\nm,t==,u==x v=2i {NOW}".encode()
    stored = [
        f"m,collector=web-01,t=\\=v,tenant=acme v=1.0 {NOW}",
        f"m,collector=web-01,t=\\=,tenant=acme,u=\\=x v=2i {NOW}",
    ]
    assert on_every_path(body, warm) == ("prepared", _points(stored), 2)
    assert prepare(body) == stored
    assert parse_line(stored[1]).tags == (
        ("collector", "web-01"), ("t", "="), ("tenant", "acme"), ("u", "=x")
    )  # fmt: skip
    assert on_every_path(f"m,t===v v=1 {NOW}".encode(), warm) == (
        "invalid",
        [(1, "column 6: tag 't': unescaped '=' in the value")],
        1,
        1,
    )


def test_the_lines_that_give_a_field_another_type_are_found() -> None:
    body = (
        f"# types\ncpu,host=a value=1 {NOW}\ndisk used=1 {NOW}\n"
        f'disk,host=b used="full" {NOW}\ncpu value=2i {NOW}\nmem used="x" {NOW}\n'
        f'disk s="a\nb",used=t,free=1i {NOW}\ndisk used=3,free=1 {NOW}\ncpu v=1u,value=5 {NOW}\n'
    ).encode()
    preparer = BatchPreparer(BatchRules(allow_unsigned=True))
    assert preparer.prepare(body, FORCED, "ns", NOW).points == 8  # prepare() does not look
    found = preparer.field_type_conflicts(body)
    assert found is not None
    assert [(issue.line, issue.reason) for issue in found.issues] == [
        (4, "field 'used' of measurement 'disk' is a string here and a float on line 3: "
            "InfluxDB refuses a batch that gives a field two types"),
        (5, "field 'value' of measurement 'cpu' is an integer here and a float on line 2: "
            "InfluxDB refuses a batch that gives a field two types"),
        # the line where the string spanning two lines begins; its free=1i counts as well
        (7, "field 'used' of measurement 'disk' is a boolean here and a float on line 3: "
            "InfluxDB refuses a batch that gives a field two types"),
        (9, "field 'free' of measurement 'disk' is a float here and an integer on line 7: "
            "InfluxDB refuses a batch that gives a field two types"),
    ]  # fmt: skip
    assert (found.count, found.points) == (4, 8)
    capped = BatchPreparer(BatchRules(max_issues=1)).field_type_conflicts(body)
    assert capped is not None
    assert (len(capped.issues), capped.count) == (1, 4)
    same = f"cpu value=1 {NOW}\ncpu,host=b value=2 {NOW}\nmem value=1i\nmem,cpu=1 value=1i"
    assert preparer.field_type_conflicts(same.encode()) is None


def test_duplicate_tags_and_fields_are_refused_on_both_paths() -> None:
    for fast in (True, False):
        with pytest.raises(InvalidBatch, match="duplicate tag keys"):
            prepare("m,a=1,a=2 v=1", fast=fast)
        with pytest.raises(InvalidBatch, match="duplicate field key"):
            prepare("m v=1,v=2", fast=fast)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("m,time=x v=1", "column 3: tag key 'time' names the timestamp: InfluxDB refuses it"),
        ("m v=1,time=2", "column 7: field key 'time' names the timestamp: InfluxDB refuses it"),
        ('m tenant="other"', "field 'tenant' has the name of a tag ingest sets from the key"),
        ("m v=1,collector=2", "field 'collector' has the name of a tag ingest sets from the key"),
        ("m host=t", "field 'host' has the name of the host tag the dashboards filter on"),
    ],
)
def test_reserved_keys_are_refused_on_both_paths_and_nothing_is_written(
    line: str, reason: str
) -> None:
    for fast in (True, False):
        preparer = BatchPreparer(BatchRules())
        preparer.prepare(f"m,time_=1 v=1 {NOW}\nm v=1 {NOW}".encode(), FORCED, "ns", NOW)
        with pytest.raises(InvalidBatch) as caught:
            preparer.prepare(f"m v=1 {NOW}\n{line} {NOW}".encode(), FORCED, "ns", NOW, fast=fast)
        assert [(issue.line, issue.reason[: len(reason)]) for issue in caught.value.issues] == [
            (2, reason)
        ]


FORCED_TAGS_BYTES = len(",collector=web-01,tenant=acme")


def long_key_line(case: str, overflow: int) -> str:
    """A line whose series key (as written: escaped, with the forced tags), 4 bytes and longest
    field key (escaped) take 65,535 + ``overflow`` bytes."""

    def room(series: str) -> int:  # for the longest field key
        return 65_535 + overflow - len(series) - FORCED_TAGS_BYTES - 4

    if case == "series key":  # with a one-byte field key
        series = "m,t=" + "x" * (room("m,t=") - 1)
        return f"{series} v=1 {NOW}"
    if case == "field key":
        series = "m,t=" + "x" * 100
        return f"{series} {'f' * room(series)}=1 {NOW}"
    series = "m,t=" + "x" * 30_000
    if case == "the longest of the fields":
        return f"{series} a=1,{'d' * room(series)}=2i,c=3 {NOW}"
    assert case == "an escaped field key"  # 'd d…', written (and stored) as 'd\\ d…'
    return f"{series} a=1,d\\ {'d' * (room(series) - 3)}=t {NOW}"


@pytest.mark.parametrize(
    "case", ["series key", "field key", "the longest of the fields", "an escaped field key"]
)
def test_a_key_too_long_for_influxdb_is_refused_on_every_path(case: str) -> None:
    """InfluxDB 1.6.7 refuses a point whose series key, 4 bytes and a field key take more than
    65,535 bytes (``max key length exceeded: 65536 > 65535``, measured) and writes the rest of
    the batch. Every path refuses such a line, also once its series is cached (where the
    whole-batch paths try it first), and takes it one byte shorter, with the same payload."""
    fits, too_long = long_key_line(case, 0), long_key_line(case, 1)
    payloads = set()
    for native, fast in ((True, True), (False, True), (False, False)):
        preparer = BatchPreparer(BatchRules(max_line_bytes=70_000), native=native)
        for _ in range(2):  # the second time with the series cached
            payloads.add(preparer.prepare(fits.encode(), FORCED, "ns", NOW, fast=fast).payload)
            with pytest.raises(InvalidBatch) as caught:
                preparer.prepare(f"{fits}\n{too_long}".encode(), FORCED, "ns", NOW, fast=fast)
            ((line, reason),) = [(issue.line, issue.reason) for issue in caught.value.issues]
            assert line == 2
            assert reason.startswith(
                "series key (measurement and tags, with the tags ingest sets from the key) of "
            )
            assert reason.endswith(
                "InfluxDB refuses a point whose series key, 4 bytes and a field key take more "
                "than 65535 (here 65536)"
            )
    assert len(payloads) == 1


def test_the_series_cache_is_bounded() -> None:
    preparer = BatchPreparer(BatchRules(), series_cache_size=10)
    for start in range(0, 100, 20):
        body = "\n".join(f"m,host=h{i} v=1 {NOW}" for i in range(start, start + 20))
        assert preparer.prepare(body.encode(), FORCED, "ns", NOW).points == 20
    assert preparer._cached <= 30


def test_gzip_is_not_this_modules_business() -> None:
    with pytest.raises(InvalidBatch):
        prepare(gzip.compress(b"m v=1"))


# ----------------------------------------------------------------------------------------------
# The whole-batch path (every series already seen) gives what the line path gives


def whole_and_lines(body: str, precision: str = "ns", **rules: Any) -> tuple[bytes, bytes]:
    """The payload from a warm preparer (whole batch) and from a cold one (line by line)."""
    warm = BatchPreparer(BatchRules(**rules))
    first = warm.prepare(body.encode(), FORCED, precision, NOW).payload
    second = warm.prepare(body.encode(), FORCED, precision, NOW).payload
    assert first == second
    lines = body.encode().rstrip(b"\n").split(b"\n")
    window = _Window(NOW, warm.rules)
    assert warm._whole_batch(lines, FORCED, PRECISION_NS[precision], window) is not None
    return second, BatchPreparer(BatchRules(**rules)).prepare(body.encode(), FORCED, precision,
                                                               NOW, fast=False).payload  # fmt: skip


@pytest.mark.parametrize("precision", ["ns", "us", "ms", "s"])
def test_the_whole_batch_path_is_taken_and_agrees(precision: str) -> None:
    stamp = NOW // PRECISION_NS[precision]
    body = "\n".join(
        [f"cpu,cpu={c},host=h1 value={c}.5,idle=2i {stamp - c}" for c in range(8)]
        + [f"mem,host=h1 used=5i,ok=true {stamp}", f"m v=-1e5 {stamp}\n"]
    )
    whole, lines = whole_and_lines(body, precision)
    assert [parse_line(line) for line in whole.decode().split("\n")] == [
        parse_line(line) for line in lines.decode().split("\n")
    ]
    assert whole.decode().split("\n")[0] == (
        f"cpu,collector=web-01,cpu=0,host=h1,tenant=acme value=0.5,idle=2i {NOW}"
    )


@pytest.mark.parametrize(
    "second",
    [
        "cpu,host=h9 value=1 {stamp}",  # a series not seen yet
        "cpu,host=h1 value=1",  # no timestamp
        "# a comment",
        "",
        'cpu,host=h1 s="x" {stamp}',
        "cpu,host=h1 value=1,value=2 {stamp}",
        "cpu,host=h1 value=1 1",
        "cpu,host=h1 value=1 0{stamp}",
    ],
)
def test_the_whole_batch_path_falls_back_to_the_line_path(second: str) -> None:
    stamp = NOW
    preparer = BatchPreparer(BatchRules())
    first = f"cpu,host=h1 value=1 {stamp}"
    preparer.prepare(first.encode(), FORCED, "ns", NOW)
    body = f"{first}\n{second.format(stamp=stamp)}"
    lines = body.encode().split(b"\n")
    assert preparer._whole_batch(lines, FORCED, 1, _Window(NOW, preparer.rules)) is None
    try:
        result: Any = preparer.prepare(body.encode(), FORCED, "ns", NOW).payload
    except InvalidBatch as exc:
        result = [issue.line for issue in exc.issues]
    try:
        exact: Any = BatchPreparer(BatchRules()).prepare(body.encode(), FORCED, "ns", NOW,
                                                          fast=False).payload  # fmt: skip
    except InvalidBatch as exc:
        exact = [issue.line for issue in exc.issues]
    if isinstance(result, bytes):
        result = [parse_line(line) for line in result.decode().split("\n")]
        exact = [parse_line(line) for line in exact.decode().split("\n")]
    assert result == exact


def test_the_whole_batch_path_keeps_the_limits() -> None:
    preparer = BatchPreparer(BatchRules(max_fields=2))
    preparer.prepare(f"m a=1 {NOW}".encode(), FORCED, "ns", NOW)
    with pytest.raises(InvalidBatch, match="3 fields; at most 2"):
        preparer.prepare(f"m a=1,b=2,c=3 {NOW}".encode(), FORCED, "ns", NOW)
    too_late = NOW + 11 * 60 * SECOND
    with pytest.raises(InvalidBatch, match="in the future"):
        preparer.prepare(f"m a=1 {NOW}\nm a=2 {too_late}".encode(), FORCED, "ns", NOW)


# ----------------------------------------------------------------------------------------------
# The fast path gives the same points as the exact parser


def _points(lines: list[str]) -> list[tuple[Any, ...]]:
    parsed = [parse_line(line) for line in lines]
    return [(p.measurement, p.tags, tuple((k, type(v), v) for k, v in p.fields), p.timestamp)
            for p in parsed]  # fmt: skip


def _outcome(body: str, fast: bool, precision: str = "s") -> Any:
    """What preparing ``body`` gives; on the fast side, twice (the second time with its series
    cached, so that the whole-batch path is taken when it can be) and both must agree."""
    preparer = BatchPreparer(BatchRules(max_tags=3, max_fields=3, allow_unsigned=True))
    outcomes = []
    for _ in range(2 if fast else 1):
        try:
            batch = preparer.prepare(body.encode(), FORCED, precision, NOW, fast=fast)
        except InvalidBatch as exc:
            outcomes.append(("invalid", [issue.line for issue in exc.issues]))
            continue
        outcomes.append(_points(batch.payload.decode().split("\n")) if batch.points else [])
    assert all(outcome == outcomes[0] for outcome in outcomes)
    return outcomes[0]


simple_names = st.sampled_from(["cpu", "host", "mode", "tenant", "collector", "a", "z", "_x", "#h"])
values = st.sampled_from(
    ["1", "1.", ".5", "-0.5", "01", "1e5", "1E-3", "1e400", "2i", "-3i", "99999999999999999999i",
     "5u", "-5u", "t", "True", "FALSE", "tRUE", "+1", "1.5i", '"s"', "1" * 205]
)  # fmt: skip
stamps = st.sampled_from(["", " 1700000000", " 01700000000", " -1", " 1700000000000", " x"])


@st.composite
def simple_lines(draw: st.DrawFn) -> str:
    tags = draw(
        st.lists(st.tuples(simple_names, st.sampled_from(["v", "w", "_u", "=v"])), max_size=4)
    )
    fields = draw(st.lists(st.tuples(simple_names, values), min_size=1, max_size=4))
    series = draw(simple_names) + "".join(f",{k}={v}" for k, v in tags)
    return f"{series} {','.join(f'{k}={v}' for k, v in fields)}{draw(stamps)}"


@settings(max_examples=500)
@given(st.lists(simple_lines(), min_size=1, max_size=5))
def test_fast_and_exact_paths_agree(lines: list[str]) -> None:
    body = "\n".join(lines)
    assert _outcome(body, fast=True) == _outcome(body, fast=False)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_the_batchs_errors_and_output_always_parses(data: bytes) -> None:
    preparer = BatchPreparer(BatchRules(max_points=5))
    try:
        batch = preparer.prepare(data, FORCED, "ns", NOW)
    except (InvalidBatch, TooManyPoints):
        return
    for line in batch.payload.decode().split("\n") if batch.points else []:
        parse_line(line)


@settings(max_examples=200)
@given(
    st.lists(
        st.sampled_from(
            ["m", ",", "=", " ", "\\", '"', "1", "i", "t", "\n", "#", "é", "\r", "\x0b", "\xa0"]
        )
    )
)
def test_near_miss_batches_raise_only_the_batchs_errors(pieces: list[str]) -> None:
    body = "".join(pieces)
    assert _outcome(body, fast=True, precision="ns") == _outcome(body, fast=False, precision="ns")


plain_names = st.sampled_from(["cpu", "host", "é", "日本", "a-b.c/d", "tenant", "collector", "x1"])
plain_values = st.sampled_from(["1", "1.5", "-2e-3", ".5", "7i", "-7i", "t", "FALSE", "5u"])
near_misses = st.sampled_from(["1" * 19, "1" * 19 + "i", "1e999", "+1", '"s"', "1i1"])


@st.composite
def plain_batches(draw: st.DrawFn) -> tuple[str, str]:
    """Lines the whole-batch path may take, now and then a near miss, with their precision."""
    precision = draw(st.sampled_from(["ns", "us", "ms", "s"]))
    now = NOW // PRECISION_NS[precision]
    values = st.one_of(plain_values, plain_values, plain_values, near_misses)
    stamps = st.sampled_from([f" {now}", f" {now - 5}"] * 10 + [f" 0{now}", "", f" {now * 10}"])
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        tags = draw(st.lists(st.tuples(plain_names, plain_names), max_size=2,
                             unique_by=lambda tag: tag[0]))  # fmt: skip
        unique = draw(st.sampled_from([True, True, True, False]))  # else maybe duplicate keys
        fields = draw(st.lists(st.tuples(plain_names, values), min_size=1, max_size=2,
                               unique_by=(lambda field: field[0]) if unique else None))  # fmt: skip
        series = draw(plain_names) + "".join(f",{k}={v}" for k, v in tags)
        lines.append(f"{series} {','.join(f'{k}={v}' for k, v in fields)}{draw(stamps)}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"])), precision


@settings(max_examples=400)
@given(plain_batches())
def test_the_whole_batch_path_gives_the_line_paths_bytes(batch: tuple[str, str]) -> None:
    body, precision = batch
    rules = BatchRules(max_tags=2, max_fields=2, allow_unsigned=True)
    preparer = BatchPreparer(rules)
    try:
        by_lines: Any = preparer.prepare(body.encode(), FORCED, precision, NOW).payload
    except InvalidBatch as exc:
        by_lines = [issue.line for issue in exc.issues]
    lines = body.encode().removesuffix(b"\n").split(b"\n")
    window = _Window(NOW, rules)
    whole = preparer._whole_batch(lines, FORCED, PRECISION_NS[precision], window)
    if whole is not None:
        assert whole.payload == by_lines
        assert whole.points == len(lines)
    assert _outcome(body, fast=True, precision=precision) == _outcome(
        body, fast=False, precision=precision
    )
