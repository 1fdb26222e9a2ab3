"""The runner and the admin app give the same verdict on every result, in the same words.

Hypothesis takes a valid result and changes one or two fields to values at, just inside or
just outside the format's limits (lengths, ranges, types, characters, time formats, the bands and
the dip between levels, keys missing, unknown or given twice). The runner's verdict is what
``loadtest upload`` checks before sending (``result.parse`` and ``result.validate``); the admin
app's is the answer of the real upload route through Flask's test client. They must agree, and
a refusal must name the same field with the same message as the runner's first problem.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.loadtest import contract
from exporter.loadtest.result import ResultFileError, parse
from tenants.loadtests import contract as admin_contract
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    World,
    build_world,
    cheap_password_hashing,
    document,
    upload_with_key,
    variant,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # both sides judge "in the future" by this clock
LATEST = NOW + contract.FUTURE_SLACK
BASE = document()  # ten levels 10..100, three repeats each, tolerance 3, started 2026-11-01

ALLOWED_TEXT = [" ", "é", "😀", "\x80", "/", "~", '"', "Z"]  # no control nor surrogate
REFUSED_TEXT = ["\x00", "\t", "\x1f", "\x7f", "\ud800", "\udfff"]
WORD = list("aZ09._-")
NOT_A_VALUE: list[Any] = [None, True, "2", [], {}]


def inside_or_outside(inside: st.SearchStrategy[Any], outside: st.SearchStrategy[Any]) -> Any:
    """Values within the limits as often as values beyond them."""
    return st.booleans().flatmap(lambda within: inside if within else outside)


def texts(low: int, high: int, word: bool = False) -> st.SearchStrategy[Any]:
    """Strings of lengths at the limits, of allowed characters or not; or not strings."""

    def of(lengths: list[int], characters: list[str]) -> st.SearchStrategy[str]:
        return st.sampled_from(lengths).flatmap(
            lambda n: st.lists(st.sampled_from(characters), min_size=n, max_size=n).map("".join)
        )

    allowed = WORD if word else WORD + ALLOWED_TEXT
    refused = ALLOWED_TEXT + REFUSED_TEXT if word else REFUSED_TEXT
    return inside_or_outside(
        of([low, low + 1, high], allowed),
        st.one_of(of([low - 1, high + 1], allowed), of([low, high], allowed + refused),
                  st.sampled_from([*NOT_A_VALUE, 1])),
    )  # fmt: skip


def wholes(low: int, high: int) -> st.SearchStrategy[Any]:
    return inside_or_outside(
        st.sampled_from([low, low + 1, high - 1, high]),
        st.sampled_from([low - 1, high + 1, 10**30, -(10**30), float(low), low + 0.5,
                         *NOT_A_VALUE]),
    )  # fmt: skip


def numbers(low: float, high: float, above_low: bool = False) -> st.SearchStrategy[Any]:
    inside = [math.nextafter(low, math.inf), high, int(high)]
    outside = [
        math.nextafter(low, -math.inf),
        math.nextafter(high, math.inf),
        high + 1,
        int(high) + 1,
        math.nan,
        math.inf,
        -math.inf,
        10**400,
        *NOT_A_VALUE,
    ]
    (outside if above_low else inside).extend([low, int(low), -0.0])
    return inside_or_outside(st.sampled_from(inside), st.sampled_from(outside))


@st.composite
def times(draw: st.DrawFn) -> Any:
    """RFC 3339 times and near misses: other separators and zones, days and hours that do not
    exist, the years at the ends, and moments around a day after NOW."""
    if draw(st.booleans()):
        moment = LATEST + draw(st.sampled_from([timedelta(seconds=-1), timedelta(0),
                                                timedelta(seconds=1)]))  # fmt: skip
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    year = draw(st.sampled_from([1969, 1970, 2026, 9999]))
    month = draw(st.sampled_from([1, 2, 12, 13]))
    day = draw(st.sampled_from([1, 29, 31, 32]))
    hour, minute, second = (draw(st.sampled_from([0, 23, 24])), draw(st.sampled_from([0, 59, 60])),
                            draw(st.sampled_from([0, 59, 60])))  # fmt: skip
    fraction = draw(st.sampled_from(["", ".5", ".123456789", ".1234567890", "."]))
    separator = draw(st.sampled_from(["T", "t", " ", "x"]))
    zone = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00", "+02:00", "-01:00", "+24:00",
                                 "+0100", "+01", ""]))  # fmt: skip
    return (f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}"
            f"{fraction}{zone}")  # fmt: skip


def levels_field(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[str, Any]]:
    return st.tuples(st.integers(0, 9).map(lambda i: f"/levels/{i}/{name}"), values)


@st.composite
def busy_at_the_band_edge(draw: st.DrawFn) -> tuple[str, Any]:
    """A level's measured busy% just inside or outside its band (target ± tolerance + rounding)."""
    index = draw(st.integers(0, 9))
    target = BASE["levels"][index]["target_busy_percent"]
    edge = 3.0 + contract.ROUNDING + draw(st.sampled_from([-1e-9, 0.0, 1e-9, 0.01]))
    busy = target + edge * draw(st.sampled_from([-1, 1]))
    return f"/levels/{index}/measured_busy_percent", round(min(busy, 100.0), 10)


