"""Per-tenant rate limits in points per second: token buckets in Redis or in this process.

Each call carries its tenant's limit (ingest's default or the tenant's own, set in the admin
app), so a changed limit applies at the tenant's next request, to the tokens it has left.

With Redis, one bucket per tenant is shared by every worker and replica: a Lua script refills
and takes tokens atomically on Redis's own clock, so replicas with skewed clocks agree. If
Redis cannot be reached, each process falls back to its own bucket rather than refusing all
writes: the limit protects storage, it must not become a single point of failure, nor slow
every write down. So a call to Redis waits at most REDIS_TIMEOUT (connecting included, never
retried), and after one fails the process limits on its own for a back-off (REDIS_BACKOFF,
doubled after each failed probe up to REDIS_MAX_BACKOFF) without asking Redis, which it then
asks again with one call at a time. The switch is logged once each way, and
``perfanalysis_ingest_rate_limit_shared`` says whether the limits are shared.
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


REDIS_TIMEOUT = 0.1  # seconds: a script call takes well under a millisecond when Redis is well
REDIS_BACKOFF = 5.0  # seconds without asking Redis after it failed; doubled after a failed probe,
REDIS_MAX_BACKOFF = 30.0  # up to this


class RedisTokenBucket:
    """One bucket per tenant in Redis (a hash under ``prefix + tenant``), and ``fallback``
    while Redis fails (module docstring). ``on_switch(shared)`` hears of each switch."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        fallback: RateLimiter,
        clock: Callable[[], float] = time.monotonic,
        backoff: float = REDIS_BACKOFF,
        max_backoff: float = REDIS_MAX_BACKOFF,
        on_switch: Callable[[bool], None] | None = None,
    ) -> None:
        self.prefix = prefix
        self.fallback = fallback
        self.clock = clock
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.on_switch = on_switch
        self.client = client
        self._script = client.register_script(BUCKET_SCRIPT)
        self._lock = threading.Lock()
        self.shared = True  # False while Redis is skipped for the fallback
        self._interval = backoff  # the back-off now in force
        self._ask_at = 0.0  # when (by ``clock``) Redis may be asked again
        self._probing = False  # a call is asking Redis whether it is back

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str,
        clock: Callable[[], float] = time.monotonic,
        on_switch: Callable[[bool], None] | None = None,
    ) -> RedisTokenBucket:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # redis-py's default retries would multiply the wait
        )
        return cls(client, prefix, LocalTokenBucket(clock), clock, on_switch=on_switch)

    def acquire(self, tenant: str, points: int, limit: Limit) -> float:
        wait = self._run(tenant, points, limit)
        return self.fallback.acquire(tenant, points, limit) if wait is None else wait

    def release(self, tenant: str, points: int, limit: Limit) -> None:
        if self._run(tenant, -points, limit) is None:
            self.fallback.release(tenant, points, limit)

    def _run(self, tenant: str, points: int, limit: Limit) -> float | None:
        """The script's wait; None when Redis failed or is being skipped (the fallback's turn)."""
        import redis

        with self._lock:
            probe = not self.shared
            if probe and (self._probing or self.clock() < self._ask_at):
                return None
            self._probing = self._probing or probe
        try:
            wait = float(
                self._script(keys=[self.prefix + tenant], args=[limit.rate, limit.burst, points])
            )
        except redis.RedisError as exc:
            self._failed(exc, probe)
            return None
        except BaseException:  # a bug: the next call asks Redis again
            if probe:
                with self._lock:
                    self._probing = False
            raise
        self._answered(probe)
        return wait

    def _failed(self, exc: Exception, probe: bool) -> None:
        """Skip Redis for a back-off: the first after it worked, a doubled one after a probe."""
        with self._lock:
            switched = self.shared
            if switched:
                self.shared = False
                self._interval = self.backoff
            elif probe:
                self._interval = min(self._interval * 2, self.max_backoff)
            if switched or probe:  # a call begun before the switch changes nothing
                self._ask_at = self.clock() + self._interval
            if probe:
                self._probing = False
        if switched:
            log.warning("Redis unreachable for rate limits (%s: %s); limiting per process, asking "
                        "Redis again after %gs (then up to every %gs) until it answers",
                        type(exc).__name__, exc, self.backoff, self.max_backoff)  # fmt: skip
            if self.on_switch is not None:
                self.on_switch(False)

    def _answered(self, probe: bool) -> None:
        with self._lock:
            switched = not self.shared
            self.shared = True
            if probe:
                self._probing = False
        if switched:
            log.info("Redis answers again: rate limits are shared by all workers and replicas")
            if self.on_switch is not None:
                self.on_switch(True)


def retry_after_seconds(wait: float) -> int:
    """Whole seconds for a Retry-After header: at least 1, never less than the wait."""
    return max(1, math.ceil(wait))


def make_limiter(
    settings: Mapping[str, Any], shared: Callable[[bool], None] | None = None
) -> RateLimiter:
    """Redis when REDIS_URL is set, else in-process. Which tenants it limits, and how, is the
    write service's business: ingest's --limits.rate or a tenant's own (tenants.ingest_rate).
    ``shared(bool)`` hears whether the limits are shared through Redis: now, and at each switch.
    """
    if shared is not None:
        shared(bool(settings["redis_url"]))
    if settings["redis_url"]:
        return RedisTokenBucket.from_url(
            settings["redis_url"], settings["limits_redis_prefix"], on_switch=shared
        )
    return LocalTokenBucket()
