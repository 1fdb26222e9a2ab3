"""/api/v1/users/{user_id}: a platform admin reads one user and enables, disables, grants or
revokes platform admin; nobody else may (403, even for an id that names no user); the last
active platform admin stays (409, the CLI's message); a disabled user's session and API token
are refused on the next request; every change is audited, and a change that changes nothing
records nothing. Also the service that makes both changes in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from tenants import db as database
from tenants.access import system_actor
from tenants.accounts import change_user, get_user_by_email
from tenants.errors import Conflict
from tenants.models import AuditEvent, Invitation, User, WebSession
from tests.conftest import (
    PASSWORD,
    Caller,
    FrozenClock,
    csrf,
    issue_test_token,
    login,
    table_snapshot,
)

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ROOT, BOSS, ANA, VIC, OUT = (
    "root@example.test", "boss@acme.test", "ana@acme.test", "vic@acme.test", "out@other.test"
)  # fmt: skip
LAST_ADMIN = (
    "cannot {change} {email}: they are the last active platform admin; "
    "make another user platform admin first"
)


@dataclass
class World:
    """Root (platform admin); tenant acme (boss admin, ana analyst, vic viewer); tenant other
    (out admin). The principal cache's clock stands still: a change is felt at once only if the
    request that made it made this process forget the user."""

    app: Flask
    client: FlaskClient
    callers: dict[str, Caller]
    ids: dict[str, int]

    def __call__(self, who: str, method: str, path: str, body: Any = None) -> TestResponse:
        return self.callers[who](method, f"/users{path}", body)

    def patch(self, who: str, whom: str, body: Any) -> TestResponse:
        """``who`` changes the user ``whom`` (a key of ``ids``)."""
        return self(who, "PATCH", f"/{self.ids[whom]}", body)

    def user(self, email: str) -> tuple[bool, bool]:
        """(is_active, is_platform_admin)"""
        with self.app.app_context():
            found = database.session().scalar(select(User).where(User.email == email))
            assert found is not None
            return found.is_active, found.is_platform_admin

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        return table_snapshot(self.app, frozenset({"last_used_at"}))

    def user_events(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(action, actor, target id, details) of every user.* change, oldest first."""
        with self.app.app_context():
            events = database.session().scalars(
                select(AuditEvent)
                .where(AuditEvent.action.startswith("user."), AuditEvent.action != "user.create")
                .order_by(AuditEvent.id)
            )
            return [(e.action, e.actor, e.target_id, dict(e.details)) for e in events]


@pytest.fixture
def world(
    app: Flask, client: FlaskClient, make_user: Any, make_tenant: Any, principal_clock: FrozenClock
) -> World:
    make_user(ROOT, platform_admin=True)
    make_tenant("acme", {BOSS: "admin", ANA: "analyst", VIC: "viewer"})
    make_tenant("other", {OUT: "admin"})
    callers = {
        name: Caller(client, issue_test_token(app, email))
        for name, email in [("root", ROOT), ("boss", BOSS), ("ana", ANA), ("vic", VIC),
                            ("out", OUT)]
    }  # fmt: skip
    with app.app_context():
        users = database.session().execute(select(User.email, User.id))
        ids = {email.split("@")[0]: user_id for email, user_id in users}
    return World(app, client, callers, ids)


def _error(response: TestResponse, status: int, code: str, field: str | None = None) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert (error["code"], error.get("field")) == (code, field)
    message: str = error["message"]
    return message


def _signed_in(app: Flask, email: str) -> FlaskClient:
    browser = app.test_client()
    login(browser, email)
    return browser


# --- reading users ---------------------------------------------------------------------------


def test_a_user_is_read_with_their_flags_and_tenants(world: World) -> None:
    shown = world("root", "GET", f"/{world.ids['boss']}")
    assert shown.status_code == 200
    body = shown.get_json()
    assert body == {
        "id": world.ids["boss"], "email": BOSS, "name": "", "is_active": True,
        "is_platform_admin": False, "created_at": body["created_at"], "last_login_at": None,
        "memberships": [{"tenant": "acme", "tenant_name": "Acme", "role": "admin"}],
    }  # fmt: skip
    listed = {u["email"]: u for u in world("root", "GET", "").get_json()["users"]}
    assert (listed[ROOT]["is_active"], listed[ROOT]["is_platform_admin"]) == (True, True)
    assert (listed[VIC]["is_active"], listed[VIC]["is_platform_admin"]) == (True, False)


