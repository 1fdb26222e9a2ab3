"""Collector API keys: issue (shown once), rotate with an overlap, revoke, expire, verify.

Ingest verifies each request's key through ``KeyVerifier``: a key's state (revoked, expired,
its collector's and tenant's, host tag, secret hash) is at most ``ttl`` seconds old when a
request is let in (so a revocation is felt within that time, 5 s at most), read again for all
recently used keys in bulk by a background thread rather than key by key; the secret is checked
by HMAC in constant time on every call, and last use, last seen and points received are written
back in bulk by that thread, never by a request.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import BigInteger, Update, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session, joinedload, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from tenants import validation
from tenants.access import Actor, require
from tenants.audit import record
from tenants.crypto import KEY_PREFIX, CredentialHasher, split_credential
from tenants.db import transaction
from tenants.errors import Forbidden, Invalid, NotFound, Unauthenticated
from tenants.grants import calling_token_expiry, no_later_than_calling_token
from tenants.models import (
    HOST_TAG_PINNED,
    ApiKey,
    ApiToken,
    Collector,
    Tenant,
    UTCDateTime,
    utcnow,
)
from tenants.paging import Order, Page, fetch_page
from tenants.ttlcache import TtlCache

log = logging.getLogger(__name__)

MAX_EXPIRY_DAYS = 3650
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=30)

MAX_CACHED_KEYS = 50_000  # accepted keys cached per process, least recently used dropped first
MAX_REFUSED_IDS = 10_000  # refused key ids (unknown, revoked...), cached apart for ttl seconds
IDLE_AFTER = 600.0  # seconds: a cached key not used for this long is no longer revalidated
BULK_ROWS = 1_000  # keys per revalidation query, rows per usage statement
MAX_PENDING = 100_000  # collectors (and keys) whose usage waits for a flush
LAST_USE_RESOLUTION = 60.0  # seconds: a key's last use is written at most this often
EARLY_ENOUGH = 0.9  # a refresh this near its time runs: the thread's wake-ups are not exact


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str  # shown once, never stored


def _lifetime(days: int | None) -> timedelta | None:
    """``expires_in_days`` as a timedelta (None: never), checked."""
    if days is None:
        return None
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_EXPIRY_DAYS:
        raise Invalid(
            f"expires_in_days must be a whole number from 1 to {MAX_EXPIRY_DAYS}", "expires_in_days"
        )
    return timedelta(days=days)


def issue_key(
    db: Session,
    actor: Actor,
    tenant: Tenant,
    collector: Collector,
    hasher: CredentialHasher,
    name: str = "",
    expires_in_days: int | None = None,
    rotated_from: ApiKey | None = None,
    *,
    lifetime: timedelta | None = None,
) -> IssuedKey:
    """A new key for ``collector``, expiring after ``expires_in_days`` (or, given instead, after
    ``lifetime``; neither: never). Issued with an expiring API token, it expires with the token
    at the latest (tenants/grants.py): an ``expires_in_days`` beyond is refused, the rest cut."""
    require(db, actor, tenant, "admin")
    if collector.tenant_id != tenant.id:
        raise NotFound("no such collector in this tenant")
    name = validation.text(name, "name", 100, required=False)
    if expires_in_days is not None:
        lifetime = _lifetime(expires_in_days)
    now = utcnow()
    expires_at = None if lifetime is None else now + lifetime
    if expires_in_days is None:  # not asked for: never, or a rotated key's lifetime
        limit = calling_token_expiry(db, actor)
        if limit is not None and (expires_at is None or expires_at > limit):
            expires_at = limit
    else:
        expires_at = no_later_than_calling_token(
            db, actor, expires_at, "expires_in_days", "admin issue-key"
        )
    new = hasher.issue(KEY_PREFIX)
    key = ApiKey(
        key_id=new.public_id,
        secret_hash=new.secret_hash,
        tenant_id=tenant.id,
        collector_id=collector.id,
        name=name,
        created_by_id=actor.user.id if actor.user else None,
        created_at=now,  # the same instant as the expiry's start: the lifetime stays exact
        expires_at=expires_at,
        rotated_from_id=rotated_from.id if rotated_from else None,
    )
    db.add(key)
    db.flush()
    record(db, actor, "key.issue", tenant, "api_key", key.key_id, collector=collector.name, name=name,
           expires_at=key.expires_at.isoformat() if key.expires_at else None,
           rotated_from=rotated_from.key_id if rotated_from else None)  # fmt: skip
    db.commit()
    return IssuedKey(key, new.plaintext)


def get_key(db: Session, actor: Actor, tenant: Tenant, key_id: str) -> ApiKey:
    require(db, actor, tenant, "read")
    key = db.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant.id, ApiKey.key_id == key_id))
    if key is None:
        raise NotFound("no such key in this tenant")
    return key


NEWEST_FIRST = Order((ApiKey.created_at, ApiKey.id), descending=True)


def keys_page(
    db: Session,
    actor: Actor,
    tenant: Tenant,
    limit: int,
    cursor: str | None = None,
    collector: Collector | None = None,
) -> Page[ApiKey]:
    """A page of the tenant's keys (or of one of its collectors' keys), newest first, with
    their collectors. A collector rotated daily for years has thousands."""
    require(db, actor, tenant, "read")
    query = select(ApiKey).where(ApiKey.tenant_id == tenant.id)
    if collector is not None:
        if collector.tenant_id != tenant.id:
            raise NotFound("no such collector in this tenant", "collector_id")
        query = query.where(ApiKey.collector_id == collector.id)
    query = query.options(joinedload(ApiKey.collector))
    return fetch_page(db, query, NEWEST_FIRST, limit, cursor)


def accepted_at(now: datetime) -> ColumnElement[bool]:
    """Keys neither revoked nor expired at ``now`` (ApiKey.state's "active", in SQL)."""
    return and_(
        ApiKey.revoked_at.is_(None), or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)
    )


