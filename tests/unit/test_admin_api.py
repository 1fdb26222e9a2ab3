"""The JSON API under /api/v1: every route's happy path, role limits, tenant isolation, CSRF, input."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import ANY

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from tenants import db as database
from tenants.accounts import get_user_by_email
from tenants.cli import admin, run
from tenants.errors import Invalid
from tenants.models import AuditEvent, Base, Collector, Tenant, User
from tests.conftest import PASSWORD, TEST_SECRET, Caller, csrf, issue_test_token, login

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


class _Timestamp:
    """Equal to any ISO 8601 UTC timestamp string, as the API writes them."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and TIMESTAMP.match(other) is not None

    def __repr__(self) -> str:
        return "<ISO 8601 UTC timestamp>"


AT = _Timestamp()
pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@dataclass
class World:
    """Tenant acme (boss admin, ana analyst, vic viewer) and tenant other (out admin)."""

    app: Flask
    client: FlaskClient
    root: Caller
    boss: Caller
    ana: Caller
    vic: Caller
    out: Caller
    ids: dict[str, Any]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row that a refused request must leave alone (tokens' last use aside)."""
        with self.app.app_context():
            db = database.session()
            return {
                table.name: sorted(db.execute(select(table)).all(), key=repr)
                for table in Base.metadata.sorted_tables
                if table.name not in {"api_tokens", "login_failures"}
            }


@pytest.fixture
def world(app: Flask, client: FlaskClient, make_user: Any, make_tenant: Any) -> World:
    make_user("root@example.test", platform_admin=True)
    make_tenant(
        "acme", {"boss@acme.test": "admin", "ana@acme.test": "analyst", "vic@acme.test": "viewer"}
    )
    make_tenant("other", {"out@other.test": "admin"})
    callers = {
        name: Caller(client, issue_test_token(app, email))
        for name, email in [("root", "root@example.test"), ("boss", "boss@acme.test"),
                            ("ana", "ana@acme.test"), ("vic", "vic@acme.test"),
                            ("out", "out@other.test")]
    }  # fmt: skip
    world = World(app, client, ids={}, **callers)
    invited = world.boss("POST", "/tenants/acme/invitations",
                         {"email": "pending@elsewhere.test", "role": "viewer"})  # fmt: skip
    world.ids["invitation"] = invited.get_json()["id"]
    for slug, prefix in (("acme", ""), ("other", "other_")):
        made = world.root(
            "POST", f"/tenants/{slug}/collectors", {"name": "web1", "hostname": "web1"}
        )
        world.ids[f"{prefix}collector"] = made.get_json()["id"]
        key = world.root("POST", f"/tenants/{slug}/keys", {"collector_id": made.get_json()["id"]})
        world.ids[f"{prefix}key"] = key.get_json()["key_id"]
        world.ids[f"{prefix}plaintext"] = key.get_json()["key"]
    with app.app_context():
        world.ids["boss"] = _user_id(app, "boss@acme.test")
    return world


def _user_id(app: Flask, email: str) -> int:
    with app.app_context():
        user = get_user_by_email(database.session(), email)
        assert user is not None
        return user.id


def _error(response: TestResponse, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error.get("field") == field
    assert set(error) <= {"code", "message", "field"}


# ---- the document -----------------------------------------------------------------------------


def test_openapi_document_is_public_valid_and_describes_every_route(
    client: FlaskClient, app: Flask
) -> None:
    from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR

    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.0.3"
    assert list(OPENAPI_30_VALIDATOR.iter_errors(document)) == []
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    documented = {
        (method.upper(), "/api/v1" + re.sub(r"\{(\w+)\}", r"<\1>", path))
        for path, operations in document["paths"].items()
        for method in operations
    }
    routed = {
        (method, re.sub(r"<(?:[^:>]+:)?(\w+)>", r"<\1>", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(("api.", "loadtests_api."))
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    assert documented == routed
    schemas = document["components"]["schemas"]
    assert schemas["CollectorCreate"]["additionalProperties"] is False
    assert schemas["CollectorCreate"]["properties"]["name"]["maxLength"] == 100
    assert "password" not in schemas["User"]["properties"]
    assert "influx_read_password_encrypted" not in schemas["Tenant"]["properties"]


# ---- tenants ----------------------------------------------------------------------------------


def test_tenant_lifecycle(world: World) -> None:
    created = world.root("POST", "/tenants", {"slug": "beta", "name": "Beta Corp"})
    assert created.status_code == 201
    assert created.headers["Location"] == "/api/v1/tenants/beta"
    beta = {"id": ANY, "slug": "beta", "name": "Beta Corp", "status": "active",
            "influx_database": "pa_beta", "influx_read_user": None, "ingest_rate": None,
            "ingest_burst": None, "created_at": AT, "updated_at": AT}  # fmt: skip
    assert created.get_json() == beta
    assert world.root("GET", "/tenants/beta").get_json() == beta
    assert [t["slug"] for t in world.root("GET", "/tenants").get_json()["tenants"]] == [
        "acme", "beta", "other"
    ]  # fmt: skip
    renamed = world.root("PATCH", "/tenants/beta", {"name": "Beta Inc"})
    assert renamed.status_code == 200
    assert renamed.get_json() == {**beta, "name": "Beta Inc"}
    disabled = world.root("PATCH", "/tenants/beta", {"status": "disabled"})
    assert disabled.get_json() == {**beta, "name": "Beta Inc", "status": "disabled"}
    _error(world.root("DELETE", "/tenants/beta", {}), 400, "invalid", "confirm")
    _error(world.root("DELETE", "/tenants/beta", {"confirm": "acme"}), 400, "invalid", "confirm")
    deleted = world.root("DELETE", "/tenants/beta", {"confirm": "beta"})
    assert deleted.status_code == 204
    assert deleted.get_data() == b""
    _error(world.root("GET", "/tenants/beta"), 404, "not_found")


def test_a_platform_admin_sets_and_resets_a_tenants_ingest_limits(world: World) -> None:
    both = world.root("PATCH", "/tenants/acme", {"ingest_rate": 2500.5, "ingest_burst": 10_000})
    assert both.status_code == 200
    assert (both.get_json()["ingest_rate"], both.get_json()["ingest_burst"]) == (2500.5, 10_000)
    rate_only = world.root("PATCH", "/tenants/acme", {"ingest_rate": 0}).get_json()
    assert (rate_only["ingest_rate"], rate_only["ingest_burst"]) == (0, 10_000)  # burst kept
    shown = world.vic("GET", "/tenants/acme").get_json()  # members see their limits
    assert (shown["ingest_rate"], shown["ingest_burst"]) == (0, 10_000)
    reset = world.root("PATCH", "/tenants/acme", {"ingest_rate": None, "ingest_burst": None})
    assert (reset.get_json()["ingest_rate"], reset.get_json()["ingest_burst"]) == (None, None)
    events = world.root("GET", "/tenants/acme/audit").get_json()["events"]
    changes = [e for e in events if e["action"] == "tenant.limits"]
    assert len(changes) == 3


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"ingest_rate": -1}, "ingest_rate", "ingest_rate must be between 0 and 1,000,000,000"),
        ({"ingest_rate": 1e10}, "ingest_rate", "ingest_rate must be between 0 and 1,000,000,000"),
        ({"ingest_rate": "fast"}, "ingest_rate", "ingest_rate must be a number"),
        ({"ingest_rate": True}, "ingest_rate", "ingest_rate must be a number"),
        ({"ingest_burst": 0}, "ingest_burst", "ingest_burst must be between 1 and 100,000,000"),
        ({"ingest_burst": 1.5}, "ingest_burst", "ingest_burst must be a whole number"),
        ({"name": "Ok", "ingest_burst": -3}, "ingest_burst", None),
    ],
)
def test_bad_ingest_limits_are_named_and_change_nothing(
    world: World, body: dict[str, Any], field: str, message: str | None
) -> None:
    before = world.snapshot()
    response = world.root("PATCH", "/tenants/acme", body)
    _error(response, 400, "invalid", field)
    if message:
        assert response.get_json()["error"]["message"] == message
    assert world.snapshot() == before


def test_a_tenant_admin_cannot_raise_its_own_limits(world: World) -> None:
    before = world.snapshot()
    _error(world.boss("PATCH", "/tenants/acme", {"ingest_rate": 1e6}), 403, "forbidden")
    _error(world.boss("PATCH", "/tenants/acme", {"name": "X", "ingest_burst": 5}), 403, "forbidden")
    assert world.snapshot() == before


def test_tenant_list_shows_only_your_tenants(world: World) -> None:
    assert world.vic("GET", "/tenants").get_json() == {"tenants": [
        {"id": ANY, "slug": "acme", "name": "Acme", "status": "active", "influx_database": "pa_acme",
         "influx_read_user": None, "ingest_rate": None, "ingest_burst": None, "created_at": AT,
         "updated_at": AT},
    ], "next_cursor": None}  # fmt: skip
    assert [t["slug"] for t in world.out("GET", "/tenants").get_json()["tenants"]] == ["other"]


def test_duplicate_tenant_is_a_conflict(world: World) -> None:
    _error(
        world.root("POST", "/tenants", {"slug": "acme", "name": "Again"}), 409, "conflict", "slug"
    )


def test_tenant_storage_password_is_never_exposed(world: World) -> None:
    class PasswordStorage:
        def provision(self, database: str, read_user: str) -> str:
            return "influx-read-password-42"

        def deprovision(self, database: str, read_user: str) -> None:
            return None

    world.app.extensions["pa_storage"] = PasswordStorage()
    created = world.root("POST", "/tenants", {"slug": "gamma", "name": "Gamma"})
    assert created.get_json()["influx_read_user"] == "pa_gamma_read"
    with world.app.app_context():
        tenant = database.session().scalar(select(Tenant).where(Tenant.slug == "gamma"))
        assert tenant is not None
        encrypted = tenant.influx_read_password_encrypted
    assert encrypted
    for path in ("/tenants", "/tenants/gamma", "/audit"):
        text = world.root("GET", path).get_data(as_text=True)
        assert "influx-read-password-42" not in text
        assert encrypted not in text
        assert "password_encrypted" not in text


def test_storage_failure_is_a_503_and_changes_nothing(world: World) -> None:
    from tenants.influx import StorageError

    class DownStorage:
        def provision(self, database: str, read_user: str) -> str:
            raise StorageError("CREATE DATABASE", "connection refused")

        def deprovision(self, database: str, read_user: str) -> None:
            raise StorageError("DROP DATABASE", "connection refused")

    world.app.extensions["pa_storage"] = DownStorage()
    before = world.snapshot()
    _error(world.root("POST", "/tenants", {"slug": "delta", "name": "Delta"}), 503,
           "storage_unavailable")  # fmt: skip
    assert world.snapshot() == before
    with world.app.app_context():
        db = database.session()
        db.execute(
            update(Tenant).where(Tenant.slug == "acme").values(influx_read_user="pa_acme_read")
        )
        db.commit()
    before = world.snapshot()
    _error(world.root("DELETE", "/tenants/acme", {"confirm": "acme"}), 503, "storage_unavailable")
    assert world.snapshot() == before


def test_the_cli_sets_keeps_and_resets_ingest_limits(world: World, runner: Any) -> None:
    def limits() -> tuple[Any, Any]:
        shown = world.root("GET", "/tenants/acme").get_json()
        return shown["ingest_rate"], shown["ingest_burst"]

    result = runner("set-ingest-limits", "acme", "--rate", "1500", "--burst", "6000")
    assert result.exit_code == 0, result.output
    assert "acme: ingest rate 1,500 points/s, burst 6,000 points" in result.output
    assert runner("set-ingest-limits", "acme", "--burst", "9000").exit_code == 0
    assert limits() == (1500, 9000)  # the rate left out is kept
    before = world.snapshot()
    refused = runner("set-ingest-limits", "acme", "--rate", "lots")
    assert refused.exit_code != 0
    assert isinstance(refused.exception, Invalid)
    assert refused.exception.message == "ingest_rate must be a number"
    assert world.snapshot() == before
    both = runner("set-ingest-limits", "acme", "--default", "--rate", "5")
    assert both.exit_code == 2
    assert "give --rate and/or --burst, or --default alone" in both.output
    assert runner("set-ingest-limits", "acme", "--default").exit_code == 0
    assert limits() == (None, None)


@pytest.mark.parametrize("command", sorted(admin.commands))
def test_every_admin_command_is_reachable_from_the_command_line(
    command: str, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """``perfanalysis admin`` splits settings flags from the command by the command's name."""
    monkeypatch.setenv("PERFANALYSIS_ADMIN_DATABASE_URL", database_url)
    monkeypatch.setenv("PERFANALYSIS_ADMIN_SECRET_KEY", TEST_SECRET)
    assert run([command, "--help"]) == 0
    assert f"Usage: perfanalysis admin [settings] {command} " in capsys.readouterr().out


@pytest.mark.parametrize("hours", ["nan", "inf", "1e12", "-1", "721"])
def test_a_key_overlap_out_of_range_is_named_before_anything_runs(
    world: World, runner: Any, hours: str
) -> None:
    before = world.snapshot()
    result = runner("rotate-key", "acme", "pa_nokey", "--overlap-hours", hours)
    assert result.exit_code == 2, result.output
    assert "--overlap-hours': must be from 0 to 720 hours" in result.output
    assert world.snapshot() == before


def test_a_price_file_that_is_not_utf8_is_named(world: World, runner: Any, tmp_path: Any) -> None:
    path = tmp_path / "prices.yaml"
    path.write_bytes(b"prices:\n  - provider: \xff\n")
    before = world.snapshot()
    result = runner("seed-prices", str(path))
    assert isinstance(result.exception, Invalid)
    assert result.exception.message.startswith(f"cannot read the price file {path}: ")
    assert "can't decode byte 0xff in position 22" in result.exception.message
    assert world.snapshot() == before


def test_tenant_admin_renames_but_cannot_disable_or_delete(world: World) -> None:
    assert world.boss("PATCH", "/tenants/acme", {"name": "Acme Ltd"}).status_code == 200
    before = world.snapshot()
    _error(
        world.boss("PATCH", "/tenants/acme", {"name": "X", "status": "disabled"}), 403, "forbidden"
    )
    _error(world.boss("DELETE", "/tenants/acme", {"confirm": "acme"}), 403, "forbidden")
    _error(world.boss("POST", "/tenants", {"slug": "mine", "name": "Mine"}), 403, "forbidden")
    assert world.snapshot() == before
    assert world.root("GET", "/tenants/acme").get_json()["name"] == "Acme Ltd"


# ---- members ----------------------------------------------------------------------------------


def test_members_are_listed_added_changed_and_removed(world: World, make_user: Any) -> None:
    listed = world.vic("GET", "/tenants/acme/members")
    assert listed.status_code == 200
    assert listed.get_json() == {"members": [
        {"user_id": ANY, "email": "ana@acme.test", "name": "", "role": "analyst"},
        {"user_id": world.ids["boss"], "email": "boss@acme.test", "name": "", "role": "admin"},
        {"user_id": ANY, "email": "vic@acme.test", "name": "", "role": "viewer"},
    ], "next_cursor": None}  # fmt: skip
    new = make_user("new@acme.test")
    refused = world.boss(
        "POST", "/tenants/acme/members", {"email": "New@Acme.test", "role": "viewer"}
    )  # a tenant admin adds no one directly: an account or not, the same 404
    nobody = world.boss(
        "POST", "/tenants/acme/members", {"email": "nobody@acme.test", "role": "viewer"}
    )
    _error(refused, 404, "not_found", "email")
    _error(nobody, 404, "not_found", "email")
    assert (
        refused.get_json()["error"]["message"].replace("new@", "nobody@")
        == (nobody.get_json()["error"]["message"])
    )
    added = world.root(
        "POST", "/tenants/acme/members", {"email": "New@Acme.test", "role": "viewer"}
    )  # a platform admin adds an existing user directly
    assert added.status_code == 201
    assert added.get_json() == {"user_id": new.id, "email": "new@acme.test", "name": "",
                                "role": "viewer"}  # fmt: skip
    changed = world.boss(
        "POST", "/tenants/acme/members", {"email": "new@acme.test", "role": "admin"}
    )
    assert changed.status_code == 200
    assert changed.get_json()["role"] == "admin"
    assert world.boss("DELETE", f"/tenants/acme/members/{new.id}").status_code == 204
    _error(world.boss("DELETE", f"/tenants/acme/members/{new.id}"), 404, "not_found")
    _error(
        world.root("POST", "/tenants/acme/members", {"email": "nobody@acme.test", "role": "admin"}),
        404, "not_found", "email",
    )  # fmt: skip
    _error(
        world.boss("POST", "/tenants/acme/members", {"email": "vic@acme.test", "role": "owner"}),
        400, "invalid", "role",
    )  # fmt: skip


# ---- users and tokens -------------------------------------------------------------------------


def test_platform_admin_lists_and_creates_users(world: World) -> None:
    created = world.root(
        "POST", "/users", {"email": "Dana@Example.test", "password": PASSWORD, "name": "Dana"}
    )
    assert created.status_code == 201
    assert created.get_json() == {"id": ANY, "email": "dana@example.test", "name": "Dana",
                                  "is_platform_admin": False, "is_active": True, "created_at": AT,
                                  "last_login_at": None}  # fmt: skip
    assert PASSWORD not in created.get_data(as_text=True)
    users = world.root("GET", "/users").get_json()["users"]
    assert [u["email"] for u in users] == ["ana@acme.test", "boss@acme.test", "dana@example.test",
                                           "out@other.test", "root@example.test", "vic@acme.test"]  # fmt: skip
    assert all("password" not in json.dumps(user) for user in users)
    with world.app.app_context():
        stored = database.session().scalar(
            select(User.password_hash).where(User.email == "dana@example.test")
        )
    assert stored is not None
    assert stored.startswith("$argon2id$")
    _error(world.root("POST", "/users", {"email": "dana@example.test", "password": PASSWORD}),
           409, "conflict", "email")  # fmt: skip
    _error(world.root("POST", "/users", {"email": "eve@example.test", "password": "short"}),
           400, "invalid", "password")  # fmt: skip
    _error(world.root("POST", "/users", {"email": "not-an-address", "password": PASSWORD}),
           400, "invalid", "email")  # fmt: skip


def test_only_platform_admins_manage_users_and_read_the_platform_audit(world: World) -> None:
    _error(world.boss("GET", "/users"), 403, "forbidden")
    _error(world.boss("POST", "/users", {"email": "x@acme.test", "password": PASSWORD}), 403,
           "forbidden")  # fmt: skip
    _error(world.boss("GET", "/audit"), 403, "forbidden")


def test_me_shows_the_caller_and_their_tenants(world: World) -> None:
    me = world.boss("GET", "/me")
    assert me.status_code == 200
    assert me.get_json() == {
        "id": world.ids["boss"], "email": "boss@acme.test", "name": "", "is_platform_admin": False,
        "is_active": True, "created_at": AT, "last_login_at": None,
        "memberships": [{"tenant": "acme", "tenant_name": "Acme", "role": "admin"}],
    }  # fmt: skip


def test_personal_token_is_shown_once_and_works(world: World) -> None:
    issued = world.vic("POST", "/me/tokens", {"name": "ci"})
    assert issued.status_code == 201
    body = issued.get_json()
    assert body == {"token": ANY, "token_id": ANY, "name": "ci", "created_at": AT,
                    "expires_at": None}  # fmt: skip
    assert re.fullmatch(r"pat_[a-z2-7]{13}_[A-Za-z0-9_-]{43}", body["token"])
    assert body["token"].split("_")[1] == body["token_id"]
    assert Caller(world.client, body["token"])("GET", "/me").get_json()["email"] == "vic@acme.test"
    secret = body["token"].split("_", 2)[2]
    assert secret not in world.root("GET", "/audit?limit=500").get_data(as_text=True)
    _error(world.vic("POST", "/me/tokens", {}), 400, "invalid", "name")


# ---- collectors -------------------------------------------------------------------------------


def test_collectors_are_registered_listed_and_disabled(world: World) -> None:
    fields = {"name": "db1", "hostname": "db1.acme.test", "labels": {"role": "db"}, "vcpus": 8,
              "memory_bytes": 32 << 30, "cloud_provider": "AWS", "region": "eu-west-1",
              "instance_type": "m6i.2xlarge"}  # fmt: skip
    created = world.boss("POST", "/tenants/acme/collectors", fields)
    assert created.status_code == 201
    db1 = {**fields, "id": ANY, "cloud_provider": "aws", "status": "active", "host_tag": "pinned",
           "created_at": AT, "last_seen_at": None, "points_received": 0}  # fmt: skip
    assert created.get_json() == db1
    collector_id = created.get_json()["id"]
    assert created.headers["Location"] == f"/api/v1/tenants/acme/collectors/{collector_id}"
    assert world.vic("GET", f"/tenants/acme/collectors/{collector_id}").get_json() == db1
    listed = world.vic("GET", "/tenants/acme/collectors").get_json()["collectors"]
    assert [c["name"] for c in listed] == ["db1", "web1"]
    disabled = world.boss(
        "PATCH", f"/tenants/acme/collectors/{collector_id}", {"status": "disabled"}
    )
    assert disabled.get_json() == {**db1, "status": "disabled"}
    minimal = world.boss("POST", "/tenants/acme/collectors", {"name": "db2", "hostname": "db2"})
    assert minimal.get_json() == {"id": ANY, "name": "db2", "hostname": "db2", "labels": {},
                                  "vcpus": None, "memory_bytes": None, "cloud_provider": None,
                                  "region": None, "instance_type": None, "status": "active",
                                  "host_tag": "pinned", "created_at": AT, "last_seen_at": None,
                                  "points_received": 0}  # fmt: skip
    _error(world.boss("POST", "/tenants/acme/collectors", {"name": "db1", "hostname": "x"}),
           409, "conflict", "name")  # fmt: skip
    _error(world.vic("GET", "/tenants/acme/collectors/999999"), 404, "not_found")


BAD_COLLECTOR_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"hostname": "h"}, "name"),
    ({"name": "n"}, "hostname"),
    ({"name": "n", "hostname": "no spaces"}, "hostname"),
    ({"name": "n", "hostname": "h", "vcpus": 0}, "vcpus"),
    ({"name": "n", "hostname": "h", "vcpus": 4097}, "vcpus"),
    ({"name": "n", "hostname": "h", "vcpus": "4"}, "vcpus"),
    ({"name": "n", "hostname": "h", "vcpus": 4.0}, "vcpus"),
    ({"name": "n", "hostname": "h", "vcpus": True}, "vcpus"),
    ({"name": "n", "hostname": "h", "memory_bytes": 1 << 51}, "memory_bytes"),
    ({"name": "n", "hostname": "h", "labels": {"bad key": "v"}}, "labels"),
    ({"name": "n", "hostname": "h", "labels": {"k": 1}}, "labels"),
    ({"name": "n", "hostname": "h", "labels": ["k"]}, "labels"),
    ({"name": "n", "hostname": "h", "cloud_provider": "a" * 41}, "cloud_provider"),
    ({"name": "n", "hostname": "h", "region": "eu west"}, "region"),
    ({"name": "n" * 101, "hostname": "h"}, "name"),
    ({"name": "tab\there", "hostname": "h"}, "name"),
    ({"name": "   ", "hostname": "h"}, "name"),
    ({"name": 5, "hostname": "h"}, "name"),
    ({"name": None, "hostname": "h"}, "name"),
    ({"name": "n", "hostname": "h", "colour": "red"}, "colour"),
]


