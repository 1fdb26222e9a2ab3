"""Members join by invitation, so that a tenant admin cannot probe which addresses have accounts.

Inviting answers alike whether or not the address has an account (pages and API); the link's
page is the same too, and makes no account: the invited person logs in as the address and joins
(accounts are made by platform admins). The link refuses another logged-in user; it works once,
expires, can be revoked and is replaced by a new invitation, and works only while its inviter
may still grant it; expired, revoked, used and unknown links get one page. A revoke that loses a
race with an accept says so. Another tenant's admin, and a tenant's viewers and analysts, can do
nothing with a tenant's invitations; an invitation grants its tenant only. The link's secret is
sent in no Referer.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tenants import db as database
from tenants.access import Actor, system_actor, tenant_for
from tenants.accounts import get_user_by_email, remove_membership, set_active, set_membership
from tenants.invitations import NOT_VALID, NotValid, accept, find_valid, get_pending, invite, revoke
from tenants.models import AuditEvent, Invitation, Tenant, User, utcnow
from tests.conftest import PASSWORD, Caller, csrf, issue_test_token, login, table_snapshot
from tests.support.members import memberships

PLATFORM = "root@platform.test"
ADMIN, ANALYST, VIEWER = "boss@a.test", "ana@a.test", "vic@a.test"
OUTSIDER = "boss@b.test"  # the admin of tenant b
SECOND = "second@a.test"  # a second admin of tenant a, who invites and then loses that role
KNOWN = "known@elsewhere.test"  # has an account, in no tenant of a
GHOST = "ghost@elsewhere.test"  # has no account
NEW_PASSWORD = "a long enough new password"
ASK_FOR_AN_ACCOUNT = "No account for this address yet? Ask a platform administrator"
TOKEN = re.compile(r"pai_[a-z2-7]{13}_[A-Za-z0-9_-]{43}")
LINK = re.compile(r'<code class="secret" id="invitation-link"[^>]*>([^<]+)</code>')

USED = frozenset({"last_used_at"})  # an API token's last use, written by the calls themselves
pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> None:
    make_user(PLATFORM, platform_admin=True)
    make_tenant("a", {ADMIN: "admin", SECOND: "admin", ANALYST: "analyst", VIEWER: "viewer"})
    make_tenant("b", {OUTSIDER: "admin"})
    make_user(KNOWN)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The invitations' clock stands still, so that two invitations expire at the same second."""
    now = utcnow().replace(microsecond=0)
    monkeypatch.setattr("tenants.invitations.utcnow", lambda: now)
    return now


def logged_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def anonymous(app: Flask) -> FlaskClient:
    """A fresh browser: no session until a page gives it its CSRF token."""
    return app.test_client()


def post(client: FlaskClient, path: str, data: dict[str, str], token: bool = True) -> TestResponse:
    fields = {**data, "csrf_token": csrf(client)} if token else data
    return client.post(path, data=fields)


def html(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def invite_on_page(
    client: FlaskClient, email: str, role: str = "viewer", slug: str = "a"
) -> tuple[TestResponse, str]:
    """Invite through the tenant's form; the answer and the link's path (shown exactly once)."""
    form = {"email": email, "role": role, "form_id": secrets.token_urlsafe(8)}
    response = post(client, f"/tenants/{slug}/invitations", form)
    assert response.status_code == 200, html(response)
    links = LINK.findall(html(response))
    assert len(links) == 1
    assert len(TOKEN.findall(html(response))) == 1, "the token appears once, in the link"
    return response, urlsplit(links[0]).path


def token_of(path: str) -> str:
    return path.rsplit("/", 1)[1]


def actions(app: Flask, tenant_slug: str | None) -> list[str]:
    """The audit log's actions, oldest first: a tenant's, or the platform-wide ones (None)."""
    with app.app_context():
        db = database.session()
        query = select(AuditEvent.action).order_by(AuditEvent.id)
        if tenant_slug is None:
            query = query.where(AuditEvent.tenant_id.is_(None))
        else:
            tenant_id = db.scalar(select(Tenant.id).where(Tenant.slug == tenant_slug))
            query = query.where(AuditEvent.tenant_id == tenant_id)
        return list(db.scalars(query))


def log_in_through_the_link(client: FlaskClient, path: str, email: str) -> None:
    """From the link's page, its login link, then back to the page (the login's ``next``)."""
    shown = html(client.get(path))
    assert f'href="/login?next={path}"' in shown
    client.get(f"/login?next={path}")
    logged = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "next": path, "csrf_token": csrf(client)},
    )
    assert logged.status_code == 302
    assert logged.location == path


