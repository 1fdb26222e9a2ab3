"""Fixes from a review of the admin app: a tenant keeps an admin who can log in, what API tokens
may do with tokens, load tests a page at a time, no typed password in the audit log, and the key
form's collector refused at its field.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from tenants import db as database
from tenants.access import role_in, system_actor, tenant_for
from tenants.accounts import get_user_by_email, issue_token, set_active
from tenants.collectors import register_collector
from tenants.loadtests import runs as stored_runs
from tenants.models import ApiKey, ApiToken, AuditEvent, Membership, User
from tests.conftest import PASSWORD, Caller, csrf, issue_test_token, login, table_snapshot
from tests.unit.test_loadtests_support import document

BOSS, ANA, VIC, ROOT = "boss@acme.test", "ana@acme.test", "vic@acme.test", "root@example.test"
OUT = "out@other.test"
NOT_AN_EMAIL = "(not an e-mail address)"
pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def acme(app: Flask, make_user: Any, make_tenant: Any) -> dict[str, int]:
    """Tenant acme (admins boss and ana, viewer vic) and tenant other (admin out); the users'
    ids by e-mail."""
    make_user(ROOT, platform_admin=True)
    make_tenant("acme", {BOSS: "admin", ANA: "admin", VIC: "viewer"})
    make_tenant("other", {OUT: "admin"})
    with app.app_context():
        rows = database.session().execute(select(User.email, User.id))
        return {email: user_id for email, user_id in rows}


def _disable(app: Flask, email: str) -> None:
    with app.app_context():
        db = database.session()
        user = get_user_by_email(db, email)
        assert user is not None
        assert set_active(db, system_actor(), user, False)


def _logged_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def _post(client: FlaskClient, path: str, data: dict[str, str]) -> TestResponse:
    return client.post(path, data={**data, "csrf_token": csrf(client)})


def _html(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def _error(response: TestResponse, status: int, field: str | None = None) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error.get("field") == field
    message: str = error["message"]
    return message


def _roles(app: Flask) -> dict[str, str]:
    with app.app_context():
        query = select(User.email, Membership.role).join(Membership, Membership.user_id == User.id)
        return {email: role for email, role in database.session().execute(query)}


def _member_changes(app: Flask) -> int:
    with app.app_context():
        changes = select(AuditEvent).where(AuditEvent.action.in_(["member.set", "member.remove"]))
        return len(database.session().scalars(changes).all())


def _snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row but the tokens' last use, which a request may write."""
    return table_snapshot(app, frozenset({"last_used_at"}))


# ---- 1. a tenant keeps an admin who can log in --------------------------------------------------


def test_an_admin_cannot_leave_when_the_other_admins_are_disabled(
    app: Flask, acme: dict[str, int]
) -> None:
    _disable(app, ANA)
    before = _roles(app), _member_changes(app)
    client = _logged_in(app, BOSS)
    boss = acme[BOSS]
    for path, data in ((f"/tenants/acme/members/{boss}/role", {"role": "viewer"}),
                       (f"/tenants/acme/members/{boss}/remove", {})):  # fmt: skip
        refused = _post(client, path, data)
        assert refused.status_code == 409
        assert (
            "they are the last admin of Acme with an active account (its other admins are "
            "disabled)" in _html(refused)
        )
    api = Caller(client, issue_test_token(app, BOSS))
    root = Caller(client, issue_test_token(app, ROOT))
    for caller in (api, root):
        message = _error(caller("PATCH", f"/tenants/acme/members/{boss}", {"role": "viewer"}),
                         409, "role")  # fmt: skip
        assert "last admin of Acme with an active account" in message
        _error(caller("POST", "/tenants/acme/members", {"email": BOSS, "role": "analyst"}), 409,
               "role")  # fmt: skip
        _error(caller("DELETE", f"/tenants/acme/members/{boss}"), 409)
    assert (_roles(app), _member_changes(app)) == before