def revoke_key(db: Session, actor: Actor, tenant: Tenant, key: ApiKey) -> ApiKey:
    revoke_keys(db, actor, tenant, [key])
    return key


def revoke_keys(db: Session, actor: Actor, tenant: Tenant, keys: Sequence[ApiKey]) -> None:
    """Revoke the tenant's KEYS in one transaction, each audited: all of them, or none."""
    require(db, actor, tenant, "admin")
    if any(key.tenant_id != tenant.id for key in keys):
        raise NotFound("no such key in this tenant")
    live = [key for key in keys if key.revoked_at is None]
    now = utcnow()
    for key in live:
        key.revoked_at = now
        record(db, actor, "key.revoke", tenant, "api_key", key.key_id)
    if live:
        db.commit()


def other_live_keys(db: Session, key: ApiKey) -> list[ApiKey]:
    """The keys of KEY's collector, besides KEY, that are neither revoked nor expired."""
    return list(
        db.scalars(
            select(ApiKey)
            .where(ApiKey.collector_id == key.collector_id, ApiKey.id != key.id)
            .where(accepted_at(utcnow()))
            .order_by(ApiKey.id)
        )
    )


class Keep(Enum):
    LIFETIME = "lifetime"


KEEP_LIFETIME = Keep.LIFETIME  # rotate_key's default expires_in_days: the old key's lifetime


def rotate_key(
    db: Session,
    actor: Actor,
    tenant: Tenant,
    key: ApiKey,
    hasher: CredentialHasher,
    overlap: timedelta = DEFAULT_OVERLAP,
    expires_in_days: int | Keep | None = KEEP_LIFETIME,
) -> IssuedKey:
    """A new key for the same collector; the old one keeps working for ``overlap``, then expires.

    The new key expires after ``expires_in_days`` (None: never); by default it is issued for as
    long as the old one was (``issued_lifetime``): a 30-day key is replaced by a 30-day key.
    """
    require(db, actor, tenant, "admin")
    if key.tenant_id != tenant.id:
        raise NotFound("no such key in this tenant")
    if key.state() != "active":
        raise Invalid(f"only an active key can be rotated; this one is {key.state()}", "key_id")
    if overlap < timedelta(0) or overlap > MAX_OVERLAP:
        raise Invalid("overlap must be between 0 and 30 days", "overlap_hours")
    if isinstance(expires_in_days, Keep):
        lifetime = issued_lifetime(db, key)
    else:
        lifetime = _lifetime(expires_in_days)  # checked before the old key is changed
        if lifetime is not None:
            no_later_than_calling_token(
                db, actor, utcnow() + lifetime, "expires_in_days", "admin rotate-key"
            )
    ends = utcnow() + overlap
    if key.expires_at is None or key.expires_at > ends:
        key.expires_at = ends
    record(
        db, actor, "key.rotate", tenant, "api_key", key.key_id, old_key_expires_at=ends.isoformat()
    )
    collector = db.get(Collector, key.collector_id)
    assert collector is not None
    return issue_key(
        db, actor, tenant, collector, hasher, key.name, rotated_from=key, lifetime=lifetime
    )