def test_bad_collector_fields_are_named(world: World) -> None:
    before = world.snapshot()
    for fields, field in BAD_COLLECTOR_FIELDS:
        _error(world.boss("POST", "/tenants/acme/collectors", fields), 400, "invalid", field)
    assert world.snapshot() == before


# ---- keys -------------------------------------------------------------------------------------


def test_key_is_issued_shown_once_revoked_and_rotated(world: World) -> None:
    collector_id = world.ids["collector"]
    issued = world.boss("POST", "/tenants/acme/keys",
                        {"collector_id": collector_id, "name": "main", "expires_in_days": 30})  # fmt: skip
    assert issued.status_code == 201
    body = issued.get_json()
    metadata = {"key_id": ANY, "name": "main", "collector_id": collector_id, "state": "active",
                "created_at": AT, "created_by": world.ids["boss"], "expires_at": AT,
                "revoked_at": None, "last_used_at": None, "rotated_from": None}  # fmt: skip
    assert body == {**metadata, "key": ANY}
    key_id, plaintext = body["key_id"], body["key"]
    assert re.fullmatch(rf"pak_{key_id}_[A-Za-z0-9_-]{{43}}", plaintext)
    assert issued.headers["Location"] == f"/api/v1/tenants/acme/keys/{key_id}"
    assert world.vic("GET", f"/tenants/acme/keys/{key_id}").get_json() == {
        **metadata, "key_id": key_id, "expires_at": body["expires_at"]
    }  # fmt: skip
    assert [k["key_id"] for k in world.vic("GET", "/tenants/acme/keys").get_json()["keys"]] == [
        key_id, world.ids["key"]
    ]  # fmt: skip

    rotated = world.boss("POST", f"/tenants/acme/keys/{key_id}/rotate", {"overlap_hours": 2})
    assert rotated.status_code == 201
    new = rotated.get_json()
    assert new == {**metadata, "key_id": ANY, "key": ANY, "expires_at": AT,
                   "rotated_from": key_id}  # fmt: skip
    assert new["expires_at"] >= body["expires_at"]  # issued for 30 days too, from now
    assert new["key"] != plaintext
    old = world.vic("GET", f"/tenants/acme/keys/{key_id}").get_json()
    assert old["state"] == "active"
    assert old["expires_at"] < body["expires_at"]

    revoked = world.boss("POST", f"/tenants/acme/keys/{key_id}/revoke")
    assert revoked.status_code == 200
    assert revoked.get_json() == {**old, "state": "revoked", "revoked_at": AT}
    _error(world.boss("POST", f"/tenants/acme/keys/{key_id}/rotate"), 400, "invalid", "key_id")

    later = [world.root("GET", path).get_data(as_text=True) for path in (
        "/tenants/acme/keys", f"/tenants/acme/keys/{key_id}", f"/tenants/acme/keys/{new['key_id']}",
        "/tenants/acme/audit?limit=500", "/audit?limit=500")]  # fmt: skip
    for secret in (plaintext, new["key"], world.ids["plaintext"]):
        assert all(secret.split("_", 2)[2] not in text for text in later)
    with world.app.app_context():
        details = json.dumps(database.session().scalars(select(AuditEvent.details)).all())
    assert plaintext.split("_", 2)[2] not in details
    assert new["key"].split("_", 2)[2] not in details