def join(client: FlaskClient, path: str) -> TestResponse:
    """Accept, logged in: the page first (as a browser would), then its form."""
    shown = client.get(path)
    assert shown.status_code == 200, html(shown)
    return post(client, f"{path}/accept", {})


def user_count(app: Flask) -> int:
    with app.app_context():
        return database.session().scalar(select(func.count()).select_from(User)) or 0


# --- the probe is closed ---------------------------------------------------------------------


def test_inviting_answers_alike_whether_or_not_the_address_has_an_account(
    app: Flask, world: None, frozen: datetime
) -> None:
    client = logged_in(app, ADMIN)
    known, known_path = invite_on_page(client, KNOWN)
    ghost, ghost_path = invite_on_page(client, GHOST)
    assert known.status_code == ghost.status_code == 200
    assert known.headers["Cache-Control"] == ghost.headers["Cache-Control"] == "no-store, max-age=0"

    def neutral(response: TestResponse, email: str, path: str) -> str:
        return html(response).replace(email, "EMAIL").replace(token_of(path), "TOKEN")

    assert neutral(known, KNOWN, known_path) == neutral(ghost, GHOST, ghost_path)
    with client.session_transaction() as session:
        assert "_flashes" not in session  # nor a message waiting for the next page
    tenant_page = html(client.get("/tenants/a"))
    assert KNOWN in tenant_page
    assert GHOST in tenant_page

    # the link, opened without logging in, tells nothing either
    browser = anonymous(app)
    browser.get("/login")  # one session for both: the pages' CSRF tokens are the same

    def shown(path: str, email: str) -> tuple[int, str]:
        response = browser.get(path)
        return response.status_code, neutral(response, email, path)

    status, page = shown(known_path, KNOWN)
    assert (status, page) == shown(ghost_path, GHOST)
    assert status == 200
    assert "Log in to accept" in page
    assert ASK_FOR_AN_ACCOUNT in page


def test_the_api_invites_alike_whether_or_not_the_address_has_an_account(
    app: Flask, client: FlaskClient, world: None, frozen: datetime
) -> None:
    boss = Caller(client, issue_test_token(app, ADMIN))
    known = boss("POST", "/tenants/a/invitations", {"email": KNOWN, "role": "analyst"})
    ghost = boss("POST", "/tenants/a/invitations", {"email": GHOST, "role": "analyst"})
    assert known.status_code == ghost.status_code == 201
    assert known.headers["Location"] == ghost.headers["Location"] == "/api/v1/tenants/a/invitations"
    bodies = [known.get_json(), ghost.get_json()]
    for body in bodies:
        assert TOKEN.fullmatch(body["token"])
        assert body["url"] == f"http://localhost/invitations/{body['token']}"
    different = {"id", "email", "token", "url"}
    assert [{k: v for k, v in b.items() if k not in different} for b in bodies] == [
        {"role": "analyst", "invited_by": ADMIN, "created_at": ANY_TIME, "expires_at": ANY_TIME}
    ] * 2
    assert bodies[0]["created_at"] == bodies[1]["created_at"]
    assert bodies[0]["expires_at"] == bodies[1]["expires_at"]
    listed = boss("GET", "/tenants/a/invitations").get_json()
    assert [i["email"] for i in listed["invitations"]] == [GHOST, KNOWN]
    assert "token" not in str(listed)
    # adding directly: the same 404 for an account and for none
    refusals = [
        boss("POST", "/tenants/a/members", {"email": email, "role": "viewer"})
        for email in (KNOWN, GHOST)
    ]
    assert [r.status_code for r in refusals] == [404, 404]
    messages = [r.get_json()["error"]["message"] for r in refusals]
    assert messages[0].replace(KNOWN, "X") == messages[1].replace(GHOST, "X")
    assert memberships(app).get((KNOWN, "a")) is None


class _AnyTime:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.endswith("Z")


ANY_TIME = _AnyTime()


def test_the_token_is_stored_only_as_its_hmac_and_expires_after_the_setting(
    app: Flask, world: None, frozen: datetime
) -> None:
    app.config["PA_SETTINGS"]["invitation_valid_days"] = 3
    client = logged_in(app, ADMIN)
    _, path = invite_on_page(client, GHOST, "analyst")
    token = token_of(path)
    _, token_id, secret = token.split("_", 2)
    with app.app_context():
        invitation = database.session().scalar(select(Invitation))
        assert invitation is not None
        assert invitation.token_id == token_id
        assert invitation.secret_hash == app.extensions["pa_hasher"].digest(secret)
        assert invitation.expires_at == frozen + timedelta(days=3)
        assert invitation.invited_by == ADMIN
    snapshot = repr(table_snapshot(app))
    assert secret not in snapshot
    assert token_id in snapshot  # the public id, as a key's