def issued_lifetime(db: Session, key: ApiKey) -> timedelta | None:
    """How long ``key`` was issued for (None: for ever), to whole seconds: from its creation to
    its expiry. A key rotated already had its expiry cut to the overlap: the key that replaced it
    was given its lifetime, which is taken instead."""
    successor = db.scalar(
        select(ApiKey).where(ApiKey.rotated_from_id == key.id).order_by(ApiKey.id.desc()).limit(1)
    )
    issued = successor or key
    if issued.expires_at is None:
        return None
    seconds = round((issued.expires_at - issued.created_at).total_seconds())
    return timedelta(seconds=max(seconds, 1))


@dataclass(frozen=True)
class Identity:
    """Who a verified key speaks for: ingest tags and routes every point by this alone."""

    tenant_id: int
    tenant_slug: str
    database: str
    collector_id: int
    collector_name: str
    key_id: str
    key_pk: int
    ingest_rate: float | None = None  # the tenant's own limits; None: ingest's defaults
    ingest_burst: int | None = None
    pinned_host: str | None = None  # the host tag forced on its points; None: the client's kept


@dataclass(frozen=True)
class _Entry:
    identity: Identity
    secret_hash: str
    revoked: bool
    expires_at: datetime | None
    tenant_active: bool
    collector_active: bool

    def accepted(self, now: datetime) -> bool:
        """Whether the key, its collector and its tenant let a request in (its secret aside)."""
        return (
            not self.revoked
            and (self.expires_at is None or self.expires_at > now)
            and self.tenant_active
            and self.collector_active
        )


# What a verification needs of a key, its collector and its tenant, as plain columns: the
# revalidation reads thousands at a time, which ORM objects would make several times dearer.
_KEY_STATE = (
    select(
        ApiKey.id, ApiKey.key_id, ApiKey.secret_hash, ApiKey.revoked_at, ApiKey.expires_at,
        Tenant.id, Tenant.slug, Tenant.influx_database, Tenant.ingest_rate, Tenant.ingest_burst,
        Tenant.status, Collector.id, Collector.name, Collector.status, Collector.hostname,
        Collector.host_tag,
    )
    .join(Collector, Collector.id == ApiKey.collector_id)
    .join(Tenant, Tenant.id == ApiKey.tenant_id)
)  # fmt: skip


def _entry_from(row: tuple[Any, ...]) -> _Entry:
    (key_pk, key_id, secret_hash, revoked_at, expires_at, tenant_id, slug, database, rate,
     burst, tenant_status, collector_id, collector_name, collector_status, hostname,
     host_tag) = row  # fmt: skip
    pinned_host = hostname if host_tag == HOST_TAG_PINNED else None  # Collector.pinned_host
    identity = Identity(tenant_id, slug, database, collector_id, collector_name, key_id, key_pk,
                        rate, burst, pinned_host)  # fmt: skip
    return _Entry(identity, secret_hash, revoked_at is not None, expires_at,
                  tenant_status == "active", collector_status == "active")  # fmt: skip


class _Cached:
    """An accepted key's entry, when it was read (``validated_at``, the clock's time before the
    read began) and when a request last asked for it (``used_at``)."""

    __slots__ = ("entry", "source", "used_at", "validated_at")

    def __init__(self, entry: _Entry, source: tuple[Any, ...], validated_at: float) -> None:
        self.entry = entry
        self.source = source  # the row read: a revalidation reading the same only moves
        self.validated_at = validated_at  # this on
        self.used_at = validated_at


