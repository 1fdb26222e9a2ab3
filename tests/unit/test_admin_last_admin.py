"""A tenant keeps at least one admin: removing or demoting its last one is a 409 that changes
nothing, through the API, the pages and the services alike; with two admins either may go.
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
from tenants.access import system_actor, tenant_for
from tenants.accounts import get_user_by_email, issue_token, remove_membership, set_membership
from tenants.errors import Conflict
from tenants.models import Membership, User
from tests.conftest import csrf, login, table_snapshot

BOSS, ANA, VIC, ROOT = "boss@acme.test", "ana@acme.test", "vic@acme.test", "root@example.test"
pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def acme(app: Flask, make_user: Any, make_tenant: Any) -> dict[str, int]:
    """Tenant acme with one admin (boss), an analyst and a viewer; the users' ids by e-mail."""
    make_user(ROOT, platform_admin=True)
    make_tenant("acme", {BOSS: "admin", ANA: "analyst", VIC: "viewer"})
    with app.app_context():
        return {
            email: user_id
            for email, user_id in database.session().execute(select(User.email, User.id))
        }


def roles(app: Flask) -> dict[str, str]:
    with app.app_context():
        query = select(User.email, Membership.role).join(Membership, Membership.user_id == User.id)
        return {email: role for email, role in database.session().execute(query)}


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row but the tokens' last use, which a request may write."""
    return table_snapshot(app, frozenset({"last_used_at"}))


def api(app: Flask, email: str) -> Any:
    with app.app_context():
        db = database.session()
        user = get_user_by_email(db, email)
        assert user is not None
        token = issue_token(db, user, app.extensions["pa_hasher"], "tests")[1]
    client = app.test_client()

    def call(method: str, path: str, body: Any = None) -> TestResponse:
        return client.open(f"/api/v1{path}", method=method, json=body,
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    return call


def conflict(response: TestResponse, field: str | None) -> str:
    assert response.status_code == 409, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "conflict"
    assert error.get("field") == field
    assert "last admin" in error["message"]
    message: str = error["message"]
    return message


# ---- the API ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [BOSS, ROOT])
def test_the_last_admin_can_be_neither_removed_nor_demoted_through_the_api(
    app: Flask, acme: dict[str, int], who: str
) -> None:
    call = api(app, who)
    before = snapshot(app)
    message = conflict(call("DELETE", f"/tenants/acme/members/{acme[BOSS]}"), None)
    assert BOSS in message
    for role in ("analyst", "viewer"):
        conflict(call("POST", "/tenants/acme/members", {"email": BOSS, "role": role}), "role")
    assert snapshot(app) == before
    assert (
        call("POST", "/tenants/acme/members", {"email": BOSS, "role": "admin"}).status_code == 200
    )


def test_with_two_admins_one_may_go_then_the_other_is_the_last(
    app: Flask, acme: dict[str, int]
) -> None:
    boss = api(app, BOSS)
    assert boss("POST", "/tenants/acme/members", {"email": ANA, "role": "admin"}).status_code == 200
    ana = api(app, ANA)
    assert ana("DELETE", f"/tenants/acme/members/{acme[BOSS]}").status_code == 204
    assert roles(app) == {ANA: "admin", VIC: "viewer"}
    conflict(ana("POST", "/tenants/acme/members", {"email": ANA, "role": "viewer"}), "role")
    conflict(ana("DELETE", f"/tenants/acme/members/{acme[ANA]}"), None)
    assert ana("POST", "/tenants/acme/members", {"email": VIC, "role": "admin"}).status_code == 200
    assert ana("POST", "/tenants/acme/members", {"email": ANA, "role": "viewer"}).status_code == 200
    assert roles(app) == {ANA: "viewer", VIC: "admin"}


def test_other_members_come_and_go_as_before(app: Flask, acme: dict[str, int]) -> None:
    boss = api(app, BOSS)
    assert boss("DELETE", f"/tenants/acme/members/{acme[VIC]}").status_code == 204
    assert (
        boss("POST", "/tenants/acme/members", {"email": ANA, "role": "viewer"}).status_code == 200
    )
    assert roles(app) == {BOSS: "admin", ANA: "viewer"}


def test_a_tenant_without_members_takes_any_first_member(app: Flask, make_tenant: Any) -> None:
    make_tenant("empty")
    make_tenant("other", {VIC: "viewer"})
    with app.app_context():
        db = database.session()
        empty = tenant_for(db, system_actor(), "empty")
        set_membership(db, system_actor(), empty, VIC, "viewer")
        remove_membership(db, system_actor(), empty, db.scalars(select(User.id)).one())
        set_membership(db, system_actor(), empty, VIC, "admin")
        with pytest.raises(Conflict) as refused:
            set_membership(db, system_actor(), empty, VIC, "viewer")
        assert refused.value.field == "role"


def test_a_platform_admin_may_still_delete_the_tenant(app: Flask, acme: dict[str, int]) -> None:
    root = api(app, ROOT)
    assert root("DELETE", "/tenants/acme", {"confirm": "acme"}).status_code == 204
    assert roles(app) == {}


# ---- the pages --------------------------------------------------------------------------------


def _logged_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def _post(client: FlaskClient, path: str, data: dict[str, str]) -> TestResponse:
    return client.post(path, data={**data, "csrf_token": csrf(client)})


def test_the_pages_refuse_to_remove_or_demote_the_last_admin(
    app: Flask, acme: dict[str, int]
) -> None:
    client = _logged_in(app, BOSS)
    before = snapshot(app)
    boss = acme[BOSS]
    removed = _post(client, f"/tenants/acme/members/{boss}/remove", {})
    assert removed.status_code == 409
    page = removed.get_data(as_text=True)
    assert "last admin of Acme" in page
    row = re.search(rf'<tr id="member-{boss}".*?</tr>', page, re.S)
    assert row is not None
    assert 'class="field-error"' in row.group(0)
    demoted = _post(client, f"/tenants/acme/members/{boss}/role", {"role": "viewer"})
    assert demoted.status_code == 409
    row = re.search(rf'<tr id="member-{boss}".*?</tr>', demoted.get_data(as_text=True), re.S)
    assert row is not None
    assert re.search(r'<select name="role"[^>]*aria-invalid="true"', row.group(0))
    re_invited = _post(client, "/tenants/acme/invitations", {"email": BOSS, "role": "analyst"})
    assert re_invited.status_code == 409  # a member is not invited, nor demoted that way
    assert re.search(r'<input type="email" name="email"[^>]*aria-invalid="true"',
                     re_invited.get_data(as_text=True))  # fmt: skip
    assert snapshot(app) == before
    assert client.get("/tenants/acme").status_code == 200  # the refusal left no lock behind


def test_the_pages_remove_one_of_two_admins(app: Flask, acme: dict[str, int]) -> None:
    client = _logged_in(app, BOSS)
    promoted = _post(client, f"/tenants/acme/members/{acme[ANA]}/role", {"role": "admin"})
    assert promoted.status_code == 303
    removed = _post(client, f"/tenants/acme/members/{acme[ANA]}/remove", {})
    assert removed.status_code == 303
    assert f"{ANA} removed" in client.get(removed.location).get_data(as_text=True)
    assert roles(app) == {BOSS: "admin", VIC: "viewer"}
