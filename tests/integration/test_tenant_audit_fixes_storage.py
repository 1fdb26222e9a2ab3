"""The tenant audit's item 4, against the real InfluxDB 1.6 with authentication on: creating a
tenant does not take over an InfluxDB database of its name that exists already and holds data
(made by hand, or left by a restore): the service, the API, the page and the command line refuse
it (409) saying how to proceed, and create nothing, no tenant row and no InfluxDB user; the
command line's --adopt-database and the API's adopt_database take it over on purpose. An empty
leftover database is taken as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import Engine, select, text

from perfanalysis.testing.servers import InfluxDB, ServerRegistry, quote_identifier
from tenants import db as database
from tenants.access import system_actor
from tenants.accounts import create_user
from tenants.app import create_app
from tenants.cli import admin
from tenants.errors import Conflict
from tenants.models import AuditEvent, Tenant
from tenants.settings import load
from tenants.tenancy import create_tenant
from tests.conftest import (
    PASSWORD,
    TEST_SECRET,
    Caller,
    csrf,
    empty_tables,
    issue_test_token,
    login,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_password_hashing")]

NOW = int(time.time())
POINTS = f"cpu,host=a value=1 {NOW}\nmem,host=a used=2 {NOW}"
INGEST = {"user": "ingest", "password": "the-ingest-password-0123456789abcdef"}
ROOT = "root@example.test"
REFUSAL = (
    "InfluxDB already has a database pa_acme holding data (measurement 'cpu', perhaps more): "
    "tenant acme would be given it, and its users could read that data. If the data is not "
    'wanted, drop the database (as InfluxDB\'s admin: DROP DATABASE "pa_acme") and create the '
    "tenant again; if it is this tenant's (a restore, a re-created admin database), create the "
    """tenant with --adopt-database (API: "adopt_database": true). Nothing was created"""
)


@pytest.fixture
def influxdb(servers: ServerRegistry) -> InfluxDB:
    return servers.influxdb(auth=True)


@pytest.fixture
def app(database_url: str, migrated_engine: Engine, influxdb: InfluxDB) -> Iterator[Flask]:
    """The admin app provisioning on ``influxdb``, an ingest user configured, and a platform
    admin (ROOT)."""
    empty_tables(migrated_engine)
    env = {
        "PERFANALYSIS_ADMIN_DATABASE_URL": database_url,
        "PERFANALYSIS_ADMIN_SECRET_KEY": TEST_SECRET,
        "PERFANALYSIS_ADMIN_INFLUXDB_URL": influxdb.url,
        "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_USER": influxdb.admin_user,
        "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD": influxdb.admin_password,
        "PERFANALYSIS_ADMIN_INFLUXDB_RETENTION": "7d",
        "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_USER": INGEST["user"],
        "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_PASSWORD": INGEST["password"],
    }
    application = create_app(load([], env))
    with application.app_context():
        create_user(database.session(), system_actor(), ROOT, PASSWORD, "", True)
    yield application
    application.extensions["pa_engine"].dispose()


def cli(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(admin, list(args),
                              obj={"app": app, "settings": app.config["PA_SETTINGS"]})  # fmt: skip


def slugs(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT slug FROM tenants ORDER BY slug")).scalars())


def influx_users(influxdb: InfluxDB) -> set[str]:
    return {row["user"] for row in influxdb.rows("SHOW USERS")}


def count(influxdb: InfluxDB, **credentials: str) -> int:
    rows = influxdb.rows("SELECT count(value) FROM cpu", db="pa_acme", **credentials)
    return int(rows[0]["count"]) if rows else 0


def read_credentials(app: Flask) -> dict[str, str]:
    with app.app_context():
        tenant = database.session().scalars(select(Tenant).where(Tenant.slug == "acme")).one()
        assert tenant.influx_read_user
        assert tenant.influx_read_password_encrypted
        password = app.extensions["pa_vault"].decrypt(tenant.influx_read_password_encrypted)
        return {"user": tenant.influx_read_user, "password": password}


def test_a_database_holding_data_is_refused_everywhere_creating_nothing(
    app: Flask, influxdb: InfluxDB, migrated_engine: Engine
) -> None:
    influxdb.create_database("pa_acme")  # by hand, or by a restore
    influxdb.write("pa_acme", POINTS, precision="s")
    users_before = influx_users(influxdb)
    grants_before = influxdb.rows(f"SHOW GRANTS FOR {quote_identifier(influxdb.admin_user)}")

    storage, vault = app.extensions["pa_storage"], app.extensions["pa_vault"]
    with app.app_context(), pytest.raises(Conflict) as refused:
        create_tenant(database.session(), system_actor(), "acme", "Acme", storage, vault)
    assert (refused.value.message, refused.value.field) == (REFUSAL, "slug")

    root = Caller(app.test_client(), issue_test_token(app, ROOT))
    answer = root("POST", "/tenants", {"slug": "acme", "name": "Acme"})
    assert answer.status_code == 409
    assert answer.get_json()["error"] == {"code": "conflict", "message": REFUSAL, "field": "slug"}

    client = app.test_client()
    login(client, ROOT)
    page = client.post(
        "/tenants", data={"slug": "acme", "name": "Acme", "csrf_token": csrf(client)}
    )
    assert page.status_code == 409
    shown = page.get_data(as_text=True)
    assert "InfluxDB already has a database pa_acme holding data" in shown
    assert "Acme</a>" not in shown  # the tenants list shows no half-made tenant

    made = cli(app, "create-tenant", "acme", "Acme")
    assert isinstance(made.exception, Conflict)  # perfanalysis admin prints it, exits 1
    assert made.exception.message == REFUSAL

    assert slugs(migrated_engine) == []
    assert influx_users(influxdb) == users_before  # no read user; not even the ingest user
    assert "pa_acme_read" not in influx_users(influxdb)
    assert influxdb.rows(f"SHOW GRANTS FOR {quote_identifier(influxdb.admin_user)}") == (
        grants_before
    )
    assert count(influxdb) == 1  # the data is untouched
    [policy] = influxdb.rows('SHOW RETENTION POLICIES ON "pa_acme"')
    assert policy["name"] == "autogen"  # not converged to the tenant's policy either
    with app.app_context():
        actions = database.session().scalars(select(AuditEvent.action)).all()
    assert "tenant.create" not in actions

    # dropped, as the message says: the tenant is made
    influxdb.query('DROP DATABASE "pa_acme"')
    again = root("POST", "/tenants", {"slug": "acme", "name": "Acme"})
    assert again.status_code == 201
    assert count(influxdb, **read_credentials(app)) == 0


@pytest.mark.parametrize("how", ["cli", "api"])
def test_adopting_a_database_makes_its_data_the_tenants(
    app: Flask, influxdb: InfluxDB, migrated_engine: Engine, how: str
) -> None:
    """A database an earlier tenant acme had (brought back by a restore, the admin database made
    anew): its data is in the app's retention policy, which the tenant's users read."""
    influxdb.query(
        'CREATE DATABASE "pa_acme" WITH DURATION 7d REPLICATION 1 SHARD DURATION 1d NAME "default"'
    )
    influxdb.write("pa_acme", POINTS, precision="s")
    if how == "cli":
        made = cli(app, "create-tenant", "acme", "Acme", "--adopt-database")
        assert made.exit_code == 0, made.output
        assert made.stdout == "created tenant acme (database pa_acme)\n"
    else:
        root = Caller(app.test_client(), issue_test_token(app, ROOT))
        body: dict[str, Any] = {"slug": "acme", "name": "Acme", "adopt_database": True}
        assert root("POST", "/tenants", body).status_code == 201
        refused = root("POST", "/tenants", {**body, "slug": "beta", "adopt_database": "yes"})
        assert refused.status_code == 400
        assert refused.get_json()["error"]["field"] == "adopt_database"
    assert slugs(migrated_engine) == ["acme"]
    assert count(influxdb, **read_credentials(app)) == 1
    influxdb.write("pa_acme", f"cpu,host=b value=3 {NOW}", precision="s", **INGEST)
    assert count(influxdb, **read_credentials(app)) == 2
    with app.app_context():
        details = (
            database.session()
            .scalars(select(AuditEvent.details).where(AuditEvent.action == "tenant.create"))
            .one()
        )
    assert details["adopted_database"] is True


def test_an_empty_leftover_database_is_taken_without_asking(
    app: Flask, influxdb: InfluxDB, migrated_engine: Engine
) -> None:
    """A database with no measurement (a failed run's, or one made ahead of the tenant) hides no
    one's data: the new tenant gets it, its retention policy made the configured one."""
    influxdb.create_database("pa_acme")
    made = cli(app, "create-tenant", "acme", "Acme")
    assert made.exit_code == 0, made.output
    assert slugs(migrated_engine) == ["acme"]
    policies = {row["name"]: row for row in influxdb.rows('SHOW RETENTION POLICIES ON "pa_acme"')}
    assert policies["default"]["default"] is True
    assert policies["default"]["duration"] == "168h0m0s"
    assert count(influxdb, **read_credentials(app)) == 0
