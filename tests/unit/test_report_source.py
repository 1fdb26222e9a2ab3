"""Where the report's credentials come from: the admin database (decrypted), or the YAML."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from perfanalysis.report import settings as report_settings
from perfanalysis.report.cli import run
from perfanalysis.report.config import InfluxAccess
from perfanalysis.report.influx import ReportError
from perfanalysis.report.source import open_source
from tests.conftest import TEST_SECRET
from tests.unit.test_report_support import config_for


def settings_for(database_url: str, secret: str = TEST_SECRET) -> dict[str, Any]:
    return report_settings.load(
        ["--config", "report.yaml", "--database-url", database_url, "--secret-key", secret], {}
    )


def provisioned(app: Flask, make_tenant: Any) -> None:
    """A tenant whose storage was provisioned (as the admin app does with InfluxDB configured)."""
    from tenants import db as database
    from tenants.access import system_actor
    from tenants.collectors import register_collector
    from tenants.models import Tenant

    make_tenant("acme")
    with app.app_context():
        session = database.session()
        tenant = session.scalars(select(Tenant).where(Tenant.slug == "acme")).one()
        tenant.influx_read_user = "pa_acme_read"
        tenant.influx_read_password_encrypted = app.extensions["pa_vault"].encrypt("read-password")
        session.commit()
        register_collector(
            session, system_actor(), tenant, {"name": "web-01", "hostname": "web-01.acme"}
        )


def test_read_credentials_are_decrypted_from_the_admin_database(
    app: Flask, make_tenant: Any, database_url: str
) -> None:
    provisioned(app, make_tenant)
    source = open_source(config_for(("web-01",)), settings_for(database_url))
    assert (source.reader.database, source.reader.username, source.reader.password) == (
        "pa_acme",
        "pa_acme_read",
        "read-password",
    )
    assert source.reader.url == "http://127.0.0.1:8086"
    assert source.collector_ids is not None
    assert list(source.collector_ids) == ["web-01"]


def test_a_wrong_secret_key_or_an_unprovisioned_tenant_is_a_clear_error(
    app: Flask, make_tenant: Any, database_url: str
) -> None:
    provisioned(app, make_tenant)
    with pytest.raises(ReportError, match="tenant 'acme': stored credential cannot be decrypted"):
        open_source(
            config_for(("web-01",)), settings_for(database_url, "another-secret-" + "z" * 32)
        )
    make_tenant("bare")
    config = config_for(("web-01",))
    with pytest.raises(ReportError, match="tenant 'bare' has no InfluxDB read user"):
        open_source(replace(config, tenant="bare"), settings_for(database_url))
    with pytest.raises(ReportError, match="no tenant 'absent' in the admin database"):
        open_source(replace(config, tenant="absent"), settings_for(database_url))


def test_a_secret_key_is_required_for_the_admin_database(database_url: str) -> None:
    settings = settings_for(database_url, "")
    with pytest.raises(ReportError, match="give --secret-key"):
        open_source(config_for(("web-01",)), settings)


def test_a_missing_sqlite_file_is_a_setting_error_and_nothing_is_created(tmp_path: Path) -> None:
    """SQLite would create the file, and the report would fail on an empty database."""
    config = tmp_path / "config" / "report.yaml"
    config.parent.mkdir()
    config.write_text("tenant: acme\nhosts: [web-01]\ntime: {last: 24h}\n")
    database, output = tmp_path / "var" / "admin.db", tmp_path / "var" / "report.html"
    database.parent.mkdir()
    err = io.StringIO()
    argv = ["--config", str(config), "--database-url", f"sqlite:///{database}",
            "--secret-key", TEST_SECRET, "--output", str(output)]  # fmt: skip
    assert run(argv, stderr=err) == 2
    assert err.getvalue() == (
        f"perfanalysis report: setting database-url: no SQLite database at {database}: is the "
        "path right? (perfanalysis admin init-db creates it)\n"
    )
    assert list(database.parent.iterdir()) == []


def test_explicit_credentials_need_no_admin_database() -> None:
    config = config_for(("web-01",))
    explicit = replace(config, influxdb=InfluxAccess("reader", "pw", "http://influx:8086"))
    source = open_source(
        explicit,
        report_settings.load(
            ["--config", "r.yaml", "--database-url", "sqlite:////nonexistent/admin.db"], {}
        ),
    )
    assert (source.reader.url, source.reader.database, source.reader.username) == (
        "http://influx:8086",
        "pa_acme",
        "reader",
    )
    assert source.collector_ids is None


def test_settings_honour_database_url_and_the_prefixed_variables() -> None:
    values = report_settings.load(
        [],
        {
            "PERFANALYSIS_REPORT_CONFIG": "r.yaml",
            "DATABASE_URL": "postgres://u@db/admin",
            "PERFANALYSIS_REPORT_INFLUXDB_URL": "http://influx:8086/",
        },
    )
    assert values["database_url"] == "postgresql+psycopg://u@db/admin"
    assert values["influxdb_url"] == "http://influx:8086"
    assert values["progress"] is True
    assert values["influxdb_concurrency"] == 4
