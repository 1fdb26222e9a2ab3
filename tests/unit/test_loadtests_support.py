"""Builders shared by the load-test tests (the other test_loadtests_* modules import them).

Its one test holds the migration to the models: Alembic finds nothing to generate.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from tenants import crypto
from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.collectors import register_collector
from tenants.keys import issue_key
from tenants.loadtests.models import LoadTestRun
from tenants.loadtests.prices import seed_prices
from tenants.models import Base, User
from tests.conftest import login

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "provisioning" / "prices.yaml"
EXAMPLES = ROOT / "provisioning" / "examples" / "loadtests"
PLATFORM = "root@platform.test"
ADMIN, ANALYST, VIEWER = "boss@a.test", "ana@a.test", "vic@a.test"
OUTSIDER = "boss@b.test"  # admin of tenant b, a stranger to tenant a
UNITS = [18.0, 36.0, 54.0, 72.0, 92.0, 110.0, 128.0, 146.0, 164.0, 182.0]


def document(units: list[float] | None = None, **host: Any) -> dict[str, Any]:
    """A valid upload: ten levels, three repeats each, on an OCI E5.Flex 1 OCPU / 4 GB."""
    units = units or UNITS
    levels = [
        {"target_busy_percent": 10 * (i + 1), "measured_busy_percent": min(10 * (i + 1) + 0.6, 99.2),
         "units_per_second": value, "repeats": [value, value, value + 1], "cv_percent": 3.1,
         "attempts": 2, "accepted": True}
        for i, value in enumerate(units)
    ]  # fmt: skip
    return {
        "schema": "perfanalysis.loadtest/1",
        "started_at": "2026-11-01T10:00:00Z",
        "finished_at": "2026-11-01T10:05:00Z",
        "host": {
            "hostname": "web1.a.test",
            "cpu_model": "AMD EPYC 9J14 96-Core Processor",
            "vcpus": 2,
            "memory_bytes": 4 * 2**30 - 200 * 2**20,
            "kernel": "6.1.0",
            "cloud_provider": "oci",
            "region": "us-phoenix-1",
            "instance_type": "VM.Standard.E5.Flex",
            **host,
        },
        "settings": {
            "window_seconds": 1.0,
            "repeats": 3,
            "tolerance_points": 3.0,
            "unit": {"name": "pa-mem4m-v1", "buffer_bytes": 4194304},
        },
        "levels": levels,
        "max_units_per_second": units[-1],
        "repeatability_cv_percent": 2.4,
    }


def variant(base: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    """A deep copy with the JSON pointer's target replaced (or removed when value is ...)."""
    doc = copy.deepcopy(base)
    *parents, last = pointer.strip("/").split("/")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return doc


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        crypto, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@dataclass(frozen=True)
class World:
    """Tenant a (admin, analyst, viewer; collector web-a with key) and tenant b (its admin;
    collector web-b with key); the global price seed loaded."""

    collector_a: int
    key_a: str  # plaintext collector key
    collector_b: int
    key_b: str


def build_world(
    app: Flask, make_user: Callable[..., Any], make_tenant: Callable[..., Any]
) -> World:
    make_user(PLATFORM, platform_admin=True)
    make_tenant("a", {ADMIN: "admin", ANALYST: "analyst", VIEWER: "viewer"})
    make_tenant("b", {OUTSIDER: "admin"})
    with app.app_context():
        db = database.session()
        seed_prices(db, system_actor(), SEED)
        collector_a, key_a = _collector_with_key(app, "a")
        collector_b, key_b = _collector_with_key(app, "b")
    return World(collector_a, key_a, collector_b, key_b)


def _collector_with_key(app: Flask, slug: str) -> tuple[int, str]:
    db = database.session()
    tenant = tenant_for(db, system_actor(), slug)
    fields = {"name": f"web-{slug}", "hostname": f"web.{slug}.test", "vcpus": 2}
    collector = register_collector(db, system_actor(), tenant, fields)
    issued = issue_key(db, system_actor(), tenant, collector, app.extensions["pa_hasher"], "k")
    return collector.id, issued.plaintext


def upload_with_key(client: FlaskClient, key: str, body: Any) -> Any:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post("/api/v1/loadtests", data=data, content_type="application/json",
                       headers={"Authorization": f"Token {key}"})  # fmt: skip


def logged_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def run_ids(app: Flask, slug: str) -> list[int]:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), slug)
        query = select(LoadTestRun.id).where(LoadTestRun.tenant_id == tenant.id)
        return sorted(db.scalars(query))


def user_id(app: Flask, email: str) -> int:
    with app.app_context():
        found = database.session().scalar(select(User.id).where(User.email == email))
        assert found is not None
        return found


WATCHED = ("tenants", "price_entries", "loadtest_runs", "loadtest_levels")


def table_rows(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables these routes could write, to show that a refusal changed nothing
    (the others change on every request: key and token use, the audit log)."""
    with app.extensions["pa_engine"].connect() as connection:
        return {
            table.name: [tuple(row) for row in
                         connection.execute(table.select().order_by(*table.primary_key))]
            for table in Base.metadata.sorted_tables
            if table.name in WATCHED
        }  # fmt: skip


def test_the_migrations_create_exactly_the_load_test_models(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, Base.metadata)
    ours = [d for d in differences if any(name in repr(d) for name in
            ("price_entries", "loadtest_runs", "loadtest_levels"))]  # fmt: skip
    assert ours == []
