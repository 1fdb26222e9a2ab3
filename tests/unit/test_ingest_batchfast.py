"""The C whole-batch path (ingest/_batchfast.c) gives exactly what the Python one gives.

Two levels: ``_whole_body`` (C, on the body) against ``_whole_batch`` (Python, on its lines),
payload or None, on valid and near-valid batches; and prepare() with and without the extension,
the same PreparedBatch or the same error. Some examples also say which way they must go, so
that both paths refusing everything would not pass.
"""

from __future__ import annotations

import dataclasses
import shutil
import sysconfig
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ingest.batch import (
    NATIVE,
    BatchPreparer,
    BatchRules,
    ForcedTags,
    InvalidBatch,
    PreparedBatch,
    TooManyPoints,
    _Window,
)
from ingest.lineprotocol import PRECISION_NS

NOW = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
SECOND = 1_000_000_000
FORCED = ForcedTags("acme", "web-01")
native_only = pytest.mark.skipif(NATIVE is None, reason="ingest._batchfast is not built")


def test_the_extension_is_built_where_there_is_a_compiler() -> None:
    """An optional extension that fails to compile only warns at install: say so here."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if NATIVE is None and shutil.which(compiler):
        pytest.fail(
            f"{compiler} is installed but ingest._batchfast is not built: "
            "see the output of pip install -e ."
        )


# ----------------------------------------------------------------------------------------------
# C on the body against Python on its lines


SERIES = [b"cpu,cpu=0,host=h1", b"mem", "é,t=日本".encode(), b"m,x=1,tenant=evil", b"a-b.c/d"]
UNKNOWN = b"cpu,host=unseen"


def warm_preparer(**rules: Any) -> BatchPreparer:
    """A preparer whose cache holds SERIES (rewritten as the line path would)."""
    preparer = BatchPreparer(BatchRules(**rules))
    cache = preparer._series_cache(FORCED)
    for series in SERIES:
        assert preparer._rewrite_series(series, FORCED, cache) is not None
    return preparer


def both_ways(
    preparer: BatchPreparer, body: bytes, precision: str = "ns", now: int = NOW
) -> PreparedBatch | None:
    """What C gives for ``body``, after checking that Python gives the same for its lines."""
    lines = body.split(b"\n")
    complete = lines[:-1] if len(lines) > 1 and not lines[-1] else lines
    window = _Window(now, preparer.rules)
    multiplier = PRECISION_NS[precision]
    python = preparer._whole_batch(complete, FORCED, multiplier, window)
    native = preparer._whole_body(body, FORCED, multiplier, window)
    assert native == python
    return native


def stamp_text(precision: str, offset: int = 0) -> str:
    return str(NOW // PRECISION_NS[precision] + offset)


VALID_VALUES = [
    "1", "0", "-0", "-0.0", "1.", ".5", "-.5", "1.5", "1" * 200, "1" * 200 + ".25", "1e5",
    "1E+99", "1.5e-3", ".5e1", "1.e5", "0i", "-0i", "1" * 18 + "i", "-" + "9" * 18 + "i", "t",
    "true", "T", "True", "TRUE", "f", "false", "F", "False", "FALSE",
]  # fmt: skip
INVALID_VALUES = [
    "", "-", ".", "-.", "+1", "1" * 201, "1" * 19 + "i", "-" + "1" * 19 + "i", "1e999", "1e",
    "1e+", "1.5.5", "1..5", "0x1", "nan", "inf", "i", "1i1", "1.5i", "tru", "truE", "TRue",
    "fALSE", "yes", '"s"', "1\\", "5u", "-5u", "1" * 20 + "u",
]  # fmt: skip


@native_only
@pytest.mark.parametrize("value", VALID_VALUES)
def test_values_the_pattern_accepts_are_accepted(value: str) -> None:
    stamp = stamp_text("ns")
    body = f"cpu,cpu=0,host=h1 v={value} {stamp}\nmem a={value},b=1i {stamp}".encode()
    assert both_ways(warm_preparer(), body) == PreparedBatch(
        f"cpu,collector=web-01,cpu=0,host=h1,tenant=acme v={value} {stamp}\n"
        f"mem,collector=web-01,tenant=acme a={value},b=1i {stamp}".encode(),
        2,
    )


@native_only
@pytest.mark.parametrize("value", INVALID_VALUES)
def test_values_the_pattern_refuses_send_the_batch_to_the_line_path(value: str) -> None:
    stamp = stamp_text("ns")
    for line in (f"mem v={value} {stamp}", f"mem v={value},w=1 {stamp}", f"mem w=1,v={value}"):
        assert both_ways(warm_preparer(), f"mem ok=1 {stamp}\n{line}".encode()) is None, line


@native_only
@pytest.mark.parametrize(
    ("value", "accepted"),
    [("1" * 19 + "u", True), ("0u", True), ("1" * 20 + "u", False), ("-1u", False)],
)
def test_unsigned_integers_only_when_allowed(value: str, accepted: bool) -> None:
    body = f"mem v={value} {stamp_text('ns')}".encode()
    assert (both_ways(warm_preparer(allow_unsigned=True), body) is not None) == accepted
    assert both_ways(warm_preparer(allow_unsigned=False), body) is None


@native_only
@pytest.mark.parametrize(
    ("fields", "accepted"),
    [
        ("a=1", True),
        ("a=1,b=2", True),
        ("a=1,a=2", False),
        ("a=1,b=2,a=3", False),
        ("é=1,日本=2,e=3", True),
        ("é=1,é=2", False),
        (",".join(f"f{i}=1" for i in range(20)), True),  # beyond the pairwise comparison
        (",".join(f"f{i}=1" for i in range(20)) + ",f3=2", False),
        ("a=1,", False),
        ("a=1,,b=2", False),
        ("_a=1", False),
        ("#a=1", False),
        ("a_=1,b#=2", True),
        ("a\x7fb=1", False),
        ("a\tb=1", False),
        ("=1", False),
        ("a==1", False),
        ("a=1=2", False),
        ("a=1 b=2", False),
        ("time=1", False),  # InfluxDB refuses the key: the exact parser says so
        ("a=1,tenant=2", False),  # would shadow the forced tag: the exact parser refuses it
        ("collector=1", False),
        ("host=1", False),  # refused from every key: dashboards filter on the host tag
        ("a=1,host=2", False),
        ("times=1,tenants=2,collectors=3,hosts=4,Time=4", True),
    ],
)
def test_fields(fields: str, accepted: bool) -> None:
    body = f"mem {fields} {stamp_text('ns')}".encode()
    assert (both_ways(warm_preparer(), body) is not None) == accepted


@native_only
def test_the_field_limit_holds_for_lines_with_several_fields_only() -> None:
    stamp = stamp_text("ns")
    assert both_ways(warm_preparer(max_fields=2), f"mem a=1,b=2 {stamp}".encode())
    assert both_ways(warm_preparer(max_fields=2), f"mem a=1,b=2,c=3 {stamp}".encode()) is None
    # as in Python, where only a line with a comma is counted
    assert both_ways(warm_preparer(max_fields=0), f"mem a=1 {stamp}".encode())


@native_only
@pytest.mark.parametrize("precision", ["ns", "us", "ms", "s"])
def test_timestamps_at_the_windows_edges(precision: str) -> None:
    rules = BatchRules()
    multiplier = PRECISION_NS[precision]
    window = _Window(NOW, rules)
    low = -(-window.low // multiplier)
    high = window.high // multiplier
    preparer = warm_preparer()
    for stamp, accepted in [
        (low, True), (high, True), (low - 1, False), (high + 1, False), (NOW // multiplier, True),
    ]:  # fmt: skip
        result = both_ways(preparer, f"mem v=1 {stamp}".encode(), precision)
        assert (result is not None) == accepted, stamp
        if result is not None:
            zeros = "0" * (len(str(multiplier)) - 1)
            assert result.payload.endswith(f" {stamp}{zeros}".encode())
    for stamp in (f"0{NOW // multiplier}", f"{NOW // multiplier}0", "-1", "1.5", ""):
        assert both_ways(preparer, f"mem v=1 {stamp}".encode(), precision) is None, stamp
    assert both_ways(preparer, b"mem v=1", precision) is None


@native_only
def test_a_precision_of_minutes_or_hours_is_never_taken_whole() -> None:
    for precision in ("m", "h"):
        body = f"mem v=1 {NOW // PRECISION_NS[precision]}".encode()
        assert both_ways(warm_preparer(), body, precision) is None


@native_only
def test_lines_split_and_end_as_in_python() -> None:
    preparer = warm_preparer()
    line = f"mem v=1 {NOW}".encode()
    assert both_ways(preparer, line + b"\n") == PreparedBatch(
        b"mem,collector=web-01,tenant=acme v=1 " + str(NOW).encode(), 1
    )
    for body in (b"", b"\n", line + b"\n\n", b"\n" + line, line + b"\n\n" + line, line + b"\r"):
        assert both_ways(preparer, body) is None, body
    assert both_ways(preparer, line + b"\r\n" + line) is None  # prepare() removes CR first
    assert both_ways(preparer, UNKNOWN + b" v=1 " + str(NOW).encode()) is None
    assert both_ways(preparer, b"mem") is None
    assert both_ways(preparer, b"mem,tag=x v=1 " + str(NOW).encode()) is None


@native_only
def test_an_empty_cache_or_one_of_another_collector_is_not_used() -> None:
    body = f"mem v=1 {NOW}".encode()
    assert both_ways(BatchPreparer(BatchRules()), body) is None
    preparer = BatchPreparer(BatchRules())
    preparer.prepare(body, ForcedTags("acme", "web-02"), "ns", NOW)
    assert both_ways(preparer, body) is None


@native_only
def test_the_line_length_limit() -> None:
    line = f"mem v=1 {NOW}"
    assert both_ways(warm_preparer(max_line_bytes=len(line)), f"{line}\n{line}\n".encode())
    body = f"{line}\nmem v=12 {NOW}".encode()
    assert both_ways(warm_preparer(max_line_bytes=len(line)), body) is None


@native_only
def test_more_lines_than_max_points_go_to_the_line_path_which_refuses_them() -> None:
    line = f"mem v=1 {NOW}"
    preparer = warm_preparer(max_points=2)
    window = _Window(NOW, preparer.rules)
    assert preparer._whole_body(f"{line}\n{line}\n".encode(), FORCED, 1, window)
    assert preparer._whole_body(f"{line}\n{line}\n{line}".encode(), FORCED, 1, window) is None
    with pytest.raises(TooManyPoints):
        preparer.prepare(f"{line}\n{line}\n{line}".encode(), FORCED, "ns", NOW)


@native_only
def test_a_cache_holding_something_other_than_bytes_is_not_trusted() -> None:
    preparer = warm_preparer()
    preparer._cache[FORCED.cache_key][b"odd"] = "not bytes"  # type: ignore[assignment]
    window = _Window(NOW, preparer.rules)
    assert preparer._whole_body(f"odd v=1 {NOW}".encode(), FORCED, 1, window) is None


# Generated batches: plain lines of cached series, and most of the time one line that tries
# one edge (a value from the lists above, a number around a digit limit, an odd name, a
# timestamp around the window, a key twice, many fields, an unknown series, a byte inserted or
# dropped), so that whether the batch is taken whole depends on that edge.

plain_names = st.sampled_from(["v", "value", "a", "é", "日本", "a_b", "x#", "a-b.c/d"])
odd_names = st.sampled_from(
    ["", "_x", "#h", "a b", "a\\b", 'a"b', "a\x7f", "a\tb", "a,b", "a=b", "host", "hosts"]
)
edge_values = st.sampled_from(VALID_VALUES + INVALID_VALUES + ["1" * 19 + "u", "7u", "0u"])
digit_limits = st.one_of(
    # integers and unsigned integers around 18 and 19 digits, signed or not
    st.tuples(st.sampled_from(["", "-"]), st.integers(17, 20), st.sampled_from("iu")).map(
        lambda t: t[0] + "9" * t[1] + t[2]
    ),
    # floats around 200 integral digits, exponents around 2 digits
    st.tuples(st.sampled_from(["", "-"]), st.integers(199, 201), st.sampled_from(["", ".5"])).map(
        lambda t: t[0] + "1" * t[1] + t[2]
    ),
    st.tuples(
        st.sampled_from(["1", "-.5", "2."]),
        st.sampled_from(["e", "E", "e+", "E-"]),
        st.integers(0, 3),
    ).map(lambda t: t[0] + t[1] + "7" * t[2]),
)
other_numbers = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.integers(-(10**19), 10**19).map(lambda n: f"{n}{'iu'[n % 2]}"),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?[0-9]{0,3}(\.[0-9]{0,3})?([eE][+-]?[0-9]{0,3})?[iu]?", fullmatch=True),
)
breakers = st.sampled_from(
    [
        ",", "=", " ", "  ", "\\", '"', "\n", "\r", "\t", "\x00", "\x7f", "é", "#", "_", "i", "e",
        "\r\r", "\r\n", "\n\x0b", "\n\x85", "\n\xa0", "\n\r\r", ",t==", "==",
    ]
)  # fmt: skip
EDGES = [
    None,
    "value",
    "digits",
    "number",
    "name",
    "duplicate",
    "fields",
    "stamp",
    "series",
    "byte",
]


def _first(pair: tuple[str, str]) -> str:
    return pair[0]


@st.composite
def batches(draw: st.DrawFn) -> tuple[bytes, str, BatchRules]:
    precision = draw(st.sampled_from(["ns", "ns", "ns", "us", "ms", "s", "s", "m"]))
    multiplier = PRECISION_NS[precision]
    max_age_ns = draw(st.sampled_from([7 * 86_400 * SECOND, 3_600 * SECOND]))
    window = _Window(NOW, BatchRules(max_age_ns=max_age_ns))
    low = -(-window.low // multiplier)
    high = window.high // multiplier
    good_stamps = st.sampled_from([f" {low}", f" {high}", f" {NOW // multiplier}"])
    good_values = st.sampled_from(VALID_VALUES[:8] + VALID_VALUES[15:])  # the short ones

    def line(edge: str | None) -> bytes:
        series = UNKNOWN if edge == "series" else draw(st.sampled_from(SERIES))
        fields = draw(
            st.lists(st.tuples(plain_names, good_values), min_size=1, max_size=2, unique_by=_first)
        )
        at = draw(st.integers(0, len(fields) - 1))
        name, value = fields[at]
        if edge in ("value", "digits", "number"):
            pick = {"value": edge_values, "digits": digit_limits, "number": other_numbers}[edge]
            fields[at] = (name, draw(pick))
        elif edge == "name":
            fields[at] = (draw(odd_names), value)
        elif edge == "duplicate":
            fields.insert(draw(st.integers(0, len(fields))), (name, draw(good_values)))
        elif edge == "fields":
            count = draw(st.integers(15, 24))
            fields = [(f"f{draw(st.integers(0, 60))}", "1") for _ in range(count)]
        stamp = draw(good_stamps)
        if edge == "stamp":
            outside = [f" {low - 1}", f" {high + 1}"] * 4
            stamp = draw(
                st.sampled_from([*outside, f" 0{low}", f" {high}0", "", " ", " -1", " 1.5"])
            )
        text = series + b" " + (",".join(f"{k}={v}" for k, v in fields) + stamp).encode()
        if edge == "byte":
            at = draw(st.integers(0, len(text)))
            if draw(st.booleans()):
                text = text[:at] + draw(breakers).encode() + text[at:]
            else:
                text = text[:at] + text[at + 1 :]
        return text

    lines = [line(None) for _ in range(draw(st.integers(1, 5)))]
    lines.insert(draw(st.integers(0, len(lines))), line(draw(st.sampled_from(EDGES))))
    body = b"\n".join(lines) + draw(st.sampled_from([b"", b"", b"\n", b"\n", b"\n\n"]))
    # limits at, just under or far above what the longest and widest lines need
    longest = max(map(len, lines))
    widest = max(line.partition(b" ")[2].count(b",") + 1 for line in lines)
    rules = BatchRules(
        max_line_bytes=longest + draw(st.sampled_from([0, 0, -1, 1000])),
        max_fields=widest + draw(st.sampled_from([0, 0, -1, 1000])),
        max_points=100_000,
        max_age_ns=max_age_ns,
        allow_unsigned=draw(st.booleans()),
    )
    return body, precision, rules


def _cached(rules: BatchRules) -> BatchPreparer:
    preparer = BatchPreparer(rules)
    cache = preparer._series_cache(FORCED)
    for series in SERIES:
        preparer._rewrite_series(series, FORCED, cache)
    return preparer


@native_only
@settings(max_examples=600, deadline=None)
@given(batches())
@example((f"mem v=1 {NOW}\nmem v=2 {NOW}\n".encode(), "ns", BatchRules()))
def test_c_and_python_whole_batch_paths_agree(batch: tuple[bytes, str, BatchRules]) -> None:
    body, precision, rules = batch
    both_ways(_cached(rules), body, precision)


@native_only
@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        edge_values,
        digit_limits,
        other_numbers,
        st.text(alphabet="0123456789-+.eEiutrfalsTRUFALSE", max_size=24),
    ),
    st.booleans(),
)
def test_c_and_python_agree_on_field_values(value: str, allow_unsigned: bool) -> None:
    preparer = _cached(BatchRules(allow_unsigned=allow_unsigned))
    stamp = stamp_text("ns")
    both_ways(preparer, f"mem v={value} {stamp}".encode())
    both_ways(preparer, f"mem v={value},w=1 {stamp}".encode())


@native_only
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120), st.sampled_from(["ns", "s"]))
def test_c_and_python_agree_on_arbitrary_bytes_after_a_cached_series(
    tail: bytes, precision: str
) -> None:
    preparer = _cached(BatchRules(allow_unsigned=True))
    stamp = stamp_text(precision).encode()
    both_ways(preparer, b"mem v=1 " + stamp + b"\nmem " + tail, precision)
    both_ways(preparer, b"mem " + tail + b" " + stamp, precision)


# ----------------------------------------------------------------------------------------------
# Following an earlier batch's series (the memo)


def native_call(body: bytes, cache: dict[bytes, bytes], memo: Any) -> Any:
    bounds = _Window(NOW, BatchRules()).digit_bounds(1)
    assert bounds is not None
    assert NATIVE is not None
    _, lowest, highest, zeros = bounds
    return NATIVE(
        body,
        cache,
        memo,
        lowest,
        highest,
        zeros,
        65_536,
        256,
        100_000,
        False,
        FORCED.refused_field_keys_bytes,
    )


def points_of(*series: bytes) -> bytes:
    return b"\n".join(name + b" v=1 %d" % NOW for name in series)


@native_only
def test_a_batch_that_follows_the_memo_takes_its_heads_and_keeps_it() -> None:
    cache = {b"a": b"A ", b"b": b"B ", b"c": b"C "}
    payload, points, memo = native_call(points_of(b"a", b"b", b"c"), cache, None)
    assert (payload, points) == (points_of(b"A", b"B", b"C").replace(b"  ", b" "), 3)
    assert memo == (b"a\nb\nc\n", (b"A ", b"B ", b"C "))
    # the same series: the heads come from the memo, not from the cache (changed to tell)
    other = {b"a": b"X ", b"b": b"X ", b"c": b"X "}
    payload, points, kept = native_call(points_of(b"a", b"b", b"c"), other, memo)
    assert payload == points_of(b"A", b"B", b"C").replace(b"  ", b" ")
    assert kept is memo
    # a batch of the memo's first lines follows it too, and leaves it as it was
    payload, _, kept = native_call(points_of(b"a", b"b"), other, memo)
    assert payload == points_of(b"A", b"B").replace(b"  ", b" ")
    assert kept is memo


@native_only
@pytest.mark.parametrize(
    ("series", "heads"),
    [
        ((b"a", b"c", b"b"), b"AXX"),  # another order: the cache decides from the first change
        ((b"a", b"b", b"c", b"a"), b"ABCX"),  # longer: the memo's lines, then the cache
        ((b"a", b"bb", b"c"), b"AXX"),  # a longer series where the memo has a shorter one
        ((b"a", b"", b"c"), None),  # an empty series is not sure: the Python paths
        ((b"ab", b"c"), b"XX"),  # the memo's first two series run together are not one
    ],
)
def test_a_batch_that_leaves_the_memo_is_looked_up_from_there_on(
    series: tuple[bytes, ...], heads: bytes | None
) -> None:
    cache = {b"a": b"A ", b"b": b"B ", b"c": b"C "}
    memo = native_call(points_of(b"a", b"b", b"c"), cache, None)[2]
    other = {name: b"X " for name in (b"a", b"b", b"c", b"bb", b"ab")}
    found = native_call(points_of(*series), other, memo)
    if heads is None:
        assert found is None
        return
    payload, points, new = found
    assert payload == b"\n".join(bytes([head]) + b" v=1 %d" % NOW for head in heads)
    assert points == len(series)
    assert new == (
        b"".join(name + b"\n" for name in series),
        tuple(bytes([h]) + b" " for h in heads),
    )


@native_only
def test_a_memo_of_the_wrong_shape_is_refused() -> None:
    for memo in ((b"a\n",), (b"a\n", [b"A "]), ("a\n", (b"A ",)), b"a\n"):
        with pytest.raises(TypeError, match="memo must be None or"):
            native_call(points_of(b"a"), {b"a": b"A "}, memo)


@native_only
def test_memos_never_lend_one_keys_tags_to_another() -> None:
    """Heads carry the forced tags: a body sent under two keys keeps each key's tags."""
    body = points_of(b"cpu,host=h1", b"mem,host=h1")
    other = ForcedTags("other", "db-02")
    preparer = BatchPreparer(BatchRules())
    for _ in range(3):
        for forced in (FORCED, other, other, FORCED):
            payload = preparer.prepare(body, forced, "ns", NOW).payload
            assert payload.count(f"collector={forced.pairs[0][1]}".encode()) == 2
            assert payload.count(f"tenant={forced.pairs[1][1]}".encode()) == 2


