"""Mutation-audit gaps in ingest/batch.py and the timestamp-window settings: windows whose bounds
have different digit counts (the C whole-batch path needs one), and the limits on line length and
tag count taken exactly at the limit, on every path."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.app import batch_rules
from ingest.batch import NATIVE, BatchPreparer, BatchRules, InvalidBatch, _Window
from ingest.lineprotocol import PRECISION_NS, parse_line
from ingest.settings import load
from perfanalysis.config import ConfigError
from tests.unit.test_ingest_batch import FORCED, NOW, PATHS

SECOND = 1_000_000_000
ENV = {"PERFANALYSIS_INGEST_SECRET_KEY": "s" * 40}


def on_every_path(body: bytes, rules: BatchRules, precision: str = "ns") -> list[Any]:
    """prepare()'s outcome for ``body`` on every path, cold and then with its series cached
    (the second call is the one the whole-batch paths take): the parsed points, or the issues."""
    outcomes: list[Any] = []
    for native, fast in PATHS:
        if native and NATIVE is None:
            continue
        preparer = BatchPreparer(rules, native=native)
        for _ in range(2):
            try:
                batch = preparer.prepare(body, FORCED, precision, NOW, fast=fast)
                lines = batch.payload.decode().split("\n")
                outcomes.append(("prepared", [parse_line(line) for line in lines]))
            except InvalidBatch as exc:
                outcomes.append(("invalid", [(i.line, i.reason) for i in exc.issues]))
    assert all(outcome == outcomes[0] for outcome in outcomes), outcomes
    return outcomes


# ----------------------------------------------------------------------------------------------
# A window whose lowest and highest timestamps have different digit counts


@pytest.mark.parametrize("precision", ["ns", "us", "ms", "s"])
@pytest.mark.parametrize("span", [10**18, 8 * 10**17, 7 * 10**17 + 1])
def test_a_window_of_decades_takes_points_on_every_path(precision: str, span: int) -> None:
    """max-age beyond about 22 years puts the window's lowest timestamp below 10**18 ns (18
    digits) while the highest has 19: the C path cannot compare such bounds as text, so the batch
    goes line by line instead of failing with ValueError."""
    rules = BatchRules(max_age_ns=span, max_future_ns=span)
    stamp = NOW // PRECISION_NS[precision]
    old = (NOW - span // 2) // PRECISION_NS[precision]
    body = b"a v=1 %d\nb v=2 %d\na v=3 %d" % (stamp, stamp, old)
    outcomes = on_every_path(body, rules, precision)
    assert outcomes[0][0] == "prepared"
    assert [point.fields for point in outcomes[0][1]] == [
        (("v", 1.0),),
        (("v", 2.0),),
        (("v", 3.0),),
    ]


def test_digit_bounds_are_none_when_the_bounds_differ_in_length() -> None:
    assert _Window(NOW, BatchRules(max_age_ns=10**18, max_future_ns=10**18)).digit_bounds(1) is None
    bounds = _Window(NOW, BatchRules()).digit_bounds(1)
    assert bounds is not None
    assert len(bounds[1]) == len(bounds[2]) == bounds[0] == 19


@pytest.mark.parametrize("name", ["limits.max-age", "limits.max-future"])
@pytest.mark.parametrize("value", ["106752d", "9" * 400 + "d"])
def test_a_timestamp_window_beyond_influxdbs_range_is_refused(name: str, value: str) -> None:
    """Unbounded, 400 nines made an infinite float and ingest stopped with OverflowError."""
    with pytest.raises(ConfigError) as caught:
        load([f"--{name}={value}"], ENV)
    text = "\n".join(caught.value.errors)
    assert f"--{name}" in text
    assert "too long (accepted: 1m to 106751d" in text


def test_the_longest_timestamp_window_is_taken_and_works() -> None:
    values = load(["--limits.max-age=106751d", "--limits.max-future=106751d"], ENV)
    rules = batch_rules(values)
    assert rules.max_age_ns == rules.max_future_ns == 106_751 * 86_400 * SECOND
    outcomes = on_every_path(b"a v=1 %d\na v=2 1" % NOW, rules)
    assert outcomes[0][0] == "prepared"


# ----------------------------------------------------------------------------------------------
# Limits taken exactly at the limit


def _line_of(size: int, tail: str) -> bytes:
    """A line of exactly ``size`` bytes: m,t=xxx...<tail> (tail holds the fields and stamp)."""
    head = "m,t="
    line = (head + "x" * (size - len(head) - len(tail)) + tail).encode()
    assert len(line) == size
    return line


@pytest.mark.parametrize(
    "tail",
    [f" v=1 {NOW}", f' s="x" {NOW}', f" v\\ w=1 {NOW}"],
    ids=["plain", "string-field", "escaped-key"],
)
def test_a_line_of_exactly_max_line_bytes_is_taken_on_every_path(tail: str) -> None:
    rules = BatchRules(max_line_bytes=200)
    assert on_every_path(_line_of(200, tail), rules)[0][0] == "prepared"
    refused = on_every_path(_line_of(201, tail), rules)[0]
    assert refused == ("invalid", [(1, "line longer than 200 bytes")])


@pytest.mark.parametrize(
    "fields",
    ["v=1", 's="x"', "v\\ w=1"],
    ids=["plain", "string-field", "escaped-key"],
)
def test_exactly_max_tags_tags_are_taken_on_every_path(fields: str) -> None:
    rules = BatchRules(max_tags=3)
    three = f"m,a=1,b=2,c=3 {fields} {NOW}".encode()
    assert on_every_path(three, rules)[0][0] == "prepared"
    # the forced tags a client sends are replaced, so they do not count
    with_forced = f"m,a=1,b=2,c=3,collector=x,tenant=y {fields} {NOW}".encode()
    assert on_every_path(with_forced, rules)[0][0] == "prepared"
    four = f"m,a=1,b=2,c=3,d=4 {fields} {NOW}".encode()
    assert on_every_path(four, rules)[0] == ("invalid", [(1, "4 tags; at most 3 are accepted")])
