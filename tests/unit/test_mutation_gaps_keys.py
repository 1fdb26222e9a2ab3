"""Mutation-audit gaps in tenants/keys.py: rotating a key that expires within the overlap, usage
accounting across flush intervals (and a failed flush), the lifetime's lower bound, the tenant
checks on direct calls, and revoking a key twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.collectors import register_collector
from tenants.errors import Invalid, NotFound
from tenants.keys import (
    KeyVerifier,
    issue_key,
    issued_lifetime,
    keys_page,
    revoke_key,
    revoke_keys,
    rotate_key,
)
from tenants.models import ApiKey, AuditEvent, Collector, Tenant, utcnow


def setup(app: Flask, slug: str = "acme") -> tuple[Session, Tenant, Collector]:
    db = database.session()
    tenant = tenant_for(db, system_actor(), slug)
    collector = register_collector(db, system_actor(), tenant, {"name": "web1", "hostname": "w1"})
    return db, tenant, collector


# ----------------------------------------------------------------------------------------------
# Rotation


def test_rotating_a_key_that_expires_within_the_overlap_keeps_its_expiry(
    app: Flask, make_tenant: Any
) -> None:
    make_tenant("acme")
    with app.app_context():
        db, acme, web1 = setup(app)
        hasher = app.extensions["pa_hasher"]
        old = issue_key(db, system_actor(), acme, web1, hasher, expires_in_days=1)
        expires_at = old.key.expires_at
        new = rotate_key(db, system_actor(), acme, old.key, hasher, timedelta(days=30))
        db.expire_all()
        stored = db.get(ApiKey, old.key.id)
        assert stored is not None
        assert stored.expires_at == expires_at  # not pushed out to the 30-day overlap
        # and the new key is issued for the old key's one day
        assert new.key.expires_at is not None
        assert new.key.created_at is not None
        assert new.key.expires_at - new.key.created_at == timedelta(days=1)
        assert issued_lifetime(db, stored) == timedelta(days=1)


def test_rotating_a_key_that_expires_after_the_overlap_cuts_it_to_the_overlap(
    app: Flask, make_tenant: Any
) -> None:
    make_tenant("acme")
    with app.app_context():
        db, acme, web1 = setup(app)
        hasher = app.extensions["pa_hasher"]
        old = issue_key(db, system_actor(), acme, web1, hasher, expires_in_days=30)
        before = utcnow()
        rotate_key(db, system_actor(), acme, old.key, hasher, timedelta(hours=2))
        after = utcnow()
        db.expire_all()
        stored = db.get(ApiKey, old.key.id)
        assert stored is not None
        assert stored.expires_at is not None
        assert before + timedelta(hours=2) <= stored.expires_at <= after + timedelta(hours=2)


# ----------------------------------------------------------------------------------------------
# Usage accounting


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_usage_adds_up_across_intervals_and_survives_a_failed_flush(
    app: Flask, make_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tenant("acme")
    with app.app_context():
        db, acme, web1 = setup(app)
        issued = issue_key(db, system_actor(), acme, web1, app.extensions["pa_hasher"])
        clock = Clock()
        sessions = app.extensions["pa_sessions"]
        verifier = KeyVerifier(
            sessions, app.extensions["pa_hasher"], ttl=0, flush_interval=5.0, clock=clock
        )
        identity = verifier.verify(issued.plaintext)

        def stored() -> tuple[int, Any, Any]:
            db.expire_all()
            collector = db.get(Collector, web1.id)
            key = db.get(ApiKey, issued.key.id)
            assert collector is not None
            assert key is not None
            return collector.points_received, collector.last_seen_at, key.last_used_at

        verifier.record_use(identity, 100)
        clock.now += 4.9
        verifier.record_use(identity, 50)
        verifier.run_due()
        assert stored() == (0, None, None)  # within the interval: nothing written yet
        clock.now += 0.1
        before = utcnow()
        verifier.record_use(identity, 25)
        assert stored() == (0, None, None)  # the interval is up, but a request never writes
        verifier.run_due()  # the background thread's round
        points, seen, used = stored()
        assert points == 175
        assert seen is not None
        assert used is not None
        assert seen >= before
        assert used >= before

        clock.now += 5.0
        verifier.record_use(identity, 10)
        verifier.run_due()  # the next interval adds to what is stored
        assert stored()[0] == 185

        def broken() -> Session:
            raise RuntimeError("database unreachable")

        monkeypatch.setattr(verifier, "sessions", broken)
        clock.now += 5.0
        verifier.record_use(identity, 7)
        verifier.run_due()  # due, but the write fails: kept for the next one
        monkeypatch.setattr(verifier, "sessions", sessions)
        assert stored()[0] == 185
        verifier.record_use(identity, 3)
        verifier.run_due()
        assert stored()[0] == 185  # the failed flush started a new interval
        clock.now += 5.0
        verifier.record_use(identity, 1)
        verifier.run_due()
        assert stored()[0] == 196  # 185 + 7 (kept) + 3 + 1


# ----------------------------------------------------------------------------------------------
# The lifetime's lower bound and the tenant checks


@pytest.mark.parametrize("days", [0, -1, True])
def test_a_key_lifetime_of_no_days_is_refused(app: Flask, make_tenant: Any, days: Any) -> None:
    make_tenant("acme")
    with app.app_context():
        db, acme, web1 = setup(app)
        with pytest.raises(Invalid, match="from 1 to 3650"):
            issue_key(db, system_actor(), acme, web1, app.extensions["pa_hasher"],
                      expires_in_days=days)  # fmt: skip
        assert db.scalar(select(func.count()).select_from(ApiKey)) == 0
        one = issue_key(db, system_actor(), acme, web1, app.extensions["pa_hasher"],
                        expires_in_days=1)  # fmt: skip
        assert one.key.expires_at is not None


def test_direct_calls_with_another_tenants_objects_find_nothing(
    app: Flask, make_tenant: Any
) -> None:
    make_tenant("acme")
    make_tenant("other")
    with app.app_context():
        db, acme, acme_web1 = setup(app, "acme")
        _, other, other_web1 = setup(app, "other")
        hasher = app.extensions["pa_hasher"]
        with pytest.raises(NotFound, match="no such collector"):
            issue_key(db, system_actor(), acme, other_web1, hasher)
        assert db.scalar(select(func.count()).select_from(ApiKey)) == 0
        other_key = issue_key(db, system_actor(), other, other_web1, hasher).key
        acme_key = issue_key(db, system_actor(), acme, acme_web1, hasher).key
        with pytest.raises(NotFound, match="no such collector"):
            keys_page(db, system_actor(), acme, 10, collector=other_web1)
        assert [k.id for k in keys_page(db, system_actor(), acme, 10).items] == [acme_key.id]
        with pytest.raises(NotFound, match="no such key"):
            revoke_keys(db, system_actor(), acme, [acme_key, other_key])
        with pytest.raises(NotFound, match="no such key"):
            revoke_key(db, system_actor(), acme, other_key)
        db.expire_all()
        assert db.get(ApiKey, other_key.id).revoked_at is None  # type: ignore[union-attr]
        assert db.get(ApiKey, acme_key.id).revoked_at is None  # all of them, or none


def test_revoking_a_revoked_key_changes_nothing_and_is_audited_once(
    app: Flask, make_tenant: Any
) -> None:
    make_tenant("acme")
    with app.app_context():
        db, acme, web1 = setup(app)
        key = issue_key(db, system_actor(), acme, web1, app.extensions["pa_hasher"]).key
        revoke_key(db, system_actor(), acme, key)
        db.expire_all()
        first = db.get(ApiKey, key.id)
        assert first is not None
        assert first.revoked_at is not None
        revoked_at = first.revoked_at
        revoke_keys(db, system_actor(), acme, [first])
        db.expire_all()
        again = db.get(ApiKey, key.id)
        assert again is not None
        assert again.revoked_at == revoked_at
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "key.revoke")).all()
        assert len(events) == 1
