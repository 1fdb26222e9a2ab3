"""Adding existing users directly, and changing a member's role by user id.

Platform admins have the tenant page's "Add an existing user" form (as they have the API and the
CLI); a tenant admin's page has no such form, and a tenant admin's post to it only changes an
existing member's role, answering alike for an address with an account and one without. The
API changes a role by user id (``PATCH .../members/{user_id}``), as the page does, so a stored
address that the e-mail check would now refuse does not block it. Another tenant's admin, and
a tenant's viewers, change nothing.
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
from tenants.models import AuditEvent, Membership, User
from tests.conftest import Caller, csrf, issue_test_token, login, table_snapshot
from tests.support.members import member_stored_as, memberships

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

PLATFORM = "root@platform.test"
ADMIN, SECOND, VIEWER = "boss@a.test", "second@a.test", "vic@a.test"
OUTSIDER = "boss@b.test"
KNOWN = "known@elsewhere.test"  # has an account, in no tenant of a
GHOST = "ghost@elsewhere.test"  # has no account
ADD_FORM = "Add an existing user"
FORM_ID = re.compile(r'name="form_id" value="[^"]*"')
USED = frozenset({"last_used_at"})  # an API token's last use, written by the calls themselves


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> None:
    make_user(PLATFORM, platform_admin=True)
    make_tenant("a", {ADMIN: "admin", SECOND: "admin", VIEWER: "viewer"})
    make_tenant("b", {OUTSIDER: "admin"})
    make_user(KNOWN)


def logged_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def add_on_page(client: FlaskClient, email: str, role: str, slug: str = "a") -> TestResponse:
    return client.post(
        f"/tenants/{slug}/members",
        data={"email": email, "role": role, "csrf_token": csrf(client)},
    )


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def same_page(html: str, address: str) -> str:
    """The page without the address typed and the forms' one-time ids."""
    return FORM_ID.sub("", html.replace(address, "ADDRESS"))


def user_id(app: Flask, email: str) -> int:
    with app.app_context():
        found = database.session().scalar(select(User.id).where(User.email == email))
        assert found is not None
        return found


# --- the page's direct add ---------------------------------------------------------------------


def test_a_platform_admin_adds_an_existing_user_on_the_tenant_page(app: Flask, world: None) -> None:
    root = logged_in(app, PLATFORM)
    assert ADD_FORM in text(root.get("/tenants/a"))
    added = add_on_page(root, KNOWN, "analyst")
    assert added.status_code == 303
    assert added.location.endswith("/tenants/a#members")
    assert f"{KNOWN} is now analyst in A." in text(root.get("/tenants/a"))
    assert memberships(app)[(KNOWN, "a")] == "analyst"
    with app.app_context():
        newest = select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1)
        assert database.session().scalar(newest) == "member.set"


def test_a_platform_admin_naming_no_user_sees_the_form_again_with_the_reason(
    app: Flask, world: None
) -> None:
    root = logged_in(app, PLATFORM)
    before = table_snapshot(app, USED)
    refused = add_on_page(root, GHOST, "viewer")
    assert refused.status_code == 404
    page = text(refused)
    assert f"no user with e-mail {GHOST}" in page
    assert f'value="{GHOST}"' in page, "what was typed is kept"
    assert table_snapshot(app, USED) == before


def test_a_tenant_admin_has_no_add_form_and_cannot_probe_addresses_with_the_post(
    app: Flask, world: None
) -> None:
    admin = logged_in(app, ADMIN)
    assert ADD_FORM not in text(admin.get("/tenants/a"))
    before = table_snapshot(app, USED)
    known, ghost = add_on_page(admin, KNOWN, "viewer"), add_on_page(admin, GHOST, "viewer")
    assert known.status_code == ghost.status_code == 404
    assert same_page(text(known), KNOWN) == same_page(text(ghost), GHOST)
    assert "invite them instead" in text(known)
    assert table_snapshot(app, USED) == before


def test_a_tenant_admins_post_changes_an_existing_members_role(app: Flask, world: None) -> None:
    assert add_on_page(logged_in(app, ADMIN), VIEWER, "analyst").status_code == 303
    assert memberships(app)[(VIEWER, "a")] == "analyst"


