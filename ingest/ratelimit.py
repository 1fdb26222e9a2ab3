"""Per-tenant rate limits in points per second: token buckets in Redis or in this process.

With Redis, one bucket per tenant is shared by every worker and replica: a Lua script refills
and takes tokens atomically on Redis's own clock, so replicas with skewed clocks agree. If
Redis cannot be reached, each process falls back to its own bucket (and logs it) rather than
refusing all writes: the limit protects storage, it must not become a single point of failure.
Without Redis the bucket is per process, so N gunicorn workers admit up to N times the rate.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    def acquire(self, tenant: str, points: int) -> float:
        """Take ``points`` tokens: 0.0 if admitted, else the seconds until they would be."""


class Unlimited:
    def acquire(self, tenant: str, points: int) -> float:
        return 0.0


class LocalTokenBucket:
    """Buckets in this process: full at ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, tenant: str, points: int) -> float:
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(tenant, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
            if points <= tokens:
                self._buckets[tenant] = (tokens - points, now)
                return 0.0
            self._buckets[tenant] = (tokens, now)
            return (points - tokens) / self.rate


# KEYS[1]: the tenant's bucket; ARGV: rate (tokens/s), burst, points requested.
BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if requested <= tokens then
  tokens = tokens - requested
else
  wait = (requested - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
return string.format('%.6f', wait)
"""


class RedisTokenBucket:
    """One bucket per tenant in Redis (a hash under ``prefix + tenant``)."""

    def __init__(
        self, client: Any, rate: float, burst: int, prefix: str, fallback: RateLimiter
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self.fallback = fallback
        self._script = client.register_script(BUCKET_SCRIPT)
        self._last_complaint = 0.0

    @classmethod
    def from_url(cls, url: str, rate: float, burst: int, prefix: str) -> RedisTokenBucket:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, rate, burst, prefix, LocalTokenBucket(rate, burst))

    def acquire(self, tenant: str, points: int) -> float:
        import redis

        try:
            wait = self._script(keys=[self.prefix + tenant], args=[self.rate, self.burst, points])
        except redis.RedisError as exc:
            now = time.monotonic()
            if now - self._last_complaint > 60:
                self._last_complaint = now
                log.warning("Redis unreachable for rate limits (%s); limiting per process", exc)
            return self.fallback.acquire(tenant, points)
        return float(wait)


def retry_after_seconds(wait: float) -> int:
    """Whole seconds for a Retry-After header: at least 1, never less than the wait."""
    return max(1, math.ceil(wait))


def make_limiter(settings: Mapping[str, Any]) -> RateLimiter:
    """From settings: none when the rate is 0, Redis when REDIS_URL is set, else in-process."""
    rate, burst = float(settings["limits_rate"]), int(settings["limits_burst"])
    if rate <= 0:
        return Unlimited()
    if settings["redis_url"]:
        return RedisTokenBucket.from_url(
            settings["redis_url"], rate, burst, settings["limits_redis_prefix"]
        )
    return LocalTokenBucket(rate, burst)
