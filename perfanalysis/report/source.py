"""Where the tenant's points are read from, and as whom.

Either the YAML's ``influxdb`` block gives a user and a password (from an environment variable
or a file) and no admin database is touched; or the tenant's read-only user and its encrypted
password are read from the admin database and decrypted with the server's secret key (the
admin app's ``tenants.crypto.Vault``). The admin database also maps each host's ``collector``
tag to its collector id, for links to the right-sizing page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perfanalysis.report.config import ReportConfig
from perfanalysis.report.influx import InfluxReader, ReportError


def database_for(slug: str) -> str:
    """The tenant's database: the admin app's own rule (tenants.tenancy.database_name), which
    names the database a tenant is created with."""
    try:
        from tenants.tenancy import database_name
    except ImportError as exc:
        raise ReportError(
            "the report needs the admin app's package, which names each tenant's database "
            f"(pip install 'perfanalysis[report]'): {exc}"
        ) from None
    return database_name(slug)


class SettingError(ReportError):
    """A setting is missing or names nothing usable: a mistake in the settings (exit 2), refused
    before anything is opened or created."""


class DatabaseSettingError(SettingError):
    """The database-url setting names no usable admin database (a SQLite file that is not there)."""


def setting_problems(config: ReportConfig, settings: dict[str, Any]) -> list[str]:
    """The checks across the settings and the report configuration, worded as the settings
    parser words its own (exit 2, before anything is read): the admin database's InfluxDB
    passwords are encrypted, so reading them needs the secret key."""
    if config.influxdb is not None or settings["secret_key"]:
        return []
    return [
        "setting secret-key: required to read the tenant's InfluxDB credentials from the admin "
        "database (its passwords are stored encrypted): give --secret-key or "
        "PERFANALYSIS_REPORT_SECRET_KEY (the admin app's secret key), or run with --dev, or give "
        "influxdb.username and a password in the report configuration"
    ]


@dataclass
class Source:
    reader: InfluxReader
    collector_ids: dict[str, int] | None = None  # collector name -> id; None: no admin database


def open_source(config: ReportConfig, settings: dict[str, Any]) -> Source:
    explicit = config.influxdb
    if explicit is not None:
        url = explicit.url or settings["influxdb_url"]
        database = database_for(config.tenant)
        if explicit.database is not None and explicit.database != database:
            # load_config refuses it (naming the file and key); a config built otherwise too
            raise SettingError(
                f"{config.source}: influxdb.database: {explicit.database} is not tenant "
                f"{config.tenant!r}'s database ({database})"
            )
        reader = InfluxReader(
            url,
            database,
            config.tenant,
            explicit.username,
            explicit.password,
            settings["influxdb_timeout"],
        )
        return Source(reader)
    return _from_admin_database(config, settings)


def _from_admin_database(config: ReportConfig, settings: dict[str, Any]) -> Source:
    try:
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError

        from tenants.crypto import Vault
        from tenants.db import make_engine
        from tenants.models import Collector, Tenant
        from tenants.schema import sqlite_file_problem
    except ImportError as exc:
        raise ReportError(
            f"reading credentials from the admin database needs the admin extra "
            f"(pip install 'perfanalysis[admin]'): {exc}; or give influxdb.username "
            "and a password in the report configuration"
        ) from None
    problems = setting_problems(config, settings)
    if problems:
        raise SettingError("; ".join(problems))
    problem = sqlite_file_problem(settings["database_url"])
    if problem:  # SQLite would create the missing file: refused, and nothing left behind
        raise DatabaseSettingError(f"setting database-url: {problem}")
    engine = make_engine(settings["database_url"])
    try:
        with engine.connect() as connection:
            tenant = connection.execute(
                select(
                    Tenant.id,
                    Tenant.influx_database,
                    Tenant.influx_read_user,
                    Tenant.influx_read_password_encrypted,
                ).where(Tenant.slug == config.tenant)
            ).first()
            if tenant is None:
                raise ReportError(f"no tenant {config.tenant!r} in the admin database")
            rows = connection.execute(
                select(Collector.name, Collector.id).where(Collector.tenant_id == tenant.id)
            )
            collectors = {str(name): int(ident) for name, ident in rows}
    except SQLAlchemyError as exc:
        raise ReportError(
            f"cannot read the admin database: {type(exc).__name__}: {exc.args[0] if exc.args else ''}"
        ) from None
    finally:
        engine.dispose()
    if not tenant.influx_read_user or not tenant.influx_read_password_encrypted:
        raise ReportError(
            f"tenant {config.tenant!r} has no InfluxDB read user: its storage was "
            "not provisioned (admin setting influxdb.url)"
        )
    try:
        password = Vault(settings["secret_key"]).decrypt(tenant.influx_read_password_encrypted)
    except ValueError as exc:
        raise ReportError(f"tenant {config.tenant!r}: {exc}") from None
    reader = InfluxReader(
        settings["influxdb_url"],
        tenant.influx_database,
        config.tenant,  # every query filters on the tenant tag, whatever the database holds
        tenant.influx_read_user,
        password,
        settings["influxdb_timeout"],
    )
    return Source(reader, collectors)