def test_a_login_on_the_pages_is_shown_as_the_users_last_login(world: World) -> None:
    before = datetime.now(UTC)
    login(world.app.test_client(), BOSS)
    shown = world("root", "GET", f"/{world.ids['boss']}").get_json()["last_login_at"]
    assert shown is not None
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(shown) <= datetime.now(UTC)
    listed = {u["email"]: u for u in world("root", "GET", "").get_json()["users"]}
    assert listed[BOSS]["last_login_at"] == shown
    assert listed[VIC]["last_login_at"] is None  # API tokens do not count


def test_a_created_user_is_located_at_their_own_address(world: World) -> None:
    made = world("root", "POST", "", {"email": "dana@example.test", "password": PASSWORD})
    assert made.status_code == 201, made.get_json()
    location = made.headers["Location"]
    assert location == f"/api/v1/users/{made.get_json()['id']}"
    shown = world.callers["root"]("GET", location.removeprefix("/api/v1"))
    assert shown.get_json()["email"] == "dana@example.test"


@pytest.mark.parametrize("user_id", ["999999", "0", "2147483648", "99999999999999999999"])
@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_an_id_that_names_no_user_is_404(world: World, user_id: str, method: str) -> None:
    before = world.snapshot()
    body = {"active": False} if method == "PATCH" else None
    _error(world("root", method, f"/{user_id}", body), 404, "not_found")
    assert world.snapshot() == before


# --- only platform admins --------------------------------------------------------------------


def _routes(world: World) -> list[tuple[str, str, dict[str, Any] | None]]:
    """GET and PATCH of every user (the caller too), of an id that names nobody, and a PATCH
    whose body would be refused: a 403 must come before any of that is looked at."""
    routes: list[tuple[str, str, dict[str, Any] | None]] = []
    for target in ("ana", "root", "boss", "vic", "out"):
        user_id = world.ids[target]
        routes += [
            ("GET", f"/{user_id}", None),
            ("PATCH", f"/{user_id}", {"active": False}),
            ("PATCH", f"/{user_id}", {"platform_admin": True}),
            ("PATCH", f"/{user_id}", {"platform_admin": False, "active": True}),
        ]
    return [*routes, ("GET", "/999999", None), ("PATCH", "/999999", {"active": False}),
            ("PATCH", f"/{world.ids['ana']}", {"bogus": 1})]  # fmt: skip


@pytest.mark.parametrize(
    "who",
    ["vic", "ana", "out", "boss"],
    ids=["viewer", "analyst", "admin of another tenant", "admin of the same tenant"],
)
def test_anyone_but_a_platform_admin_gets_403_and_changes_nothing(world: World, who: str) -> None:
    before = world.snapshot()
    for method, path, body in _routes(world):
        message = _error(world(who, method, path, body), 403, "forbidden")
        assert message == "only a platform admin may do this", (method, path, body)
    assert world.snapshot() == before
    assert world("root", "GET", f"/{world.ids[who]}").get_json()["is_platform_admin"] is False


def test_a_session_write_without_its_csrf_token_is_refused(world: World) -> None:
    browser = _signed_in(world.app, ROOT)
    path = f"/api/v1/users/{world.ids['ana']}"
    before = world.snapshot()
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        message = _error(browser.patch(path, json={"active": False}, headers=headers), 400,
                         "invalid")  # fmt: skip
        assert "CSRF" in message
    assert world.snapshot() == before
    accepted = browser.patch(path, json={"active": False}, headers={"X-CSRF-Token": csrf(browser)})
    assert accepted.status_code == 200, accepted.get_json()
    assert world.user(ANA) == (False, False)


# --- bad bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [({}, None, "send at least one field to change"),
     ({"active": "no"}, "active", "active must be true or false"),
     ({"active": None}, "active", "active must not be null"),
     ({"active": 0}, "active", "active must be true or false"),
     ({"platform_admin": "true"}, "platform_admin", "platform_admin must be true or false"),
     ({"active": True, "is_active": False}, "is_active", "unknown field 'is_active'"),
     ({"email": "new@acme.test"}, "email", "unknown field 'email'"),
     (["active"], None, "the request body must be a JSON object")],
)  # fmt: skip
def test_a_bad_body_is_refused_naming_the_field(
    world: World, body: Any, field: str | None, message: str
) -> None:
    before = world.snapshot()
    assert _error(world.patch("root", "ana", body), 400, "invalid",
                  field) == message  # fmt: skip
    assert world.snapshot() == before


