"""Mutation-audit gaps in ingest/ratelimit.py: the per-process fallback when Redis fails, the
bucket key's lifetime in Redis, and a request of exactly the tokens left; and (audit of
2026-11-25) the back-off that keeps a hung Redis from slowing every write down."""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from ingest.metrics import IngestMetrics
from ingest.ratelimit import (
    REDIS_BACKOFF,
    REDIS_HEALTHY_AFTER,
    REDIS_MAX_BACKOFF,
    REDIS_TIMEOUT,
    Limit,
    LocalTokenBucket,
    RedisTokenBucket,
    make_limiter,
)
from perfanalysis.testing.servers import wait_until

LIMIT = Limit(rate=10.0, burst=20)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def closed_port() -> int:
    """A local port nothing listens on (bound, then closed): connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_full_bucket_gives_exactly_its_burst_and_then_makes_the_client_wait() -> None:
    clock = Clock()
    bucket = LocalTokenBucket(clock)
    assert bucket.acquire("b", 20, LIMIT) == 0.0  # all 20 tokens of a full bucket
    assert bucket.acquire("b", 1, LIMIT) == pytest.approx(0.1)  # none left: 1 token at 10/s
    clock.now += 0.1
    assert bucket.acquire("b", 1, LIMIT) == 0.0  # exactly the one token refilled
    assert bucket.acquire("b", 1, LIMIT) > 0.0


def test_when_redis_is_unreachable_the_local_bucket_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not a single point of failure: a refused connection makes each process limit alone, with
    the answers the per-process bucket gives, for acquire and for release."""
    limiter = RedisTokenBucket.from_url(f"redis://127.0.0.1:{closed_port()}/0", "test:gaps:")
    assert isinstance(limiter.fallback, LocalTokenBucket)
    clock = Clock()
    limiter.fallback = LocalTokenBucket(clock)
    reference = LocalTokenBucket(clock)  # the same calls straight to a local bucket
    with caplog.at_level("WARNING", logger="ingest.ratelimit"):
        assert limiter.acquire("acme", 15, LIMIT) == reference.acquire("acme", 15, LIMIT) == 0.0
    assert "Redis unreachable for rate limits" in caplog.text
    wait = limiter.acquire("acme", 10, LIMIT)  # 5 left: 5 more at 10/s
    assert wait == reference.acquire("acme", 10, LIMIT) == pytest.approx(0.5)
    limiter.release("acme", 15, LIMIT)  # given back to the local bucket (capped at the burst)
    reference.release("acme", 15, LIMIT)
    assert limiter.acquire("acme", 20, LIMIT) == reference.acquire("acme", 20, LIMIT) == 0.0
    assert limiter.acquire("acme", 1, LIMIT) == pytest.approx(0.1)
    # another tenant's bucket is its own
    assert limiter.acquire("other", 20, LIMIT) == 0.0


def test_a_redis_error_from_the_script_falls_back_too() -> None:
    """Any RedisError (here a timeout raised by the script call) is the fallback's turn."""

    class Failing:
        def register_script(self, script: str) -> object:
            def run(**_: object) -> object:
                raise redis.TimeoutError("Timeout reading from socket")

            return run

    clock = Clock()
    limiter = RedisTokenBucket(Failing(), "p:", LocalTokenBucket(clock))
    assert limiter.acquire("t", 20, LIMIT) == 0.0
    assert limiter.acquire("t", 10, LIMIT) == pytest.approx(1.0)
    limiter.release("t", 20, LIMIT)
    assert limiter.acquire("t", 20, LIMIT) == 0.0


# ----------------------------------------------------------------------------------------------
# A Redis that does not answer: a back-off, not a wait on every write (audit of 2026-11-25: with
# Redis hung, each write blocked a thread 0.5-1 s and throughput fell from 149 to 7.7 requests/s)

DEADLINE = 10.0