@native_only
def test_memos_hold_no_more_lines_than_the_series_cache() -> None:
    preparer = BatchPreparer(BatchRules(), series_cache_size=10)
    for number in range(20):  # each batch begins with another series: a memo each
        preparer.prepare(points_of(b"m%d,a=1" % number, b"m%d,b=1" % number), FORCED, "ns", NOW)
        preparer.prepare(points_of(b"m%d,a=1" % number, b"m%d,b=1" % number), FORCED, "ns", NOW)
        held = sum(len(memo[1]) for memos in preparer._memos.values() for memo in memos.values())
        assert held == preparer._memo_lines <= 10


@native_only
@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(SERIES), min_size=1, max_size=6), min_size=1, max_size=8))
def test_batches_in_a_row_give_what_python_gives(orders: list[list[bytes]]) -> None:
    """Memos left by earlier batches (same first series, other orders and lengths) change
    nothing in what a later batch gives."""
    preparer = _cached(BatchRules())
    for order in orders:
        assert both_ways(preparer, points_of(*order)) is not None


# ----------------------------------------------------------------------------------------------
# prepare() with and without the extension


def outcome(preparer: BatchPreparer, body: bytes, precision: str) -> Any:
    try:
        return preparer.prepare(body, FORCED, precision, NOW)
    except InvalidBatch as exc:
        return ("invalid", exc.issues, exc.count, exc.points)
    except TooManyPoints as exc:
        return ("too many", exc.points, exc.limit)


