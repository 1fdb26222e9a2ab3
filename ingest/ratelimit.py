"""Per-tenant rate limits in points per second: token buckets in Redis or in this process.

Each call carries its tenant's limit (ingest's default or the tenant's own, set in the admin
app), so a changed limit applies at the tenant's next request, to the tokens it has left.

With Redis, one bucket per tenant is shared by every worker and replica: a Lua script refills
and takes tokens atomically on Redis's own clock, so replicas with skewed clocks agree. If
Redis cannot be reached, each process falls back to its own bucket rather than refusing all
writes: the limit protects storage, it must not become a single point of failure, nor slow
every write down. So each step of a call to Redis (looking its name up, connecting, its answer)
waits at most REDIS_TIMEOUT, never retried, and after a call fails the process limits on its
own for a back-off (REDIS_BACKOFF, doubled after each failed probe up to REDIS_MAX_BACKOFF)
without asking Redis, which it then asks again with one call at a time, the probe. Only the
probe ends a back-off: a call begun before a switch, answered or failing after it, says nothing
of Redis now (a Redis slow rather than dead would otherwise flap at every slow answer). The
back-off starts again from REDIS_BACKOFF only once Redis has answered for REDIS_HEALTHY_AFTER
since the probe: a Redis that fails again sooner (flapping) doubles the last one, so that it is
asked after 5, 10, 20, then every 30 s rather than switched to and from every 5 s. Each
switch is logged once, and ``perfanalysis_ingest_rate_limit_shared`` says whether the limits are
shared; without a redis-url the gauge is not exported at all (ingest/metrics.py).
Without Redis the bucket is per process, so N gunicorn workers admit up to N times the rate.

The system resolver takes no timeout (a dead nameserver costs resolv.conf's 5 s times its
attempts), so the name is looked up by perfanalysis/namelookup.py (NAME_LOOKUPS), on a thread
of its own, and a connection waits for it at most its connect timeout: one lookup per name at a
time, and when it is late, the last answer one gave.
"""

from __future__ import annotations

import functools
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from perfanalysis.namelookup import NameLookups, is_numeric_host

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
REDIS_HEALTHY_AFTER = 60.0  # seconds Redis must answer after a probe before a failure starts over


def redis_name_lookups() -> NameLookups:
    """Lookups of Redis's name for connections that wait for one at most their connect timeout:
    when the lookup is late, the last answer serves (perfanalysis/namelookup.py)."""
    return NameLookups("redis-lookup", last_answer_when_late=True)


NAME_LOOKUPS = redis_name_lookups()


@functools.cache
def lookup_bounded_connections() -> dict[type, type]:
    """redis-py's TCP connection classes, each mapped to one whose name lookup waits at most
    its connect timeout (NAME_LOOKUPS) and which then connects to each address in turn. A
    function, so that redis is imported only where it is used (it takes about 0.1 s)."""
    from redis.connection import Connection, SSLConnection

    class LookupBoundedConnection(Connection):
        def _connect(self) -> socket.socket:
            name = self.host
            timeout = self.socket_connect_timeout
            if timeout is None or is_numeric_host(name):
                return super()._connect()  # type: ignore[no-untyped-call,no-any-return]
            try:
                addresses = NAME_LOOKUPS.resolve(
                    name, self.port, time.monotonic() + timeout, family=self.socket_type
                )
            except TimeoutError:  # which redis-py would report as "Timeout connecting to server"
                raise socket.gaierror(
                    socket.EAI_AGAIN,
                    f"looking {name} up took over {timeout:g}s: the system resolver takes no "
                    "timeout, so its answer is awaited in the background",
                ) from None
            error: OSError = OSError(f"no address for {name}")
            for *_, address in addresses:
                self.host = _numeric_host(address)  # which redis-py's lookup returns at once
                try:
                    return super()._connect()  # type: ignore[no-untyped-call,no-any-return]
                except OSError as exc:
                    error = exc
                finally:
                    self.host = name  # TLS checks the certificate against the name
            raise error

    class LookupBoundedSSLConnection(SSLConnection, LookupBoundedConnection):
        """SSLConnection's _connect wraps LookupBoundedConnection's (the method order puts it
        between SSLConnection and Connection), with ``host`` the name again for TLS."""

    return {Connection: LookupBoundedConnection, SSLConnection: LookupBoundedSSLConnection}


def _numeric_host(address: tuple[Any, ...]) -> str:
    """A socket address's host as getaddrinfo takes it: IPv6's scope (link-local) included."""
    host, scope = str(address[0]), address[3] if len(address) == 4 else 0
    return f"{host}%{scope}" if scope else host