def test_rotation_with_no_body_uses_the_default_overlap(world: World) -> None:
    rotated = world.boss("POST", f"/tenants/acme/keys/{world.ids['key']}/rotate")
    assert rotated.status_code == 201
    assert rotated.get_json()["rotated_from"] == world.ids["key"]


BAD_KEY_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({}, "collector_id"),
    ({"collector_id": "1"}, "collector_id"),
    ({"collector_id": 0}, "collector_id"),
    ({"collector_id": 2**31}, "collector_id"),
    ({"collector_id": None}, "collector_id"),
    ({"collector_id": "COLLECTOR", "expires_in_days": 0}, "expires_in_days"),
    ({"collector_id": "COLLECTOR", "expires_in_days": 3651}, "expires_in_days"),
    ({"collector_id": "COLLECTOR", "expires_in_days": 1.5}, "expires_in_days"),
    ({"collector_id": "COLLECTOR", "name": "x" * 101}, "name"),
    ({"collector_id": "COLLECTOR", "name": "nul\x00"}, "name"),
    ({"collector_id": "COLLECTOR", "secret": "mine"}, "secret"),
]


def test_bad_key_fields_are_named(world: World) -> None:
    before = world.snapshot()
    for fields, field in BAD_KEY_FIELDS:
        if fields.get("collector_id") == "COLLECTOR":
            fields = {**fields, "collector_id": world.ids["collector"]}
        _error(world.boss("POST", "/tenants/acme/keys", fields), 400, "invalid", field)
    path = f"/tenants/acme/keys/{world.ids['key']}/rotate"
    for overlap in (-1, 721, "2", 1.5, None):
        _error(
            world.boss("POST", path, {"overlap_hours": overlap}), 400, "invalid", "overlap_hours"
        )
    assert world.snapshot() == before


