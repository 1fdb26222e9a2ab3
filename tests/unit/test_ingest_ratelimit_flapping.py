"""A flapping Redis (it fails, a probe finds it back, it fails again within a minute) is backed off
5, 10, 20, then 30 s, not switched to and from every 5 s; the back-off starts over at 5 s only
once Redis has answered for REDIS_HEALTHY_AFTER since the probe."""

from __future__ import annotations

import logging

import pytest

from ingest.ratelimit import REDIS_BACKOFF, REDIS_HEALTHY_AFTER, REDIS_MAX_BACKOFF, RedisTokenBucket
from tests.unit.test_mutation_gaps_ratelimit import LIMIT, Clock, FlakyRedis, flaky_limiter


def fail_and_measure_the_back_off(
    limiter: RedisTokenBucket, fake: FlakyRedis, clock: Clock, expected: float
) -> None:
    """Redis fails a call while shared: it is not asked for ``expected`` seconds, then once
    (the probe), which finds it back."""
    assert limiter.shared
    fake.up = False
    limiter.acquire("t", 1, LIMIT)  # the failure: per process from now
    assert not limiter.shared
    calls = fake.calls
    fake.up = True
    clock.now += expected - 0.1
    limiter.acquire("t", 1, LIMIT)
    assert fake.calls == calls, f"Redis asked within {expected - 0.1:g}s of the failure"
    clock.now += 0.1
    limiter.acquire("t", 1, LIMIT)  # the probe, answered
    assert fake.calls == calls + 1, f"no probe {expected:g}s after the failure"
    assert limiter.shared


def test_a_redis_failing_again_soon_after_it_came_back_is_backed_off_longer() -> None:
    clock = Clock()
    limiter, fake = flaky_limiter(clock)
    for backoff in (REDIS_BACKOFF, 10.0, 20.0, REDIS_MAX_BACKOFF, REDIS_MAX_BACKOFF):
        fail_and_measure_the_back_off(limiter, fake, clock, backoff)
        clock.now += REDIS_HEALTHY_AFTER - 0.1  # back, but not for long enough


def test_the_back_off_starts_over_once_redis_has_answered_long_enough() -> None:
    clock = Clock()
    limiter, fake = flaky_limiter(clock)
    fail_and_measure_the_back_off(limiter, fake, clock, REDIS_BACKOFF)
    fail_and_measure_the_back_off(limiter, fake, clock, 10.0)
    clock.now += REDIS_HEALTHY_AFTER  # measured from the probe that found it back
    fail_and_measure_the_back_off(limiter, fake, clock, REDIS_BACKOFF)


def test_a_failed_probe_doubles_on_from_a_flapping_redis_back_off() -> None:
    clock = Clock()
    limiter, fake = flaky_limiter(clock)
    fail_and_measure_the_back_off(limiter, fake, clock, REDIS_BACKOFF)
    fake.up = False
    limiter.acquire("t", 1, LIMIT)  # fails again at once: 10 s
    calls = fake.calls
    clock.now += 10.0
    limiter.acquire("t", 1, LIMIT)  # the probe fails: 20 s
    assert fake.calls == calls + 1
    clock.now += 20.0 - 0.1
    limiter.acquire("t", 1, LIMIT)
    assert fake.calls == calls + 1
    clock.now += 0.1
    limiter.acquire("t", 1, LIMIT)
    assert fake.calls == calls + 2


def test_the_warning_names_the_back_off_in_force(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limiter, fake = flaky_limiter(clock)
    fail_and_measure_the_back_off(limiter, fake, clock, REDIS_BACKOFF)
    with caplog.at_level(logging.WARNING, logger="ingest.ratelimit"):
        fake.up = False
        limiter.acquire("t", 1, LIMIT)
    assert "asking Redis again after 10s (then up to every 30s)" in caplog.text


def test_a_custom_healthy_time_is_taken() -> None:
    clock = Clock()
    limiter, fake = flaky_limiter(clock, healthy_after=5.0)
    fail_and_measure_the_back_off(limiter, fake, clock, REDIS_BACKOFF)
    clock.now += 5.0
    fail_and_measure_the_back_off(limiter, fake, clock, REDIS_BACKOFF)
