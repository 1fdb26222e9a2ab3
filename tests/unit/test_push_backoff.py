import random

import pytest

from exporter.push.backoff import Backoff, full_jitter, parse_http_date, parse_retry_after

NOW = 784_111_777.0  # Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date


def test_full_jitter_ceiling_doubles_up_to_the_cap() -> None:
    top = [full_jitter(attempt, 0.5, 60.0, lambda: 1.0) for attempt in range(10)]
    assert top == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert full_jitter(3, 0.5, 60.0, lambda: 0.0) == 0.0
    assert full_jitter(10_000, 0.5, 60.0, lambda: 1.0) == 60.0  # no overflow after long outages


def test_full_jitter_draws_across_the_whole_range() -> None:
    rng = random.Random(4)
    draws = [full_jitter(4, 0.5, 60.0, rng.random) for _ in range(2000)]
    assert all(0.0 <= d < 8.0 for d in draws)
    assert min(draws) < 0.2
    assert max(draws) > 7.8
    assert 3.6 < sum(draws) / len(draws) < 4.4  # uniform: mean half the ceiling


def test_backoff_grows_then_resets() -> None:
    backoff = Backoff(0.5, 10.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_retry_after_is_honoured_with_spread_and_capped() -> None:
    assert Backoff(0.5, 60.0, rand=lambda: 0.0).next_delay(retry_after=5.0) == 5.0
    assert Backoff(0.5, 60.0, rand=lambda: 1.0).next_delay(retry_after=5.0) == pytest.approx(6.0)
    assert Backoff(0.5, 60.0, rand=lambda: 0.5).next_delay(retry_after=600.0) == 60.0
    backoff = Backoff(0.5, 60.0, rand=lambda: 1.0)
    backoff.next_delay(retry_after=1.0)
    assert backoff.next_delay() == 1.0  # the exponent kept counting


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Sun, 06 Nov 1994 08:50:37 GMT", 60.0),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:47 GMT", 10.0),  # obsolete RFC 850
        ("Sun Nov  6 08:49:57 1994", 20.0),  # obsolete asctime
        ("Sun, 06 Nov 1994 08:40:00 GMT", 0.0),  # in the past: now
        (None, None),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("Sun, 32 Nov 1994 08:49:37 GMT", None),
        ("Sun, 06 Foo 1994 08:49:37 GMT", None),
    ],
)
def test_retry_after_forms(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_http_dates_match_the_epoch() -> None:
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == NOW
    assert parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0
    assert parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT") == 1835481599.0


def test_retry_after_is_a_floor_never_a_replacement_for_the_backoff() -> None:
    backoff = Backoff(0.5, 60.0, rand=lambda: 1.0)
    assert [backoff.next_delay(retry_after=0.0) for _ in range(9)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0
    ]  # fmt: skip
    backoff.reset()
    assert backoff.next_delay(retry_after=5.0) == pytest.approx(6.0)  # the server's, and spread
    for _ in range(4):
        backoff.next_delay(retry_after=5.0)
    assert backoff.next_delay(retry_after=5.0) == 16.0  # the backoff's, once it is the longer


def test_repeated_retry_after_zero_or_a_past_date_spaces_retries_out() -> None:
    """A proxy answering Retry-After: 0, or a date already past, never makes a hot loop."""
    past = parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", NOW)
    assert past == 0.0
    rng = random.Random(11)
    backoff = Backoff(0.5, 60.0, rand=rng.random)
    delays = [backoff.next_delay(retry_after=past) for _ in range(12)]
    assert all(delay > 0 for delay in delays)
    assert sum(delays[6:]) > 10 * sum(delays[:3])  # full jitter over a growing ceiling
    assert max(delays) <= 60.0


def test_an_absurd_retry_after_is_read_without_error() -> None:
    assert parse_retry_after("9" * 400, NOW) == 1e9  # the cap then applies
    assert parse_retry_after("²", NOW) is None  # a digit to str.isdigit, not to int()
    assert Backoff(0.5, 60.0).next_delay(retry_after=1e9) == 60.0