def test_a_disabled_admin_may_be_demoted_or_removed_even_as_the_last_admin(
    app: Flask, acme: dict[str, int]
) -> None:
    """They manage nothing already: only an admin who can log in is kept."""
    _disable(app, ANA)
    client = _logged_in(app, BOSS)
    assert (
        _post(client, f"/tenants/acme/members/{acme[ANA]}/role", {"role": "admin"}).status_code
        == 303
    )
    _disable(app, BOSS)  # now acme has no admin who can log in
    root = Caller(app.test_client(), issue_test_token(app, ROOT))
    assert (
        root("PATCH", f"/tenants/acme/members/{acme[ANA]}", {"role": "viewer"}).status_code == 200
    )
    assert root("DELETE", f"/tenants/acme/members/{acme[BOSS]}").status_code == 204
    assert _roles(app) == {ANA: "viewer", VIC: "viewer", OUT: "admin"}


def test_with_another_active_admin_one_may_still_go(app: Flask, acme: dict[str, int]) -> None:
    client = _logged_in(app, BOSS)
    demoted = _post(client, f"/tenants/acme/members/{acme[BOSS]}/role", {"role": "viewer"})
    assert demoted.status_code == 303
    assert _roles(app)[BOSS] == "viewer"


def test_the_members_table_marks_disabled_members(app: Flask, acme: dict[str, int]) -> None:
    _disable(app, VIC)
    for who in (BOSS, ROOT):
        page = _html(_logged_in(app, who).get("/tenants/acme"))
        rows = {
            user_id: re.search(rf'<tr id="member-{user_id}".*?</tr>', page, re.S)
            for user_id in (acme[VIC], acme[ANA])
        }
        vic, ana = rows[acme[VIC]], rows[acme[ANA]]
        assert vic is not None
        assert ana is not None
        assert '<span class="badge bad">disabled</span>' in vic.group(0)
        assert "disabled" not in ana.group(0)


def test_disabling_a_tenants_last_active_admin_is_allowed_and_named(
    app: Flask, acme: dict[str, int], runner: Any
) -> None:
    """Offboarding never waits for a tenant's admins; the Users page and the CLI say which
    tenants are left without an admin who can log in."""
    browser = _logged_in(app, ROOT)
    first = _post(browser, f"/users/{acme[ANA]}/disable", {})
    assert first.status_code == 303
    assert "No admin of" not in _html(browser.get(first.location))  # boss still can
    second = _post(browser, f"/users/{acme[BOSS]}/disable", {})
    assert second.status_code == 303
    shown = _html(browser.get(second.location))
    assert f"{BOSS} disabled" in shown
    assert "No admin of Acme can log in now: make another member admin there" in shown
    result = runner("disable-user", OUT)
    assert result.exit_code == 0, result.output
    assert "no admin of other can log in now" in result.output
    quiet = runner("disable-user", VIC)  # a viewer: no tenant loses an admin
    assert quiet.exit_code == 0, quiet.output
    assert "no admin of" not in quiet.output


# ---- 2. what a request that came with an API token may do with tokens ---------------------------


def _token(app: Flask, email: str, days: int | None = None, name: str = "ci") -> str:
    with app.app_context():
        db = database.session()
        user = get_user_by_email(db, email)
        assert user is not None
        return issue_token(db, user, app.extensions["pa_hasher"], name, expires_in_days=days)[1]


def _expiry(app: Flask, token_id: str) -> datetime | None:
    with app.app_context():
        return database.session().scalar(
            select(ApiToken.expires_at).where(ApiToken.token_id == token_id)
        )


@pytest.fixture
def short(app: Flask, client: FlaskClient, acme: dict[str, int]) -> Caller:
    """vic's API token that expires in a day."""
    return Caller(client, _token(app, VIC, days=1))


def test_a_token_issues_tokens_that_expire_with_it_at_the_latest(app: Flask, short: Caller) -> None:
    limit = _expiry(app, short.token_id)
    assert limit is not None
    for body in ({"name": "inherits"}, {"name": "null too", "expires_in_days": None}):
        created = short("POST", "/me/tokens", body)
        assert created.status_code == 201, created.get_data(as_text=True)
        assert _expiry(app, created.get_json()["token_id"]) == limit
        assert created.get_json()["expires_at"] == limit.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("days", [2, 30, 3650])
def test_a_token_cannot_issue_one_that_outlives_it(app: Flask, short: Caller, days: int) -> None:
    before = _snapshot(app)
    refused = short("POST", "/me/tokens", {"name": "forever", "expires_in_days": days})
    message = _error(refused, 400, "expires_in_days")
    limit = _expiry(app, short.token_id)
    assert limit is not None
    assert f"{limit.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in message
    assert "leave it out to take the same expiry" in message
    assert "Signing in (the Account page) lifts the limit" in message
    assert _snapshot(app) == before


