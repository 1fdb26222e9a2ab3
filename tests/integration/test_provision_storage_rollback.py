"""``perfanalysis admin provision-storage`` against the real InfluxDB 1.6 with authentication on,
when the admin database refuses the new read password (a read-only SQLite file, as after
``chattr +i admin.db``) or InfluxDB fails half-way: the read password the admin database holds
keeps working in InfluxDB (Grafana's data source and reports read with it), and when it cannot be
put back the one line says so and what to run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from perfanalysis.testing.servers import InfluxDB, ServerError, ServerRegistry
from tenants import db as database
from tenants.access import system_actor
from tenants.app import create_app
from tenants.db import make_engine
from tenants.influx import InfluxStorage, Statement, StorageError
from tenants.models import AuditEvent, Tenant
from tenants.schema import upgrade
from tenants.settings import load
from tenants.tenancy import create_tenant, provision_storage
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.integration

NOW = int(time.time())
POINTS = f"cpu,host=a value=1 {NOW}"
INGEST = {"user": "ingest", "password": "the-ingest-password-0123456789abcdef"}


@pytest.fixture
def influxdb(servers: ServerRegistry) -> InfluxDB:
    return servers.influxdb(auth=True)


@pytest.fixture
def admin_db(tmp_path: Path) -> Path:
    """A migrated SQLite admin database of its own (a file that can be opened read-only)."""
    path = tmp_path / "admin.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def settings_flags(influxdb: InfluxDB, url: str) -> list[str]:
    return [
        f"--database-url={url}",
        f"--secret-key={TEST_SECRET}",
        f"--influxdb.url={influxdb.url}",
        f"--influxdb.admin-user={influxdb.admin_user}",
        f"--influxdb.admin-password={influxdb.admin_password}",
        f"--influxdb.ingest-user={INGEST['user']}",
        f"--influxdb.ingest-password={INGEST['password']}",
    ]


def read_only(path: Path) -> str:
    """The URL of ``path`` opened read-only: every write is refused, as by an immutable file."""
    return f"sqlite:///file:{path}?mode=ro&uri=true"


@pytest.fixture
def app(influxdb: InfluxDB, admin_db: Path) -> Iterator[Flask]:
    env = {
        "PERFANALYSIS_ADMIN_DATABASE_URL": f"sqlite:///{admin_db}",
        "PERFANALYSIS_ADMIN_SECRET_KEY": TEST_SECRET,
        "PERFANALYSIS_ADMIN_INFLUXDB_URL": influxdb.url,
        "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_USER": influxdb.admin_user,
        "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD": influxdb.admin_password,
        "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_USER": INGEST["user"],
        "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_PASSWORD": INGEST["password"],
    }
    application = create_app(load([], env))
    with application.app_context():
        storage, vault = application.extensions["pa_storage"], application.extensions["pa_vault"]
        create_tenant(database.session(), system_actor(), "acme", "Acme", storage, vault)
    influxdb.write("pa_acme", POINTS, precision="s", **INGEST)
    yield application
    application.extensions["pa_engine"].dispose()


def stored_credentials(app: Flask) -> dict[str, str]:
    with app.app_context():
        tenant = database.session().scalars(select(Tenant).where(Tenant.slug == "acme")).one()
        assert tenant.influx_read_user
        assert tenant.influx_read_password_encrypted
        password = app.extensions["pa_vault"].decrypt(tenant.influx_read_password_encrypted)
        return {"user": tenant.influx_read_user, "password": password}


def provision_events(app: Flask) -> int:
    with app.app_context():
        query = select(func.count()).where(AuditEvent.action == "tenant.provision")
        return int(database.session().scalar(query) or 0)


def reads(influxdb: InfluxDB, credentials: dict[str, str]) -> int:
    """Points of pa_acme the read user sees with ``credentials``; ServerError on a refusal."""
    rows = influxdb.rows("SELECT count(value) FROM cpu", db="pa_acme", **credentials)
    return int(rows[0]["count"]) if rows else 0


@pytest.fixture
def admin_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    from tenants.cli import run

    def invoke(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        status = run(list(args))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return status, captured.err

    return invoke


def test_a_refused_commit_gives_influxdb_the_stored_password_back(
    app: Flask, influxdb: InfluxDB, admin_db: Path, admin_cli: Callable[..., tuple[int, str]]
) -> None:
    stored = stored_credentials(app)
    assert reads(influxdb, stored) == 1
    status, err = admin_cli(*settings_flags(influxdb, read_only(admin_db)), "provision-storage",
                            "acme")  # fmt: skip
    assert status == 1
    assert err.count("\n") == 1, err
    assert "readonly database" in err
    assert stored_credentials(app) == stored  # nothing stored ...
    assert reads(influxdb, stored) == 1  # ... and what is stored still reads (was a 401)
    assert provision_events(app) == 0
    # once the admin database takes writes again, a rerun converges
    status, err = admin_cli(*settings_flags(influxdb, f"sqlite:///{admin_db}"),
                            "provision-storage", "acme")  # fmt: skip
    assert status == 0, err
    renewed = stored_credentials(app)
    assert renewed["password"] != stored["password"]
    assert reads(influxdb, renewed) == 1
    assert provision_events(app) == 1


def test_when_the_password_cannot_be_put_back_the_line_says_so_and_what_to_run(
    app: Flask,
    influxdb: InfluxDB,
    admin_db: Path,
    admin_cli: Callable[..., tuple[int, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(self: InfluxStorage, read_user: str, password: str) -> None:
        raise StorageError(f'SET PASSWORD FOR "{read_user}" = [redacted]', "HTTP 500: refused")

    monkeypatch.setattr(InfluxStorage, "restore_read_password", refuse)
    stored = stored_credentials(app)
    status, err = admin_cli(*settings_flags(influxdb, read_only(admin_db)), "provision-storage",
                            "acme")  # fmt: skip
    assert status == 1
    assert err.count("\n") == 1, err
    assert err.startswith(
        "perfanalysis admin: tenant acme: the admin database did not store the new password of "
        "InfluxDB read user pa_acme_read (attempt to write a readonly database), and giving the "
        'user its previous password back failed too (InfluxDB: SET PASSWORD FOR "pa_acme_read" '
        "= [redacted] failed: HTTP 500: refused): InfluxDB now holds a password the admin "
        "database does not"
    ), err
    assert err.rstrip().endswith(
        "run: perfanalysis admin provision-storage acme, then perfanalysis grafana sync"
    )
    assert stored["password"] not in err
    with pytest.raises(ServerError, match="authorization failed"):
        reads(influxdb, stored)  # the state the message describes


class IngestGrantRefused(InfluxStorage):
    """InfluxDB refuses the ingest user's WRITE grant: provisioning fails after the read user
    and its grants have been converged."""

    def _execute(self, statement: Statement) -> dict[str, Any]:
        if statement.query.startswith("GRANT WRITE"):
            raise StorageError(statement.shown, "HTTP 500: refused")
        return super()._execute(statement)


def test_a_provisioning_that_fails_half_way_leaves_the_stored_password_working(
    app: Flask, influxdb: InfluxDB
) -> None:
    stored = stored_credentials(app)
    refusing = IngestGrantRefused(
        influxdb.url,
        influxdb.admin_user,
        influxdb.admin_password,
        ingest_user=INGEST["user"],
        ingest_password=INGEST["password"],
    )
    with app.app_context():
        tenant = database.session().scalars(select(Tenant).where(Tenant.slug == "acme")).one()
        with pytest.raises(StorageError, match="GRANT WRITE"):
            provision_storage(
                database.session(), system_actor(), tenant, refusing, app.extensions["pa_vault"]
            )
    assert stored_credentials(app) == stored
    assert reads(influxdb, stored) == 1
