"""Sessions are recorded server-side: logging out ends a session for every copy of its cookie,
a password change ends all of the user's other sessions, and only a hash of the id is stored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tenants import db as database
from tenants.models import User, WebSession, utcnow
from tests.conftest import PASSWORD
from tests.unit.test_admin_pages import (  # noqa: F401 (world is a fixture)
    ADMIN,
    ANALYST,
    logged_in,
    post,
    world,
)

pytestmark = pytest.mark.usefixtures("fast_password_hashing", "world")
COOKIE = "pa_session"


def copy_of(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    other = app.test_client()
    other.set_cookie(COOKIE, cookie.value)
    return other


def signed_in(client: FlaskClient) -> bool:
    page = client.get("/tenants/a")
    if page.status_code == 200:
        return True
    assert page.status_code == 302
    assert page.location.startswith("/login")
    return False


def sessions_of(app: Flask, email: str) -> int:
    with app.app_context():
        user_id = database.session().scalar(select(User.id).where(User.email == email))
        return database.session().scalar(
            select(func.count()).select_from(WebSession).where(WebSession.user_id == user_id)
        )


def test_logging_out_ends_the_session_for_a_copy_of_its_cookie_too(app: Flask) -> None:
    client = logged_in(app, ANALYST)
    stolen = copy_of(app, client)
    assert signed_in(stolen)
    assert post(client, "/logout", {}).status_code == 302
    assert not signed_in(stolen)
    assert stolen.get("/api/v1/me").status_code == 401
    assert sessions_of(app, ANALYST) == 0


def test_logging_out_in_one_browser_leaves_the_others_signed_in(app: Flask) -> None:
    laptop, desktop = logged_in(app, ANALYST), logged_in(app, ANALYST)
    assert sessions_of(app, ANALYST) == 2
    post(laptop, "/logout", {})
    assert not signed_in(laptop)
    assert signed_in(desktop)
    assert sessions_of(app, ANALYST) == 1


def test_logging_in_again_replaces_the_browsers_session(app: Flask) -> None:
    client = logged_in(app, ANALYST)
    before = copy_of(app, client)
    client.get("/login")
    post(client, "/login", {"email": ANALYST, "password": PASSWORD})
    assert signed_in(client)
    assert not signed_in(before)
    assert sessions_of(app, ANALYST) == 1


def test_a_password_change_ends_every_other_session_and_its_record(app: Flask) -> None:
    client, other = logged_in(app, ANALYST), logged_in(app, ANALYST)
    stolen = copy_of(app, client)
    changed = post(client, "/account/password",
                   {"current_password": PASSWORD, "new_password": "a new password 5678"})  # fmt: skip
    assert changed.status_code == 302
    assert signed_in(client)
    assert not signed_in(other)
    assert not signed_in(stolen)
    assert sessions_of(app, ANALYST) == 1


def test_only_a_hash_of_the_session_id_is_stored(app: Flask) -> None:
    client = logged_in(app, ANALYST)
    with client.session_transaction() as session:
        session_id = session["sid"]
    with app.app_context():
        stored = database.session().scalars(select(WebSession.id_hash)).all()
    assert len(session_id) >= 43
    assert stored
    assert all(session_id not in value for value in stored)


def test_an_expired_record_signs_nobody_in_and_is_removed_at_the_next_login(app: Flask) -> None:
    client = logged_in(app, ANALYST)
    with app.app_context():
        db = database.session()
        for record in db.scalars(select(WebSession)):
            record.expires_at = utcnow() - timedelta(seconds=1)
        db.commit()
    app.extensions["pa_principals"].forget_user(_user_id(app, ANALYST))
    assert not signed_in(client)
    logged_in(app, ADMIN)
    assert sessions_of(app, ANALYST) == 0
    assert sessions_of(app, ADMIN) == 1


def _user_id(app: Flask, email: str) -> int:
    with app.app_context():
        user_id: int = database.session().scalar(select(User.id).where(User.email == email))
        return user_id