def test_a_longer_lived_token_issues_shorter_ones_and_sessions_have_no_limit(
    app: Flask, acme: dict[str, int], client: FlaskClient
) -> None:
    week = Caller(client, _token(app, VIC, days=7))
    shorter = week("POST", "/me/tokens", {"name": "day", "expires_in_days": 1})
    assert shorter.status_code == 201
    too_long = _error(week("POST", "/me/tokens", {"name": "x", "expires_in_days": 8}), 400,
                      "expires_in_days")  # fmt: skip
    assert "give at most 6 or leave it out" in too_long
    browser = _logged_in(app, VIC)
    headers = {"X-CSRF-Token": csrf(browser)}
    for body, expiry in (({"name": "never"}, None), ({"name": "long", "expires_in_days": 3650},
                                                      "set")):  # fmt: skip
        created = browser.post("/api/v1/me/tokens", json=body, headers=headers)
        assert created.status_code == 201
        assert (created.get_json()["expires_at"] is None) == (expiry is None)
    unlimited = Caller(client, _token(app, VIC))  # no expiry: no limit either
    assert unlimited("POST", "/me/tokens", {"name": "n"}).get_json()["expires_at"] is None
    assert (
        unlimited("POST", "/me/tokens", {"name": "y", "expires_in_days": 3650}).status_code == 201
    )


def test_a_token_revokes_only_itself(app: Flask, short: Caller) -> None:
    other = Caller(short.client, _token(app, VIC, name="other"))
    before = _snapshot(app)
    message = _error(short("DELETE", f"/me/tokens/{other.token_id}"), 403)
    assert "an API token may revoke only itself" in message
    assert "sign in" in message
    assert "admin revoke-token" in message
    assert _snapshot(app) == before
    assert other("GET", "/me").status_code == 200
    with app.app_context():
        revoked = select(AuditEvent).where(AuditEvent.action == "token.revoke")
        assert database.session().scalars(revoked).all() == []
    stranger = Caller(short.client, _token(app, OUT))
    _error(stranger("DELETE", f"/me/tokens/{short.token_id}"), 404)  # another user's: unknown
    assert short("DELETE", f"/me/tokens/{short.token_id}").status_code == 204
    _error(short("GET", "/me"), 401)


def test_automation_rotates_its_token_through_the_api(app: Flask, short: Caller) -> None:
    """T1 issues T2 (expiring no later than T1), revokes itself, and the automation goes on
    with T2."""
    created = short("POST", "/me/tokens", {"name": "ci-next"})
    assert created.status_code == 201
    assert short("DELETE", f"/me/tokens/{short.token_id}").status_code == 204
    following = Caller(short.client, created.get_json()["token"])
    listed = {
        t["token_id"]: t["state"] for t in following("GET", "/me/tokens").get_json()["tokens"]
    }
    assert listed[short.token_id] == "revoked"
    assert listed[following.token_id] == "active"
    assert _expiry(app, following.token_id) == _expiry(app, short.token_id)


def _emails(app: Flask) -> set[str]:
    with app.app_context():
        return set(database.session().scalars(select(User.email)))


def _role(app: Flask, email: str, tenant: str = "acme") -> str | None:
    with app.app_context():
        db = database.session()
        user = get_user_by_email(db, email)
        assert user is not None
        return role_in(db, user, tenant_for(db, system_actor(), tenant))


