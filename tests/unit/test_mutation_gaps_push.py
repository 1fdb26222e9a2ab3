"""Mutation-audit gaps in the exporter's push client and backoff: a 413 whose halves both get
400 counts every point rejected; a Retry-After HTTP date on the 31st of a month is honoured."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.push.backoff import parse_http_date, parse_retry_after
from exporter.push.client import Verdict
from tests.unit.test_push_client import Answer, Scripted, body, client_for, lines, serve

__all__ = ["serve"]  # the fixture, used by name


def test_a_413_whose_halves_both_get_400_counts_every_point_rejected(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    server = serve(lambda r: Answer(413) if len(r.lines) > 5 else Answer(400, b"bad lines"))
    client = client_for(server.url, key_file)
    delivery = client.deliver(body(lines(10)), 10)
    assert delivery.verdict is Verdict.SETTLED
    assert (delivery.sent, delivery.rejected, delivery.too_large) == (0, 10, 0)
    assert [len(r.lines) for r in server.received] == [10, 5, 5]


def test_a_413_with_one_half_taken_and_one_refused_adds_both(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    server = serve(
        lambda r: (
            Answer(413)
            if len(r.lines) > 3
            else (Answer(400, b"bad") if "value=0.0" in r.lines[0] else Answer(204))
        )
    )
    delivery = client_for(server.url, key_file).deliver(body(lines(6)), 6)
    assert (delivery.sent, delivery.rejected) == (3, 3)


@pytest.mark.parametrize(
    ("date", "civil"),
    [
        ("Sat, 31 Jan 2026 12:00:00 GMT", (2026, 1, 31, 12, 0, 0)),
        ("Tue, 31 Dec 2024 23:59:59 GMT", (2024, 12, 31, 23, 59, 59)),
        ("Saturday, 31-Jan-26 12:00:00 GMT", (2026, 1, 31, 12, 0, 0)),
        ("Sat Jan 31 12:00:00 2026", (2026, 1, 31, 12, 0, 0)),
    ],
)
def test_a_retry_after_date_on_the_31st_is_honoured(
    date: str, civil: tuple[int, int, int, int, int, int]
) -> None:
    parsed = parse_http_date(date)
    assert parsed == calendar.timegm((*civil, 0, 0, 0))
    assert parse_retry_after(date, parsed - 90) == 90


def test_day_32_is_not_a_date() -> None:
    assert parse_http_date("Sun, 32 Jan 2026 12:00:00 GMT") is None