# ---- audit ------------------------------------------------------------------------------------


def test_tenant_audit_is_newest_first_and_pages(world: World) -> None:
    world.boss("PATCH", "/tenants/acme", {"name": "Acme 2"})
    first = world.boss("GET", "/tenants/acme/audit?limit=2")
    assert first.status_code == 200
    page = first.get_json()
    assert [e["action"] for e in page["events"]] == ["tenant.rename", "key.issue"]
    assert page["events"][0] == {
        "id": ANY, "at": AT, "actor": "boss@acme.test", "actor_user_id": world.ids["boss"],
        "tenant_id": ANY, "action": "tenant.rename", "target_type": "tenant", "target_id": ANY,
        "details": {"old": "Acme", "new": "Acme 2", "api_token": world.boss.token_id},
        "ip": "127.0.0.1",
    }  # fmt: skip
    assert page["next_before"] == page["events"][1]["id"]
    rest = world.boss("GET", f"/tenants/acme/audit?before={page['next_before']}").get_json()
    assert rest["next_before"] is None
    assert [e["action"] for e in rest["events"]][:1] == ["collector.register"]
    all_ids = [e["id"] for e in page["events"] + rest["events"]]
    assert all_ids == sorted(all_ids, reverse=True)
    tenant_ids = {e["tenant_id"] for e in page["events"] + rest["events"]}
    assert tenant_ids == {page["events"][0]["tenant_id"]}
    assert {e["ip"] for e in page["events"]} != {None}  # an admin sees addresses
    for member in (world.vic, world.ana):  # as on the pages: members read it, without addresses
        seen = member("GET", "/tenants/acme/audit?limit=2")
        assert seen.status_code == 200
        assert [e["id"] for e in seen.get_json()["events"]] == [e["id"] for e in page["events"]]
        assert {e["ip"] for e in seen.get_json()["events"]} == {None}
    _error(world.out("GET", "/tenants/acme/audit"), 404, "not_found")


