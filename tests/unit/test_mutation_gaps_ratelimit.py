"""Mutation-audit gaps in ingest/ratelimit.py: the per-process fallback when Redis fails, the
bucket key's lifetime in Redis, and a request of exactly the tokens left."""

from __future__ import annotations

import math
import os
import secrets
import socket
from collections.abc import Iterator

import pytest
import redis

from ingest.ratelimit import Limit, LocalTokenBucket, RedisTokenBucket

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