def test_an_expiring_platform_admin_token_cannot_make_lasting_accounts(
    app: Flask, client: FlaskClient, acme: dict[str, int]
) -> None:
    """A one-day token that could create an account with its own password, or make one platform
    admin, would outlive itself through that account's never-expiring tokens."""
    short = Caller(client, _token(app, ROOT, days=1))
    before = _emails(app)
    made = short("POST", "/users", {"email": "mallory@evil.test", "password": PASSWORD})
    assert made.status_code == 403, made.get_json()
    assert "API token that expires" in made.get_json()["error"]["message"]
    promoted = short("PATCH", f"/users/{acme[OUT]}", {"platform_admin": True})
    assert promoted.status_code == 403
    assert promoted.get_json()["error"]["field"] == "platform_admin"
    added = short("POST", "/tenants/acme/members", {"email": OUT, "role": "viewer"})
    assert added.status_code == 403
    assert _emails(app) == before
    assert _role(app, OUT) is None
    with app.app_context():
        out = get_user_by_email(database.session(), OUT)
        assert out is not None
        assert not out.is_platform_admin
    # lowering access stays open to it; enabling a disabled user again does not
    assert short("PATCH", f"/users/{acme[VIC]}", {"active": False}).status_code == 200
    assert short("PATCH", f"/users/{acme[VIC]}", {"active": True}).status_code == 403
    lasting = Caller(client, _token(app, ROOT))
    assert lasting("PATCH", f"/users/{acme[VIC]}", {"active": True}).status_code == 200
    made = lasting("POST", "/users", {"email": "new@example.test", "password": PASSWORD})
    assert made.status_code == 201
    with app.app_context():
        events = database.session().scalars(
            select(AuditEvent).where(AuditEvent.action == "user.create")
        )
        made_by = {e.details["email"]: e.details.get("api_token") for e in events}
    assert made_by["new@example.test"] == lasting.token_id


def test_an_expiring_tenant_admin_token_cannot_invite_or_raise_roles(
    app: Flask, client: FlaskClient, acme: dict[str, int]
) -> None:
    short = Caller(client, _token(app, BOSS, days=1))
    invited = short("POST", "/tenants/acme/invitations", {"email": OUT, "role": "admin"})
    assert invited.status_code == 403
    assert short("GET", "/tenants/acme/invitations").get_json()["invitations"] == []
    raised = short("PATCH", f"/tenants/acme/members/{acme[VIC]}", {"role": "admin"})
    assert raised.status_code == 403
    assert raised.get_json()["error"]["field"] == "role"
    assert _role(app, VIC) == "viewer"
    lowered = short("PATCH", f"/tenants/acme/members/{acme[ANA]}", {"role": "viewer"})
    assert lowered.status_code == 200
    assert _role(app, ANA) == "viewer"
    signed_in = _logged_in(app, BOSS)
    invited = signed_in.post(
        "/api/v1/tenants/acme/invitations",
        json={"email": OUT, "role": "admin"},
        headers={"X-CSRF-Token": csrf(signed_in)},
    )
    assert invited.status_code == 201


def _key_expiry(app: Flask, key_id: str) -> datetime | None:
    with app.app_context():
        return database.session().scalar(select(ApiKey.expires_at).where(ApiKey.key_id == key_id))


def test_collector_keys_made_with_an_expiring_token_expire_with_it(
    app: Flask, client: FlaskClient, acme: dict[str, int]
) -> None:
    """Else a one-day token could leave a key behind that writes (and uploads load tests) for
    ever, from a free collector as any host of the tenant."""
    short = Caller(client, _token(app, BOSS, days=1))
    limit = _expiry(app, short.token_id)
    made = short("POST", "/tenants/acme/collectors",
                 {"name": "ci", "hostname": "ci.example", "host_tag": "free"})  # fmt: skip
    assert made.status_code == 201
    collector_id = made.get_json()["id"]
    issued = short("POST", "/tenants/acme/keys", {"collector_id": collector_id})
    assert issued.status_code == 201
    key_id = issued.get_json()["key_id"]
    assert _key_expiry(app, key_id) == limit
    beyond = short("POST", "/tenants/acme/keys",
                   {"collector_id": collector_id, "expires_in_days": 30})  # fmt: skip
    assert beyond.status_code == 400
    assert beyond.get_json()["error"]["field"] == "expires_in_days"
    lasting = Caller(client, _token(app, BOSS))
    forever = lasting("POST", "/tenants/acme/keys", {"collector_id": collector_id})
    assert _key_expiry(app, forever.get_json()["key_id"]) is None
    # rotating a lasting key: the new one is cut to the token's expiry, or refused if asked longer
    path = f"/tenants/acme/keys/{forever.get_json()['key_id']}/rotate"
    refused = short("POST", path, {"overlap_hours": 1, "expires_in_days": 30})
    assert refused.status_code == 400
    assert _key_expiry(app, forever.get_json()["key_id"]) is None  # the old key left as it was
    rotated = short("POST", path, {"overlap_hours": 1})
    assert rotated.status_code == 201
    assert _key_expiry(app, rotated.get_json()["key_id"]) == limit