def test_platform_audit_covers_every_tenant(world: World) -> None:
    page = world.root("GET", "/audit?limit=500").get_json()
    assert page["next_before"] is None
    assert {"tenant.create", "member.set", "collector.register", "key.issue", "user.create"} <= {
        e["action"] for e in page["events"]
    }


BAD_PAGING = [("limit=0", "limit"), ("limit=501", "limit"), ("limit=abc", "limit"), ("limit=%C2%B2", "limit"),
     ("limit=-1", "limit"), ("before=0", "before"), ("before=99999999999", "before"),
     ("before=1.5", "before")]  # fmt: skip


def test_bad_audit_paging_is_named(world: World) -> None:
    for query, field in BAD_PAGING:
        _error(world.root("GET", f"/audit?{query}"), 400, "invalid", field)
        _error(world.boss("GET", f"/tenants/acme/audit?{query}"), 400, "invalid", field)


# ---- roles: a viewer or analyst changes nothing ----------------------------------------------


def _write_routes(world: World) -> dict[str, tuple[str, str, Any]]:
    collector, key, boss = world.ids["collector"], world.ids["key"], world.ids["boss"]
    invitation = world.ids["invitation"]
    return {
        "create tenant": ("POST", "/tenants", {"slug": "new", "name": "New"}),
        "rename tenant": ("PATCH", "/tenants/acme", {"name": "Renamed"}),
        "disable tenant": ("PATCH", "/tenants/acme", {"status": "disabled"}),
        "set ingest limits": ("PATCH", "/tenants/acme", {"ingest_rate": 10}),
        "delete tenant": ("DELETE", "/tenants/acme", {"confirm": "acme"}),
        "set member": ("POST", "/tenants/acme/members", {"email": "vic@acme.test", "role": "admin"}),
        "remove member": ("DELETE", f"/tenants/acme/members/{boss}", None),
        "create invitation": ("POST", "/tenants/acme/invitations",
                              {"email": "guest@elsewhere.test", "role": "viewer"}),
        "revoke invitation": ("DELETE", f"/tenants/acme/invitations/{invitation}", None),
        "create user": ("POST", "/users", {"email": "new@acme.test", "password": PASSWORD}),
        "register collector": ("POST", "/tenants/acme/collectors", {"name": "n", "hostname": "n"}),
        "disable collector": ("PATCH", f"/tenants/acme/collectors/{collector}",
                              {"status": "disabled"}),
        "free host tag": ("PATCH", f"/tenants/acme/collectors/{collector}", {"host_tag": "free"}),
        "issue key": ("POST", "/tenants/acme/keys", {"collector_id": collector}),
        "revoke key": ("POST", f"/tenants/acme/keys/{key}/revoke", None),
        "rotate key": ("POST", f"/tenants/acme/keys/{key}/rotate", {"overlap_hours": 1}),
    }  # fmt: skip