def test_the_links_page_is_the_same_whether_or_not_the_address_has_an_account(
    app: Flask, world: None, frozen: datetime
) -> None:
    """Not logged in, the page differs only by the address and the token: it says to log in as
    the address, or to ask a platform admin for an account; it offers no sign-up."""
    admin = logged_in(app, ADMIN)
    _, known_path = invite_on_page(admin, KNOWN)
    _, ghost_path = invite_on_page(admin, GHOST)
    browser = anonymous(app)
    browser.get("/login")  # its session, and the CSRF token any page holds, from now on
    pages = []
    for path, email in ((known_path, KNOWN), (ghost_path, GHOST)):
        response = browser.get(path)
        assert response.status_code == 200
        headers = response.headers.items()
        pages.append(
            (
                sorted((k, v) for k, v in headers if k not in ("Content-Length", "Set-Cookie")),
                html(response).replace(email, "EMAIL").replace(token_of(path), "TOKEN"),
            )
        )
    assert pages[0] == pages[1]
    page = pages[0][1]
    assert "Log in to accept" in page
    assert ASK_FOR_AN_ACCOUNT in page
    assert "<form" not in page.split('id="invitation"', 1)[1]  # nothing to send from it
    assert "password" not in page.lower()


def test_no_request_through_a_link_makes_an_account(app: Flask, world: None) -> None:
    """Whatever is sent to the link's URLs, not logged in, no user is made and no one joins."""
    _, path = invite_on_page(logged_in(app, ADMIN), GHOST, "admin")
    browser = anonymous(app)
    browser.get(path)
    users = user_count(app)
    before = table_snapshot(app, USED)
    form = {"email": GHOST, "password": NEW_PASSWORD, "name": "Squatter"}
    for suffix in ("", "/signup", "/accept", "/join", "/register"):
        answer = post(browser, f"{path}{suffix}", form)
        assert answer.status_code == 302, suffix  # a write not logged in: to the login page
        assert urlsplit(answer.location).path == "/login"
    assert user_count(app) == users
    assert table_snapshot(app, USED) == before
    with app.app_context():
        assert get_user_by_email(database.session(), GHOST) is None
    assert browser.get(path).status_code == 200  # the invitation is still pending


# --- the flows ---------------------------------------------------------------------------------


def test_an_existing_user_logs_in_through_the_link_and_joins(app: Flask, world: None) -> None:
    _, path = invite_on_page(logged_in(app, ADMIN), KNOWN, "viewer")
    browser = anonymous(app)
    log_in_through_the_link(browser, path, KNOWN)
    confirm = browser.get(path)
    assert confirm.status_code == 200
    assert f'action="{path}/accept"' in html(confirm)
    assert memberships(app).get((KNOWN, "a")) is None  # nothing before the confirmation
    joined = post(browser, f"{path}/accept", {})
    assert joined.status_code == 303
    assert joined.location == "/tenants/a"
    assert "You are now viewer in A" in html(browser.get("/tenants/a"))
    assert memberships(app)[(KNOWN, "a")] == "viewer"
    assert actions(app, "a")[-1] == "invitation.accept"


def test_someone_without_an_account_gets_one_from_a_platform_admin_then_joins(
    app: Flask, client: FlaskClient, world: None
) -> None:
    """The link makes no account; a platform admin does, as for anyone, and the link then works."""
    _, path = invite_on_page(logged_in(app, ADMIN), GHOST, "analyst")
    newcomer = anonymous(app)
    assert ASK_FOR_AN_ACCOUNT in html(newcomer.get(path))
    root = Caller(client, issue_test_token(app, PLATFORM))
    made = root("POST", "/users", {"email": GHOST, "password": PASSWORD, "name": "Newcomer"})
    assert made.status_code == 201, made.get_json()
    log_in_through_the_link(newcomer, path, GHOST)
    joined = join(newcomer, path)
    assert joined.status_code == 303
    assert "You are now analyst in A" in html(newcomer.get("/tenants/a"))
    assert memberships(app)[(GHOST, "a")] == "analyst"
    assert actions(app, "a")[-2:] == ["invitation.create", "invitation.accept"]