def test_an_expiring_token_may_pin_a_collector_but_not_free_it(
    app: Flask, client: FlaskClient, acme: dict[str, int]
) -> None:
    short = Caller(client, _token(app, BOSS, days=1))
    made = short("POST", "/tenants/acme/collectors", {"name": "web", "hostname": "web.example"})
    path = f"/tenants/acme/collectors/{made.get_json()['id']}"
    freed = short("PATCH", path, {"host_tag": "free"})
    assert freed.status_code == 403
    assert freed.get_json()["error"]["field"] == "host_tag"
    lasting = Caller(client, _token(app, BOSS))
    assert lasting("PATCH", path, {"host_tag": "free"}).get_json()["host_tag"] == "free"
    assert short("PATCH", path, {"host_tag": "pinned"}).get_json()["host_tag"] == "pinned"


def test_the_document_describes_the_token_limits(client: FlaskClient) -> None:
    document_ = client.get("/api/v1/openapi.json").get_json()
    revoke = document_["paths"]["/me/tokens/{token_id}"]["delete"]
    assert "403" in revoke["responses"]
    assert "only that token itself" in revoke["summary"]
    create = document_["paths"]["/me/tokens"]["post"]
    assert "no later than the calling token" in create["summary"]
    for path, method in [
        ("/users", "post"), ("/users/{user_id}", "patch"), ("/tenants/{slug}/members", "post"),
        ("/tenants/{slug}/members/{user_id}", "patch"), ("/tenants/{slug}/invitations", "post"),
    ]:  # fmt: skip
        operation = document_["paths"][path][method]
        assert "API token that expires" in operation["summary"], path
        assert "403" in operation["responses"], path


# ---- 3. load tests a page at a time -------------------------------------------------------------


def _store_runs(
    app: Flask, slug: str, count: int, collector_id: int | None = None, first_day: int = 1
) -> list[int]:
    """``count`` runs of the tenant, a day apart from ``first_day`` of 2026: their ids, newest
    first."""
    ids = []
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), slug)
        for day in range(first_day, first_day + count):
            started = datetime(2026, 1, 1, 10, tzinfo=UTC) + timedelta(days=day)
            body = {**document(hostname=f"h{day}.test"),
                    "started_at": started.isoformat().replace("+00:00", "Z"),
                    "finished_at": (started + timedelta(minutes=5)).isoformat()
                    .replace("+00:00", "Z")}  # fmt: skip
            found = stored_runs.upload_as_user(db, system_actor(), tenant,
                                               json.dumps(body).encode(),
                                               collector_id=collector_id)  # fmt: skip
            ids.append(found.id)
    return ids[::-1]


@pytest.fixture
def collector(app: Flask, acme: dict[str, int]) -> int:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "acme")
        fields = {"name": "web1", "hostname": "web1.acme.test"}
        return register_collector(db, system_actor(), tenant, fields).id


def test_the_api_lists_load_tests_a_page_at_a_time(
    app: Flask, client: FlaskClient, collector: int
) -> None:
    own = _store_runs(app, "acme", 3, collector, first_day=20)
    older = _store_runs(app, "acme", 5)  # uploaded later, started earlier: listed after
    vic = Caller(client, issue_test_token(app, VIC))
    first = vic("GET", "/tenants/acme/loadtests?limit=2")
    assert first.status_code == 200
    body = first.get_json()
    order = own + older
    assert [run["id"] for run in body["loadtests"]] == order[:2]
    assert body["next_cursor"]
    link = first.headers["Link"]
    assert link.endswith('>; rel="next"')
    assert parse_qs(urlsplit(link[1 : link.index(">")]).query) == {
        "limit": ["2"], "cursor": [body["next_cursor"]]
    }  # fmt: skip
    seen = [run["id"] for run in body["loadtests"]]
    cursor = body["next_cursor"]
    while cursor:
        page = vic("GET", f"/tenants/acme/loadtests?limit=2&cursor={cursor}").get_json()
        seen += [run["id"] for run in page["loadtests"]]
        cursor = page["next_cursor"]
    assert seen == order
    everything = vic("GET", "/tenants/acme/loadtests").get_json()
    assert everything["next_cursor"] is None
    assert "Link" not in vic("GET", "/tenants/acme/loadtests").headers
    assert [run["id"] for run in everything["loadtests"]] == order
    of_one = vic("GET", f"/tenants/acme/loadtests?collector_id={collector}&limit=2")
    assert [run["id"] for run in of_one.get_json()["loadtests"]] == own[:2]
    assert f"collector_id={collector}" in of_one.headers["Link"]
    rest = vic("GET", f"/tenants/acme/loadtests?collector_id={collector}&limit=2&cursor="
               f"{of_one.get_json()['next_cursor']}").get_json()  # fmt: skip
    assert [run["id"] for run in rest["loadtests"]] == own[2:]


