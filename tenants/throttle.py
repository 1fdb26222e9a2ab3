"""The login throttle: password checks counted per account (e-mail) and per client address.

Every check of a password that someone typed, a login's or a password change's current one,
first reserves an attempt (``reserve``): it is counted before argon2 runs, so concurrent guesses
cannot all pass a count taken before any of them was recorded. An attempt beyond
``max_failures`` for one e-mail, or beyond four times that from one address, within the window is
refused (Throttled, with the seconds until the count that refused it lets go) and not counted. A
right password gives its attempt back and clears the account's count (``succeeded``); a wrong one
stays counted. So at most ``max_failures`` wrong passwords are verified per account and window,
however many arrive at once, on however many workers and replicas.

The counts are in Redis when configured, else in the admin database (table ``login_failures``);
either way every worker and replica shares them. An account is counted under an HMAC of what was
typed as its e-mail (``account_digest``), keyed by the server secret, never the text itself: a
password typed in the e-mail field by mistake is not kept, even for the window.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from tenants.errors import Throttled
from tenants.models import LoginFailure, utcnow

if TYPE_CHECKING:
    from redis import Redis

MESSAGE = "too many failed logins; try again later"
ADDRESS_FACTOR = 4  # an address (a NAT, an office) may fail this many times an account's limit
LOCK_SPACE = 0x7061  # "pa": the first half of the login throttle's PostgreSQL advisory locks


def account_digest(secret: bytes, email: str) -> str:
    """What an attempt for ``email`` is counted under: its HMAC-SHA256 under ``secret``, in hex
    (the same on every worker and replica, which share the secret)."""
    return hmac.new(secret, b"login-throttle:" + email.encode(), hashlib.sha256).hexdigest()


class Throttle(Protocol):
    def reserve(self, email: str, ip: str) -> None:
        """Count an attempt before its password is verified; Throttled (and not counted) when
        the account or the address is over its limit."""

    def succeeded(self, email: str, ip: str) -> None:
        """The reserved attempt's password was right: give the attempt back and clear the
        account's count."""


class DatabaseThrottle:
    """The counts as rows of the admin database, one per attempt, over a sliding window.

    Attempts for the same e-mail or address are counted one after another: on PostgreSQL under
    a transaction-scoped advisory lock per e-mail and per address, on SQLite under the database's
    one write lock, which the first statement (removing expired rows) takes. Each ``reserve``
    commits ``db``.
    """

    def __init__(self, db: Session, max_failures: int, window: float, secret: bytes) -> None:
        self.db, self.max_failures, self.window = db, max_failures, window
        self.secret = secret

    def reserve(self, email: str, ip: str) -> None:
        email = account_digest(self.secret, email)
        self._lock(email, ip)
        since = utcnow() - timedelta(seconds=self.window)
        self.db.execute(delete(LoginFailure).where(LoginFailure.at <= since))
        recent = select(func.count()).where(LoginFailure.at > since)
        by_email = self.db.scalar(recent.where(LoginFailure.email == email)) or 0
        by_ip = self.db.scalar(recent.where(LoginFailure.ip == ip)) or 0
        waits = []
        if by_email >= self.max_failures:
            waits.append(self._wait(LoginFailure.email == email, self.max_failures, since))
        if by_ip >= ADDRESS_FACTOR * self.max_failures:
            address_limit = ADDRESS_FACTOR * self.max_failures
            waits.append(self._wait(LoginFailure.ip == ip, address_limit, since))
        if not waits:
            self.db.add(LoginFailure(email=email, ip=ip))
        self.db.commit()
        if waits:
            raise Throttled(MESSAGE, max(waits))

    def _wait(self, counted: ColumnElement[bool], limit: int, since: datetime) -> int:
        """Whole seconds until fewer than ``limit`` of the attempts ``counted`` are in the window:
        until the limit-th newest of them leaves it."""
        oldest_kept = self.db.scalar(
            select(LoginFailure.at)
            .where(counted, LoginFailure.at > since)
            .order_by(LoginFailure.at.desc())
            .offset(limit - 1)
            .limit(1)
        )
        if oldest_kept is None:
            return 1
        return max(1, math.ceil((oldest_kept - since).total_seconds()))

    def _lock(self, email: str, ip: str) -> None:
        """PostgreSQL: wait for the e-mail's lock, then the address's (always in this order,
        so that no two attempts wait for each other in a circle), held until the commit."""
        if self.db.get_bind().dialect.name != "postgresql":
            return
        for key in (f"email:{email}", f"ip:{ip}"):
            self.db.execute(select(func.pg_advisory_xact_lock(LOCK_SPACE, _lock_id(key))))

    def succeeded(self, email: str, ip: str) -> None:
        email = account_digest(self.secret, email)
        self.db.execute(delete(LoginFailure).where(LoginFailure.email == email))
        self.db.commit()


def _lock_id(key: str) -> int:
    """A signed 32-bit number for ``key``, the second half of its advisory lock's name."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), signed=True)


# KEYS: the account's count, the address's; ARGV: the window in seconds, the account's limit, the
# address's limit. Over a limit: the longest time to wait of the counts that refuse, at least 1,
# and nothing counted; else each count is raised (expiring one window after its first attempt)
# and the answer is 0. One script, so no other attempt runs between the check and the count.
RESERVE_SCRIPT = """
local counts = redis.call('MGET', KEYS[1], KEYS[2])
local wait = 0
for i, key in ipairs(KEYS) do
  if tonumber(counts[i] or 0) >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('TTL', key)
    if ttl < 0 then
      redis.call('EXPIRE', key, ARGV[1])
      ttl = tonumber(ARGV[1])
    end
    wait = math.max(wait, ttl, 1)
  end
end
if wait > 0 then
  return wait
end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return 0
"""

# KEYS: the account's count (cleared), the address's (its reserved attempt given back).
SUCCEEDED_SCRIPT = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or 0) > 0 then
  redis.call('DECR', KEYS[2])
end
return 0
"""


class RedisThrottle:
    """The counts in Redis, each expiring one window after its first attempt."""

    def __init__(self, client: Redis, max_failures: int, window: float, secret: bytes) -> None:
        self.max_failures, self.window = max_failures, int(window)
        self.secret = secret
        self._reserve = client.register_script(RESERVE_SCRIPT)
        self._succeeded = client.register_script(SUCCEEDED_SCRIPT)

    def keys(self, email: str, ip: str) -> list[str]:
        return [f"pa:login:email:{account_digest(self.secret, email)}", f"pa:login:ip:{ip}"]

    def reserve(self, email: str, ip: str) -> None:
        limits = [self.max_failures, ADDRESS_FACTOR * self.max_failures]
        wait = self._reserve(keys=self.keys(email, ip), args=[self.window, *limits])
        if int(wait):
            raise Throttled(MESSAGE, int(wait))

    def succeeded(self, email: str, ip: str) -> None:
        self._succeeded(keys=self.keys(email, ip))


def throttle_for(
    db: Session, redis_url: str, max_failures: int, window: float, secret: bytes
) -> Throttle:
    if redis_url:
        import redis

        return RedisThrottle(redis.Redis.from_url(redis_url), max_failures, window, secret)
    return DatabaseThrottle(db, max_failures, window, secret)