class _KeyCache:
    """Keys ingest may accept, least recently used first, apart from the key ids it refused
    (unknown, revoked, expired, of a disabled collector or tenant): refused ids, however many,
    never push an accepted key out. An accepted key is trusted ``ttl`` seconds after it was read;
    ``KeyVerifier.refresh`` reads the recently used ones again, in bulk, before that runs out.
    A refused id is looked up again after ``ttl`` seconds."""

    def __init__(
        self, ttl: float, max_keys: int = MAX_CACHED_KEYS, max_refused: int = MAX_REFUSED_IDS
    ) -> None:
        self.refused: TtlCache[str, _Entry | None] = TtlCache(ttl, max_entries=max_refused)
        self.ttl = ttl
        self.max_keys = max_keys
        self._accepted: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def find(self, key_id: str, now: float) -> tuple[bool, _Entry | None]:
        """``(True, entry)`` for a key read less than ``ttl`` ago (``entry`` None: unknown)."""
        with self._lock:
            cached = self._accepted.get(key_id)
            if cached is not None:
                cached.used_at = now
                self._accepted.move_to_end(key_id)
                if now - cached.validated_at < self.ttl:
                    return True, cached.entry
                return False, None
        return self.refused.lookup(key_id, now)

    def remember(
        self, key_id: str, source: tuple[Any, ...] | None, read_at: float
    ) -> _Entry | None:
        """The entry made from ``source`` (a _KEY_STATE row; None: no such key), cached as
        accepted or refused."""
        entry = None if source is None else _entry_from(source)
        if self.ttl <= 0:
            return entry
        if source is not None and entry is not None and entry.accepted(utcnow()):
            with self._lock:
                cached = self._accepted.get(key_id)
                if cached is None or cached.validated_at <= read_at:
                    self._accepted[key_id] = _Cached(entry, source, read_at)
                    self._accepted.move_to_end(key_id)
                    while len(self._accepted) > self.max_keys:
                        self._accepted.popitem(last=False)
            self.refused.discard(key_id)
        else:
            with self._lock:
                self._accepted.pop(key_id, None)
            self.refused.put(key_id, entry, read_at)
        return entry

    def in_use(self, now: float, idle_after: float) -> dict[int, str]:
        """The accepted keys used in the last ``idle_after`` seconds, by primary key; the others
        are dropped."""
        used: dict[int, str] = {}
        with self._lock:
            for key_id, cached in list(self._accepted.items()):
                if now - cached.used_at >= idle_after:
                    del self._accepted[key_id]
                else:
                    used[cached.entry.identity.key_pk] = key_id
        return used

    def revalidated(
        self, key_ids: dict[int, str], rows: dict[int, tuple[Any, ...]], read_at: float
    ) -> None:
        """Apply a revalidation read at ``read_at``: ``rows`` holds the rows found for the
        keys of ``key_ids`` (a key missing from it is gone). An entry read since is kept."""
        now = utcnow()
        refused: list[tuple[str, _Entry | None]] = []
        with self._lock:
            for key_pk, key_id in key_ids.items():
                cached = self._accepted.get(key_id)
                if cached is None or cached.validated_at >= read_at:
                    continue
                row = rows.get(key_pk)
                if row is not None and row == cached.source:
                    cached.validated_at = read_at
                    continue
                entry = None if row is None else _entry_from(row)
                if row is not None and entry is not None and entry.accepted(now):
                    cached.entry, cached.source, cached.validated_at = entry, row, read_at
                else:
                    del self._accepted[key_id]
                    refused.append((key_id, entry))
        for key_id, entry in refused:
            self.refused.put(key_id, entry, read_at)

    def discard(self, key_id: str) -> None:
        with self._lock:
            self._accepted.pop(key_id, None)
        self.refused.discard(key_id)

    def clear(self) -> None:
        with self._lock:
            self._accepted.clear()
        self.refused.clear()

    def __len__(self) -> int:
        return len(self._accepted)

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self.refused.after_fork()