def test_another_logged_in_user_is_refused_and_can_log_out_to_use_it(
    app: Flask, world: None
) -> None:
    _, path = invite_on_page(logged_in(app, ADMIN), KNOWN)
    other = logged_in(app, OUTSIDER)
    before = table_snapshot(app, USED)
    shown = other.get(path)
    assert shown.status_code == 403
    assert "for another account than the one you are logged in as" in html(shown)
    assert KNOWN not in html(shown)
    accepted = post(other, f"{path}/accept", {})
    assert accepted.status_code == 403
    assert table_snapshot(app, USED) == before
    out = post(other, "/logout", {"next": path})
    assert out.location == path
    log_in_through_the_link(other, path, KNOWN)
    assert join(other, path).status_code == 303
    assert (KNOWN, "a") in memberships(app)
    assert (OUTSIDER, "a") not in memberships(app)


def test_a_link_works_once(app: Flask, world: None) -> None:
    _, path = invite_on_page(logged_in(app, ADMIN), KNOWN)
    known = logged_in(app, KNOWN)
    assert join(known, path).status_code == 303
    assert anonymous(app).get(path).status_code == 404
    second = post(known, f"{path}/accept", {})
    assert second.status_code == 404
    assert NOT_VALID in html(second)
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "a")
        invitation = db.scalar(select(Invitation).where(Invitation.tenant_id == tenant.id))
        assert invitation is not None
        assert invitation.state() == "accepted"


def test_the_service_uses_an_invitation_once_even_when_found_twice(app: Flask, world: None) -> None:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "a")
        hasher = app.extensions["pa_hasher"]
        token = invite(db, system_actor(), tenant, KNOWN, "viewer", hasher).plaintext
        first, second = find_valid(db, hasher, token), find_valid(db, hasher, token)
        user = get_user_by_email(db, KNOWN)
        assert user is not None
        accept(db, first, user)
        with pytest.raises(NotValid):
            accept(db, second, user)  # found before the first use: the update finds it used
    assert memberships(app)[(KNOWN, "a")] == "viewer"


def test_a_member_added_meanwhile_keeps_their_role_and_the_link_is_used(
    app: Flask, world: None
) -> None:
    _, path = invite_on_page(logged_in(app, ADMIN), KNOWN, "viewer")
    with app.app_context():
        db = database.session()
        set_membership(db, system_actor(), tenant_for(db, system_actor(), "a"), KNOWN, "admin")
    browser = logged_in(app, KNOWN)
    assert post(browser, f"{path}/accept", {}).status_code == 303
    assert memberships(app)[(KNOWN, "a")] == "admin"
    assert browser.get(path).status_code == 404