WRITE_ROUTES = [
    "create tenant", "rename tenant", "disable tenant", "set ingest limits", "delete tenant",
    "set member", "remove member", "create invitation", "revoke invitation", "create user",
    "register collector", "disable collector", "free host tag", "issue key", "revoke key",
    "rotate key",
]  # fmt: skip


@pytest.mark.parametrize("role", ["vic", "ana"])
@pytest.mark.parametrize("route", WRITE_ROUTES)
def test_viewer_and_analyst_cannot_change_anything(world: World, role: str, route: str) -> None:
    method, path, body = _write_routes(world)[route]
    before = world.snapshot()
    _error(getattr(world, role)(method, path, body), 403, "forbidden")
    assert world.snapshot() == before


# ---- tenant isolation -------------------------------------------------------------------------


def _tenant_routes(world: World) -> dict[str, tuple[str, str, Any]]:
    collector, key = world.ids["collector"], world.ids["key"]
    writes = _write_routes(world)
    return {
        **{name: route for name, route in writes.items() if "/tenants/acme" in route[1]},
        "get tenant": ("GET", "/tenants/acme", None),
        "list members": ("GET", "/tenants/acme/members", None),
        "list invitations": ("GET", "/tenants/acme/invitations", None),
        "list collectors": ("GET", "/tenants/acme/collectors", None),
        "get collector": ("GET", f"/tenants/acme/collectors/{collector}", None),
        "list keys": ("GET", "/tenants/acme/keys", None),
        "get key": ("GET", f"/tenants/acme/keys/{key}", None),
        "tenant audit": ("GET", "/tenants/acme/audit", None),
    }


