"""What sync needs of each tenant, read from the admin database (tenants.models, tenants.crypto)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker


@dataclass(frozen=True, order=True)
class Instance:
    """One tenant's lifetime: its slug and the moment it was created. A tenant deleted and created
    again with the same slug is another instance, which must not inherit the first one's Grafana
    org (with the first customer's users, dashboards and alert contact point in it)."""

    slug: str
    created: str  # the tenant's created_at in UTC, to the microsecond: 2026-01-05T10:11:12.123456Z

    @classmethod
    def of(cls, slug: str, created_at: datetime) -> Instance:
        return cls(slug, created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    def __str__(self) -> str:
        return f"tenant {self.slug} created {self.created}"


@dataclass(frozen=True)
class TenantGrafana:
    """A tenant as Grafana sees it: org name, database, and its read-only InfluxDB credentials."""

    slug: str
    name: str
    database: str
    read_user: str
    read_password: str = field(repr=False)
    created: str = field(kw_only=True)  # Instance.created

    @property
    def instance(self) -> Instance:
        return Instance(self.slug, self.created)

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


@dataclass(frozen=True)
class Tenants:
    chosen: list[TenantGrafana]  # the tenants to sync
    # every tenant in the admin database, disabled ones included: an org marked for any of them
    # is not an orphan
    instances: frozenset[Instance]


def load_tenants(database_url: str, secret_key: str, slugs: Sequence[str] = ()) -> Tenants:
    """Active tenants visible to the system actor (all), or those named, with decrypted passwords."""
    from tenants.access import system_actor, visible_tenants
    from tenants.crypto import Vault

    with _admin_database(database_url) as db:
        vault = Vault(secret_key)
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
            instance = Instance.of(tenant.slug, tenant.created_at)
            result.append(TenantGrafana(tenant.slug, tenant.name, tenant.influx_database,
                                        tenant.influx_read_user, password,
                                        created=instance.created))  # fmt: skip
        return Tenants(result, frozenset(Instance.of(t.slug, t.created_at) for t in tenants))


def load_instances(database_url: str) -> frozenset[Instance]:
    """Every tenant in the admin database, disabled ones included (no password is decrypted)."""
    from tenants.access import system_actor, visible_tenants

    with _admin_database(database_url) as db:
        tenants = visible_tenants(db, system_actor("grafana-sync"))
        return frozenset(Instance.of(t.slug, t.created_at) for t in tenants)


@contextmanager
def _admin_database(database_url: str) -> Iterator[Session]:
    """A session on the admin database; its failures as one-line TenantErrors."""
    from tenants.db import make_engine
    from tenants.schema import sqlite_file_problem

    problem = sqlite_file_problem(database_url)
    if problem:  # SQLite would create the missing file, and sync would find no tenants in it
        raise DatabaseSettingError(f"setting database-url: {problem}")
    try:
        engine = make_engine(database_url)
    except SQLAlchemyError as exc:
        raise _database_error(database_url, exc) from None
    try:
        with sessionmaker(engine)() as db:
            yield db
    except SQLAlchemyError as exc:
        raise _database_error(database_url, exc) from None
    finally:
        engine.dispose()


UNMIGRATED = re.compile(r'no such (table|column)|(relation|column) "[^"]*" does not exist')


def _database_error(database_url: str, exc: SQLAlchemyError) -> TenantError:
    original = getattr(exc, "orig", None)
    cause = str(original if original is not None else exc).strip().partition("\n")[0]
    hint = " (run the migrations: perfanalysis admin init-db)" if UNMIGRATED.search(cause) else ""
    return TenantError(f"cannot read the admin database {masked(database_url)}: {cause}{hint}")


def masked(database_url: str) -> str:
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"