def store_rehash(
    sessions: sessionmaker[Session],
    model: type[ApiKey] | type[ApiToken],
    pk: int,
    old: str,
    new: str,
) -> None:
    """Store a secret's HMAC under the current server secret in place of a previous one's.

    Conditional on the old value, so that concurrent workers rehashing the same secret agree.
    """
    with transaction(sessions) as db:
        db.execute(
            update(model).where(model.id == pk, model.secret_hash == old).values(secret_hash=new)
        )
    log.info("%s %d: secret re-hashed under the current server secret", model.__tablename__, pk)


_COLLECTOR_USE = (
    update(Collector)
    .where(Collector.id == bindparam("pk"))
    .values(
        points_received=Collector.points_received + bindparam("points", type_=BigInteger()),
        last_seen_at=bindparam("seen", type_=UTCDateTime()),
    )
)
# The keys whose last use is older than ``written_before`` (by any worker), locked in id order
# first: an UPDATE ... WHERE id IN (...) locks rows in its plan's order (a bitmap scan's is the
# rows' order on disk), and two workers' flushes then deadlocked on PostgreSQL.
_KEYS_DUE = (
    select(ApiKey.id)
    .where(ApiKey.id.in_(bindparam("pks", expanding=True)))
    .where(or_(
        ApiKey.last_used_at.is_(None),
        ApiKey.last_used_at < bindparam("written_before", type_=UTCDateTime()),
    ))
    .order_by(ApiKey.id)
    .with_for_update()
    .cte("due")
)  # fmt: skip
_KEY_USE = (
    update(ApiKey)
    .where(ApiKey.id == _KEYS_DUE.c.id)
    .values(last_used_at=bindparam("used", type_=UTCDateTime()))
    .returning(ApiKey.id)
)


