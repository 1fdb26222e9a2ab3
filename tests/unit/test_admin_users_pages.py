"""The users page (/users): platform admins list every user and disable, enable, grant or revoke
platform admin with its row forms (POST/redirect/GET, a flash); everyone else gets 403 on the
page and on every form, a form without its CSRF token 400, each time with nothing changed; the
last active platform admin stays (409, the message in the row); a disabled user's session and
API token are refused on their next request; a platform admin's own row says so and the answer
to disabling or demoting oneself is a page one may still see.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from tenants import db as database
from tenants.access import system_actor
from tenants.accounts import create_user
from tenants.models import AuditEvent, User
from tenants.views.pages import PAGE_ROWS
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
    "root@platform.test", "boss@a.test", "ana@a.test", "vic@a.test", "boss@b.test"
)  # fmt: skip


@pytest.fixture
def ids(
    app: Flask, make_user: Any, make_tenant: Any, principal_clock: FrozenClock
) -> dict[str, int]:
    """Root (platform admin); tenant a (boss admin, ana analyst, vic viewer); tenant b (its own
    admin). The principal cache's clock stands still: a change is felt at once only if the
    request that made it made this process forget the user."""
    make_user(ROOT, platform_admin=True)
    make_tenant("a", {BOSS: "admin", ANA: "analyst", VIC: "viewer"})
    make_tenant("b", {OUT: "admin"})
    with app.app_context():
        return {
            email: user_id
            for email, user_id in database.session().execute(select(User.email, User.id))
        }


def logged_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def post(client: FlaskClient, path: str, data: dict[str, str] | None = None) -> TestResponse:
    return client.post(path, data={**(data or {}), "csrf_token": csrf(client)})


def html(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def flags(app: Flask, email: str) -> tuple[bool, bool]:
    """(is_active, is_platform_admin)"""
    with app.app_context():
        user = database.session().scalar(select(User).where(User.email == email))
        assert user is not None
        return user.is_active, user.is_platform_admin


def user_events(app: Flask) -> list[tuple[str, str, str, dict[str, Any]]]:
    with app.app_context():
        events = database.session().scalars(
            select(AuditEvent)
            .where(AuditEvent.action.startswith("user."), AuditEvent.action != "user.create")
            .order_by(AuditEvent.id)
        )
        return [(e.action, e.actor, e.target_id, dict(e.details)) for e in events]


def row(page: str, user_id: int) -> str:
    found = re.search(rf'<tr id="user-{user_id}".*?</tr>', page, re.S)
    assert found, f"no row for user {user_id}"
    return found.group(0)


def writes(ids: dict[str, int]) -> list[str]:
    """Every form of the page, at a member of tenant a, at root and at an id that names nobody."""
    paths = []
    for user_id in (ids[ANA], ids[ROOT], ids[BOSS], 999999):
        paths += [f"/users/{user_id}/disable", f"/users/{user_id}/enable",
                  f"/users/{user_id}/platform-admin/grant",
                  f"/users/{user_id}/platform-admin/revoke"]  # fmt: skip
    return paths


# --- who sees the page ------------------------------------------------------------------------


def test_the_page_lists_every_user_with_status_platform_admin_and_tenants(
    app: Flask, ids: dict[str, int]
) -> None:
    page = html(logged_in(app, ROOT).get("/users"))
    emails = re.findall(r'<tr id="user-\d+" data-email="([^"]+)"', page)
    assert emails == sorted([ROOT, BOSS, ANA, VIC, OUT])
    boss = row(page, ids[BOSS])
    assert 'href="/tenants/a">A</a> <span class="muted">admin</span>' in boss
    assert '<span class="badge ok">active</span>' in boss
    assert f'action="/users/{ids[BOSS]}/disable"' in boss
    assert f'action="/users/{ids[BOSS]}/platform-admin/grant"' in boss
    mine = row(page, ids[ROOT])
    assert "(you)" in mine
    assert "Disable my account" in mine
    assert "Revoke my platform admin" in mine
    assert "Disable your own account?" in mine  # the confirmation says whose
    assert '<input type="hidden" name="csrf_token"' in mine
    assert re.search(r"<td><time datetime=[^>]+>just now</time></td>", mine)  # last login
    assert '<td><span class="muted">never</span></td>' in boss  # never logged in


def test_the_navigation_links_the_page_for_platform_admins_only(
    app: Flask, ids: dict[str, int]
) -> None:
    assert '<a href="/users">Users</a>' in html(logged_in(app, ROOT).get("/tenants"))
    for email in (BOSS, VIC, OUT):
        assert 'href="/users"' not in html(logged_in(app, email).get("/tenants")), email


@pytest.mark.parametrize(
    "email", [VIC, ANA, OUT, BOSS],
    ids=["viewer", "analyst", "admin of another tenant", "admin of the same tenant"],
)  # fmt: skip
def test_anyone_but_a_platform_admin_gets_403_on_the_page_and_every_form(
    app: Flask, ids: dict[str, int], email: str
) -> None:
    client = logged_in(app, email)
    before = table_snapshot(app)
    assert client.get("/users").status_code == 403
    for path in writes(ids):
        refused = post(client, path)
        assert refused.status_code == 403, path
        assert "only a platform admin may do this" in html(refused)
    assert table_snapshot(app) == before


def test_the_page_needs_a_login(client: FlaskClient, ids: dict[str, int]) -> None:
    assert client.get("/users").location == "/login?next=/users"


def test_forms_without_their_csrf_token_are_refused(app: Flask, ids: dict[str, int]) -> None:
    client = logged_in(app, ROOT)
    before = table_snapshot(app)
    for path in writes(ids):
        assert client.post(path, data={}).status_code == 400, path
        assert client.post(path, data={"csrf_token": "forged"}).status_code == 400, path
    assert table_snapshot(app) == before


@pytest.mark.parametrize("user_id", ["999999", "0", "2147483648"])
def test_an_id_that_names_no_user_is_404(app: Flask, ids: dict[str, int], user_id: str) -> None:
    client = logged_in(app, ROOT)
    before = table_snapshot(app)
    for action in ("disable", "enable", "platform-admin/grant", "platform-admin/revoke"):
        assert post(client, f"/users/{user_id}/{action}").status_code == 404, action
    assert table_snapshot(app) == before


# --- disabling and enabling --------------------------------------------------------------------


def test_disabling_ends_the_users_session_and_token_at_once_and_enabling_brings_back_the_token(
    app: Flask, ids: dict[str, int]
) -> None:
    token = Caller(app.test_client(), issue_test_token(app, VIC))
    browser = logged_in(app, VIC)
    assert browser.get("/tenants/a").status_code == 200  # both now cached
    assert token("GET", "/me").status_code == 200
    root = logged_in(app, ROOT)

    disabled = post(root, f"/users/{ids[VIC]}/disable", {"cursor": ""})
    assert disabled.status_code == 303
    assert disabled.location == f"/users#user-{ids[VIC]}"
    page = html(root.get(disabled.location))
    assert f"{VIC} disabled: they cannot log in" in page
    assert '<span class="badge bad">disabled</span>' in row(page, ids[VIC])
    assert f'action="/users/{ids[VIC]}/enable"' in row(page, ids[VIC])
    assert flags(app, VIC) == (False, False)
    assert browser.get("/tenants/a").status_code == 302  # to the login page
    assert token("GET", "/me").status_code == 401

    again = post(root, f"/users/{ids[VIC]}/disable")
    assert f"{VIC} was already disabled." in html(root.get(again.location))

    enabled = post(root, f"/users/{ids[VIC]}/enable")
    assert f"{VIC} enabled" in html(root.get(enabled.location))
    assert token("GET", "/me").status_code == 200
    assert browser.get("/tenants/a").status_code == 302  # the session ended for good
    vic = str(ids[VIC])
    assert user_events(app) == [
        ("user.disable", ROOT, vic, {"email": VIC}),
        ("user.enable", ROOT, vic, {"email": VIC}),
    ]


def test_granting_and_revoking_platform_admin_is_felt_at_once(
    app: Flask, ids: dict[str, int]
) -> None:
    boss = logged_in(app, BOSS)
    assert boss.get("/users").status_code == 403  # cached as a tenant admin
    root = logged_in(app, ROOT)
    granted = post(root, f"/users/{ids[BOSS]}/platform-admin/grant")
    assert f"{BOSS} is now a platform admin." in html(root.get(granted.location))
    assert boss.get("/users").status_code == 200
    revoked = post(root, f"/users/{ids[BOSS]}/platform-admin/revoke")
    page = html(root.get(revoked.location))
    assert f"{BOSS} is no longer a platform admin; their tenant roles stay." in page
    assert boss.get("/users").status_code == 403
    assert user_events(app) == [
        ("user.platform_admin.grant", ROOT, str(ids[BOSS]), {"email": BOSS}),
        ("user.platform_admin.revoke", ROOT, str(ids[BOSS]), {"email": BOSS}),
    ]


# --- the last active platform admin, and oneself -----------------------------------------------


@pytest.mark.parametrize(
    ("action", "change"),
    [("disable", "disable"), ("platform-admin/revoke", "revoke platform admin from")],
)
def test_the_last_active_platform_admin_stays_and_the_row_says_why(
    app: Flask, ids: dict[str, int], action: str, change: str
) -> None:
    root = logged_in(app, ROOT)
    before = table_snapshot(app)
    refused = post(root, f"/users/{ids[ROOT]}/{action}")
    assert refused.status_code == 409
    message = (
        f"cannot {change} {ROOT}: they are the last active platform admin; make another user "
        "platform admin first"
    )
    assert f'<p class="error" role="alert">{message}</p>' in html(refused)
    assert f'<small class="field-error" id="user-{ids[ROOT]}-error">{message}</small>' in row(
        html(refused), ids[ROOT]
    )
    assert table_snapshot(app) == before
    assert root.get("/users").status_code == 200


def test_disabling_oneself_logs_out_and_says_so_on_the_login_page(
    app: Flask, ids: dict[str, int]
) -> None:
    root = logged_in(app, ROOT)
    post(root, f"/users/{ids[OUT]}/platform-admin/grant")
    disabled = post(root, f"/users/{ids[ROOT]}/disable")
    assert disabled.status_code == 303
    assert disabled.location == "/login"
    assert "You disabled your own account" in html(root.get("/login"))
    assert root.get("/users").status_code == 302
    assert flags(app, ROOT) == (False, True)
    other = logged_in(app, OUT)
    assert "Enable" in row(html(other.get("/users")), ids[ROOT])


def test_demoting_oneself_goes_home_where_the_page_is_no_longer_offered(
    app: Flask, ids: dict[str, int]
) -> None:
    root = logged_in(app, ROOT)
    post(root, f"/users/{ids[OUT]}/platform-admin/grant")
    demoted = post(root, f"/users/{ids[ROOT]}/platform-admin/revoke")
    assert (demoted.status_code, demoted.location) == (303, "/")
    landing = html(root.get("/tenants"))
    assert f"{ROOT} is no longer a platform admin" in landing
    assert 'href="/users"' not in landing
    assert root.get("/users").status_code == 403
    assert flags(app, ROOT) == (True, False)


# --- a long list ---------------------------------------------------------------------------------


def test_a_row_form_on_a_later_page_returns_to_that_page(app: Flask, ids: dict[str, int]) -> None:
    with app.app_context():
        db = database.session()
        for number in range(PAGE_ROWS):
            create_user(db, system_actor(), f"user{number:03}@many.test", PASSWORD)
    root = logged_in(app, ROOT)
    first = html(root.get("/users"))
    following = re.search(r'<a href="(/users\?cursor=[^"]+)" rel="next">', first)
    assert following, "no link to the next page"
    second_url = following.group(1).replace("&amp;", "&")
    second = html(root.get(second_url))
    assert f'id="user-{ids[VIC]}"' in second  # v comes after the fifty users@many.test
    cursor = re.search(r'name="cursor" value="([^"]+)"', second)
    assert cursor
    disabled = post(root, f"/users/{ids[VIC]}/disable", {"cursor": cursor.group(1)})
    assert disabled.location == f"{second_url}#user-{ids[VIC]}"
    refused = post(root, f"/users/{ids[ROOT]}/disable", {"cursor": cursor.group(1)})
    assert refused.status_code == 409
    assert "they are the last active platform admin" in html(refused)
    assert f'id="user-{ids[VIC]}"' in html(refused)  # the page the form was sent from
    assert f'id="user-{ids[ANA]}"' not in html(refused)