class FlakyRedis:
    """A Redis client's double whose script admits every request while ``up`` and otherwise
    times out, as a hung Redis does. ``calls`` counts the times Redis was asked; with ``gate``
    set, a call waits for it (after setting ``entered``)."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def register_script(self, script: str) -> object:
        def run(keys: list[str], args: list[object]) -> bytes:
            self.calls += 1
            if self.gate is not None:
                self.entered.set()
                assert self.gate.wait(DEADLINE), "the test never let the call go"
            if not self.up:
                raise redis.TimeoutError("Timeout reading from socket")
            return b"0.000000"

        return run


def flaky_limiter(clock: Clock, **kwargs: object) -> tuple[RedisTokenBucket, FlakyRedis]:
    fake = FlakyRedis()
    return RedisTokenBucket(fake, "p:", LocalTokenBucket(clock), clock, **kwargs), fake  # type: ignore[arg-type]


def test_after_redis_fails_it_is_not_asked_again_during_the_back_off() -> None:
    clock = Clock()
    limiter, fake = flaky_limiter(clock)
    assert limiter.acquire("t", 1, LIMIT) == 0.0
    assert fake.calls == 1
    fake.up = False
    assert limiter.acquire("t", 1, LIMIT) == 0.0  # Redis failed: the local bucket answered
    assert fake.calls == 2
    for _ in range(50):  # the back-off: every call is local, Redis is not asked
        limiter.acquire("t", 1, LIMIT)
        limiter.release("t", 1, LIMIT)
    clock.now += REDIS_BACKOFF - 0.1
    limiter.acquire("t", 1, LIMIT)
    assert fake.calls == 2
    expected = 2
    # one probe at the end of each back-off; each failed probe doubles it, up to the maximum
    for backoff in (REDIS_BACKOFF, 10.0, 20.0, REDIS_MAX_BACKOFF, REDIS_MAX_BACKOFF):
        clock.now += 0.1
        limiter.acquire("t", 1, LIMIT)
        expected += 1
        assert fake.calls == expected, f"a probe after {backoff}s"
        clock.now += min(backoff * 2, REDIS_MAX_BACKOFF) - 0.1
        limiter.acquire("t", 1, LIMIT)
        limiter.release("t", 1, LIMIT)
        assert fake.calls == expected, f"no call within the {backoff * 2}s after it"
    assert not limiter.shared
    fake.up = True
    clock.now += 0.1
    limiter.acquire("t", 1, LIMIT)  # the probe is answered: Redis is asked every time again
    limiter.acquire("t", 1, LIMIT)
    limiter.release("t", 1, LIMIT)
    assert fake.calls == expected + 3
    assert limiter.shared
    clock.now += REDIS_HEALTHY_AFTER  # once Redis has answered a while, a new failure's
    fake.up = False  # back-off starts from the shortest again
    limiter.acquire("t", 1, LIMIT)
    clock.now += REDIS_BACKOFF
    limiter.acquire("t", 1, LIMIT)
    assert fake.calls == expected + 5


def test_only_one_call_at_a_time_asks_redis_whether_it_is_back() -> None:
    clock = Clock()
    limiter, fake = flaky_limiter(clock)
    fake.up = False
    limiter.acquire("t", 1, LIMIT)
    clock.now += REDIS_BACKOFF
    fake.up = True
    fake.gate = threading.Event()
    probe = threading.Thread(target=limiter.acquire, args=("t", 1, LIMIT))
    probe.start()
    assert fake.entered.wait(DEADLINE)
    assert limiter.acquire("t", 20, LIMIT) == 0.0
    assert limiter.acquire("t", 1, LIMIT) == pytest.approx(0.1)  # the local bucket (Redis: 0)
    limiter.release("t", 1, LIMIT)
    assert fake.calls == 2  # the failure and the probe under way: nobody else asked
    fake.gate.set()
    probe.join(DEADLINE)
    assert not probe.is_alive()
    assert limiter.shared


def test_the_switch_is_logged_once_each_way_not_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limiter, fake = flaky_limiter(clock)
    fake.up = False
    with caplog.at_level(logging.INFO, logger="ingest.ratelimit"):
        for _ in range(3):  # three back-offs, each with its failed probe and many requests
            for _ in range(20):
                limiter.acquire("t", 1, LIMIT)
                limiter.release("t", 1, LIMIT)
            clock.now += REDIS_MAX_BACKOFF
        fake.up = True
        for _ in range(20):
            limiter.acquire("t", 1, LIMIT)
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(logged) == 2, logged
    assert logged[0][0] == "WARNING"
    assert logged[0][1].startswith("Redis unreachable for rate limits (TimeoutError: Timeout ")
    assert "limiting per process" in logged[0][1]
    assert logged[1] == (
        "INFO", "Redis answers again: rate limits are shared by all workers and replicas"
    )  # fmt: skip


def test_metrics_say_whether_the_rate_limits_are_shared() -> None:
    def shared(metrics: IngestMetrics) -> float | None:
        return metrics.registry.get_sample_value("perfanalysis_ingest_rate_limit_shared")

    metrics = IngestMetrics()
    settings = {"redis_url": "", "limits_redis_prefix": "p:"}
    make_limiter(settings, metrics.rate_limit_shared.set)
    assert shared(metrics) is None  # no Redis: no series (each worker limits on its own)
    make_limiter({**settings, "redis_url": f"redis://127.0.0.1:{closed_port()}/0"},
                 metrics.rate_limit_shared.set)  # fmt: skip
    assert shared(metrics) == 1.0
    clock = Clock()
    limiter, fake = flaky_limiter(clock, on_switch=metrics.rate_limit_shared.set)
    fake.up = False
    limiter.acquire("t", 1, LIMIT)
    assert shared(metrics) == 0.0
    fake.up = True
    clock.now += REDIS_BACKOFF
    limiter.acquire("t", 1, LIMIT)
    assert shared(metrics) == 1.0


def test_a_hung_redis_is_asked_once_per_back_off_and_never_twice_per_call() -> None:
    """Against a server that accepts connections and never answers, as a hung Redis: each try
    costs REDIS_TIMEOUT (redis-py's retries would multiply it; none are made), and none is made
    during the back-off. redis-py opens a new connection for each try after a timeout."""
    accepted: list[socket.socket] = []
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as hung:
        hung.settimeout(0.05)

        def accept() -> None:
            while not stop.is_set():
                try:
                    accepted.append(hung.accept()[0])
                except TimeoutError:
                    continue

        acceptor = threading.Thread(target=accept)
        acceptor.start()
        try:
            clock = Clock()
            limiter = RedisTokenBucket.from_url(
                f"redis://127.0.0.1:{hung.getsockname()[1]}/0", "p:", clock=clock
            )
            options = limiter.client.connection_pool.connection_kwargs
            assert options["socket_timeout"] == options["socket_connect_timeout"] == REDIS_TIMEOUT
            assert REDIS_TIMEOUT <= 0.1
            assert limiter.acquire("t", 20, LIMIT) == 0.0  # the local bucket, after one try
            for _ in range(10):
                limiter.acquire("t", 1, LIMIT)
            clock.now += REDIS_BACKOFF
            limiter.acquire("t", 1, LIMIT)  # the probe
            wait_until(lambda: len(accepted) >= 2, DEADLINE, what="two connections to Redis")
            assert len(accepted) == 2
        finally:
            stop.set()
            acceptor.join(DEADLINE)
            for connection in accepted:
                connection.close()


# ----------------------------------------------------------------------------------------------
# Real Redis


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs REDIS_URL (CI sets it)")
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    yield client
    client.close()


@pytest.mark.integration
@pytest.mark.parametrize("limit", [Limit(rate=10.0, burst=20), Limit(rate=0.5, burst=100)])
def test_a_throttled_tenants_bucket_outlives_its_refill_time_in_redis(
    redis_client: redis.Redis, limit: Limit
) -> None:
    """The bucket's key must live at least as long as the bucket takes to refill: a key that
    vanished sooner would come back full, letting a throttled tenant past its limit."""
    prefix = f"test:gaps:{secrets.token_hex(4)}:"
    limiter = RedisTokenBucket(redis_client, prefix, LocalTokenBucket())
    key = prefix + "acme"
    try:
        assert limiter.acquire("acme", limit.burst, limit) == 0.0
        assert limiter.acquire("acme", limit.burst, limit) > 0.0  # a 429
        ttl = redis_client.pttl(key)
        assert ttl >= math.ceil(limit.burst / limit.rate * 1000), ttl
        limiter.release("acme", limit.burst, limit)
        assert redis_client.pttl(key) >= math.ceil(limit.burst / limit.rate * 1000)
    finally:
        redis_client.delete(key)