class KeyVerifier:
    """Verifies collector keys for ingest (and the admin app's load-test uploads), and records
    their use.

    An accepted key is served from this process's cache while its state was read less than
    ``ttl`` seconds ago. A background thread re-reads, every ``ttl / 2`` seconds, the state of
    all the cached keys used in the last ``IDLE_AFTER`` seconds, ``BULK_ROWS`` per query
    (``refresh``), so that keys pushed to every 10-15 s are not looked up one by one, while a
    revoked key, a disabled collector or tenant, a changed host tag or secret is still felt
    within ``ttl``. Should the thread fall behind, a key whose read is older is looked up on its
    own, as before. The secret is checked against the cached HMAC on every call.

    Usage (``record_use``) is counted in memory and written by the same thread every
    ``flush_interval`` seconds (``flush``), never by a request: points and last seen per
    collector, last use per key at most once a minute, in id order so that concurrent flushes
    of several workers and replicas cannot deadlock. ``flush`` at worker exit writes the rest.
    ``background`` False (the default with a ``clock`` of one's own, as tests give) starts no
    thread: then ``refresh`` and ``flush`` run only when called.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        hasher: CredentialHasher,
        ttl: float = 2.0,
        flush_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        background: bool | None = None,
    ) -> None:
        self.sessions = sessions
        self.hasher = hasher
        self.ttl = ttl
        self.flush_interval = flush_interval
        self.clock = clock
        self.background = clock is time.monotonic if background is None else background
        self._cache = _KeyCache(ttl)
        self._points: dict[int, int] = {}  # collector id -> points accepted since the last flush
        self._used: set[int] = set()  # key pks used since the last flush
        # key pk -> when its use was flushed, for keys another worker had written under a minute
        # before: tried again with that time at the next flushes
        self._retry: dict[int, datetime] = {}
        self._unrecorded = 0  # points over MAX_PENDING collectors, reported by the next flush
        self._last_use_written: dict[int, float] = {}  # key pk -> clock() when written
        self._last_flush = self._last_refresh = clock()
        self._thread: threading.Thread | None = None
        self._new_locks()
        _EVERY_VERIFIER.add(self)

    def _new_locks(self) -> None:
        self._usage_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one flush at a time: a final one awaits the last
        self._start_lock = threading.Lock()
        self._stop = threading.Event()

    def verify(self, credential: str) -> Identity:
        """The identity behind a collector key; raises Unauthenticated (401) or Forbidden (403)."""
        parts = split_credential(credential)
        if parts is None or parts[0] != KEY_PREFIX:
            raise Unauthenticated("missing or malformed collector key")
        _, key_id, secret = parts
        entry = self._entry(key_id)
        match = None if entry is None else self.hasher.match(secret, entry.secret_hash)
        if entry is None or match is None:
            raise Unauthenticated("invalid collector key")
        if entry.revoked:
            raise Unauthenticated("this key has been revoked")
        if entry.expires_at is not None and entry.expires_at <= utcnow():
            raise Unauthenticated("this key has expired")
        if not entry.tenant_active:
            raise Forbidden("this key's tenant is disabled")
        if not entry.collector_active:
            raise Forbidden("this key's collector is disabled")
        if match.rehash is not None:
            store_rehash(
                self.sessions, ApiKey, entry.identity.key_pk, entry.secret_hash, match.rehash
            )
            self._cache.discard(key_id)
        return entry.identity

    def _entry(self, key_id: str) -> _Entry | None:
        now = self.clock()
        found, entry = self._cache.find(key_id, now)
        if found:
            return entry
        with transaction(self.sessions) as db:
            row = db.execute(_KEY_STATE.where(ApiKey.key_id == key_id)).first()
        entry = self._cache.remember(key_id, None if row is None else tuple(row), now)
        if self.ttl > 0:
            self._start_background()
        return entry

    def refresh(self) -> None:
        """Read again the state of the cached keys used in the last IDLE_AFTER seconds (the
        others are dropped), BULK_ROWS keys per query, each applied as it comes."""
        read_at = self.clock()
        in_use = self._cache.in_use(read_at, IDLE_AFTER)
        if not in_use:
            return
        ordered = sorted(in_use)
        with transaction(self.sessions) as db:
            for start in range(0, len(ordered), BULK_ROWS):
                chunk = ordered[start : start + BULK_ROWS]
                rows = {row[0]: tuple(row) for row in db.execute(
                    _KEY_STATE.where(ApiKey.id.in_(chunk))
                )}  # fmt: skip
                self._cache.revalidated({pk: in_use[pk] for pk in chunk}, rows, read_at)

    def record_use(self, identity: Identity, points: int) -> None:
        """Count accepted points; the background thread writes them (``flush``)."""
        with self._usage_lock:
            collector = identity.collector_id
            if collector in self._points or len(self._points) < MAX_PENDING:
                self._points[collector] = self._points.get(collector, 0) + points
            else:
                self._unrecorded += points
            if len(self._used) < MAX_PENDING:
                self._used.add(identity.key_pk)
        self._start_background()

    def flush(self) -> None:
        """Write the usage counted since the last flush, BULK_ROWS rows per statement (and
        transaction) in id order. What a failed statement held goes back for the next flush."""
        with self._flush_lock:
            with self._usage_lock:
                points, self._points = self._points, {}
                used, self._used = self._used, set()
                retry, self._retry = self._retry, {}
                unrecorded, self._unrecorded = self._unrecorded, 0
                self._last_flush = self.clock()
            if unrecorded:
                log.warning("%d accepted points were not counted in their collectors' points "
                            "received: usage of over %d collectors was pending (the admin "
                            "database unreachable?)", unrecorded, MAX_PENDING)  # fmt: skip
            if not points and not used and not retry:
                return
            now = self.clock()
            self._last_use_written = {
                pk: at for pk, at in self._last_use_written.items()
                if now - at < LAST_USE_RESOLUTION
            }  # fmt: skip
            wall = utcnow()
            counts = sorted(points.items())
            keys = [pk for pk in used if pk not in self._last_use_written]
            for pk in used:
                retry.pop(pk, None)  # used again: written with this flush's time
            # per time to write: the keys, in id order, then written BULK_ROWS at a time
            jobs: dict[datetime, list[int]] = {}
            for pk, at in retry.items():
                jobs.setdefault(at, []).append(pk)
            jobs.setdefault(wall, []).extend(keys)
            pending = [(at, pk) for at, pks in sorted(jobs.items()) for pk in sorted(pks)]
            skipped: dict[int, datetime] = {}  # another worker wrote them under a minute ago
            written_before = wall - timedelta(seconds=LAST_USE_RESOLUTION)
            done_counts = done_keys = 0
            try:
                for start in range(0, len(counts), BULK_ROWS):
                    chunk = counts[start : start + BULK_ROWS]
                    self._write(_COLLECTOR_USE, [
                        {"pk": collector, "points": total, "seen": wall}
                        for collector, total in chunk
                    ])  # fmt: skip
                    done_counts += len(chunk)
                for at, group in itertools.groupby(pending, key=lambda job: job[0]):
                    pks = [pk for _, pk in group]
                    for start in range(0, len(pks), BULK_ROWS):
                        chunk_keys = pks[start : start + BULK_ROWS]
                        written = self._written(chunk_keys, at, written_before)
                        for pk in written:
                            self._last_use_written[pk] = now
                        # not marked: tried again, with the time of this use, so that the stored
                        # last use is within a minute of the real one whichever worker writes it
                        skipped.update((pk, at) for pk in chunk_keys if pk not in written)
                        done_keys += len(chunk_keys)
            except Exception:
                log.exception("could not record key usage (%d collectors, %d keys); kept for "
                              "the next flush", len(counts) - done_counts,
                              len(pending) - done_keys)  # fmt: skip
                with self._usage_lock:
                    for collector, total in counts[done_counts:]:
                        self._points[collector] = self._points.get(collector, 0) + total
                    for at, pk in pending[done_keys:]:
                        skipped.setdefault(pk, at)
            if skipped:
                with self._usage_lock:
                    for pk, at in skipped.items():
                        if pk not in self._used:  # a newer use is written with its own time
                            self._retry.setdefault(pk, at)

    def _written(self, pks: list[int], used: datetime, written_before: datetime) -> set[int]:
        """Write ``used`` as the last use of the keys of ``pks`` not written since
        ``written_before`` (by any worker); the keys it was written for."""
        with transaction(self.sessions) as db:
            found = db.connection().execute(
                _KEY_USE, {"pks": pks, "used": used, "written_before": written_before}
            )
            return {row[0] for row in found}

    def _write(self, statement: Update, rows: list[dict[str, Any]]) -> None:
        with transaction(self.sessions) as db:
            db.connection().execute(statement, rows)

    def run_due(self) -> None:
        """The background thread's round: a refresh and a flush, each when due."""
        now = self.clock()
        if self.ttl > 0 and now - self._last_refresh >= self.ttl / 2 * EARLY_ENOUGH:
            self._last_refresh = now
            try:
                self.refresh()
            except Exception:
                log.exception("could not revalidate the cached collector keys; each is looked "
                              "up on its own until this works again")  # fmt: skip
        if now - self._last_flush >= self.flush_interval:
            self.flush()

    def _start_background(self) -> None:
        if self._thread is not None or not self.background:
            return
        with self._start_lock:
            if self._thread is None:
                period = self.flush_interval
                if self.ttl > 0:
                    period = min(self.ttl / 2, period)
                thread = threading.Thread(
                    target=_run_in_background,
                    args=(weakref.ref(self), self._stop, period),
                    name="key-verifier",
                    daemon=True,
                )
                thread.start()
                self._thread = thread

    def close(self) -> None:
        """Stop the background thread and write what usage remains."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()

    def _after_fork(self) -> None:
        """In a forked child: no thread yet (started on first use), new locks, and no usage:
        what was pending is the parent's to write."""
        self._new_locks()
        self._cache.after_fork()
        self._thread = None
        self._points, self._used, self._unrecorded = {}, set(), 0
        self._retry = {}


def _run_in_background(
    verifier_ref: weakref.ReferenceType[KeyVerifier], stop: threading.Event, period: float
) -> None:
    """A verifier's thread: its rounds, until it is closed or nothing refers to it."""
    while not stop.wait(period):
        verifier = verifier_ref()
        if verifier is None:
            return
        try:
            verifier.run_due()
        except Exception:
            log.exception("key verifier's background round failed")
        del verifier


_EVERY_VERIFIER: weakref.WeakSet[KeyVerifier] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for verifier in list(_EVERY_VERIFIER):
        verifier._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