def test_a_body_that_is_not_json_and_an_unknown_query_parameter_are_refused(world: World) -> None:
    before = world.snapshot()
    path = f"/api/v1/users/{world.ids['ana']}"
    headers = {"Authorization": f"Bearer {world.callers['root'].token}"}
    sent = world.client.patch(path, data="active=false", headers=headers,
                              content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert "Content-Type: application/json" in _error(sent, 400, "invalid")
    asked = world.client.patch(f"{path}?force=1", json={"active": False}, headers=headers)
    assert _error(asked, 400, "invalid", "force") == "unknown query parameter 'force'"
    assert world.snapshot() == before


# --- disabling and enabling ------------------------------------------------------------------


def test_a_disabled_users_session_and_token_are_refused_at_once_and_come_back_partly(
    world: World,
) -> None:
    browser = _signed_in(world.app, VIC)
    assert browser.get("/account").status_code == 200  # the session's user is now cached
    assert world("vic", "GET", "").status_code == 403  # and so is the token's
    assert world.callers["vic"]("GET", "/me").status_code == 200

    disabled = world.patch("root", "vic", {"active": False})
    assert disabled.status_code == 200, disabled.get_json()
    assert (disabled.get_json()["is_active"], disabled.get_json()["is_platform_admin"]) == (
        False, False
    )  # fmt: skip
    message = _error(world.callers["vic"]("GET", "/me"), 401, "unauthenticated")
    assert message == "this API token's user is disabled"
    assert browser.get("/account").status_code == 302  # to the login page
    with world.app.app_context():
        sessions = database.session().scalars(
            select(WebSession).where(WebSession.user_id == world.ids["vic"])
        )
        assert list(sessions) == []
    with pytest.raises(AssertionError):
        login(world.app.test_client(), VIC)

    again = world.patch("root", "vic", {"active": False})
    assert again.status_code == 200
    assert again.get_json()["is_active"] is False

    enabled = world.patch("root", "vic", {"active": True})
    assert enabled.get_json()["is_active"] is True
    assert world.callers["vic"]("GET", "/me").status_code == 200  # at once, as for the refusal
    assert browser.get("/account").status_code == 302  # the session ended for good
    vic = str(world.ids["vic"])
    root_token = world.callers["root"].token_id
    assert world.user_events() == [
        ("user.disable", ROOT, vic, {"email": VIC, "api_token": root_token}),
        ("user.enable", ROOT, vic, {"email": VIC, "api_token": root_token}),
    ]  # the second disable changed nothing and recorded nothing


def test_disabling_a_tenant_admin_revokes_the_invitations_they_made(world: World) -> None:
    invited = world.callers["boss"](
        "POST", "/tenants/acme/invitations", {"email": "guest@elsewhere.test", "role": "viewer"}
    )
    assert invited.status_code == 201
    assert world.patch("root", "boss", {"active": False}).status_code == 200
    with world.app.app_context():
        db = database.session()
        revoked_at = db.scalar(
            select(Invitation.revoked_at).where(Invitation.id == invited.get_json()["id"])
        )
        actions = list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert revoked_at is not None
    assert actions[-2:] == ["user.disable", "invitation.revoke"]


def test_the_audit_record_names_who_changed_whom_and_from_where(world: World) -> None:
    world.client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert world.patch("root", "ana", {"active": False}).status_code == 200
    with world.app.app_context():
        event = (
            database.session()
            .scalars(select(AuditEvent).where(AuditEvent.action == "user.disable"))
            .one()
        )
        assert (event.actor, event.actor_user_id, event.ip, event.tenant_id) == (
            ROOT, world.ids["root"], "192.0.2.7", None
        )  # fmt: skip
        assert (event.target_type, event.target_id) == ("user", str(world.ids["ana"]))
    audited = world.callers["root"]("GET", "/audit").get_json()["events"]
    assert audited[0]["action"] == "user.disable"


# --- platform admin --------------------------------------------------------------------------


def test_platform_admin_is_granted_and_revoked_with_effect_at_once(world: World) -> None:
    boss = str(world.ids["boss"])
    assert world("boss", "GET", "").status_code == 403  # cached as a tenant admin
    granted = world.patch("root", "boss", {"platform_admin": True})
    assert granted.status_code == 200
    assert granted.get_json()["is_platform_admin"] is True
    assert world("boss", "GET", "").status_code == 200
    assert world.patch("root", "boss", {"platform_admin": True}).status_code == 200

    revoked = world.patch("root", "boss", {"platform_admin": False})
    assert revoked.get_json()["is_platform_admin"] is False
    assert revoked.get_json()["memberships"] == [
        {"tenant": "acme", "tenant_name": "Acme", "role": "admin"}
    ]  # their tenant role stays
    assert world("boss", "GET", "").status_code == 403
    root_token = world.callers["root"].token_id
    assert world.user_events() == [
        ("user.platform_admin.grant", ROOT, boss, {"email": BOSS, "api_token": root_token}),
        ("user.platform_admin.revoke", ROOT, boss, {"email": BOSS, "api_token": root_token}),
    ]


def test_both_fields_change_in_one_request(world: World) -> None:
    both = world.patch("root", "ana", {"active": False, "platform_admin": True})
    assert both.status_code == 200
    assert world.user(ANA) == (False, True)
    assert world.patch("root", "ana", {"active": True, "platform_admin": False}).status_code == 200
    assert world.user(ANA) == (True, False)
    assert [event[0] for event in world.user_events()] == [
        "user.disable", "user.platform_admin.grant", "user.enable", "user.platform_admin.revoke"
    ]  # fmt: skip


# --- the last active platform admin ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "change"),
    [({"active": False}, "active", "disable"),
     ({"platform_admin": False}, "platform_admin", "revoke platform admin from"),
     ({"active": False, "platform_admin": False}, "active", "disable")],
)  # fmt: skip
def test_the_last_active_platform_admin_is_neither_disabled_nor_demoted(
    world: World, body: dict[str, bool], field: str, change: str
) -> None:
    before = world.snapshot()
    refused = world.patch("root", "root", body)
    assert _error(refused, 409, "conflict", field) == LAST_ADMIN.format(change=change, email=ROOT)
    assert world.snapshot() == before

    # a disabled platform admin does not count; an active one does
    assert world.patch("root", "boss", {"platform_admin": True, "active": False}).status_code == 200
    _error(world.patch("root", "root", body), 409, "conflict", field)
    assert world.patch("root", "boss", {"active": True}).status_code == 200
    assert world.patch("root", "root", body).status_code == 200
    assert world.user(ROOT) == (body.get("active", True), body.get("platform_admin", True))
    # root can no longer act; boss, the last one now, cannot go either
    assert world("root", "GET", "").status_code in (401, 403)
    refused = world.patch("boss", "boss", body)
    assert _error(refused, 409, "conflict", field) == LAST_ADMIN.format(change=change, email=BOSS)