def test_expired_revoked_used_and_unknown_links_get_one_page(app: Flask, world: None) -> None:
    admin = logged_in(app, ADMIN)
    _, expired = invite_on_page(admin, "expired@elsewhere.test")
    _, revoked = invite_on_page(admin, "revoked@elsewhere.test")
    _, used = invite_on_page(admin, KNOWN)
    with app.app_context():
        db = database.session()
        db.execute(
            update(Invitation)
            .where(Invitation.email == "expired@elsewhere.test")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.commit()
        revoked_id = db.scalar(
            select(Invitation.id).where(Invitation.email == "revoked@elsewhere.test")
        )
    assert post(admin, f"/tenants/a/invitations/{revoked_id}/revoke", {}).status_code == 303
    assert join(logged_in(app, KNOWN), used).status_code == 303
    token = token_of(expired)
    wrong_secret = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    unknown = "/invitations/pai_" + "a" * 13 + "_" + "A" * 43
    malformed = "/invitations/not-a-token"
    links = [expired, revoked, used, "/invitations/" + wrong_secret, unknown, malformed]

    browser = anonymous(app)
    browser.get("/login")  # one session for every request: pages alike to the byte
    member = logged_in(app, VIEWER)
    before = table_snapshot(app, USED)
    answers = {(r.status_code, html(r)) for r in (browser.get(link) for link in links)}
    assert len(answers) == 1
    status, page = answers.pop()
    assert status == 404
    assert NOT_VALID in page
    accepted = {post(browser, f"{link}/accept", {}).status_code for link in links}
    assert accepted == {302}  # not logged in: the login comes first, as for any write
    for link in links:
        assert member.get(link).status_code == 404
        assert post(member, f"{link}/accept", {}).status_code == 404
    assert table_snapshot(app, USED) == before


def test_inviting_again_replaces_the_pending_invitation(app: Flask, world: None) -> None:
    admin = logged_in(app, ADMIN)
    _, first = invite_on_page(admin, KNOWN, "viewer")
    _, second = invite_on_page(admin, KNOWN, "analyst")
    assert anonymous(app).get(first).status_code == 404
    assert anonymous(app).get(second).status_code == 200
    page = html(admin.get("/tenants/a"))
    rows = re.findall(r'<tr id="invitation-\d+">.*?</tr>', page, re.S)
    assert len(rows) == 1
    assert KNOWN in rows[0]
    assert "analyst" in rows[0]
    assert join(logged_in(app, KNOWN), second).status_code == 303
    assert memberships(app)[(KNOWN, "a")] == "analyst"


def test_revoking_an_invitation(app: Flask, world: None) -> None:
    admin = logged_in(app, ADMIN)
    _, path = invite_on_page(admin, GHOST)
    page = html(admin.get("/tenants/a"))
    found = re.search(r'<tr id="invitation-(\d+)">.*?</tr>', page, re.S)
    assert found is not None
    assert ADMIN in found.group(0)  # who invited
    assert "<time" in found.group(0)  # when it expires
    revoked = post(admin, f"/tenants/a/invitations/{found.group(1)}/revoke", {})
    assert revoked.status_code == 303
    assert revoked.location == "/tenants/a#invitations"
    after = html(admin.get("/tenants/a"))
    assert f"Invitation of {GHOST} revoked" in after
    assert 'id="invitation-' not in after
    assert "No pending invitations." in after
    assert anonymous(app).get(path).status_code == 404
    again = post(admin, f"/tenants/a/invitations/{found.group(1)}/revoke", {})
    assert again.status_code == 404
    assert actions(app, "a")[-1] == "invitation.revoke"


def test_a_member_is_not_invited(app: Flask, world: None) -> None:
    refused = post(logged_in(app, ADMIN), "/tenants/a/invitations",
                   {"email": VIEWER, "role": "admin", "form_id": "f1"})  # fmt: skip
    assert refused.status_code == 409
    assert f"{VIEWER} is already a member of A" in html(refused)
    assert TOKEN.search(html(refused)) is None
    assert memberships(app)[(VIEWER, "a")] == "viewer"


def test_a_resent_invitation_form_shows_no_link(app: Flask, world: None) -> None:
    admin = logged_in(app, ADMIN)
    form = {"email": GHOST, "role": "viewer", "form_id": "same-form"}
    assert post(admin, "/tenants/a/invitations", form).status_code == 200
    resent = post(admin, "/tenants/a/invitations", form)
    assert resent.status_code == 303
    assert TOKEN.search(html(admin.get(resent.location))) is None


# --- an invitation works only while its inviter may grant it --------------------------------


def _remove(db: Session, inviter: User, tenant: Tenant) -> None:
    remove_membership(db, system_actor(), tenant, inviter.id)


def _demote(db: Session, inviter: User, tenant: Tenant) -> None:
    set_membership(db, system_actor(), tenant, inviter.email, "analyst")


def _disable(db: Session, inviter: User, tenant: Tenant) -> None:
    inviter.is_active = False
    db.commit()


def _delete(db: Session, inviter: User, tenant: Tenant) -> None:
    """The user's row gone (the app deletes none; a database operator might): the invitation's
    invited_by_id is set to NULL, which must not pass it off as the CLI's."""
    db.execute(
        update(Invitation).where(Invitation.invited_by_id == inviter.id).values(invited_by_id=None)
    )
    db.commit()


LOSSES = {"removed": _remove, "demoted": _demote, "disabled": _disable, "deleted": _delete}


@pytest.mark.parametrize("loss", list(LOSSES))
def test_an_inviter_who_lost_the_right_to_invite_leaves_links_that_do_not_work(
    app: Flask, world: None, loss: str
) -> None:
    _, path = invite_on_page(logged_in(app, SECOND), KNOWN, "admin")
    known = logged_in(app, KNOWN)
    assert known.get(path).status_code == 200  # it works before
    with app.app_context():
        db = database.session()
        inviter = get_user_by_email(db, SECOND)
        assert inviter is not None
        LOSSES[loss](db, inviter, tenant_for(db, system_actor(), "a"))
    browser = anonymous(app)
    browser.get("/login")  # one session for both: the pages' CSRF tokens are the same
    unknown = browser.get("/invitations/pai_" + "a" * 13 + "_" + "A" * 43)
    shown = browser.get(path)
    assert (shown.status_code, html(shown)) == (404, html(unknown))
    refused = post(known, f"{path}/accept", {})
    assert refused.status_code == 404
    assert NOT_VALID in html(refused)
    assert (KNOWN, "a") not in memberships(app)


REGAINS = {
    "removed": lambda db, inviter, tenant: set_membership(
        db, system_actor(), tenant, inviter.email, "admin"),
    "demoted": lambda db, inviter, tenant: set_membership(
        db, system_actor(), tenant, inviter.email, "admin"),
    "disabled": lambda db, inviter, tenant: set_active(db, system_actor(), inviter, True),
}  # fmt: skip
SERVICE_LOSSES = {
    "removed": _remove,
    "demoted": _demote,
    "disabled": lambda db, inviter, tenant: set_active(db, system_actor(), inviter, False),
}


@pytest.mark.parametrize("loss", list(SERVICE_LOSSES))
def test_links_of_an_inviter_who_lost_the_right_stay_dead_when_it_comes_back(
    app: Flask, world: None, loss: str
) -> None:
    _, path = invite_on_page(logged_in(app, SECOND), KNOWN, "admin")
    with app.app_context():
        db = database.session()
        inviter = get_user_by_email(db, SECOND)
        assert inviter is not None
        tenant = tenant_for(db, system_actor(), "a")
        SERVICE_LOSSES[loss](db, inviter, tenant)
        REGAINS[loss](db, inviter, tenant)
    assert actions(app, "a").count("invitation.revoke") == 1  # revoked when the right was lost
    refused = post(logged_in(app, KNOWN), f"{path}/accept", {})
    assert refused.status_code == 404
    assert (KNOWN, "a") not in memberships(app)


def test_an_inviter_who_loses_the_right_after_the_link_was_opened_cannot_grant_it(
    app: Flask, world: None
) -> None:
    """Checked when the link is used, not only when it is opened."""
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "a")
        second = get_user_by_email(db, SECOND)
        known = get_user_by_email(db, KNOWN)
        assert second is not None
        assert known is not None
        hasher = app.extensions["pa_hasher"]
        token = invite(db, Actor(second, SECOND), tenant, KNOWN, "admin", hasher).plaintext
        found = find_valid(db, hasher, token)
        _demote(db, second, tenant)
        with pytest.raises(NotValid):
            accept(db, found, known)
    assert (KNOWN, "a") not in memberships(app)