def test_the_load_test_list_refuses_bad_limits_and_other_lists_cursors(
    app: Flask, client: FlaskClient, collector: int
) -> None:
    _store_runs(app, "acme", 2)
    root = Caller(client, issue_test_token(app, ROOT))
    for limit in ("0", "1001", "x"):
        _error(root("GET", f"/tenants/acme/loadtests?limit={limit}"), 400, "limit")
    _error(root("GET", "/tenants/acme/loadtests?cursor=nonsense"), 400, "cursor")
    for _ in range(2):
        assert root("POST", "/tenants/acme/keys", {"collector_id": collector}).status_code == 201
    keys_cursor = root("GET", "/tenants/acme/keys?limit=1").get_json()["next_cursor"]
    runs_cursor = root("GET", "/tenants/acme/loadtests?limit=1").get_json()["next_cursor"]
    _error(root("GET", f"/tenants/acme/loadtests?cursor={keys_cursor}"), 400, "cursor")
    _error(root("GET", f"/tenants/acme/keys?cursor={runs_cursor}"), 400, "cursor")
    _error(root("GET", "/tenants/acme/loadtests?page=2"), 400, "page")


def test_the_document_pages_the_load_test_list(client: FlaskClient) -> None:
    listing = client.get("/api/v1/openapi.json").get_json()["paths"]["/tenants/{slug}/loadtests"]
    operation = listing["get"]
    names = {parameter.get("$ref", "").rsplit("/", 1)[-1] for parameter in operation["parameters"]}
    assert {"list_limit", "cursor"} <= names
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"loadtests", "next_cursor"}


@pytest.fixture
def rows_of_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tenants.views.loadtests.PAGE_ROWS", 2)