TENANT_ROUTES = [
    "rename tenant", "disable tenant", "set ingest limits", "delete tenant", "set member",
    "remove member", "create invitation", "revoke invitation", "list invitations", "register collector", "disable collector", "free host tag", "issue key", "revoke key", "rotate key",
    "get tenant", "list members", "list collectors", "get collector", "list keys", "get key",
    "tenant audit",
]  # fmt: skip


@pytest.mark.parametrize("route", TENANT_ROUTES)
def test_another_tenants_admin_gets_404_and_changes_nothing(world: World, route: str) -> None:
    method, path, body = _tenant_routes(world)[route]
    before = world.snapshot()
    response = world.out(method, path, body)
    _error(response, 404, "not_found")
    assert "acme" not in response.get_data(as_text=True).lower()
    assert world.snapshot() == before


def test_tenant_routes_cover_every_tenant_route(world: World) -> None:
    assert sorted(_tenant_routes(world)) == sorted(TENANT_ROUTES)
    assert sorted(_write_routes(world)) == sorted(WRITE_ROUTES)


def test_ids_of_another_tenant_are_not_found_in_your_own(world: World) -> None:
    collector, key = world.ids["collector"], world.ids["key"]
    before = world.snapshot()
    attempts = [
        ("GET", f"/tenants/other/collectors/{collector}", None, None),
        ("PATCH", f"/tenants/other/collectors/{collector}", {"status": "disabled"}, None),
        ("PATCH", f"/tenants/other/collectors/{collector}", {"host_tag": "free"}, None),
        ("POST", "/tenants/other/keys", {"collector_id": collector}, "collector_id"),
        ("GET", f"/tenants/other/keys/{key}", None, None),
        ("POST", f"/tenants/other/keys/{key}/revoke", None, None),
        ("POST", f"/tenants/other/keys/{key}/rotate", None, None),
        ("DELETE", f"/tenants/other/members/{world.ids['boss']}", None, None),
    ]
    for method, path, body, field in attempts:
        _error(world.out(method, path, body), 404, "not_found", field)
    assert world.snapshot() == before
    assert world.root("GET", f"/tenants/acme/keys/{key}").get_json()["state"] == "active"


# ---- CSRF and authentication ------------------------------------------------------------------


@pytest.fixture
def session_client(world: World) -> Iterator[FlaskClient]:
    with world.app.test_client() as browser:
        login(browser, "boss@acme.test")
        yield browser


def _collector_names(world: World) -> list[str]:
    listed = world.root("GET", "/tenants/acme/collectors").get_json()["collectors"]
    return [c["name"] for c in listed]


def test_session_write_without_csrf_token_is_refused(
    world: World, session_client: FlaskClient
) -> None:
    path = "/api/v1/tenants/acme/collectors"
    assert session_client.get(path).status_code == 200
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        response = session_client.post(path, json={"name": "n", "hostname": "n"}, headers=headers)
        _error(response, 400, "invalid")
        assert "CSRF" in response.get_json()["error"]["message"]
    assert _collector_names(world) == ["web1"]
    for method, path_, body in [("POST", "/api/v1/me/tokens", {"name": "t"}),
                                ("DELETE", "/api/v1/tenants/acme/members/1", None),
                                ("POST", f"/api/v1/tenants/acme/keys/{world.ids['key']}/revoke", None)]:  # fmt: skip
        _error(session_client.open(path_, method=method, json=body), 400, "invalid")
    assert (
        world.root("GET", f"/tenants/acme/keys/{world.ids['key']}").get_json()["state"] == "active"
    )
    accepted = session_client.post(
        path, json={"name": "n", "hostname": "n"}, headers={"X-CSRF-Token": csrf(session_client)}
    )
    assert accepted.status_code == 201
    assert _collector_names(world) == ["n", "web1"]


def test_bearer_write_needs_no_csrf_token(world: World) -> None:
    fresh = world.app.test_client()
    response = Caller(fresh, world.boss.token)(
        "POST", "/tenants/acme/collectors", {"name": "n", "hostname": "n"}
    )
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers


BAD_CREDENTIALS: list[dict[str, str]] = [{}, {"Authorization": "Bearer pat_nope"}, {"Authorization": "Basic cm9vdDpyb290"},
     {"Authorization": "Bearer pat_aaaaaaaaaaaaa_" + "A" * 43}]  # fmt: skip


def test_unauthenticated_requests_get_401(client: FlaskClient, world: World) -> None:
    for headers in BAD_CREDENTIALS:
        for method, path in [("GET", "/tenants"), ("POST", "/tenants"), ("GET", "/no/such/route")]:
            response = client.open(f"/api/v1{path}", method=method, headers=headers)
            _error(response, 401, "unauthenticated")