def test_invitations_of_platform_admins_and_of_the_cli_stay_valid(
    app: Flask, client: FlaskClient, world: None
) -> None:
    """A platform admin may grant any tenant without being a member; the CLI has no user."""
    root = Caller(client, issue_test_token(app, PLATFORM))
    invited = root("POST", "/tenants/a/invitations", {"email": KNOWN, "role": "analyst"})
    assert invited.status_code == 201
    known = logged_in(app, KNOWN)
    assert join(known, urlsplit(invited.get_json()["url"]).path).status_code == 303
    with app.app_context():
        db = database.session()
        hasher = app.extensions["pa_hasher"]
        tenant = tenant_for(db, system_actor(), "b")
        token = invite(db, system_actor("cli"), tenant, KNOWN, "viewer", hasher).plaintext
    assert join(known, f"/invitations/{token}").status_code == 303
    assert memberships(app)[(KNOWN, "a")] == "analyst"
    assert memberships(app)[(KNOWN, "b")] == "viewer"


# --- a revoke racing an accept -----------------------------------------------------------------


def _accept_elsewhere(app: Flask, invitation_id: int, email: str) -> None:
    """The invitee's accept, in its own session, committed between the revoke's load and write."""
    with Session(app.extensions["pa_engine"]) as other:
        invitation = other.get(Invitation, invitation_id)
        user = other.scalar(select(User).where(User.email == email))
        assert invitation is not None
        assert user is not None
        accept(other, invitation, user)