def test_a_platform_admin_disabling_themselves_loses_their_token_at_once(world: World) -> None:
    assert world.patch("root", "out", {"platform_admin": True}).status_code == 200
    assert world.patch("root", "root", {"active": False}).status_code == 200
    _error(world("root", "GET", ""), 401, "unauthenticated")
    assert world.patch("out", "root", {"active": True}).status_code == 200
    assert world("root", "GET", "").status_code == 200


# --- the service: both changes in one transaction --------------------------------------------


@pytest.fixture
def lone_disabled_admin(app: Flask, make_user: Any) -> None:
    """A database whose only platform admin is disabled (as the CLI can leave one)."""
    make_user(ROOT, platform_admin=True)
    with app.app_context():
        db = database.session()
        db.execute(update(User).where(User.email == ROOT).values(is_active=False))
        db.commit()


@pytest.mark.usefixtures("lone_disabled_admin")
def test_a_refused_second_change_leaves_the_first_undone(app: Flask) -> None:
    """Enabling the lone admin while demoting them: the demotion is refused, and the enabling,
    made first, is not kept either."""
    before = table_snapshot(app)
    with app.app_context():
        db = database.session()
        root = get_user_by_email(db, ROOT)
        assert root is not None
        with pytest.raises(Conflict) as refused:
            change_user(db, system_actor(), root, active=True, platform_admin=False)
        assert refused.value.field == "platform_admin"
        db.rollback()  # as the request's end, or the page's form_failure, does
    assert table_snapshot(app) == before
    with app.app_context():
        db = database.session()
        root = get_user_by_email(db, ROOT)
        assert root is not None
        assert change_user(db, system_actor(), root, active=True) is True
        assert change_user(db, system_actor(), root, active=True, platform_admin=True) is False
