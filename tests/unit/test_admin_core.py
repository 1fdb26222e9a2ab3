"""Services of the admin app: tenancy, roles, keys and the verifier ingest relies on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tenants import db as database
from tenants.access import Actor, system_actor, tenant_for
from tenants.collectors import list_collectors, register_collector
from tenants.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from tenants.keys import KeyVerifier, issue_key, revoke_key, rotate_key
from tenants.models import ApiKey, AuditEvent, Collector, User, utcnow
from tests.conftest import PASSWORD, login


def actor_for(app: Flask, email: str) -> Actor:
    user = database.session().scalar(select(User).where(User.email == email))
    return Actor(user, email)


def test_roles_gate_each_action(app: Flask, make_tenant: Any) -> None:
    make_tenant(
        "acme", {"boss@acme.test": "admin", "ana@acme.test": "analyst", "vic@acme.test": "viewer"}
    )
    make_tenant("other", {"out@other.test": "admin"})
    with app.app_context():
        db = database.session()
        fields = {"name": "web1", "hostname": "web1.acme.test"}
        acme = tenant_for(db, system_actor(), "acme")
        register_collector(db, actor_for(app, "boss@acme.test"), acme, fields)
        with pytest.raises(Forbidden):
            register_collector(
                db, actor_for(app, "vic@acme.test"), acme, {**fields, "name": "web2"}
            )
        with pytest.raises(Forbidden):
            register_collector(
                db, actor_for(app, "ana@acme.test"), acme, {**fields, "name": "web3"}
            )
        assert [c.name for c in list_collectors(db, actor_for(app, "vic@acme.test"), acme)] == [
            "web1"
        ]
        with pytest.raises(NotFound):  # another tenant's admin does not even learn it exists
            tenant_for(db, actor_for(app, "out@other.test"), "acme")
        with pytest.raises(Conflict):
            register_collector(db, actor_for(app, "boss@acme.test"), acme, fields)
        with pytest.raises(Invalid, match="hostname"):
            register_collector(
                db, actor_for(app, "boss@acme.test"), acme, {"name": "x", "hostname": "no spaces"}
            )
        assert db.scalar(select(Collector).where(Collector.name == "x")) is None


def test_keys_are_stored_hashed_and_verified(app: Flask, make_tenant: Any) -> None:
    make_tenant("acme")
    with app.app_context():
        db = database.session()
        acme = tenant_for(db, system_actor(), "acme")
        web1 = register_collector(db, system_actor(), acme, {"name": "web1", "hostname": "web1"})
        issued = issue_key(db, system_actor(), acme, web1, app.extensions["pa_hasher"], "main")
        plaintext = issued.plaintext
        assert plaintext.startswith("pak_")
        stored = db.scalar(select(ApiKey))
        assert stored is not None
        secret = plaintext.split("_", 2)[2]
        assert secret not in stored.secret_hash
        assert plaintext not in str(db.scalars(select(AuditEvent.details)).all())

        verifier = KeyVerifier(app.extensions["pa_sessions"], app.extensions["pa_hasher"], ttl=0)
        identity = verifier.verify(plaintext)
        assert (identity.tenant_slug, identity.collector_name, identity.database) == (
            "acme",
            "web1",
            "pa_acme",
        )
        with pytest.raises(Unauthenticated):
            verifier.verify(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"))
        with pytest.raises(Unauthenticated):
            verifier.verify("Token " + plaintext)
        verifier.record_use(identity, 250)
        verifier.flush()
        db.expire_all()
        assert db.get(Collector, web1.id).points_received == 250  # type: ignore[union-attr]


def test_revocation_is_felt_within_the_cache_ttl(app: Flask, make_tenant: Any) -> None:
    make_tenant("acme")
    now = [1000.0]
    with app.app_context():
        db = database.session()
        acme = tenant_for(db, system_actor(), "acme")
        web1 = register_collector(db, system_actor(), acme, {"name": "web1", "hostname": "web1"})
        issued = issue_key(db, system_actor(), acme, web1, app.extensions["pa_hasher"])
        verifier = KeyVerifier(
            app.extensions["pa_sessions"],
            app.extensions["pa_hasher"],
            ttl=2.0,
            clock=lambda: now[0],
        )
        verifier.verify(issued.plaintext)
        revoke_key(db, system_actor(), acme, issued.key)
        now[0] += 1.9
        verifier.verify(issued.plaintext)  # still cached: the documented window
        now[0] += 0.2
        with pytest.raises(Unauthenticated, match="revoked"):
            verifier.verify(issued.plaintext)


def test_rotation_keeps_the_old_key_for_the_overlap(app: Flask, make_tenant: Any) -> None:
    make_tenant("acme")
    with app.app_context():
        db = database.session()
        acme = tenant_for(db, system_actor(), "acme")
        web1 = register_collector(db, system_actor(), acme, {"name": "web1", "hostname": "web1"})
        old = issue_key(db, system_actor(), acme, web1, app.extensions["pa_hasher"])
        new = rotate_key(
            db, system_actor(), acme, old.key, app.extensions["pa_hasher"], timedelta(hours=1)
        )
        verifier = KeyVerifier(app.extensions["pa_sessions"], app.extensions["pa_hasher"], ttl=0)
        verifier.verify(old.plaintext)
        verifier.verify(new.plaintext)
        assert new.key.rotated_from_id == old.key.id
        old.key.expires_at = utcnow() - timedelta(seconds=1)
        db.commit()
        with pytest.raises(Unauthenticated, match="expired"):
            verifier.verify(old.plaintext)


def test_disabled_tenant_or_collector_is_forbidden(app: Flask, make_tenant: Any) -> None:
    from tenants.collectors import set_collector_status
    from tenants.tenancy import set_tenant_status

    make_tenant("acme")
    with app.app_context():
        db = database.session()
        acme = tenant_for(db, system_actor(), "acme")
        web1 = register_collector(db, system_actor(), acme, {"name": "web1", "hostname": "web1"})
        issued = issue_key(db, system_actor(), acme, web1, app.extensions["pa_hasher"])
        verifier = KeyVerifier(app.extensions["pa_sessions"], app.extensions["pa_hasher"], ttl=0)
        set_collector_status(db, system_actor(), acme, web1, False)
        with pytest.raises(Forbidden, match="collector is disabled"):
            verifier.verify(issued.plaintext)
        set_collector_status(db, system_actor(), acme, web1, True)
        set_tenant_status(db, system_actor(), acme, False)
        with pytest.raises(Forbidden, match="tenant is disabled"):
            verifier.verify(issued.plaintext)


def test_login_page_logs_in_and_password_is_hashed(client: Any, make_user: Any, app: Flask) -> None:
    make_user("root@example.test", platform_admin=True)
    login(client, "root@example.test")
    with app.app_context():
        stored = database.session().scalar(select(User.password_hash))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_cli_issues_a_key_once_and_revokes_it(runner: Any, make_tenant: Any) -> None:
    make_tenant("acme")
    assert runner("create-collector", "acme", "web1", "--hostname", "web1.acme.test").exit_code == 0
    result = runner("issue-key", "acme", "web1")
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip().splitlines()[-1]
    assert plaintext.startswith("pak_")
    key_id = plaintext.split("_")[1]
    result = runner("revoke-key", "acme", key_id)
    assert result.exit_code == 0
    assert f"revoked key {key_id}" in result.output