def test_revoked_users_token_stops_working(world: World) -> None:
    with world.app.app_context():
        db = database.session()
        user = get_user_by_email(db, "vic@acme.test")
        assert user is not None
        user.is_active = False
        db.commit()
    _error(world.vic("GET", "/me"), 401, "unauthenticated")


# ---- bad input --------------------------------------------------------------------------------


MARKUP = '<script>alert("x")</script> & <b>co</b>'


def test_markup_is_stored_as_given_and_returned_json_escaped(world: World) -> None:
    renamed = world.boss("PATCH", "/tenants/acme", {"name": MARKUP})
    created = world.boss("POST", "/tenants/acme/collectors", {"name": MARKUP, "hostname": "h"})
    for response in (renamed, created, world.boss("GET", "/tenants/acme/collectors")):
        raw = response.get_data(as_text=True)
        assert "<" not in raw
        assert ">" not in raw
        assert "&" not in raw
        assert "\\u003cscript\\u003e" in raw
    assert renamed.get_json()["name"] == MARKUP
    missing = world.boss(
        "POST", "/tenants/acme/members", {"email": "<b>x</b>@a.test", "role": "admin"}
    )
    assert "<" not in missing.get_data(as_text=True)
    assert "<b>x</b>" in missing.get_json()["error"]["message"]
    assert created.get_json()["name"] == MARKUP
    with world.app.app_context():
        db = database.session()
        assert db.scalar(select(Tenant.name).where(Tenant.slug == "acme")) == MARKUP
        assert db.scalar(select(Collector.name).where(Collector.name.like("<script>%"))) == MARKUP


def _raw(caller: Caller, path: str, data: bytes, content_type: str) -> TestResponse:
    return caller.client.post(
        f"/api/v1{path}", data=data, content_type=content_type,
        headers={"Authorization": f"Bearer {caller.token}"},
    )  # fmt: skip


MALFORMED_BODIES = [
    (b'{"name": "n", "hostname": ', "application/json"),
    (b"name=n&hostname=h", "application/x-www-form-urlencoded"),
    (b'{"name": "n", "hostname": "h"}', "text/plain"),
    (b"", "application/json"),
    (b'["name", "hostname"]', "application/json"),
    (b"null", "application/json"),
    (b'{"name": NaN}', "application/json"),
    (b"\xff\xfe", "application/json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),
]


def test_malformed_bodies_are_refused(world: World) -> None:
    for data, content_type in MALFORMED_BODIES:
        response = _raw(world.boss, "/tenants/acme/collectors", data, content_type)
        _error(response, 400, "invalid")
    assert _collector_names(world) == ["web1"]


def test_strings_that_are_not_unicode_are_refused(world: World) -> None:
    data = b'{"name": "\\ud800", "hostname": "h"}'
    _error(_raw(world.boss, "/tenants/acme/collectors", data, "application/json"), 400, "invalid",
           "name")  # fmt: skip


def test_a_key_given_twice_in_a_json_object_is_refused_naming_it(world: World) -> None:
    """json keeps the last of two equal keys: {"labels": {"env": "prod", "env": "dev"}} would
    store dev without a word."""
    for data in (b'{"name": "n", "hostname": "h", "labels": {"env": "prod", "env": "dev"}}',
                 b'{"name": "n", "hostname": "h", "name": "m"}'):  # fmt: skip
        response = _raw(world.boss, "/tenants/acme/collectors", data, "application/json")
        _error(response, 400, "invalid")
        assert "is given twice in one JSON object" in response.get_json()["error"]["message"]
    assert _collector_names(world) == ["web1"]


def test_oversized_body_is_refused(world: World) -> None:
    data = json.dumps({"name": "n" * (1 << 20), "hostname": "h"}).encode()
    _error(_raw(world.boss, "/tenants/acme/collectors", data, "application/json"), 413,
           "request_entity_too_large")  # fmt: skip


ODD_PATHS = ["/tenants/ACME", "/tenants/%00", "/tenants/acme%0A", "/tenants/acme/collectors/99999999999",
     "/tenants/acme/collectors/0", "/tenants/acme/keys/%00", "/tenants/acme/keys/short",
     "/nothing-here"]  # fmt: skip


def test_odd_paths_are_json_404s_and_wrong_methods_405s(world: World) -> None:
    for path in ODD_PATHS:
        _error(world.root("GET", path), 404, "not_found")
    response = world.root("DELETE", "/tenants/acme/members")
    _error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_unknown_fields_and_types_are_named(world: World) -> None:
    cases = [
        ("POST", "/tenants", {"slug": "x", "name": "X", "plan": "gold"}, "plan"),
        ("POST", "/tenants", {"slug": "Not A Slug", "name": "X"}, "slug"),
        ("POST", "/tenants", {"slug": "x", "name": ["X"]}, "name"),
        ("PATCH", "/tenants/acme", {}, None),
        ("PATCH", "/tenants/acme", {"status": "paused"}, "status"),
        ("DELETE", "/tenants/acme", {"confirm": 1}, "confirm"),
        ("POST", "/tenants/acme/members", {"email": "vic@acme.test"}, "role"),
        ("POST", "/users", {"email": "a@b.test", "password": PASSWORD, "platform_admin": "yes"},
         "platform_admin"),
        ("POST", "/me/tokens", {"name": "t", "scopes": ["read"]}, "scopes"),
        ("PATCH", f"/tenants/acme/collectors/{world.ids['collector']}", {"status": None}, "status"),
    ]  # fmt: skip
    before = world.snapshot()
    for method, path, body, field in cases:
        _error(world.root(method, path, body), 400, "invalid", field)
    assert world.snapshot() == before
