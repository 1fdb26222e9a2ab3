"""Per-tenant rate limits in points per second: token buckets in Redis or in this process.

Each call carries its tenant's limit (ingest's default or the tenant's own, set in the admin
app), so a changed limit applies at the tenant's next request, to the tokens it has left.

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
from typing import Any, NamedTuple, Protocol

log = logging.getLogger(__name__)


class Limit(NamedTuple):
    """A tenant's bucket: refilled at ``rate`` points per second, full at ``burst`` points."""

    rate: float
    burst: int


class RateLimiter(Protocol):
    def acquire(self, tenant: str, points: int, limit: Limit) -> float:
        """Take ``points`` tokens: 0.0 if admitted, else the seconds until they would be."""

    def release(self, tenant: str, points: int, limit: Limit) -> None:
        """Give back ``points`` tokens taken for a write that stored nothing (storage down or
        refusing it): a client's retries during an outage must not leave its tenant throttled
        once storage is back. The bucket stays capped at the burst."""


class LocalTokenBucket:
    """Buckets in this process, each with the limit its tenant has at the time of asking."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, tenant: str, points: int, limit: Limit) -> float:
        rate, burst = limit
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(tenant, (float(burst), now))
            tokens = min(float(burst), tokens + max(0.0, now - at) * rate)
            if points <= tokens:
                self._buckets[tenant] = (tokens - points, now)
                return 0.0
            self._buckets[tenant] = (tokens, now)
            return (points - tokens) / rate

    def release(self, tenant: str, points: int, limit: Limit) -> None:
        rate, burst = limit
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(tenant, (float(burst), now))
            tokens = min(float(burst), tokens + max(0.0, now - at) * rate + points)
            self._buckets[tenant] = (tokens, now)


# KEYS[1]: the tenant's bucket; ARGV: rate (tokens/s), burst, points requested (negative: points
# given back, which never fill the bucket beyond the burst).
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
tokens = math.min(burst, tokens)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
return string.format('%.6f', wait)
"""


class RedisTokenBucket:
    """One bucket per tenant in Redis (a hash under ``prefix + tenant``)."""

    def __init__(self, client: Any, prefix: str, fallback: RateLimiter) -> None:
        self.prefix = prefix
        self.fallback = fallback
        self._script = client.register_script(BUCKET_SCRIPT)
        self._last_complaint = 0.0

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisTokenBucket:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, prefix, LocalTokenBucket())

    def acquire(self, tenant: str, points: int, limit: Limit) -> float:
        wait = self._run(tenant, points, limit)
        return self.fallback.acquire(tenant, points, limit) if wait is None else wait

    def release(self, tenant: str, points: int, limit: Limit) -> None:
        if self._run(tenant, -points, limit) is None:
            self.fallback.release(tenant, points, limit)

    def _run(self, tenant: str, points: int, limit: Limit) -> float | None:
        """The script's wait; None when Redis cannot be reached (the fallback's turn)."""
        import redis

        try:
            wait = self._script(keys=[self.prefix + tenant], args=[limit.rate, limit.burst, points])
        except redis.RedisError as exc:
            now = time.monotonic()
            if now - self._last_complaint > 60:
                self._last_complaint = now
                log.warning("Redis unreachable for rate limits (%s); limiting per process", exc)
            return None
        return float(wait)


def retry_after_seconds(wait: float) -> int:
    """Whole seconds for a Retry-After header: at least 1, never less than the wait."""
    return max(1, math.ceil(wait))


def make_limiter(settings: Mapping[str, Any]) -> RateLimiter:
    """Redis when REDIS_URL is set, else in-process. Which tenants it limits, and how, is the
    write service's business: ingest's --limits.rate or a tenant's own (tenants.ingest_rate)."""
    if settings["redis_url"]:
        return RedisTokenBucket.from_url(settings["redis_url"], settings["limits_redis_prefix"])
    return LocalTokenBucket()
