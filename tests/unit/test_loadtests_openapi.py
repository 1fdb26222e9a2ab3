"""schemathesis against the load-test routes, from their own OpenAPI path items.

The path items (tenants.views.loadtests.openapi_paths) are merged into the main document as the
admin app will merge them; every operation is then called with generated requests, valid and
invalid, as a platform admin over a tenant that holds two runs. As in the main API's test, every
default check runs except ``positive_data_acceptance`` (a document-valid request can still break
a business rule: levels that do not grow, a duplicate upload).
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
from schemathesis.checks import positive_data_acceptance

from tenants.openapi import document
from tenants.views.loadtests import openapi_components, openapi_paths
from tests.support.schemathesis_app import schema_for, store_token
from tests.unit.test_loadtests_support import UNITS, build_world, upload_with_key
from tests.unit.test_loadtests_support import document as result

pytestmark = pytest.mark.integration

TOKEN_ID, TOKEN_SECRET = "loadtestsschm", "t" * 43
TOKEN = f"pat_{TOKEN_ID}_{TOKEN_SECRET}"


def merged_document() -> dict[str, Any]:
    merged = copy.deepcopy(document())
    merged["paths"] = openapi_paths()
    merged["components"]["securitySchemes"].update(openapi_components()["securitySchemes"])
    return merged


schema, current_app = schema_for(merged_document(), TOKEN)


@pytest.fixture
def target(
    app: Flask, make_user: Any, make_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr("tenants.accounts.hash_password", fast.hash)
    world = build_world(app, make_user, make_tenant)
    make_user("root@example.test", platform_admin=True)
    store_token(app, "root@example.test", TOKEN)
    client = app.test_client()
    assert upload_with_key(client, world.key_a, result()).status_code == 201
    assert upload_with_key(client, world.key_a, result([u * 2 for u in UNITS])).status_code == 201
    current_app.app = app
    yield
    current_app.app = None


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_loadtest_api_has_no_server_errors_and_keeps_its_document(
    case: schemathesis.Case[Any], target: None
) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
