"""Tenant storage against the real InfluxDB 1.6.7 with authentication on (tenants/influx.py).

Tenants are created and deleted through the admin service (tenants.tenancy) in an app configured
with the server's URL and admin credentials; what exists afterwards is read back from InfluxDB as
its admin, and each tenant's read user is tried with the password the app stored encrypted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import Engine, select, text

from perfanalysis.config import ConfigError
from perfanalysis.testing.servers import (
    InfluxDB,
    ServerError,
    ServerRegistry,
    free_port,
    quote_identifier,
)
from tenants import db as database
from tenants.access import system_actor
from tenants.app import create_app
from tenants.cli import admin
from tenants.errors import Invalid
from tenants.influx import InfluxStorage, Statement, StorageError, parse_retention
from tenants.models import AuditEvent, Tenant
from tenants.settings import load
from tenants.tenancy import create_tenant, delete_tenant
from tests.conftest import TEST_SECRET, empty_tables

pytestmark = pytest.mark.integration

NOW = int(time.time())  # inside every retention policy
POINTS = f"cpu,host=a value=1 {NOW}\ncpu,host=b value=2 {NOW}"
WRONG_PASSWORD = "not-the-admin-password-4711"
INGEST_USER = "ingest"
INGEST_PASSWORD = "the-ingest-password-0123456789abcdef"
MakeApp = Callable[..., Flask]


@pytest.fixture
def influxdb(servers: ServerRegistry) -> InfluxDB:
    return servers.influxdb(auth=True)


@pytest.fixture
def make_app(database_url: str, migrated_engine: Engine) -> Iterator[MakeApp]:
    """make_app(influxdb, admin_password=None, retention="7d", ingest=False): an admin app that
    provisions there (with ``ingest``, granting INGEST_USER WRITE on each tenant database)."""
    empty_tables(migrated_engine)
    apps: list[Flask] = []

    def make(
        influxdb: InfluxDB,
        admin_password: str | None = None,
        retention: str = "7d",
        ingest: bool = False,
    ) -> Flask:
        env = {
            "PERFANALYSIS_ADMIN_DATABASE_URL": database_url,
            "PERFANALYSIS_ADMIN_SECRET_KEY": TEST_SECRET,
            "PERFANALYSIS_ADMIN_INFLUXDB_URL": influxdb.url,
            "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_USER": influxdb.admin_user,
            "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD": admin_password or influxdb.admin_password,
            "PERFANALYSIS_ADMIN_INFLUXDB_RETENTION": retention,
        }
        if ingest:
            env["PERFANALYSIS_ADMIN_INFLUXDB_INGEST_USER"] = INGEST_USER
            env["PERFANALYSIS_ADMIN_INFLUXDB_INGEST_PASSWORD"] = INGEST_PASSWORD
        app = create_app(load([], env))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["pa_engine"].dispose()


@pytest.fixture
def app(make_app: MakeApp, influxdb: InfluxDB) -> Flask:
    return make_app(influxdb)


def admin_storage(influxdb: InfluxDB, retention: str = "7d") -> InfluxStorage:
    return InfluxStorage(influxdb.url, influxdb.admin_user, influxdb.admin_password, retention)


def ingest_storage(influxdb: InfluxDB, password: str = INGEST_PASSWORD) -> InfluxStorage:
    return InfluxStorage(
        influxdb.url,
        influxdb.admin_user,
        influxdb.admin_password,
        "7d",
        ingest_user=INGEST_USER,
        ingest_password=password,
    )


INGEST = {"user": INGEST_USER, "password": INGEST_PASSWORD}


# ---------------------------------------------------------------------------------------------
# Helpers: the admin service, and what InfluxDB holds


def create(app: Flask, slug: str) -> Tenant:
    with app.app_context():
        storage, vault = app.extensions["pa_storage"], app.extensions["pa_vault"]
        return create_tenant(database.session(), system_actor(), slug, slug.title(), storage, vault)


def delete(app: Flask, slug: str) -> None:
    with app.app_context():
        db = database.session()
        tenant = db.scalars(select(Tenant).where(Tenant.slug == slug)).one()
        delete_tenant(db, system_actor(), tenant, slug, app.extensions["pa_storage"])


def read_credentials(app: Flask, tenant: Tenant) -> dict[str, str]:
    assert tenant.influx_read_user
    assert tenant.influx_read_password_encrypted
    password = app.extensions["pa_vault"].decrypt(tenant.influx_read_password_encrypted)
    return {"user": tenant.influx_read_user, "password": password}


def tenant_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text("SELECT * FROM tenants"))]


def rows(influxdb: InfluxDB, q: str, **credentials: str) -> list[dict[str, Any]]:
    """Like InfluxDB.rows, but a series without values (SHOW DATABASES on none) has no rows."""
    series = influxdb.query(q, **credentials)["results"][0].get("series", [])
    return [dict(zip(s["columns"], v, strict=True)) for s in series for v in s.get("values", [])]


def databases(influxdb: InfluxDB) -> set[str]:
    return {row["name"] for row in rows(influxdb, "SHOW DATABASES")}


def users(influxdb: InfluxDB) -> dict[str, bool]:
    return {row["user"]: row["admin"] for row in rows(influxdb, "SHOW USERS")}


def grants(influxdb: InfluxDB, user: str) -> dict[str, str]:
    rows = influxdb.rows(f"SHOW GRANTS FOR {quote_identifier(user)}")
    return {row["database"]: row["privilege"] for row in rows}


def retention_policies(influxdb: InfluxDB, db: str) -> list[dict[str, Any]]:
    return influxdb.rows(f"SHOW RETENTION POLICIES ON {quote_identifier(db)}")


def count(influxdb: InfluxDB, db: str, **credentials: str) -> int:
    rows = influxdb.rows("SELECT count(value) FROM cpu", db=db, **credentials)
    return int(rows[0]["count"]) if rows else 0


# ---------------------------------------------------------------------------------------------
# Through the admin service


def test_creating_tenants_provisions_databases_retention_policies_and_read_users(
    app: Flask, influxdb: InfluxDB
) -> None:
    for slug in ("acme", "globex-eu"):
        tenant = create(app, slug)
        db = "pa_" + slug.replace("-", "_")
        assert (tenant.influx_database, tenant.influx_read_user) == (db, f"{db}_read")
        assert db in databases(influxdb)
        assert retention_policies(influxdb, db) == [
            {"name": "default", "duration": "168h0m0s", "shardGroupDuration": "24h0m0s",
             "replicaN": 1, "default": True}
        ]  # fmt: skip
        assert users(influxdb)[f"{db}_read"] is False
        assert grants(influxdb, f"{db}_read") == {db: "READ"}


def test_a_read_user_reads_its_own_database_and_nothing_else(
    app: Flask, influxdb: InfluxDB
) -> None:
    acme = read_credentials(app, create(app, "acme"))
    globex = read_credentials(app, create(app, "globex"))
    influxdb.write("pa_acme", POINTS, precision="s")
    influxdb.write("pa_globex", f"{POINTS}\ncpu,host=c value=3 {NOW}", precision="s")

    assert count(influxdb, "pa_acme", **acme) == 2
    assert count(influxdb, "pa_globex", **globex) == 3
    with pytest.raises(ServerError, match="not authorized") as other_database:
        count(influxdb, "pa_globex", **acme)
    assert other_database.value.status == 403
    with pytest.raises(ServerError, match="not authorized"):
        influxdb.rows('SELECT count(value) FROM "pa_globex".."cpu"', db="pa_acme", **acme)
    assert influxdb.rows("SHOW DATABASES", **acme) == [{"name": "pa_acme"}]


def test_a_read_user_cannot_write_or_administer(app: Flask, influxdb: InfluxDB) -> None:
    acme = read_credentials(app, create(app, "acme"))
    with pytest.raises(ServerError, match="not authorized to write") as write:
        influxdb.write("pa_acme", POINTS, precision="s", **acme)
    assert write.value.status == 403
    with pytest.raises(ServerError, match="requires admin privilege"):
        influxdb.query('DROP DATABASE "pa_acme"', **acme)
    assert count(influxdb, "pa_acme") == 0


def test_the_read_password_is_stored_only_as_a_fernet_token(
    app: Flask, migrated_engine: Engine
) -> None:
    password = read_credentials(app, create(app, "acme"))["password"]
    assert len(password) >= 43  # 32 random bytes, url-safe base64
    [row] = tenant_rows(migrated_engine)
    assert row["influx_read_password_encrypted"].startswith("gAAAAA")  # Fernet version byte
    assert not any(password in str(value) for value in row.values())


def test_deleting_a_tenant_drops_its_database_and_read_user(app: Flask, influxdb: InfluxDB) -> None:
    acme = read_credentials(app, create(app, "acme"))
    globex = read_credentials(app, create(app, "globex"))
    influxdb.write("pa_globex", POINTS, precision="s")

    delete(app, "acme")

    assert "pa_acme" not in databases(influxdb)
    assert "pa_acme_read" not in users(influxdb)
    with pytest.raises(ServerError, match="authorization failed"):
        influxdb.query("SHOW DATABASES", **acme)
    assert count(influxdb, "pa_globex", **globex) == 2


def test_a_wrong_admin_password_leaves_no_tenant_and_no_database(
    make_app: MakeApp, influxdb: InfluxDB, migrated_engine: Engine
) -> None:
    app = make_app(influxdb, admin_password=WRONG_PASSWORD)
    with pytest.raises(StorageError, match="SHOW DATABASES failed: HTTP 401") as refused:
        create(app, "acme")
    assert refused.value.status == 401
    assert WRONG_PASSWORD not in str(refused.value)
    assert tenant_rows(migrated_engine) == []
    assert "pa_acme" not in databases(influxdb)


def refusing(prefix: str) -> type[InfluxStorage]:
    """InfluxStorage whose InfluxDB refuses the statements that start with ``prefix``; the
    error shows the statement as the real ones do (passwords redacted)."""

    class Refusing(InfluxStorage):
        def _execute(self, statement: Statement) -> dict[str, Any]:
            if statement.query.startswith(prefix):
                raise StorageError(
                    statement.shown, statement.scrub(f"HTTP 500: refused {statement.query}")
                )
            return super()._execute(statement)

    return Refusing


GrantRefused = refusing("GRANT")  # the read grant: the last step for a new tenant


def test_a_failure_after_the_database_and_user_exist_drops_both(
    app: Flask, influxdb: InfluxDB, migrated_engine: Engine
) -> None:
    app.extensions["pa_storage"] = GrantRefused(
        influxdb.url, influxdb.admin_user, influxdb.admin_password
    )
    with pytest.raises(StorageError, match='GRANT READ ON "pa_acme" TO "pa_acme_read" failed'):
        create(app, "acme")
    assert tenant_rows(migrated_engine) == []
    assert "pa_acme" not in databases(influxdb)
    assert "pa_acme_read" not in users(influxdb)


def test_a_bad_retention_setting_stops_the_app_with_a_clear_error(
    make_app: MakeApp, influxdb: InfluxDB
) -> None:
    # ValueError from InfluxStorage; ConfigError once settings.py parses the retention itself
    refused = (ValueError, ConfigError)
    with pytest.raises(refused, match="retention '30 days' is not an InfluxQL duration"):
        make_app(influxdb, retention="30 days")


# ---------------------------------------------------------------------------------------------
# InfluxStorage itself


def test_provisioning_again_rotates_the_password_and_converges(influxdb: InfluxDB) -> None:
    first = admin_storage(influxdb).provision("pa_acme", "pa_acme_read")
    influxdb.create_database("other")
    influxdb.query('GRANT ALL ON "other" TO "pa_acme_read"')
    influxdb.query('GRANT ALL PRIVILEGES TO "pa_acme_read"')

    second = admin_storage(influxdb, retention="2w").provision("pa_acme", "pa_acme_read")

    assert second != first
    with pytest.raises(ServerError, match="authorization failed"):
        influxdb.query("SHOW DATABASES", user="pa_acme_read", password=first)
    assert count(influxdb, "pa_acme", user="pa_acme_read", password=second) == 0
    assert users(influxdb)["pa_acme_read"] is False
    assert grants(influxdb, "pa_acme_read") == {"pa_acme": "READ", "other": "NO PRIVILEGES"}
    [policy] = retention_policies(influxdb, "pa_acme")
    assert (policy["duration"], policy["default"]) == ("336h0m0s", True)


def test_deprovisioning_twice_is_harmless(influxdb: InfluxDB) -> None:
    storage = admin_storage(influxdb)
    storage.provision("pa_acme", "pa_acme_read")
    storage.deprovision("pa_acme", "pa_acme_read")
    storage.deprovision("pa_acme", "pa_acme_read")
    assert "pa_acme" not in databases(influxdb)
    assert "pa_acme_read" not in users(influxdb)


def test_names_with_quotes_and_backslashes_are_quoted(influxdb: InfluxDB) -> None:
    db, user = "pa_\"odd'db", "o'dd\"user\\"  # InfluxDB refuses a backslash in a database name
    password = admin_storage(influxdb).provision(db, user)
    influxdb.write(db, POINTS, precision="s")
    assert count(influxdb, db, user=user, password=password) == 2
    assert grants(influxdb, user) == {db: "READ"}


@pytest.mark.parametrize(
    ("retention", "duration", "shard_duration"),
    [
        ("90m", "1h30m0s", "1h0m0s"),
        ("3600000000µ", "1h0m0s", "1h0m0s"),
        ("30d", "720h0m0s", "24h0m0s"),
        ("52w", "8736h0m0s", "168h0m0s"),
        ("INF", "0s", "168h0m0s"),
    ],
)
def test_retention_policies_as_influxdb_stores_them(
    influxdb: InfluxDB, retention: str, duration: str, shard_duration: str
) -> None:
    admin_storage(influxdb, retention).provision("pa_acme", "pa_acme_read")
    [policy] = retention_policies(influxdb, "pa_acme")
    assert (policy["duration"], policy["shardGroupDuration"]) == (duration, shard_duration)


@pytest.mark.parametrize(
    ("retention", "problem"),
    [
        ("30 days", "not an InfluxQL duration"),
        ("30D", "not an InfluxQL duration"),
        ("1.5h", "not an InfluxQL duration"),
        ("1h30m", "not an InfluxQL duration"),
        ("", "not an InfluxQL duration"),
        ("30d\n", "not an InfluxQL duration"),
        ("\u0663\u0660d", "not an InfluxQL duration"),  # Arabic-Indic 30: \d would take it
        ("59m", "shorter than InfluxDB's minimum of 1h"),
        ("20000000w", "too long; use INF"),
    ],
)
def test_a_bad_retention_is_refused(retention: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_retention(retention)


def test_the_admin_user_is_never_turned_into_a_read_user(influxdb: InfluxDB) -> None:
    with pytest.raises(ValueError, match="must not be the InfluxDB admin user"):
        admin_storage(influxdb).provision("pa_acme", influxdb.admin_user)
    assert users(influxdb)[influxdb.admin_user] is True


def test_credentials_inside_the_url_are_refused() -> None:
    with pytest.raises(ValueError, match="not inside the URL"):
        InfluxStorage("http://admin:secret@127.0.0.1:8086", "admin", "secret")


def test_check_passes_and_names_what_failed(influxdb: InfluxDB) -> None:
    admin_storage(influxdb).check()
    wrong = InfluxStorage(influxdb.url, influxdb.admin_user, WRONG_PASSWORD)
    with pytest.raises(StorageError, match="SHOW DATABASES failed: HTTP 401") as refused:
        wrong.check()
    assert WRONG_PASSWORD not in str(refused.value)
    nobody = InfluxStorage(f"http://127.0.0.1:{free_port()}", "admin", "x", timeout=2)
    with pytest.raises(
        StorageError, match=r"GET /ping failed: cannot reach .*: Connection refused"
    ):
        nobody.check()


class ServerDiesBeforeCreateUser(InfluxStorage):
    def __init__(self, influxdb: InfluxDB) -> None:
        super().__init__(influxdb.url, influxdb.admin_user, influxdb.admin_password)
        self.influxdb = influxdb

    def _execute(self, statement: Statement) -> dict[str, Any]:
        if statement.query.startswith("CREATE USER"):
            self.influxdb.stop()
        return super()._execute(statement)


def test_a_lost_server_is_reported_without_the_password_and_provisioning_again_converges(
    influxdb: InfluxDB, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "the-generated-read-password-0123456789"
    monkeypatch.setattr("tenants.influx.new_password", lambda: secret)
    with pytest.raises(StorageError, match="Connection refused") as lost:
        ServerDiesBeforeCreateUser(influxdb).provision("pa_acme", "pa_acme_read")
    assert str(lost.value).startswith(
        'InfluxDB: CREATE USER "pa_acme_read" WITH PASSWORD [redacted] failed: cannot reach'
    )
    assert "could not undo" in caplog.text
    assert secret not in str(lost.value) + caplog.text

    influxdb.start()  # same data: the database the lost run created is still there
    assert "pa_acme" in databases(influxdb)
    monkeypatch.undo()
    with caplog.at_level(logging.INFO, logger="tenants.influx"):
        password = admin_storage(influxdb).provision("pa_acme", "pa_acme_read")
    assert grants(influxdb, "pa_acme_read") == {"pa_acme": "READ"}
    assert count(influxdb, "pa_acme", user="pa_acme_read", password=password) == 0
    assert password not in caplog.text


# ---------------------------------------------------------------------------------------------
# The ingest user: WRITE on tenant databases, nothing else


def test_the_ingest_user_writes_to_tenant_databases_only_and_reads_nothing(
    make_app: MakeApp, influxdb: InfluxDB
) -> None:
    app = make_app(influxdb, ingest=True)
    create(app, "acme")
    create(app, "globex")
    influxdb.create_database("not_a_tenant")  # made by the admin directly

    influxdb.write("pa_acme", POINTS, precision="s", **INGEST)
    influxdb.write("pa_globex", POINTS, precision="s", **INGEST)
    assert count(influxdb, "pa_acme") == 2  # read back as the admin
    assert count(influxdb, "pa_globex") == 2

    with pytest.raises(ServerError, match="not authorized") as select_refused:
        count(influxdb, "pa_acme", **INGEST)
    assert select_refused.value.status == 403
    with pytest.raises(ServerError, match="not authorized to write") as elsewhere:
        influxdb.write("not_a_tenant", POINTS, precision="s", **INGEST)
    assert elsewhere.value.status == 403
    assert count(influxdb, "not_a_tenant") == 0
    with pytest.raises(ServerError, match="requires admin privilege"):
        influxdb.query('DROP DATABASE "pa_acme"', **INGEST)
    with pytest.raises(ServerError, match="requires admin privilege"):
        influxdb.query("SHOW USERS", **INGEST)
    assert users(influxdb)[INGEST_USER] is False
    assert grants(influxdb, INGEST_USER) == {"pa_acme": "WRITE", "pa_globex": "WRITE"}
    # the read users are untouched by the grant
    assert grants(influxdb, "pa_acme_read") == {"pa_acme": "READ"}


def test_deleting_a_tenant_takes_the_ingest_users_grant_with_the_database(
    make_app: MakeApp, influxdb: InfluxDB
) -> None:
    app = make_app(influxdb, ingest=True)
    create(app, "acme")
    create(app, "globex")
    delete(app, "acme")
    assert grants(influxdb, INGEST_USER) == {"pa_globex": "WRITE"}
    influxdb.create_database("pa_acme")  # same name again, made by hand: no grant comes back
    with pytest.raises(ServerError, match="not authorized to write"):
        influxdb.write("pa_acme", POINTS, precision="s", **INGEST)


def test_an_existing_ingest_user_is_demoted_and_gets_the_configured_password(
    influxdb: InfluxDB, caplog: pytest.LogCaptureFixture
) -> None:
    influxdb.query(
        f"CREATE USER {quote_identifier(INGEST_USER)} WITH PASSWORD 'old-one' WITH ALL PRIVILEGES"
    )
    assert users(influxdb)[INGEST_USER] is True
    with caplog.at_level(logging.DEBUG, logger="tenants.influx"):
        ingest_storage(influxdb).provision("pa_acme", "pa_acme_read")
    assert users(influxdb)[INGEST_USER] is False
    with pytest.raises(ServerError, match="authorization failed"):
        influxdb.write("pa_acme", POINTS, precision="s", user=INGEST_USER, password="old-one")
    influxdb.write("pa_acme", POINTS, precision="s", **INGEST)
    assert count(influxdb, "pa_acme") == 2
    assert INGEST_PASSWORD not in caplog.text
    assert "provisioned InfluxDB database pa_acme" in caplog.text  # the log was captured


GrantWriteRefused = refusing("GRANT WRITE")  # for the ingest user: the very last step


def test_a_refused_ingest_grant_undoes_the_new_database_and_read_user(
    app: Flask, influxdb: InfluxDB, migrated_engine: Engine
) -> None:
    app.extensions["pa_storage"] = GrantWriteRefused(
        influxdb.url,
        influxdb.admin_user,
        influxdb.admin_password,
        ingest_user=INGEST_USER,
        ingest_password=INGEST_PASSWORD,
    )
    with pytest.raises(StorageError, match='GRANT WRITE ON "pa_acme" TO "ingest" failed'):
        create(app, "acme")
    assert tenant_rows(migrated_engine) == []
    assert "pa_acme" not in databases(influxdb)
    assert "pa_acme_read" not in users(influxdb)
    assert users(influxdb)[INGEST_USER] is False  # shared by every tenant: kept, harmless


SetPasswordRefused = refusing("SET PASSWORD")


def test_a_failure_converging_the_ingest_user_creates_nothing_and_hides_its_password(
    influxdb: InfluxDB,
) -> None:
    influxdb.query(f"CREATE USER {quote_identifier(INGEST_USER)} WITH PASSWORD 'old-one'")
    storage = SetPasswordRefused(
        influxdb.url,
        influxdb.admin_user,
        influxdb.admin_password,
        ingest_user=INGEST_USER,
        ingest_password=INGEST_PASSWORD,
    )
    with pytest.raises(StorageError, match=r'SET PASSWORD FOR "ingest" = \[redacted\]') as refused:
        storage.provision("pa_acme", "pa_acme_read")
    assert INGEST_PASSWORD not in str(refused.value)
    assert "pa_acme" not in databases(influxdb)
    assert "pa_acme_read" not in users(influxdb)


def test_the_ingest_user_is_never_a_read_user_nor_the_admin(influxdb: InfluxDB) -> None:
    with pytest.raises(ValueError, match="must not be the InfluxDB ingest user"):
        ingest_storage(influxdb).provision("pa_acme", INGEST_USER)
    with pytest.raises(ValueError, match="ingest user must not be the InfluxDB admin user"):
        InfluxStorage(influxdb.url, "admin", "x", ingest_user="admin", ingest_password="y")
    assert "pa_acme" not in databases(influxdb)


# ---------------------------------------------------------------------------------------------
# perfanalysis admin grant-ingest-writes, for tenants made before the ingest user


def grant_ingest_writes(app: Flask) -> Result:
    return CliRunner().invoke(
        admin, ["grant-ingest-writes"], obj={"app": app, "settings": app.config["PA_SETTINGS"]}
    )


def test_grant_ingest_writes_covers_tenants_made_before_the_ingest_user_once(
    make_app: MakeApp, influxdb: InfluxDB
) -> None:
    before = make_app(influxdb)  # no ingest user configured yet
    create(before, "acme")
    create(before, "globex")
    assert INGEST_USER not in users(influxdb)
    with pytest.raises(ServerError, match="authorization failed"):
        influxdb.write("pa_acme", POINTS, precision="s", **INGEST)

    app = make_app(influxdb, ingest=True)
    first = grant_ingest_writes(app)
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [
        "acme (pa_acme): WRITE granted",
        "globex (pa_globex): WRITE granted",
        "ingest user: WRITE granted on all 2 tenant databases",
    ]
    assert users(influxdb)[INGEST_USER] is False
    assert grants(influxdb, INGEST_USER) == {"pa_acme": "WRITE", "pa_globex": "WRITE"}
    influxdb.write("pa_acme", POINTS, precision="s", **INGEST)
    assert count(influxdb, "pa_acme") == 2
    with pytest.raises(ServerError, match="not authorized"):
        count(influxdb, "pa_acme", **INGEST)

    second = grant_ingest_writes(app)
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[:2] == [
        "acme (pa_acme): already has WRITE",
        "globex (pa_globex): already has WRITE",
    ]
    assert "ingest user: WRITE already on all 2 tenant databases" in second.output
    assert grants(influxdb, INGEST_USER) == {"pa_acme": "WRITE", "pa_globex": "WRITE"}
    assert INGEST_PASSWORD not in first.output + second.output
    with app.app_context():
        audited = database.session().scalars(
            select(AuditEvent.details)
            .where(AuditEvent.action == "storage.grant_ingest_writes")
            .order_by(AuditEvent.id)
        )
        assert list(audited) == [{"granted": 2}, {"granted": 0}]


def test_grant_ingest_writes_without_an_ingest_user_is_a_clear_error(
    app: Flask, influxdb: InfluxDB
) -> None:
    create(app, "acme")
    result = grant_ingest_writes(app)
    assert result.exit_code != 0
    assert isinstance(result.exception, Invalid)  # `perfanalysis admin` prints it, exit 2
    assert "no InfluxDB ingest user is configured" in result.exception.message
    assert "influxdb.ingest-user" in result.exception.message
    assert INGEST_USER not in users(influxdb)


# ---------------------------------------------------------------------------------------------
# perfanalysis admin provision-storage: a tenant made with no InfluxDB configured, and the users
# and grants an InfluxDB restore does not bring back


def cli(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(admin, list(args),
                              obj={"app": app, "settings": app.config["PA_SETTINGS"]})  # fmt: skip


def test_provision_storage_makes_what_a_tenant_lacks_and_what_a_restore_lost(
    make_app: MakeApp, influxdb: InfluxDB, database_url: str
) -> None:
    bare = create_app(load([], {"PERFANALYSIS_ADMIN_DATABASE_URL": database_url,
                                "PERFANALYSIS_ADMIN_SECRET_KEY": TEST_SECRET}))  # fmt: skip
    try:
        made = cli(bare, "create-tenant", "acme", "Acme")
        assert made.exit_code == 0, made.output
        assert "its database pa_acme was not created" in made.stdout
        assert "warning: no InfluxDB is configured" in made.stderr
        refused = cli(bare, "provision-storage", "acme")
        assert refused.exit_code == 2
        assert "no InfluxDB is configured: give the settings --influxdb.url" in refused.output
    finally:
        bare.extensions["pa_engine"].dispose()
    assert "pa_acme" not in databases(influxdb)

    app = make_app(influxdb, ingest=True)
    create(app, "globex")
    assert cli(app, "provision-storage").exit_code == 2  # neither tenants nor --all
    first = cli(app, "provision-storage", "acme")
    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[0] == "acme: database pa_acme and read user pa_acme_read ready"
    influxdb.write("pa_acme", POINTS, precision="s", **INGEST)
    assert count(influxdb, "pa_acme", **read_credentials_of(app, "acme")) == 2

    # a portable restore brings the databases back, not their users and grants
    influxdb.query('DROP USER "pa_acme_read"')
    influxdb.query('DROP USER "pa_globex_read"')
    influxdb.query(f'REVOKE ALL ON "pa_globex" FROM "{INGEST_USER}"')
    again = cli(app, "provision-storage", "--all")
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1].startswith("provisioned 2 tenant(s); run grafana sync")
    assert grants(influxdb, INGEST_USER) == {"pa_acme": "WRITE", "pa_globex": "WRITE"}
    assert grants(influxdb, "pa_globex_read") == {"pa_globex": "READ"}
    assert count(influxdb, "pa_acme", **read_credentials_of(app, "acme")) == 2
    assert count(influxdb, "pa_globex", **read_credentials_of(app, "globex")) == 0


def read_credentials_of(app: Flask, slug: str) -> dict[str, str]:
    with app.app_context():
        tenant = database.session().scalars(select(Tenant).where(Tenant.slug == slug)).one()
        return read_credentials(app, tenant)