@st.composite
def units_at_the_dip_limit(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """A level's units (and repeats) just above or below the 5% dip the run's noise allows."""
    index = draw(st.integers(1, 9))
    previous = BASE["levels"][index - 1]["units_per_second"]
    units = previous * (1 - contract.MIN_DIP) * draw(st.sampled_from([0.999, 1.0, 1.001]))
    return [(f"/levels/{index}/units_per_second", units),
            (f"/levels/{index}/repeats", [units, units, units])]  # fmt: skip


EDITS: st.SearchStrategy[Any] = st.one_of(
    st.tuples(st.just("/host/hostname"), texts(1, 253)),
    st.tuples(st.just("/host/cpu_model"), texts(1, 200)),
    st.tuples(st.just("/host/kernel"), texts(1, 100)),
    st.tuples(st.just("/host/region"), texts(1, contract.MAX_REGION, word=True)),
    st.tuples(st.just("/host/instance_type"), texts(1, contract.MAX_INSTANCE_TYPE, word=True)),
    st.tuples(
        st.just("/host/cloud_provider"),
        st.sampled_from([*contract.PROVIDERS, "AWS", "ibm", "", None, 1]),
    ),
    st.tuples(st.just("/host/vcpus"), wholes(1, contract.MAX_VCPUS)),
    st.tuples(st.just("/host/memory_bytes"), wholes(1, contract.MAX_MEMORY)),
    st.tuples(st.just("/settings/window_seconds"), numbers(0, 3600, above_low=True)),
    st.tuples(st.just("/settings/tolerance_points"), numbers(0, 50, above_low=True)),
    st.tuples(st.just("/settings/full_load_min"), numbers(1, 100)),
    st.tuples(st.just("/settings/repeats"), wholes(1, contract.MAX_REPEATS)),
    st.tuples(st.just("/settings/unit/name"), texts(1, 60, word=True)),
    st.tuples(st.just("/settings/unit/buffer_bytes"), wholes(1, contract.MAX_BUFFER)),
    st.tuples(st.sampled_from(["/started_at", "/finished_at"]), times()),
    st.tuples(st.just("/schema"), st.sampled_from([contract.SCHEMA, "perfanalysis.loadtest/2"])),
    st.tuples(st.just("/max_units_per_second"), numbers(0, contract.MAX_UNITS, above_low=True)),
    st.tuples(st.just("/repeatability_cv_percent"), numbers(0, contract.MAX_CV)),
    levels_field("target_busy_percent", wholes(1, 100)),
    levels_field("measured_busy_percent", numbers(0, 100)),
    levels_field("units_per_second", numbers(0, contract.MAX_UNITS, above_low=True)),
    levels_field("cv_percent", numbers(0, contract.MAX_CV)),
    levels_field("attempts", wholes(1, contract.MAX_ATTEMPTS)),
    levels_field("accepted", st.sampled_from([True, False, 0, "true", None])),
    levels_field("repeats", st.sampled_from([[], [1.0], [90.0, 90.0, 90.0, 90.0], "1"])),
    st.tuples(
        st.integers(0, 9).map(lambda i: f"/levels/{i}/repeats/1"), numbers(0, contract.MAX_UNITS)
    ),
    busy_at_the_band_edge(),
    # a key left out (the ellipsis), or one the format does not have
    st.tuples(
        st.sampled_from(
            [
                "/host/kernel",
                "/settings/full_load_min",
                "/levels/3/cv_percent",
                "/repeatability_cv_percent",
                "/host/region",
            ]
        ),
        st.just(...),
    ),
    st.tuples(st.sampled_from(["/host/vpus", "/extra", "/levels/0/acceptd"]), st.just(1)),
)


@st.composite
def results(draw: st.DrawFn) -> tuple[bytes, str]:
    """(the result's bytes, what was changed) for a valid result with one or two edits."""
    doc, said = BASE, []
    for edit in draw(st.lists(st.one_of(EDITS, units_at_the_dip_limit()), min_size=1, max_size=2)):
        for where, value in edit if isinstance(edit, list) else [edit]:
            try:
                doc = variant(doc, where, value)
            except (KeyError, IndexError, TypeError):  # an earlier edit removed the parent
                continue
            said.append(f"{where} = {value!r}")
    text = json.dumps(doc)
    if draw(st.integers(0, 9)) == 0:  # a key given twice: the last one is the one json keeps
        text = text.replace('"vcpus": ', '"vcpus": 1, "vcpus": ', 1)
        said.append("vcpus twice")
    return text.encode(), "; ".join(said)


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr(admin_contract, "utcnow", lambda: NOW)
    return build_world(app, make_user, make_tenant)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(result=results())
def test_the_runner_and_the_admin_app_agree_on_every_result(
    client: FlaskClient, world: World, result: tuple[bytes, str]
) -> None:
    body, changes = result
    try:
        runner = contract.problems(parse(body), NOW)
    except ResultFileError as exc:  # never for these bodies: they are json.dumps' own
        pytest.fail(f"{changes}: {exc}")
    answer = upload_with_key(client, world.key_a, body)
    # 409: the same result stored by an earlier example; it was checked first, and passed
    assert answer.status_code in (201, 400, 409), (changes, answer.get_data())
    admin_accepts = answer.status_code != 400
    assert admin_accepts == (runner == []), (changes, runner, answer.get_json())
    if runner:
        error = answer.get_json()["error"]
        assert (error["field"], error["message"]) == (runner[0].field, runner[0].message), changes


def test_the_examples_reach_both_sides_of_the_limits() -> None:
    """The generated results are not all of one verdict: the property above compares both."""
    verdicts = []

    @settings(max_examples=200, derandomize=True, database=None)
    @given(result=results())
    def collect(result: tuple[bytes, str]) -> None:
        verdicts.append(contract.problems(parse(result[0]), NOW) == [])

    collect()
    assert 0.1 < sum(verdicts) / len(verdicts) < 0.9
