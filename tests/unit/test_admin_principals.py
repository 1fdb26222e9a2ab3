"""The per-process cache of who a request acts as, and the per-transaction memo of roles.

Both save queries on every request; what they must not do is keep a revoked token, a disabled
user or an old password working for longer than ``key-cache-seconds``, or let a role changed
within a transaction be judged by its old value.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select, update

from tenants import db as database
from tenants.access import role_in, system_actor, tenant_for
from tenants.accounts import get_user_by_email, issue_token, set_membership
from tenants.models import ApiToken, Membership, Tenant, User, utcnow
from tenants.principals import LAST_USE_RESOLUTION
from tests.conftest import PASSWORD, FrozenClock, csrf, login

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def clock(principal_clock: FrozenClock) -> FrozenClock:
    return principal_clock


@pytest.fixture
def token(app: Flask, make_tenant: Any) -> str:
    make_tenant("acme", {"ana@acme.test": "analyst"})
    with app.app_context():
        db = database.session()
        user = get_user_by_email(db, "ana@acme.test")
        assert user is not None
        return issue_token(db, user, app.extensions["pa_hasher"], "tests")[1]


def _me(client: FlaskClient, token: str) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def _change(app: Flask, statement: Any) -> None:
    with app.app_context():
        db = database.session()
        db.execute(statement)
        db.commit()


def test_revoked_token_works_at_most_ttl_seconds(
    app: Flask, client: FlaskClient, token: str, clock: FrozenClock
) -> None:
    ttl = app.extensions["pa_principals"].ttl
    assert 0 < ttl <= 5
    assert _me(client, token) == 200
    _change(app, update(ApiToken).values(revoked_at=utcnow()))
    clock.now += ttl * 0.9
    assert _me(client, token) == 200  # still cached: the documented bound
    clock.now += ttl * 0.2
    assert _me(client, token) == 401


def test_disabled_user_and_expired_token_are_refused_after_ttl(
    app: Flask, client: FlaskClient, token: str, clock: FrozenClock
) -> None:
    assert _me(client, token) == 200
    _change(app, update(User).where(User.email == "ana@acme.test").values(is_active=False))
    clock.now += app.extensions["pa_principals"].ttl
    assert _me(client, token) == 401
    _change(app, update(User).values(is_active=True))
    _change(app, update(ApiToken).values(expires_at=utcnow()))
    clock.now += app.extensions["pa_principals"].ttl
    assert _me(client, token) == 401


def test_a_wrong_secret_is_refused_even_when_the_token_id_is_cached(
    client: FlaskClient, token: str, clock: FrozenClock
) -> None:
    assert _me(client, token) == 200
    prefix, token_id, secret = token.split("_", 2)
    forged = f"{prefix}_{token_id}_{'A' * len(secret)}"
    assert forged != token
    assert _me(client, forged) == 401
    assert _me(client, token) == 200


def test_cached_requests_ask_the_database_nothing_about_the_token(
    app: Flask, client: FlaskClient, token: str, clock: FrozenClock
) -> None:
    assert _me(client, token) == 200
    statements = _statements(app)
    assert _me(client, token) == 200
    assert not [s for s in statements if "api_tokens" in s or "FROM users" in s]


def test_last_use_is_written_once_a_minute(
    app: Flask, client: FlaskClient, token: str, clock: FrozenClock
) -> None:
    assert _me(client, token) == 200
    first = _last_used(app)
    assert first is not None
    _change(app, update(ApiToken).values(last_used_at=None))
    clock.now += LAST_USE_RESOLUTION / 2
    assert _me(client, token) == 200
    assert _last_used(app) is None
    clock.now += LAST_USE_RESOLUTION
    assert _me(client, token) == 200
    assert _last_used(app) is not None


def test_password_change_ends_other_sessions_at_once_in_this_process(
    app: Flask, make_tenant: Any, clock: FrozenClock
) -> None:
    make_tenant("acme", {"ana@acme.test": "analyst"})
    mine, other = app.test_client(), app.test_client()
    login(mine, "ana@acme.test")
    login(other, "ana@acme.test")
    assert other.get("/tenants/acme").status_code == 200
    changed = mine.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "a new password 5678",
              "csrf_token": csrf(mine)},
    )  # fmt: skip
    assert changed.status_code == 302
    assert other.get("/tenants/acme").status_code == 302  # to the login page, with no clock move
    assert mine.get("/tenants/acme").status_code == 200


def test_password_changed_by_another_process_ends_sessions_within_ttl(
    app: Flask, client: FlaskClient, make_tenant: Any, clock: FrozenClock
) -> None:
    make_tenant("acme", {"ana@acme.test": "analyst"})
    login(client, "ana@acme.test")
    assert client.get("/tenants/acme").status_code == 200
    _change(
        app,
        update(User).where(User.email == "ana@acme.test").values(password_changed_at=utcnow()),
    )
    clock.now += app.extensions["pa_principals"].ttl
    assert client.get("/tenants/acme").status_code == 302


def test_role_is_asked_once_per_transaction_and_again_after_a_change(
    app: Flask, make_tenant: Any
) -> None:
    make_tenant("acme", {"ana@acme.test": "analyst"})
    with app.app_context():
        db = database.session()
        user = get_user_by_email(db, "ana@acme.test")
        tenant = db.scalar(select(Tenant).where(Tenant.slug == "acme"))
        assert user is not None
        assert tenant is not None
        statements = _statements(app)
        assert role_in(db, user, tenant) == "analyst"
        assert role_in(db, user, tenant) == "analyst"
        assert len([s for s in statements if "memberships" in s]) == 1
        set_membership(db, system_actor(), tenant, user.email, "viewer")  # flushes and commits
        assert role_in(db, user, tenant) == "viewer"
        membership = db.scalar(select(Membership).where(Membership.user_id == user.id))
        assert membership is not None
        membership.role = "admin"
        db.flush()  # the same transaction: only the flush hook can tell the memo
        assert role_in(db, user, tenant) == "admin"


def test_a_member_gets_tenant_and_role_in_one_query(app: Flask, make_tenant: Any) -> None:
    from tenants.access import Actor
    from tenants.errors import Forbidden, NotFound

    make_tenant("acme", {"vic@acme.test": "viewer"})
    make_tenant("other")
    with app.app_context():
        db = database.session()
        user = get_user_by_email(db, "vic@acme.test")
        assert user is not None
        actor = Actor(user, user.email)
        statements = _statements(app)
        assert tenant_for(db, actor, "acme").slug == "acme"
        assert len(statements) == 1
        with pytest.raises(Forbidden):
            tenant_for(db, actor, "acme", "admin")
        with pytest.raises(NotFound):
            tenant_for(db, actor, "other")  # a non-member learns nothing
        with pytest.raises(NotFound):
            tenant_for(db, actor, "nope")


def _statements(app: Flask) -> list[str]:
    """Every SQL statement the app's engine runs from now on (until the app is disposed)."""
    seen: list[str] = []
    event.listen(
        app.extensions["pa_engine"],
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: seen.append(statement),
    )
    return seen


def _last_used(app: Flask) -> Any:
    with app.app_context():
        return database.session().scalar(select(ApiToken.last_used_at))