def _race_revoke_with_an_accept(app: Flask, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """Make the revoke's load of the pending invitation let the accept commit right after."""
    real = get_pending

    def load_then_accept(db: Session, actor: Actor, tenant: Tenant, invitation_id: int) -> Any:
        loaded = real(db, actor, tenant, invitation_id)
        _accept_elsewhere(app, invitation_id, loaded.email)
        return loaded

    monkeypatch.setattr(where, load_then_accept)


def _after_the_race(app: Flask) -> None:
    with app.app_context():
        invitation = database.session().scalar(select(Invitation))
        assert invitation is not None
        assert invitation.accepted_at is not None
        assert invitation.revoked_at is None
    assert memberships(app)[(KNOWN, "a")] == "viewer"
    assert actions(app, "a")[-2:] == ["invitation.create", "invitation.accept"]  # no revoke


def test_a_revoke_that_loses_a_race_with_the_accept_says_so_and_changes_nothing(
    app: Flask, world: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = logged_in(app, ADMIN)
    invite_on_page(admin, KNOWN, "viewer")
    with app.app_context():
        invitation_id = database.session().scalar(select(Invitation.id))
    _race_revoke_with_an_accept(app, monkeypatch, "tenants.invitations.get_pending")
    answer = post(admin, f"/tenants/a/invitations/{invitation_id}/revoke", {})
    assert answer.status_code == 303
    page = html(admin.get(answer.location))
    assert f"The invitation of {KNOWN} was not revoked: it was used" in page
    assert "revoked: its link no longer works" not in page
    _after_the_race(app)


def test_an_api_revoke_that_loses_a_race_with_the_accept_is_a_404(
    app: Flask, client: FlaskClient, world: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = Caller(client, issue_test_token(app, ADMIN))
    invitation_id = boss(
        "POST", "/tenants/a/invitations", {"email": KNOWN, "role": "viewer"}
    ).get_json()["id"]
    _race_revoke_with_an_accept(app, monkeypatch, "tenants.views.api.get_pending")
    answer = boss("DELETE", f"/tenants/a/invitations/{invitation_id}")
    assert answer.status_code == 404
    _after_the_race(app)


def test_the_service_revokes_only_a_pending_invitation(app: Flask, world: None) -> None:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "a")
        issued = invite(db, system_actor(), tenant, KNOWN, "viewer", app.extensions["pa_hasher"])
        loaded = get_pending(db, system_actor(), tenant, issued.invitation.id)
        _accept_elsewhere(app, loaded.id, KNOWN)
        assert revoke(db, system_actor(), tenant, loaded) is False
        assert loaded.state() == "accepted"  # what the database holds, not the stale object
        again = invite(db, system_actor(), tenant, GHOST, "viewer", app.extensions["pa_hasher"])
        assert revoke(db, system_actor(), tenant, again.invitation) is True
        assert again.invitation.state() == "revoked"
    assert actions(app, "a").count("invitation.revoke") == 1


# --- the link's secret in no Referer -----------------------------------------------------------


def test_pages_holding_a_links_secret_send_no_referer(app: Flask, world: None) -> None:
    """Their stylesheet, script and forms would otherwise send the link on (same-origin)."""
    _, path = invite_on_page(logged_in(app, ADMIN), KNOWN)
    browser = anonymous(app)
    for holding in (browser.get(path), browser.get(f"/login?next={path}"),
                    browser.get("/invitations/pai_" + "a" * 13 + "_" + "A" * 43),
                    logged_in(app, OUTSIDER).get(path)):  # fmt: skip
        assert holding.headers["Referrer-Policy"] == "no-referrer"
    known = logged_in(app, KNOWN)
    assert known.get(path).headers["Referrer-Policy"] == "no-referrer"
    assert post(known, f"{path}/accept", {}).headers["Referrer-Policy"] == "no-referrer"
    assert browser.get("/login").headers["Referrer-Policy"] == "same-origin"  # the others keep it
    assert known.get("/tenants/a").headers["Referrer-Policy"] == "same-origin"


# --- CSRF --------------------------------------------------------------------------------------


def test_the_invitation_forms_need_their_csrf_token(app: Flask, world: None) -> None:
    admin = logged_in(app, ADMIN)
    _, path = invite_on_page(admin, GHOST)
    _, known_path = invite_on_page(admin, KNOWN)
    logged = USED | {"last_login_at"}  # the logins below record theirs
    before = table_snapshot(app, logged)
    for token in (None, "forged"):
        extra = {} if token is None else {"csrf_token": token}
        assert admin.post("/tenants/a/invitations",
                          data={"email": "x@y.test", "role": "viewer", **extra}).status_code == 400  # fmt: skip
        assert admin.post("/tenants/a/invitations/1/revoke", data=extra).status_code == 400
        known = logged_in(app, KNOWN)
        assert known.post(f"{known_path}/accept", data=extra).status_code == 400
    after = table_snapshot(app, logged)
    # the logins above wrote their audit events and sessions; nothing else changed
    logins = {"audit_events", "web_sessions"}
    assert {name: rows for name, rows in after.items() if name not in logins} == {
        name: rows for name, rows in before.items() if name not in logins
    }
    assert anonymous(app).get(path).status_code == 200


# --- tenancy and roles -------------------------------------------------------------------------


def test_another_tenants_admin_can_do_nothing_with_a_tenants_invitations(
    app: Flask, client: FlaskClient, world: None
) -> None:
    _, path = invite_on_page(logged_in(app, ADMIN), GHOST)
    with app.app_context():
        invitation_id = database.session().scalar(select(Invitation.id))
    outsider = logged_in(app, OUTSIDER)
    api = Caller(client, issue_test_token(app, OUTSIDER))
    before = table_snapshot(app, USED)
    assert outsider.get("/tenants/a").status_code == 404
    assert post(outsider, "/tenants/a/invitations",
                {"email": "x@y.test", "role": "admin", "form_id": "f"}).status_code == 404  # fmt: skip
    assert post(outsider, f"/tenants/a/invitations/{invitation_id}/revoke", {}).status_code == 404
    assert post(outsider, f"/tenants/b/invitations/{invitation_id}/revoke", {}).status_code == 404
    assert GHOST not in html(outsider.get("/tenants/b"))
    assert api("GET", "/tenants/a/invitations").status_code == 404
    assert (
        api("POST", "/tenants/a/invitations", {"email": "x@y.test", "role": "admin"}).status_code
        == 404
    )
    assert api("DELETE", f"/tenants/a/invitations/{invitation_id}").status_code == 404
    assert api("DELETE", f"/tenants/b/invitations/{invitation_id}").status_code == 404
    assert GHOST not in api("GET", "/tenants/b/invitations").get_data(as_text=True)
    assert table_snapshot(app, USED) == before
    assert anonymous(app).get(path).status_code == 200


@pytest.mark.parametrize("email", [VIEWER, ANALYST])
def test_viewers_and_analysts_cannot_invite_list_or_revoke(
    app: Flask, client: FlaskClient, world: None, email: str
) -> None:
    invite_on_page(logged_in(app, ADMIN), GHOST)
    with app.app_context():
        invitation_id = database.session().scalar(select(Invitation.id))
    reader = logged_in(app, email)
    api = Caller(client, issue_test_token(app, email))
    before = table_snapshot(app, USED)
    page = html(reader.get("/tenants/a"))
    assert GHOST not in page
    assert 'id="invitations"' not in page
    assert post(reader, "/tenants/a/invitations",
                {"email": "x@y.test", "role": "admin", "form_id": "f"}).status_code == 403  # fmt: skip
    assert post(reader, f"/tenants/a/invitations/{invitation_id}/revoke", {}).status_code == 403
    assert api("GET", "/tenants/a/invitations").status_code == 403
    assert (
        api("POST", "/tenants/a/invitations", {"email": "x@y.test", "role": "admin"}).status_code
        == 403
    )
    assert api("DELETE", f"/tenants/a/invitations/{invitation_id}").status_code == 403
    assert table_snapshot(app, USED) == before


def test_an_invitation_grants_its_tenant_only(app: Flask, world: None) -> None:
    _, path = invite_on_page(logged_in(app, ADMIN), KNOWN, "admin")
    newcomer = logged_in(app, KNOWN)
    assert join(newcomer, path).status_code == 303
    assert newcomer.get("/tenants/a").status_code == 200
    assert newcomer.get("/tenants/b").status_code == 404
    assert newcomer.get("/audit").status_code == 403
    assert {k: v for k, v in memberships(app).items() if k[0] == KNOWN} == {(KNOWN, "a"): "admin"}


def test_platform_admins_add_existing_users_directly_and_invite(
    app: Flask, client: FlaskClient, world: None
) -> None:
    root = Caller(client, issue_test_token(app, PLATFORM))
    added = root("POST", "/tenants/a/members", {"email": KNOWN, "role": "analyst"})
    assert added.status_code == 201
    missing = root("POST", "/tenants/a/members", {"email": GHOST, "role": "analyst"})
    assert missing.status_code == 404
    assert "no user with e-mail" in missing.get_json()["error"]["message"]
    invited = root("POST", "/tenants/a/invitations", {"email": GHOST, "role": "viewer"})
    assert invited.status_code == 201
    assert root("DELETE", f"/tenants/a/invitations/{invited.get_json()['id']}").status_code == 204
    assert memberships(app)[(KNOWN, "a")] == "analyst"


def test_the_cli_still_adds_an_existing_user(app: Flask, runner: Any, world: None) -> None:
    result = runner("add-member", "a", KNOWN, "viewer")
    assert result.exit_code == 0, result.output
    assert memberships(app)[(KNOWN, "a")] == "viewer"
