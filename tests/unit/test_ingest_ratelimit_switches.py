"""ingest/ratelimit.py's switches between shared and per-process limits (audit of the Redis rate
limiter): only the probe ends a back-off, a call begun before a switch changes nothing whatever
its outcome, and ``on_switch`` (the shared gauge) hears the switches in their order."""

from __future__ import annotations

import logging
import threading

import pytest
import redis

from ingest.ratelimit import REDIS_BACKOFF, Limit, LocalTokenBucket, RedisTokenBucket

LIMIT = Limit(rate=10.0, burst=20)
DEADLINE = 10.0
SLOW = "slow"  # the thread whose call to Redis is held until the test lets it go


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowCallRedis:
    """A Redis client's double: the call of thread SLOW waits for ``gate`` (after setting
    ``entered``) and then succeeds, or fails if ``slow_fails``; every other call succeeds while
    ``up`` and otherwise times out, as a Redis that is slow or hung does. ``calls`` counts the
    calls that reached Redis."""

    def __init__(self, slow_fails: bool = False) -> None:
        self.up = True
        self.slow_fails = slow_fails
        self.calls = 0
        self.gate = threading.Event()
        self.entered = threading.Event()

    def register_script(self, script: str) -> object:
        def run(keys: list[str], args: list[object]) -> bytes:
            self.calls += 1
            if threading.current_thread().name == SLOW:
                self.entered.set()
                assert self.gate.wait(DEADLINE), "the test never let the slow call go"
                if self.slow_fails:
                    raise redis.TimeoutError("Timeout reading from socket")
                return b"0.000000"
            if not self.up:
                raise redis.TimeoutError("Timeout reading from socket")
            return b"0.000000"

        return run


def limiter_with(
    fake: SlowCallRedis, clock: Clock, heard: list[bool] | None = None
) -> RedisTokenBucket:
    on_switch = None if heard is None else heard.append
    return RedisTokenBucket(fake, "p:", LocalTokenBucket(clock), clock, on_switch=on_switch)


def start_slow_call(limiter: RedisTokenBucket, fake: SlowCallRedis) -> threading.Thread:
    call = threading.Thread(target=limiter.acquire, args=("t", 1, LIMIT), name=SLOW)
    call.start()
    assert fake.entered.wait(DEADLINE), "the slow call never reached Redis"
    return call


def finish(call: threading.Thread, fake: SlowCallRedis) -> None:
    fake.gate.set()
    call.join(DEADLINE)
    assert not call.is_alive()


def test_a_late_success_of_a_call_begun_before_the_switch_does_not_end_the_back_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Redis slow rather than dead: one call times out (the switch), another begun before it
    is answered just after. That answer is no news of Redis now: the back-off goes on, Redis
    is not asked during it, and the switch is logged once (it flapped at every slow answer)."""
    clock = Clock()
    fake = SlowCallRedis()
    heard: list[bool] = []
    limiter = limiter_with(fake, clock, heard)
    slow = start_slow_call(limiter, fake)
    fake.up = False
    with caplog.at_level(logging.INFO, logger="ingest.ratelimit"):
        limiter.acquire("t", 1, LIMIT)  # times out: per process, Redis skipped for the back-off
        assert not limiter.shared
        finish(slow, fake)
        calls = fake.calls
        for _ in range(10):
            limiter.acquire("t", 1, LIMIT)
            limiter.release("t", 1, LIMIT)
    assert not limiter.shared
    assert fake.calls == calls, f"Redis asked {fake.calls - calls} times during the back-off"
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert heard == [True, False]
    fake.up = True
    clock.now += REDIS_BACKOFF
    limiter.acquire("t", 1, LIMIT)  # the probe, answered, ends it
    assert limiter.shared
    assert heard == [True, False, True]


def test_a_late_failure_of_a_call_begun_before_the_probe_was_answered_changes_nothing() -> None:
    """The call began while the limits were shared, Redis then failed another call and later
    answered the probe; this call's timeout comes after that and is old news."""
    clock = Clock()
    fake = SlowCallRedis(slow_fails=True)
    heard: list[bool] = []
    limiter = limiter_with(fake, clock, heard)
    slow = start_slow_call(limiter, fake)
    fake.up = False
    limiter.acquire("t", 1, LIMIT)  # the switch to per-process limits
    fake.up = True
    clock.now += REDIS_BACKOFF
    limiter.acquire("t", 1, LIMIT)  # the probe: shared again
    assert limiter.shared
    finish(slow, fake)
    assert limiter.shared
    assert heard == [True, False, True]
    calls = fake.calls
    limiter.acquire("t", 1, LIMIT)
    assert fake.calls == calls + 1  # Redis is asked, not skipped for a back-off


def test_the_shared_gauge_hears_the_switches_in_their_order() -> None:
    """The failing call is between its switch and the rest of its work (here: its log) when the
    back-off ends and the probe, answered, switches back: the last thing ``on_switch`` hears
    must be the state (it heard True, then False, and the gauge said 0 while shared)."""
    clock = Clock()
    fake = SlowCallRedis()
    heard: list[bool] = []
    limiter = limiter_with(fake, clock, heard)
    probe = threading.Thread(target=limiter.acquire, args=("t", 1, LIMIT))

    class ProbeMeanwhile(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "unreachable" in record.getMessage() and not probe.is_alive():
                fake.up = True
                clock.now += REDIS_BACKOFF
                probe.start()
                probe.join(DEADLINE)

    handler = ProbeMeanwhile(logging.WARNING)
    logger = logging.getLogger("ingest.ratelimit")
    logger.addHandler(handler)
    try:
        fake.up = False
        limiter.acquire("t", 1, LIMIT)
    finally:
        logger.removeHandler(handler)
    assert not probe.is_alive()
    assert limiter.shared
    assert heard == [True, False, True]


def test_on_switch_hears_at_once_that_the_limits_are_shared() -> None:
    """So the gauge has its series from the start, before any switch."""
    heard: list[bool] = []
    limiter_with(SlowCallRedis(), Clock(), heard)
    assert heard == [True]
