"""What sync needs of each tenant, read from the admin database (tenants.models, tenants.crypto)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker


@dataclass(frozen=True)
class TenantGrafana:
    """A tenant as Grafana sees it: org name, database, and its read-only InfluxDB credentials."""

    slug: str
    name: str
    database: str
    read_user: str
    read_password: str = field(repr=False)

    @property
    def org_name(self) -> str:
        return self.slug

    @property
    def datasource_uid(self) -> str:
        return f"influx-{self.slug}"


class TenantError(Exception):
    pass


class DatabaseSettingError(TenantError):
    """The database-url setting names no usable admin database (a SQLite file that is not there):
    a mistake in the settings, refused before anything is opened or created."""


def load_tenants(
    database_url: str, secret_key: str, slugs: Sequence[str] = ()
) -> list[TenantGrafana]:
    """Active tenants visible to the system actor (all), or those named, with decrypted passwords."""
    from tenants.access import system_actor, visible_tenants
    from tenants.crypto import Vault
    from tenants.db import make_engine
    from tenants.schema import sqlite_file_problem

    problem = sqlite_file_problem(database_url)
    if problem:  # SQLite would create the missing file, and sync would find no tenants in it
        raise DatabaseSettingError(f"setting database-url: {problem}")
    vault = Vault(secret_key)
    try:
        engine = make_engine(database_url)
    except SQLAlchemyError as exc:
        raise _database_error(database_url, exc) from None
    try:
        with sessionmaker(engine)() as db:
            tenants = visible_tenants(db, system_actor("grafana-sync"))
            missing = sorted(set(slugs) - {t.slug for t in tenants})
            if missing:
                raise TenantError(f"no such tenant: {', '.join(missing)}")
            chosen = [t for t in tenants if (t.slug in slugs if slugs else t.active)]
            result = []
            for tenant in chosen:
                if not tenant.influx_read_user or not tenant.influx_read_password_encrypted:
                    raise TenantError(f"tenant {tenant.slug} has no InfluxDB read credentials")
                try:
                    password = vault.decrypt(tenant.influx_read_password_encrypted)
                except ValueError as exc:
                    raise TenantError(f"tenant {tenant.slug}: {exc}") from None
                result.append(TenantGrafana(tenant.slug, tenant.name, tenant.influx_database,
                                            tenant.influx_read_user, password))  # fmt: skip
            return result
    except SQLAlchemyError as exc:
        raise _database_error(database_url, exc) from None
    finally:
        engine.dispose()


UNMIGRATED = re.compile(r'no such (table|column)|(relation|column) "[^"]*" does not exist')


def _database_error(database_url: str, exc: SQLAlchemyError) -> TenantError:
    original = getattr(exc, "orig", None)
    cause = str(original if original is not None else exc).strip().partition("\n")[0]
    hint = " (run the migrations: perfanalysis admin init-db)" if UNMIGRATED.search(cause) else ""
    return TenantError(f"cannot read the admin database {_masked(database_url)}: {cause}{hint}")


def _masked(database_url: str) -> str:
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"