def test_the_add_form_needs_its_csrf_token_and_a_role_that_exists(app: Flask, world: None) -> None:
    root = logged_in(app, PLATFORM)
    before = table_snapshot(app, USED)
    no_token = root.post("/tenants/a/members", data={"email": KNOWN, "role": "viewer"})
    assert no_token.status_code == 400
    bad_role = add_on_page(root, KNOWN, "owner")
    assert bad_role.status_code == 400
    assert "role must be one of viewer, analyst, admin" in text(bad_role)
    assert table_snapshot(app, USED) == before


def test_another_tenants_admin_and_a_viewer_add_no_one(app: Flask, world: None) -> None:
    outsider, viewer = logged_in(app, OUTSIDER), logged_in(app, VIEWER)
    before = table_snapshot(app, USED)
    assert add_on_page(outsider, KNOWN, "admin").status_code == 404
    assert add_on_page(viewer, KNOWN, "admin").status_code == 403
    assert table_snapshot(app, USED) == before


# --- the API's role change by user id ----------------------------------------------------------


def test_the_api_changes_a_members_role_by_user_id(
    app: Flask, client: FlaskClient, world: None
) -> None:
    api = Caller(client, issue_test_token(app, ADMIN))
    viewer = user_id(app, VIEWER)
    changed = api("PATCH", f"/tenants/a/members/{viewer}", {"role": "analyst"})
    assert changed.status_code == 200, text(changed)
    assert changed.get_json() == {"user_id": viewer, "email": VIEWER, "name": "", "role": "analyst"}
    assert memberships(app)[(VIEWER, "a")] == "analyst"


def test_the_api_changes_the_role_of_a_member_whose_stored_address_is_now_refused(
    app: Flask, client: FlaskClient, world: None
) -> None:
    member = member_stored_as(app, "a", KNOWN, "kno\u202ewn@elsewhere.test", "viewer")
    api = Caller(client, issue_test_token(app, ADMIN))
    assert api("PATCH", f"/tenants/a/members/{member}", {"role": "admin"}).status_code == 200
    with app.app_context():
        role = database.session().scalar(
            select(Membership.role).where(Membership.user_id == member)
        )
        assert role == "admin"


def test_the_api_role_change_refuses_bad_bodies_non_members_and_the_last_admin(
    app: Flask, client: FlaskClient, world: None, make_tenant: Any
) -> None:
    make_tenant("solo", {OUTSIDER: "admin"})
    api = Caller(client, issue_test_token(app, ADMIN))
    before = table_snapshot(app, USED)
    viewer = user_id(app, VIEWER)
    assert api("PATCH", f"/tenants/a/members/{viewer}", {"role": "owner"}).status_code == 400
    assert api("PATCH", f"/tenants/a/members/{viewer}", {}).status_code == 400
    extra = {"role": "admin", "email": KNOWN}
    assert api("PATCH", f"/tenants/a/members/{viewer}", extra).status_code == 400
    not_member = api("PATCH", f"/tenants/a/members/{user_id(app, KNOWN)}", {"role": "admin"})
    assert not_member.status_code == 404
    assert api("PATCH", "/tenants/a/members/0", {"role": "admin"}).status_code == 404
    assert table_snapshot(app, USED) == before
    outsider = Caller(client, issue_test_token(app, OUTSIDER))
    last = outsider("PATCH", f"/tenants/solo/members/{user_id(app, OUTSIDER)}", {"role": "viewer"})
    assert last.status_code == 409, text(last)
    assert memberships(app)[(OUTSIDER, "solo")] == "admin"


def test_another_tenants_admin_and_a_viewer_change_no_role_through_the_api(
    app: Flask, client: FlaskClient, world: None
) -> None:
    viewer, second = user_id(app, VIEWER), user_id(app, SECOND)
    outsider = Caller(client, issue_test_token(app, OUTSIDER))
    reader = Caller(client, issue_test_token(app, VIEWER))
    before = table_snapshot(app, USED)
    assert outsider("PATCH", f"/tenants/a/members/{viewer}", {"role": "admin"}).status_code == 404
    assert outsider("PATCH", f"/tenants/b/members/{viewer}", {"role": "admin"}).status_code == 404
    assert reader("PATCH", f"/tenants/a/members/{second}", {"role": "viewer"}).status_code == 403
    assert reader("PATCH", f"/tenants/a/members/{viewer}", {"role": "admin"}).status_code == 403
    assert table_snapshot(app, USED) == before