def _run_rows(page: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr id="run-(\d+)"', page)]


def _checked(page: str) -> set[int]:
    return {
        int(found)
        for found in re.findall(
            r'<input type="checkbox" name="ids" value="(\d+)"[^>]*checked', page
        )
    }


def test_the_history_page_shows_a_page_of_runs_and_keeps_the_choice(
    app: Flask, acme: dict[str, int], rows_of_two: None
) -> None:
    newest_first = _store_runs(app, "acme", 5)
    client = _logged_in(app, VIC)
    first = _html(client.get("/tenants/acme/loadtests"))
    assert _run_rows(first) == newest_first[:2]
    older = re.search(r'<button type="submit" class="link" formaction="(/tenants/acme/loadtests)" '
                      r'name="cursor" value="([^"]+)" id="older-runs">', first)  # fmt: skip
    assert older is not None
    assert "Newest runs" not in first
    # the page buttons send the compare form: what was chosen goes along
    chosen = newest_first[0]
    second = _html(client.get(f"/tenants/acme/loadtests?ids={chosen}&cursor={older.group(2)}"))
    assert _run_rows(second) == newest_first[2:4]
    assert "Newest runs" in second
    elsewhere = second[
        second.index('id="chosen-elsewhere"') : second.index(
            "</p>", second.index('id="chosen-elsewhere"')
        )
    ]
    assert f'value="{chosen}" checked' in elsewhere
    assert _checked(second) == {chosen}
    both = f"ids={chosen}&ids={newest_first[3]}"
    third = client.get(f"/tenants/acme/loadtests?{both}&cursor={older.group(2)}")
    assert _checked(_html(third)) == {chosen, newest_first[3]}
    compared = client.get(f"/tenants/acme/loadtests/compare?{both}")
    assert compared.status_code == 200  # runs of different pages, compared together
    html = _html(compared)
    assert all(f"/tenants/acme/loadtests/{run_id}" in html for run_id in (chosen, newest_first[3]))


def test_the_history_page_ignores_runs_of_other_tenants_in_the_choice(
    app: Flask, acme: dict[str, int], rows_of_two: None
) -> None:
    theirs = _store_runs(app, "other", 1)
    ours = _store_runs(app, "acme", 3)
    page = _html(_logged_in(app, VIC).get(f"/tenants/acme/loadtests?ids={theirs[0]}&ids={ours[2]}"))
    assert _checked(page) == {ours[2]}
    assert f"/tenants/other/loadtests/{theirs[0]}" not in page
    assert f'value="{theirs[0]}"' not in page


def test_a_refused_upload_shows_the_first_page(
    app: Flask, acme: dict[str, int], rows_of_two: None
) -> None:
    newest_first = _store_runs(app, "acme", 3)
    client = _logged_in(app, BOSS)
    refused = client.post("/tenants/acme/loadtests?cursor=x",
                          data={"csrf_token": csrf(client)})  # fmt: skip
    assert refused.status_code == 400
    assert _run_rows(_html(refused)) == newest_first[:2]


# ---- 4. a failed login keeps no typed password --------------------------------------------------


def test_a_password_typed_as_the_e_mail_is_not_in_the_audit_log(
    app: Flask, acme: dict[str, int]
) -> None:
    typed = "Tr0ub4dor&3-horse"
    attempt = app.test_client()
    attempt.get("/login")
    for email in (typed, "nobody@acme.test", ""):
        failed = attempt.post("/login", data={"email": email, "password": "whatever",
                                              "csrf_token": csrf(attempt)})  # fmt: skip
        assert failed.status_code == 401
    wrong = attempt.post("/login", data={"email": BOSS, "password": typed,
                                         "csrf_token": csrf(attempt)})  # fmt: skip
    assert wrong.status_code == 401
    browser = _logged_in(app, ROOT)
    page = _html(browser.get("/audit"))
    api = _html(Caller(browser, issue_test_token(app, ROOT))("GET", "/audit"))
    for shown in (page, api):
        assert "Tr0ub4dor" not in shown
        assert "Tr0ub4dor&amp;3" not in shown
    with app.app_context():
        failures = database.session().scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "login.failure")
            .order_by(AuditEvent.id)
        ).all()  # fmt: skip
    assert failures == [NOT_AN_EMAIL, "nobody@acme.test", "(empty)", BOSS]
    assert NOT_AN_EMAIL in page


# ---- 5. the key form's collector, refused at its field ------------------------------------------


def test_issuing_a_key_for_a_collector_outside_the_tenant_shows_the_form(
    app: Flask, acme: dict[str, int], collector: int
) -> None:
    with app.app_context():
        db = database.session()
        other = tenant_for(db, system_actor(), "other")
        theirs = register_collector(db, system_actor(), other, {"name": "x", "hostname": "x"}).id
    client = _logged_in(app, BOSS)
    before = _snapshot(app)
    for collector_id in (theirs, 999999):
        refused = _post(client, "/tenants/acme/keys", {"collector_id": str(collector_id),
                                                        "name": "deploy"})  # fmt: skip
        assert refused.status_code == 404
        page = _html(refused)
        assert '<section id="keys"' in page  # the tenant's page, not the bare error page
        assert re.search(r'<select name="collector_id" required aria-invalid="true"', page)
        assert (
            '<small class="field-error" id="field-key-collector_id-error">no such collector '
            "in this tenant</small>" in page
        )
        assert 'value="deploy"' in page  # what was typed is kept
    assert _snapshot(app) == before
    with app.app_context():
        assert database.session().scalars(select(ApiKey)).all() == []
    issued = _post(client, "/tenants/acme/keys", {"collector_id": str(collector)})
    assert issued.status_code == 200
    assert "pak_" in _html(issued)


def test_a_token_with_less_than_a_day_left_issues_only_its_own_expiry(
    app: Flask, short: Caller
) -> None:
    with app.app_context():
        db = database.session()
        db.execute(update(ApiToken).where(ApiToken.token_id == short.token_id)
                   .values(expires_at=datetime.now(UTC) + timedelta(hours=1)))  # fmt: skip
        db.commit()
    refused = short("POST", "/me/tokens", {"name": "x", "expires_in_days": 1})
    message = _error(refused, 400, "expires_in_days")
    assert "give at most" not in message  # less than a day left: only leaving it out works
    assert "leave it out to take the same expiry" in message