@native_only
@settings(max_examples=500, deadline=None)
@given(batches(), st.sampled_from([100_000, 2, 3]))
@example((b"mem v=1 %d\r\r\nmem v=2 %d\r\n" % (NOW, NOW), "ns", BatchRules()), 100_000)
@example((b"mem v=1 %d\n\x0b\nmem v=2 %d\n\xc2\xa0\n" % (NOW, NOW), "ns", BatchRules()), 100_000)
@example((b"mem v=1 %d\nmem,t==v v=2 %d\n" % (NOW, NOW), "ns", BatchRules()), 100_000)
@example((b"mem v=1 %d\nmem v=\xff %d\nmem v= %d" % (NOW, NOW, NOW), "ns", BatchRules()), 100_000)
def test_prepare_gives_the_same_with_and_without_the_extension(
    batch: tuple[bytes, str, BatchRules], max_points: int
) -> None:
    body, precision, drawn = batch
    rules = dataclasses.replace(drawn, max_points=max_points)
    native, python = BatchPreparer(rules), BatchPreparer(rules, native=False)
    assert native._native is not None
    assert python._native is None
    for _ in range(2):  # the second time with every series the line path learnt cached
        assert outcome(native, body, precision) == outcome(python, body, precision)


@native_only
def test_prepare_takes_the_c_path_for_a_batch_of_cached_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = "\n".join(f"cpu,cpu={c},host=h1 value={c}.5,idle=2i {NOW - c}" for c in range(8))
    preparer = BatchPreparer(BatchRules())
    first = preparer.prepare(body.encode(), FORCED, "ns", NOW)

    def no_python(*args: Any) -> None:
        raise AssertionError("the Python whole-batch path was used")

    monkeypatch.setattr(preparer, "_whole_batch", no_python)
    monkeypatch.setattr(preparer, "_rewrite", no_python)
    assert preparer.prepare(body.encode() + b"\n", FORCED, "ns", NOW) == first
