"""schemathesis against /api/v1, driven by the app's own OpenAPI document through WSGI.

Each operation runs against a fresh app, authenticated as a platform admin, over a tenant that
already holds a collector and a key, so generated requests reach real rows as well as missing
ones. The schema is built from ``tenants.openapi.document()`` (the fixture checks that the app
serves exactly that) rather than with ``schemathesis.pytest.from_fixture``, whose lazy loader
does not run under pytest 9.2. schemathesis builds some cases when the test is collected, so the
admin's API token is fixed in advance and written to each test's database. Valid generated path
parameters are swapped for the seeded rows' in about half the cases, so that bodies reach the
database rather than a 404 for a random slug.

Every default check runs except ``positive_data_acceptance``: a request the document allows can
still break a business rule and get 400 for it (a delete confirmation that does not match, a
revoked key to rotate, a label name: OpenAPI 3.0 cannot constrain property names).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from argon2 import PasswordHasher
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from tenants import db as database
from tenants.accounts import get_user_by_email
from tenants.openapi import KEY_ID_PATTERN, MAX_ID, SLUG_PATTERN, document, matches
from tests.support.schemathesis_app import schema_for, store_token

pytestmark = pytest.mark.integration


TOKEN_ID, TOKEN_SECRET = "schemathesiss", "s" * 43
TOKEN = f"pat_{TOKEN_ID}_{TOKEN_SECRET}"


schema, current_app = schema_for(copy.deepcopy(document()), TOKEN)


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    if not path_parameters:
        return st.just(path_parameters)
    seeded = {name: current_app.path_values.get(name) for name in path_parameters}
    if None in seeded.values() or not all(
        _valid_path_value(name, value) for name, value in path_parameters.items()
    ):
        return st.just(path_parameters)  # at collection time nothing is seeded yet
    return st.sampled_from([path_parameters, seeded])


def _valid_path_value(name: str, value: Any) -> bool:
    if name in ("collector_id", "user_id", "invitation_id"):
        return isinstance(value, int) and 1 <= value <= MAX_ID
    pattern = KEY_ID_PATTERN if name == "key_id" else SLUG_PATTERN
    return isinstance(value, str) and matches(pattern, value)


def _user_id(app: Flask, email: str) -> int:
    with app.app_context():
        user = get_user_by_email(database.session(), email)
        assert user is not None
        return user.id


@pytest.fixture
def target(
    app: Flask, make_user: Any, make_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    fast_argon2 = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr("tenants.accounts.hash_password", fast_argon2.hash)
    make_user("root@example.test", platform_admin=True)
    make_tenant("acme", {"boss@acme.test": "admin"})
    store_token(app, "root@example.test", TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    client = app.test_client()
    assert client.get("/api/v1/openapi.json").get_json() == document()
    collector = client.post("/api/v1/tenants/acme/collectors", headers=headers,
                            json={"name": "web1", "hostname": "web1"})  # fmt: skip
    issued = client.post("/api/v1/tenants/acme/keys", headers=headers,
                         json={"collector_id": collector.get_json()["id"]})  # fmt: skip
    assert issued.status_code == 201
    invited = client.post("/api/v1/tenants/acme/invitations", headers=headers,
                          json={"email": "guest@elsewhere.test", "role": "viewer"})  # fmt: skip
    assert invited.status_code == 201
    current_app.app = app
    current_app.path_values = {
        "slug": "acme",
        "collector_id": collector.get_json()["id"],
        "key_id": issued.get_json()["key_id"],
        "user_id": _user_id(app, "boss@acme.test"),
        "invitation_id": invited.get_json()["id"],
    }
    yield
    current_app.app, current_app.path_values = None, {}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_has_no_server_errors_and_keeps_its_document(
    case: schemathesis.Case[Any], target: None
) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
