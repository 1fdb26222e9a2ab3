"""The admin pages through Flask's test client.

Every page for every role; every write route refused to readers (403), to members of another
tenant (404) and without its CSRF token (400), each time with the database unchanged; markup
in names escaped; login throttling; a key's plaintext shown once and stored or logged nowhere.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.audit import record
from tenants.collectors import register_collector
from tenants.invitations import invite
from tenants.keys import issue_key
from tenants.models import ApiKey, Collector, Membership, Tenant, User
from tests.conftest import PASSWORD, csrf, login, table_snapshot
from tests.unit.field_errors import described_errors

PLATFORM = "root@platform.test"
ADMIN, ANALYST, VIEWER = "boss@a.test", "ana@a.test", "vic@a.test"
OUTSIDER = "boss@b.test"  # the admin of tenant b, a stranger to tenant a
ROLES = {PLATFORM: "platform", ADMIN: "admin", ANALYST: "analyst", VIEWER: "viewer"}
MARKUP = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
KEY = re.compile(r"pak_[a-z2-7]{13}_[A-Za-z0-9_-]{43}")

Route = tuple[str, str, dict[str, str]]  # what it does, path, form fields


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@dataclass(frozen=True)
class World:
    """Tenant a (admin, analyst, viewer) and tenant b (its own admin), each with a keyed collector."""

    collector_a: int
    key_a: str
    collector_b: int
    key_b: str
    analyst_id: int  # a member of tenant a only
    viewer_id: int  # a member of tenant a only
    invitation_a: int  # tenant a's pending invitation


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    make_user(PLATFORM, platform_admin=True)
    make_tenant("a", {ADMIN: "admin", ANALYST: "analyst", VIEWER: "viewer"})
    make_tenant("b", {OUTSIDER: "admin"})
    with app.app_context():
        collector_a, key_a = _collector_with_key(app, "a")
        collector_b, key_b = _collector_with_key(app, "b")
        users = database.session().execute(select(User.email, User.id))
        ids = {email: user_id for email, user_id in users}
        invitation_a = _invitation(app, "a", "guest@a.test")
    return World(collector_a, key_a, collector_b, key_b, ids[ANALYST], ids[VIEWER], invitation_a)


def _invitation(app: Flask, slug: str, email: str) -> int:
    db = database.session()
    tenant = tenant_for(db, system_actor(), slug)
    issued = invite(db, system_actor(), tenant, email, "viewer", app.extensions["pa_hasher"])
    return issued.invitation.id


def _collector_with_key(app: Flask, slug: str) -> tuple[int, str]:
    db = database.session()
    tenant = tenant_for(db, system_actor(), slug)
    fields = {"name": f"web-{slug}", "hostname": f"web.{slug}.test"}
    collector = register_collector(db, system_actor(), tenant, fields)
    issued = issue_key(db, system_actor(), tenant, collector, app.extensions["pa_hasher"], "main")
    return collector.id, issued.key.key_id


def pages_of_a(world: World) -> list[str]:
    return [
        "/tenants/a",
        f"/tenants/a/collectors/{world.collector_a}",
        "/tenants/a/settings",
        "/tenants/a/audit",
    ]


def writes_of_a(world: World) -> list[Route]:
    collector, key, member = world.collector_a, world.key_a, world.analyst_id
    return [
        ("register collector", "/tenants/a/collectors", {"name": "new", "hostname": "new.test"}),
        ("disable collector", f"/tenants/a/collectors/{collector}/disable", {}),
        ("enable collector", f"/tenants/a/collectors/{collector}/enable", {}),
        ("free host tag", f"/tenants/a/collectors/{collector}/host-tag", {"host_tag": "free"}),
        ("issue key", "/tenants/a/keys", {"collector_id": str(collector), "name": "k"}),
        ("revoke key", f"/tenants/a/keys/{key}/revoke", {}),
        ("rotate key", f"/tenants/a/keys/{key}/rotate", {"overlap_hours": "1"}),
        ("invite member", "/tenants/a/invitations", {"email": OUTSIDER, "role": "viewer"}),
        ("revoke invitation", f"/tenants/a/invitations/{world.invitation_a}/revoke", {}),
        ("change role", f"/tenants/a/members/{member}/role", {"role": "admin"}),
        ("remove member", f"/tenants/a/members/{member}/remove", {}),
        ("rename tenant", "/tenants/a/settings/name", {"name": "Renamed"}),
        ("disable tenant", "/tenants/a/disable", {}),
        (
            "set ingest limits",
            "/tenants/a/settings/limits",
            {"ingest_rate": "5", "ingest_burst": ""},
        ),
        ("enable tenant", "/tenants/a/enable", {}),
        ("delete tenant", "/tenants/a/delete", {"confirm": "a"}),
    ]


CREATE_TENANT: Route = ("create tenant", "/tenants", {"slug": "c", "name": "C"})


def a_objects_through_b(world: World) -> list[Route]:
    """Tenant a's collector, key and member, reached through tenant b's own URLs."""
    collector, key, member = world.collector_a, world.key_a, world.viewer_id
    return [
        ("disable collector", f"/tenants/b/collectors/{collector}/disable", {}),
        ("enable collector", f"/tenants/b/collectors/{collector}/enable", {}),
        ("free host tag", f"/tenants/b/collectors/{collector}/host-tag", {"host_tag": "free"}),
        ("issue key", "/tenants/b/keys", {"collector_id": str(collector)}),
        ("revoke key", f"/tenants/b/keys/{key}/revoke", {}),
        ("rotate key", f"/tenants/b/keys/{key}/rotate", {}),
        ("change role", f"/tenants/b/members/{member}/role", {"role": "viewer"}),
        ("remove member", f"/tenants/b/members/{member}/remove", {}),
        ("revoke invitation", f"/tenants/b/invitations/{world.invitation_a}/revoke", {}),
    ]


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    return table_snapshot(app)


def logged_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def post(client: FlaskClient, path: str, data: dict[str, str], token: bool = True) -> TestResponse:
    fields = {**data, "csrf_token": csrf(client)} if token else data
    return client.post(path, data=fields)


def html(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def post_forms(page: str) -> set[str]:
    """The actions of the page's POST forms, the logout button's left out."""
    return set(re.findall(r'<form method="post" action="([^"]+)"', page)) - {"/logout"}


def assert_no_inline_script(page: str) -> None:
    """The CSP forbids inline scripts: every script is a file, no element has an on* handler."""
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None
    assert re.search(r"<[^>]+\son[a-z]+\s*=", page) is None


def follow(client: FlaskClient, response: TestResponse) -> str:
    assert response.status_code == 303, html(response)
    return html(client.get(response.location))


# --- every page for every role ---------------------------------------------------------------


@pytest.mark.parametrize("email", list(ROLES))
def test_every_page_renders_for_each_role(app: Flask, world: World, email: str) -> None:
    client = logged_in(app, email)
    for path in ["/tenants", *pages_of_a(world)]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "A</a>" in html(response), path
        assert_no_inline_script(html(response))
    platform_audit = client.get("/audit").status_code
    assert platform_audit == (200 if email == PLATFORM else 403)


@pytest.mark.parametrize("email", [ANALYST, VIEWER])
def test_readers_see_no_forms(app: Flask, world: World, email: str) -> None:
    client = logged_in(app, email)
    for path in pages_of_a(world):
        assert post_forms(html(client.get(path))) == set(), path
    assert post_forms(html(client.get("/tenants"))) == set()


def test_tenant_admin_sees_tenant_forms_but_no_platform_forms(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    overview = post_forms(html(client.get("/tenants/a")))
    assert {"/tenants/a/collectors", "/tenants/a/keys", "/tenants/a/invitations"} <= overview
    assert f"/tenants/a/keys/{world.key_a}/revoke" in overview
    assert f"/tenants/a/invitations/{world.invitation_a}/revoke" in overview
    settings = post_forms(html(client.get("/tenants/a/settings")))
    assert settings == {"/tenants/a/settings/name"}
    assert post_forms(html(client.get("/tenants"))) == set()


def test_platform_admin_sees_platform_forms(app: Flask, world: World) -> None:
    client = logged_in(app, PLATFORM)
    settings = post_forms(html(client.get("/tenants/a/settings")))
    assert {
        "/tenants/a/settings/name",
        "/tenants/a/settings/limits",
        "/tenants/a/disable",
        "/tenants/a/delete",
    } <= settings
    assert post_forms(html(client.get("/tenants"))) == {"/tenants"}


def test_home_goes_to_the_only_tenant_or_the_list(app: Flask, world: World, make_user: Any) -> None:
    assert logged_in(app, VIEWER).get("/").location == "/tenants/a"
    assert logged_in(app, OUTSIDER).get("/").location == "/tenants/b"
    assert logged_in(app, PLATFORM).get("/").location == "/tenants"
    make_user("nobody@x.test")
    lonely = logged_in(app, "nobody@x.test")
    assert lonely.get("/").location == "/tenants"
    assert "not a member of any tenant" in html(lonely.get("/tenants"))


def test_pages_need_a_login(client: FlaskClient, world: World) -> None:
    response = client.get("/tenants/a")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=/tenants/a")


# --- roles, tenancy and CSRF on every write ---------------------------------------------------


@pytest.mark.parametrize("email", [VIEWER, ANALYST])
def test_readers_get_403_on_every_write_and_nothing_changes(
    app: Flask, world: World, email: str
) -> None:
    client = logged_in(app, email)
    before = snapshot(app)
    for what, path, data in [*writes_of_a(world), CREATE_TENANT]:
        assert post(client, path, data).status_code == 403, what
    assert snapshot(app) == before


def test_tenant_admin_gets_403_on_platform_writes(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    platform_only = {"disable tenant", "enable tenant", "set ingest limits", "delete tenant"}
    before = snapshot(app)
    for what, path, data in [*writes_of_a(world), CREATE_TENANT]:
        if what in platform_only or what == "create tenant":
            assert post(client, path, data).status_code == 403, what
    assert snapshot(app) == before


def test_member_of_another_tenant_gets_404_on_every_route(app: Flask, world: World) -> None:
    client = logged_in(app, OUTSIDER)
    before = snapshot(app)
    listed = html(client.get("/tenants"))
    assert 'href="/tenants/b"' in listed
    assert 'href="/tenants/a"' not in listed
    for path in pages_of_a(world):
        assert client.get(path).status_code == 404, path
    for what, path, data in writes_of_a(world):
        assert post(client, path, data).status_code == 404, what
    assert snapshot(app) == before


def test_objects_of_another_tenant_are_404_through_ones_own(app: Flask, world: World) -> None:
    client = logged_in(app, OUTSIDER)
    before = snapshot(app)
    assert client.get(f"/tenants/b/collectors/{world.collector_a}").status_code == 404
    for what, path, data in a_objects_through_b(world):
        assert post(client, path, data).status_code == 404, what
    assert snapshot(app) == before


@pytest.mark.parametrize("row_id", ["0", "2147483648", "99999999999999999999"])
def test_ids_beyond_the_databases_range_are_404_not_an_overflow(
    app: Flask, world: World, row_id: str
) -> None:
    client = logged_in(app, ADMIN)
    before = snapshot(app)
    assert client.get(f"/tenants/a/collectors/{row_id}").status_code == 404
    for action in ("disable", "enable"):
        assert post(client, f"/tenants/a/collectors/{row_id}/{action}", {}).status_code == 404
    assert post(client, f"/tenants/a/members/{row_id}/role", {"role": "viewer"}).status_code == 404
    assert post(client, f"/tenants/a/members/{row_id}/remove", {}).status_code == 404
    assert snapshot(app) == before


def test_forms_without_the_csrf_token_are_refused(app: Flask, world: World) -> None:
    client = logged_in(app, PLATFORM)
    before = snapshot(app)
    for what, path, data in [*writes_of_a(world), CREATE_TENANT]:
        assert post(client, path, data, token=False).status_code == 400, what
        wrong = client.post(path, data={**data, "csrf_token": "forged"})
        assert wrong.status_code == 400, what
    assert snapshot(app) == before


# --- what each write does ---------------------------------------------------------------------


def test_creating_a_tenant_keeps_refused_input(app: Flask, world: World) -> None:
    client = logged_in(app, PLATFORM)
    refused = post(client, "/tenants", {"slug": "Not A Slug", "name": "Gamma"})
    assert refused.status_code == 400
    assert 'value="Not A Slug"' in html(refused)
    assert 'value="Gamma"' in html(refused)
    assert 'aria-invalid="true"' in html(refused)
    assert post(client, "/tenants", {"slug": "a", "name": "Again"}).status_code == 409
    page = follow(client, post(client, "/tenants", {"slug": "gamma", "name": "Gamma"}))
    assert "Tenant Gamma created" in page
    with app.app_context():
        assert database.session().scalar(select(Tenant.name).where(Tenant.slug == "gamma"))


def test_registering_a_collector(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    fields = {"name": "db1", "hostname": "db1.a.test", "labels": "env=prod, team=db",
              "vcpus": "16", "memory_gib": "64", "cloud_provider": "aws",
              "region": "eu-west-1", "instance_type": "r6i.4xlarge"}  # fmt: skip
    refused = post(client, "/tenants/a/collectors", {**fields, "hostname": "not a host"})
    assert refused.status_code == 400
    assert 'value="not a host"' in html(refused)
    assert 'value="env=prod, team=db"' in html(refused)
    not_a_size = post(client, "/tenants/a/collectors", {**fields, "memory_gib": "lots"})
    assert not_a_size.status_code == 400
    assert post(client, "/tenants/a/collectors", {**fields, "name": "web-a"}).status_code == 409
    page = follow(client, post(client, "/tenants/a/collectors", fields))
    assert "Collector db1 registered" in page
    assert "64 GiB" in page
    assert "env=prod" in page
    assert "r6i.4xlarge" in page
    with app.app_context():
        stored = database.session().scalar(select(Collector).where(Collector.name == "db1"))
        assert stored is not None
        assert stored.memory_bytes == 64 << 30
        assert stored.labels == {"env": "prod", "team": "db"}


def test_disabling_and_enabling_a_collector(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    path = f"/tenants/a/collectors/{world.collector_a}"
    page = follow(client, post(client, f"{path}/disable", {"return_to": path}))
    assert "disabled: ingest refuses its keys" in page
    assert f'action="{path}/enable"' in page
    page = follow(client, post(client, f"{path}/enable", {}))
    assert "Collector web-a enabled" in page


@pytest.mark.parametrize(
    ("return_to", "returned"),
    [
        ("/tenants/a?q=web&collectors=c1&keys=k1&members=m1",
         "/tenants/a?q=web&collectors=c1&keys=k1&members=m1#collectors"),
        ("/tenants/a?q=web&next=https://evil.test/", "/tenants/a?q=web#collectors"),
        ("/tenants/a/collectors/{collector}?keys=k1", "/tenants/a/collectors/{collector}?keys=k1"),
        ("", "/tenants/a#collectors"),
        ("collector", "/tenants/a#collectors"),
        ("https://evil.test/tenants/a", "/tenants/a#collectors"),
        ("//evil.test/tenants/a", "/tenants/a#collectors"),
        ("/tenants/b?q=web", "/tenants/a#collectors"),
        ("/tenants/a/settings", "/tenants/a#collectors"),
        ("/tenants/a/collectors/{other}", "/tenants/a#collectors"),
    ],
)  # fmt: skip
def test_a_row_form_returns_only_to_the_page_it_was_on(
    app: Flask, world: World, return_to: str, returned: str
) -> None:
    client = logged_in(app, ADMIN)
    other = post(client, "/tenants/a/collectors", {"name": "web2", "hostname": "web2.a.test"})
    places = {"collector": world.collector_a, "other": other.location.rsplit("/", 1)[1]}
    path = f"/tenants/a/collectors/{world.collector_a}/disable"
    response = post(client, path, {"return_to": return_to.format(**places)})
    assert response.status_code == 303
    assert response.location == returned.format(**places)


def test_revoking_a_key_returns_to_the_keys_where_they_were(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    collector_page = f"/tenants/a/collectors/{world.collector_a}"
    response = post(client, f"/tenants/a/keys/{world.key_a}/revoke",
                    {"return_to": f"{collector_page}?keys=k1"})  # fmt: skip
    assert response.location == f"{collector_page}?keys=k1#keys"


def test_the_row_forms_carry_the_page_they_are_on(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    page = html(client.get("/tenants/a?q=web"))
    assert (
        page.count('name="return_to" value="/tenants/a?q=web"') == 4
    )  # disable, issue, rotate, revoke
    collector_page = f"/tenants/a/collectors/{world.collector_a}"
    page = html(client.get(collector_page))
    assert page.count(f'name="return_to" value="{collector_page}"') == 4


def test_managing_members(app: Flask, world: World, make_user: Any) -> None:
    make_user("new@a.test")
    client = logged_in(app, ADMIN)
    member = post(client, "/tenants/a/invitations", {"email": ANALYST, "role": "admin"})
    assert member.status_code == 409
    assert 'value="ana@a.test"' in html(member)
    assert f"{ANALYST} is already a member of A" in html(member)
    bad_role = post(client, "/tenants/a/invitations", {"email": "new@a.test", "role": "owner"})
    assert bad_role.status_code == 400
    invited = post(client, "/tenants/a/invitations", {"email": "new@a.test", "role": "viewer"})
    assert invited.status_code == 200
    assert "Invitation created" in html(invited)
    page = follow(client, post(client, f"/tenants/a/members/{world.analyst_id}/role",
                               {"role": "admin"}))  # fmt: skip
    assert f"{ANALYST} is now admin" in page
    page = follow(client, post(client, f"/tenants/a/members/{world.analyst_id}/remove", {}))
    assert f"{ANALYST} removed" in page
    with app.app_context():
        query = select(User.email, Membership.role).join(Membership, Membership.user_id == User.id)
        roles = {email: role for email, role in database.session().execute(query)}
    assert ANALYST not in roles
    assert "new@a.test" not in roles  # invited, not a member until they accept


def test_tenant_settings(app: Flask, world: World) -> None:
    client = logged_in(app, PLATFORM)
    assert post(client, "/tenants/a/settings/name", {"name": ""}).status_code == 400
    page = follow(client, post(client, "/tenants/a/settings/name", {"name": "Alpha"}))
    assert "Tenant renamed to Alpha" in page
    page = follow(client, post(client, "/tenants/a/disable", {}))
    assert "This tenant is disabled" in page
    follow(client, post(client, "/tenants/a/enable", {}))
    refused = post(client, "/tenants/a/delete", {"confirm": "alpha"})
    assert refused.status_code == 400
    assert 'value="alpha"' in html(refused)
    page = follow(client, post(client, "/tenants/a/delete", {"confirm": "a"}))
    assert "Tenant a deleted" in page
    assert client.get("/tenants/a").status_code == 404


def test_ingest_limits_are_set_shown_refused_when_bad_and_reset(app: Flask, world: World) -> None:
    client = logged_in(app, PLATFORM)
    page = html(client.get("/tenants/a/settings"))
    assert '<dt>Ingest rate</dt><dd><span class="muted">ingest\'s default</span>' in page
    page = follow(client, post(client, "/tenants/a/settings/limits",
                               {"ingest_rate": "2500", "ingest_burst": "10000"}))  # fmt: skip
    assert "Ingest limits of A saved" in page
    assert "<dt>Ingest rate</dt><dd>2,500 points/s</dd>" in page
    assert "<dt>Ingest burst</dt><dd>10,000 points</dd>" in page
    before = snapshot(app)
    refused = post(client, "/tenants/a/settings/limits", {"ingest_rate": "-3", "ingest_burst": "7"})
    assert refused.status_code == 400
    assert "ingest_rate must be between 0 and 1,000,000,000" in html(refused)
    assert described_errors(html(refused)) == {
        "ingest_rate": "ingest_rate must be between 0 and 1,000,000,000"
    }
    assert 'value="-3"' in html(refused)  # what was typed is kept
    assert snapshot(app) == before
    refused = post(client, "/tenants/a/settings/limits", {"ingest_rate": "1", "ingest_burst": "x"})
    assert "ingest_burst must be a whole number" in html(refused)
    assert snapshot(app) == before
    page = follow(client, post(client, "/tenants/a/settings/limits",
                               {"ingest_rate": "0", "ingest_burst": ""}))  # fmt: skip
    assert "<dt>Ingest rate</dt><dd>no limit</dd>" in page
    assert '<dt>Ingest burst</dt><dd><span class="muted">ingest\'s default</span>' in page


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("1234567", "1,234,567"), ("2.5", "2.5"), ("1000000000", "1,000,000,000"),
     ("0.0000001", "0.0000001"), ("12345.678", "12,345.678")],
)  # fmt: skip
def test_the_ingest_rate_is_shown_as_typed_never_as_an_exponent(
    app: Flask, world: World, typed: str, shown: str
) -> None:
    client = logged_in(app, PLATFORM)
    page = follow(client, post(client, "/tenants/a/settings/limits",
                               {"ingest_rate": typed, "ingest_burst": ""}))  # fmt: skip
    assert f"<dt>Ingest rate</dt><dd>{shown} points/s</dd>" in page


def test_revoking_a_key_changes_its_state(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    page = follow(client, post(client, f"/tenants/a/keys/{world.key_a}/revoke", {}))
    assert f"Key {world.key_a} revoked" in page
    row = re.search(rf'<tr id="key-{world.key_a}".*?</tr>', page, re.S)
    assert row is not None
    assert 'data-state="revoked"' in row.group(0)


def test_key_form_errors_keep_the_input(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    fields = {"collector_id": str(world.collector_a), "name": "deploy", "expires_in_days": "0"}
    refused = post(client, "/tenants/a/keys", fields)
    assert refused.status_code == 400
    assert 'value="deploy"' in html(refused)
    assert KEY.search(html(refused)) is None
    rotate = post(client, f"/tenants/a/keys/{world.key_a}/rotate", {"overlap_hours": "9999"})
    assert rotate.status_code == 400
    assert post(client, "/tenants/a/keys", {"collector_id": "x"}).status_code == 400


@pytest.mark.parametrize("page", ["tenant", "collector"])
def test_a_refused_rotation_is_shown_in_its_row_with_what_was_typed(
    app: Flask, world: World, page: str
) -> None:
    client = logged_in(app, ADMIN)
    pages = {"tenant": "/tenants/a", "collector": f"/tenants/a/collectors/{world.collector_a}"}
    refused = post(client, f"/tenants/a/keys/{world.key_a}/rotate",
                   {"overlap_hours": "9999", "return_to": pages[page]})  # fmt: skip
    assert refused.status_code == 400
    shown = html(refused)
    assert (page == "collector") == ("<h2>Keys of web-a</h2>" in shown)
    row = re.search(rf'<tr id="key-{world.key_a}".*?</tr>', shown, re.S)
    assert row is not None
    overlap = re.search(r'<input type="number" name="overlap_hours"[^>]*>', row[0])
    assert overlap is not None
    assert 'value="9999"' in overlap[0]
    assert 'aria-invalid="true" autofocus' in overlap[0]
    assert described_errors(shown) == {"overlap_hours": "overlap_hours must be between 0 and 720"}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"current_password": "not the password at all", "new_password": "a long new password"},
         "current_password", "the current password is wrong"),
        ({"current_password": PASSWORD, "new_password": "short"},
         "new_password", "password must be at least 12 characters"),
    ],
)  # fmt: skip
def test_a_refused_password_change_is_shown_next_to_its_field(
    app: Flask, world: World, fields: dict[str, str], field: str, message: str
) -> None:
    client = logged_in(app, ANALYST)
    refused = post(client, "/account/password", fields)
    assert refused.status_code == 400
    page = html(refused)
    assert described_errors(page) == {field: message}
    control = re.search(rf'<input type="password" name="{field}"[^>]*>', page)
    assert control is not None
    assert 'aria-invalid="true" autofocus' in control[0]
    assert 'value=""' in control[0]  # a password is never sent back


@pytest.mark.parametrize(
    ("email", "path", "fields", "field"),
    [
        (ADMIN, "/tenants/a/collectors", {"name": "web9", "hostname": "not a host"}, "hostname"),
        (ADMIN, "/tenants/a/keys", {"collector_id": "{collector}", "expires_in_days": "0"},
         "expires_in_days"),
        (ADMIN, "/tenants/a/invitations", {"email": "not an address", "role": "viewer"}, "email"),
        (ADMIN, "/tenants/a/invitations", {"email": ANALYST, "role": "viewer"}, "email"),
        (ADMIN, "/tenants/a/invitations", {"email": "new@a.test", "role": "owner"}, "role"),
        (ADMIN, "/tenants/a/settings/name", {"name": ""}, "name"),
        (ADMIN, "/account/tokens", {"name": "", "expires_in_days": "5"}, "name"),
        (PLATFORM, "/tenants", {"slug": "Not A Slug", "name": "G"}, "slug"),
        (PLATFORM, "/tenants/a/delete", {"confirm": "nope"}, "confirm"),
    ],
)  # fmt: skip
def test_every_refused_field_is_described_by_its_message(
    app: Flask, world: World, email: str, path: str, fields: dict[str, str], field: str
) -> None:
    client = logged_in(app, email)
    data = {name: value.format(collector=world.collector_a) for name, value in fields.items()}
    refused = post(client, path, data)
    assert refused.status_code in (400, 404, 409), html(refused)
    assert list(described_errors(html(refused))) == [field]


# --- the key shown once -----------------------------------------------------------------------


def _issue_from_the_page(client: FlaskClient, world: World) -> tuple[dict[str, str], str]:
    form = {"collector_id": str(world.collector_a), "name": "rollout", "form_id": "form-1",
            "return_to": "tenant"}  # fmt: skip
    response = post(client, "/tenants/a/keys", form)
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    keys = KEY.findall(html(response))
    assert len(keys) == 1, "the plaintext appears exactly once"
    assert_no_inline_script(html(response))
    assert "You will not see this key again" in html(response)
    return form, keys[0]


def test_key_plaintext_is_shown_once(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    form, plaintext = _issue_from_the_page(client, world)
    resent = post(client, "/tenants/a/keys", form)  # a reload of the answer resends the form
    assert resent.status_code == 303
    assert plaintext not in html(resent) + resent.location
    assert "was shown once" in html(client.get(resent.location))
    for path in [*pages_of_a(world), "/tenants", "/audit"]:
        assert KEY.search(html(client.get(path))) is None, path
    with client.session_transaction() as session:
        assert plaintext not in repr(dict(session))
    with app.app_context():
        assert database.session().query(ApiKey).count() == 3  # two from the world, one here


def test_rotated_key_is_shown_once_and_the_old_one_overlaps(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    form = {"overlap_hours": "2", "form_id": "rotate-1"}
    response = post(client, f"/tenants/a/keys/{world.key_a}/rotate", form)
    assert response.status_code == 200
    assert len(KEY.findall(html(response))) == 1
    assert "Key rotated" in html(response)
    assert post(client, f"/tenants/a/keys/{world.key_a}/rotate", form).status_code == 303
    page = html(client.get("/tenants/a"))
    assert KEY.search(page) is None
    old_key = re.search(rf'<tr id="key-{world.key_a}".*?</tr>', page, re.S)
    assert old_key is not None
    assert 'data-state="active"' in old_key.group(0)
    assert "in 1 h" in old_key.group(0)  # expires at the end of the overlap


def test_secrets_never_reach_the_database_or_the_logs(
    app: Flask, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_password = "not the password, but secret too"
    client = app.test_client()
    client.get("/login")
    client.post("/login", data={"email": ADMIN, "password": wrong_password,
                                "csrf_token": csrf(client)})  # fmt: skip
    login(client, ADMIN)
    _, issued = _issue_from_the_page(client, world)
    rotated = KEY.findall(html(post(client, f"/tenants/a/keys/{world.key_a}/rotate", {})))
    secrets = [PASSWORD, wrong_password, issued, *rotated]
    secrets += [key.split("_", 2)[2] for key in [issued, *rotated]]
    tables = repr(snapshot(app))
    for secret in secrets:
        assert secret not in tables
        assert secret not in caplog.text


def test_markup_in_names_is_escaped(app: Flask, world: World) -> None:
    client = logged_in(app, PLATFORM)
    created = post(client, "/tenants", {"slug": "x", "name": MARKUP})
    pages = [follow(client, created)]
    fields = {"name": MARKUP, "hostname": "x1.test", "labels": f"note={MARKUP}"}
    pages.append(follow(client, post(client, "/tenants/x/collectors", fields)))
    with app.app_context():
        query = select(Collector.id).where(Collector.name == MARKUP)
        collector_id = database.session().scalar(query)
    issued = post(client, "/tenants/x/keys", {"collector_id": str(collector_id), "name": MARKUP})
    pages.append(html(issued))
    refused = post(client, "/tenants/x/collectors", {"name": MARKUP, "hostname": MARKUP})
    pages.append(html(refused))
    for path in ["/tenants", "/tenants/x", f"/tenants/x/collectors/{collector_id}",
                 "/tenants/x/settings", "/tenants/x/audit", "/audit"]:  # fmt: skip
        pages.append(html(client.get(path)))
    for page in pages:
        assert MARKUP not in page
        assert ESCAPED in page


# --- login throttling and the audit log --------------------------------------------------------


def test_login_is_throttled_after_the_allowed_failures(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    make_user(VIEWER)
    allowed = app.config["PA_SETTINGS"]["login_max_failures"]
    client.get("/login")
    for _ in range(allowed):
        wrong = {"email": VIEWER, "password": "wrong password!", "csrf_token": csrf(client)}
        assert client.post("/login", data=wrong).status_code == 401
    right = {"email": VIEWER, "password": PASSWORD, "csrf_token": csrf(client)}
    throttled = client.post("/login", data=right)
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    assert "too many failed logins" in html(throttled)
    assert client.get("/tenants").status_code == 302  # still logged out


@pytest.fixture
def many_events(app: Flask, world: World) -> None:
    with app.app_context():
        db = database.session()
        a = tenant_for(db, system_actor(), "a")
        b = tenant_for(db, system_actor(), "b")
        for number in range(60):
            record(db, system_actor(), "test.event", a, "thing", number, number=number)
        record(db, system_actor(), "test.other", b, "thing", "b-only")
        db.commit()


@pytest.mark.usefixtures("many_events")
def test_audit_log_pages_back_in_time(app: Flask) -> None:
    client = logged_in(app, ADMIN)
    first = html(client.get("/tenants/a/audit"))
    assert first.count('<td class="nowrap">') == 50
    assert "test.other" not in first
    older = re.search(r'href="(/tenants/a/audit\?before=\d+)" rel="next"', first)
    assert older is not None
    second = html(client.get(older.group(1)))
    assert "number=0<" in second
    assert "« Newest" in second
    assert "<th>IP</th>" in first


@pytest.mark.usefixtures("many_events")
@pytest.mark.parametrize("before", ["99999999999999999999", "0", "x"])
def test_a_bad_audit_page_position_is_named(app: Flask, before: str) -> None:
    response = logged_in(app, ADMIN).get(f"/tenants/a/audit?before={before}")
    assert response.status_code == 400
    assert "before must be" in response.get_data(as_text=True)


@pytest.mark.usefixtures("many_events")
def test_audit_log_for_viewers_and_platform(app: Flask) -> None:
    viewer_page = html(logged_in(app, VIEWER).get("/tenants/a/audit"))
    assert "test.event" in viewer_page
    assert "<th>IP</th>" not in viewer_page
    platform_page = html(logged_in(app, PLATFORM).get("/audit"))
    assert "test.other" in platform_page
    assert 'href="/tenants/b/audit"' in platform_page