class RedisTokenBucket:
    """One bucket per tenant in Redis (a hash under ``prefix + tenant``), and ``fallback``
    while Redis fails (module docstring).

    ``on_switch(shared)`` hears whether the limits are shared: at once (they are), then at each
    switch. It is called with the limiter's lock held, so that its calls come in the order of
    the switches and the last one tells the state: it must be quick and not call the limiter."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        fallback: RateLimiter,
        clock: Callable[[], float] = time.monotonic,
        backoff: float = REDIS_BACKOFF,
        max_backoff: float = REDIS_MAX_BACKOFF,
        on_switch: Callable[[bool], None] | None = None,
        healthy_after: float = REDIS_HEALTHY_AFTER,
    ) -> None:
        self.prefix = prefix
        self.fallback = fallback
        self.clock = clock
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.healthy_after = healthy_after
        self.on_switch = on_switch
        self.client = client
        self._script = client.register_script(BUCKET_SCRIPT)
        self._lock = threading.Lock()
        self.shared = True  # False while Redis is skipped for the fallback
        self._switches = 0  # how many times ``shared`` changed: a call's news is of its own time
        self._interval = backoff  # the back-off now in force
        self._ask_at = 0.0  # when (by ``clock``) Redis may be asked again
        self._probing = False  # a call is asking Redis whether it is back
        self._answered_at = -math.inf  # when (by ``clock``) a probe last found Redis back
        if on_switch is not None:
            on_switch(True)

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
        from redis.connection import Connection, parse_url
        from redis.retry import Retry

        options = parse_url(url)  # type: ignore[no-untyped-call]
        connection_class = options.get("connection_class", Connection)
        client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # redis-py's default retries would multiply the wait
            # a unix:// socket has no name to look up
            connection_class=lookup_bounded_connections().get(connection_class, connection_class),
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
            begun = self._switches
        try:
            wait = float(
                self._script(keys=[self.prefix + tenant], args=[limit.rate, limit.burst, points])
            )
        except redis.RedisError as exc:
            self._failed(exc, probe, begun)
            return None
        except BaseException:  # a bug: the next call asks Redis again
            if probe:
                with self._lock:
                    self._probing = False
            raise
        if probe:
            self._answered()
        return wait

    def _failed(self, exc: Exception, probe: bool, begun: int) -> None:
        """Skip Redis for a back-off: a doubled one after a probe or a Redis back for less than
        ``healthy_after``, else the first. A call begun before a switch changes nothing: it
        failed in a time that is over."""
        with self._lock:
            now = self.clock()
            if probe:
                self._interval = min(self._interval * 2, self.max_backoff)
                self._probing = False
            elif begun == self._switches:
                self._switch(False)
                if now - self._answered_at < self.healthy_after:
                    self._interval = min(self._interval * 2, self.max_backoff)
                else:
                    self._interval = self.backoff
            else:
                return
            self._ask_at = now + self._interval
            interval = self._interval
        if not probe:
            log.warning("Redis unreachable for rate limits (%s: %s); limiting per process, asking "
                        "Redis again after %gs (then up to every %gs) until it answers",
                        type(exc).__name__, exc, interval, self.max_backoff)  # fmt: skip

    def _answered(self) -> None:
        """The probe was answered: the back-off is over (no other call may end it)."""
        with self._lock:
            self._probing = False
            self._answered_at = self.clock()
            self._switch(True)
        log.info("Redis answers again: rate limits are shared by all workers and replicas")

    def _switch(self, shared: bool) -> None:
        """The lock held."""
        self.shared = shared
        self._switches += 1
        if self.on_switch is not None:
            self.on_switch(shared)


def retry_after_seconds(wait: float) -> int:
    """Whole seconds for a Retry-After header: at least 1, never less than the wait."""
    return max(1, math.ceil(wait))


def make_limiter(
    settings: Mapping[str, Any], shared: Callable[[bool], None] | None = None
) -> RateLimiter:
    """Redis when REDIS_URL is set, else in-process. Which tenants it limits, and how, is the
    write service's business: ingest's --limits.rate or a tenant's own (tenants.ingest_rate).
    ``shared(bool)`` hears whether the limits are shared through Redis: now, and at each switch;
    never without Redis, where the question does not arise.
    """
    if settings["redis_url"]:
        return RedisTokenBucket.from_url(
            settings["redis_url"], settings["limits_redis_prefix"], on_switch=shared
        )
    return LocalTokenBucket()
