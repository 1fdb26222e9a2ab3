"""Collector API keys: issue (shown once), rotate with an overlap, revoke, expire, verify.

Ingest verifies each request's key through ``KeyVerifier``: lookups are cached for at most
``ttl`` seconds (so a revocation is felt within that time, 5 s at most), the secret is checked
by HMAC in constant time on every call, and last use, last seen and points received are written
back in batches rather than once per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, joinedload, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from tenants import validation
from tenants.access import Actor, require
from tenants.audit import record
from tenants.crypto import KEY_PREFIX, CredentialHasher, split_credential
from tenants.db import transaction
from tenants.errors import Forbidden, Invalid, NotFound, Unauthenticated
from tenants.grants import calling_token_expiry, no_later_than_calling_token
from tenants.models import ApiKey, ApiToken, Collector, Tenant, utcnow
from tenants.paging import Order, Page, fetch_page
from tenants.ttlcache import TtlCache

log = logging.getLogger(__name__)

MAX_EXPIRY_DAYS = 3650
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=30)


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


class KeyVerifier:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        hasher: CredentialHasher,
        ttl: float = 2.0,
        flush_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.hasher = hasher
        self.flush_interval = flush_interval
        self.clock = clock
        self._cache: TtlCache[str, _Entry | None] = TtlCache(ttl, clock)
        self._usage: dict[int, tuple[int, int]] = {}  # key pk -> (collector id, points)
        self._usage_lock = threading.Lock()
        self._last_flush = clock()

    def verify(self, credential: str) -> Identity:
        """The identity behind a collector key; raises Unauthenticated (401) or Forbidden (403)."""
        parts = split_credential(credential)
        if parts is None or parts[0] != KEY_PREFIX:
            raise Unauthenticated("missing or malformed collector key")
        _, key_id, secret = parts
        entry = self._cache.get(key_id, self._load)
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
            self._cache.discard_if(lambda cached_id, _: cached_id == key_id)
        return entry.identity

    def _load(self, key_id: str) -> _Entry | None:
        with transaction(self.sessions) as db:
            row = db.execute(
                select(ApiKey, Collector, Tenant)
                .join(Collector, Collector.id == ApiKey.collector_id)
                .join(Tenant, Tenant.id == ApiKey.tenant_id)
                .where(ApiKey.key_id == key_id)
            ).first()
            if row is None:
                return None
            key, collector, tenant = row
            identity = Identity(tenant.id, tenant.slug, tenant.influx_database, collector.id,
                                collector.name, key.key_id, key.id, tenant.ingest_rate,
                                tenant.ingest_burst, collector.pinned_host)  # fmt: skip
            return _Entry(identity, key.secret_hash, key.revoked_at is not None, key.expires_at,
                          tenant.active, collector.active)  # fmt: skip

    def record_use(self, identity: Identity, points: int) -> None:
        """Count accepted points; written to the database every ``flush_interval`` seconds."""
        with self._usage_lock:
            _, total = self._usage.get(identity.key_pk, (identity.collector_id, 0))
            self._usage[identity.key_pk] = (identity.collector_id, total + points)
            due = self.clock() - self._last_flush >= self.flush_interval
        if due:
            self.flush()

    def flush(self) -> None:
        with self._usage_lock:
            usage, self._usage = self._usage, {}
            self._last_flush = self.clock()
        if not usage:
            return
        now = utcnow()
        try:
            with transaction(self.sessions) as db:
                for key_pk, (collector_id, points) in usage.items():
                    db.execute(update(ApiKey).where(ApiKey.id == key_pk).values(last_used_at=now))
                    db.execute(
                        update(Collector)
                        .where(Collector.id == collector_id)
                        .values(
                            last_seen_at=now, points_received=Collector.points_received + points
                        )
                    )
        except Exception:
            log.exception("could not record key usage; will retry with the next flush")
            with self._usage_lock:
                for key_pk, (collector_id, points) in usage.items():
                    _, more = self._usage.get(key_pk, (collector_id, 0))
                    self._usage[key_pk] = (collector_id, points + more)
