"""Tenants: create (with their storage), rename, disable, enable, set ingest limits, delete with
confirmation."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenants import validation
from tenants.access import Actor, require, require_platform
from tenants.audit import record
from tenants.crypto import Vault
from tenants.errors import Conflict, DatabaseInUse, Invalid, StorageUnavailable
from tenants.models import Tenant


class Storage(Protocol):
    """Where a tenant's points live; tenants/influx.py provisions InfluxDB 1.x."""

    ingest_user: str  # the user ingest writes as; empty when none is configured

    def provision(self, database: str, read_user: str, *, adopt: bool = False) -> str:
        """Create the database, its retention policy and a read-only user; return the password.

        Unless ``adopt``, a database already there holding data raises errors.DatabaseInUse.
        """

    def deprovision(self, database: str, read_user: str) -> None: ...

    def restore_read_password(self, read_user: str, password: str) -> None:
        """Set ``read_user``'s password back to ``password`` (after a failed commit)."""

    def grant_ingest_writes(
        self, databases: Sequence[str], report: Callable[[str, str], None] | None = None
    ) -> dict[str, str]:
        """WRITE for ``ingest_user`` on each database: database -> granted, unchanged or missing."""


class NoStorage:
    """Used when no InfluxDB is configured: tenants get names, nothing is created."""

    ingest_user = ""

    def provision(self, database: str, read_user: str, *, adopt: bool = False) -> str:
        return ""

    def deprovision(self, database: str, read_user: str) -> None:
        return None

    def restore_read_password(self, read_user: str, password: str) -> None:
        return None

    def grant_ingest_writes(
        self, databases: Sequence[str], report: Callable[[str, str], None] | None = None
    ) -> dict[str, str]:
        raise ValueError("no InfluxDB is configured")


def database_name(slug: str) -> str:
    return "pa_" + slug.replace("-", "_")


def create_tenant(
    db: Session,
    actor: Actor,
    slug: str,
    name: str,
    storage: Storage,
    vault: Vault,
    adopt_database: bool = False,
) -> Tenant:
    """A new tenant and its storage. An InfluxDB database of its name that exists already and
    holds data is refused (Conflict, nothing created) unless ``adopt_database``: the tenant's
    users would read that data as theirs."""
    require_platform(actor)
    slug = validation.slug(slug)
    name = validation.name(name, "name")
    if not isinstance(adopt_database, bool):
        raise Invalid("adopt_database must be true or false", "adopt_database")
    if db.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise Conflict(f"a tenant with slug {slug!r} already exists", "slug")
    database = database_name(slug)
    read_user = f"{database}_read"
    tenant = Tenant(slug=slug, name=name, influx_database=database)
    db.add(tenant)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict(f"a tenant with slug {slug!r} already exists", "slug") from None
    # the uncommitted row holds the slug while storage is provisioned, so a concurrent create of
    # the same slug waits and then fails instead of provisioning (and dropping) the same database
    try:  # raises: nothing is committed; adopt is passed only when set, as Storage had none
        if adopt_database:
            password = storage.provision(database, read_user, adopt=True)
        else:
            password = storage.provision(database, read_user)
    except DatabaseInUse as exc:
        db.rollback()
        raise Conflict(
            f"InfluxDB already has a database {database} holding data (measurement "
            f"{exc.measurement!r}, perhaps more): tenant {slug} would be given it, and its users "
            f"could read that data. If the data is not wanted, drop the database (as InfluxDB's "
            f'admin: DROP DATABASE "{database}") and create the tenant again; if it is this '
            "tenant's (a restore, a re-created admin database), create the tenant with "
            '--adopt-database (API: "adopt_database": true). Nothing was created',
            "slug",
        ) from None
    if password:
        tenant.influx_read_user = read_user
        tenant.influx_read_password_encrypted = vault.encrypt(password)
    details = {"adopted_database": True} if adopt_database else {}
    record(db, actor, "tenant.create", tenant, "tenant", tenant.id, slug=slug, name=name,
           **details)  # fmt: skip
    try:
        db.commit()
    except Exception:
        db.rollback()
        if password:
            storage.deprovision(database, read_user)
        raise
    return tenant


def provision_storage(
    db: Session, actor: Actor, tenant: Tenant, storage: Storage, vault: Vault
) -> None:
    """Create the storage of a tenant made while none was configured, or repair it after an
    InfluxDB restore (idempotent); the read user gets a new password.

    InfluxDB first, then the admin database: the new password is set in InfluxDB (by the last
    statement of ``storage.provision``, so a failed provisioning leaves the old one) and then
    committed. Between the two the stored password is stale only for the one local commit; the
    other order (commit, then SET PASSWORD) would leave it stale for every InfluxDB round trip of
    the provisioning, up to their timeouts, and each InfluxDB failure, the common one, would need
    a second commit to put the old row back. When the commit fails, InfluxDB is given the previous
    (stored) password back, so what is stored works again and the error is the admin database's;
    if that fails too, StorageUnavailable says what state things are in and what to run once
    both answer.
    """
    require_platform(actor)
    read_user = f"{tenant.influx_database}_read"
    previous = _stored_password(tenant, read_user, vault)
    password = storage.provision(tenant.influx_database, read_user, adopt=True)  # its own data
    if not password:
        return
    tenant.influx_read_user = read_user
    tenant.influx_read_password_encrypted = vault.encrypt(password)
    record(db, actor, "tenant.provision", tenant, "tenant", tenant.id,
           database=tenant.influx_database)  # fmt: skip
    slug = tenant.slug
    try:
        db.commit()
    except Exception as exc:
        db.rollback()
        if previous is None:  # nothing stored to keep working: a rerun stores a new one
            raise
        try:
            storage.restore_read_password(read_user, previous)
        except Exception as restore:
            raise StorageUnavailable(
                f"tenant {slug}: the admin database did not store the new password of InfluxDB "
                f"read user {read_user} ({_first_line(exc)}), and giving the user its previous "
                f"password back failed too ({_first_line(restore)}): InfluxDB now holds a "
                f"password the admin database does not, so tenant {slug}'s Grafana data source "
                "and reports cannot read its data. Once the admin database and InfluxDB both "
                f"answer, run: perfanalysis admin provision-storage {slug}, then perfanalysis "
                "grafana sync"
            ) from exc
        raise


def _stored_password(tenant: Tenant, read_user: str, vault: Vault) -> str | None:
    """The read password the admin database holds for ``read_user``, None if there is none or it
    cannot be decrypted (then nothing that reads it works, before or after)."""
    if tenant.influx_read_user != read_user or not tenant.influx_read_password_encrypted:
        return None
    try:
        return vault.decrypt(tenant.influx_read_password_encrypted)
    except ValueError:
        return None


def _first_line(exc: BaseException) -> str:
    """The cause's own first line (a database driver's, under SQLAlchemy's wrapping)."""
    original = getattr(exc, "orig", None)
    return str(original if original is not None else exc).strip().partition("\n")[0]


def rename_tenant(db: Session, actor: Actor, tenant: Tenant, name: str) -> Tenant:
    require(db, actor, tenant, "admin")
    name = validation.name(name, "name")
    old = tenant.name
    tenant.name = name
    record(db, actor, "tenant.rename", tenant, "tenant", tenant.id, old=old, new=name)
    db.commit()
    return tenant


def set_tenant_status(db: Session, actor: Actor, tenant: Tenant, active: bool) -> Tenant:
    require_platform(actor)
    tenant.status = "active" if active else "disabled"
    record(db, actor, "tenant.enable" if active else "tenant.disable", tenant, "tenant", tenant.id)
    db.commit()
    return tenant


MAX_INGEST_RATE = 1e9  # points per second: far beyond one InfluxDB; a typo, not a plan
MAX_INGEST_BURST = 100_000_000


def set_ingest_limits(
    db: Session, actor: Actor, tenant: Tenant, rate: object, burst: object
) -> Tenant:
    """The tenant's own ingest rate (points/s, 0: unlimited) and burst (points); None (or blank)
    for ingest's defaults. A platform admin's decision: tenants do not raise their own limits.
    ingest applies a change within its key cache's lifetime (a few seconds)."""
    require_platform(actor)
    new_rate = validation.optional_number(rate, "ingest_rate", -math.inf, math.inf)
    if new_rate is not None and not 0 <= new_rate <= MAX_INGEST_RATE:
        raise Invalid(
            f"ingest_rate must be between 0 and {validation.readable_number(MAX_INGEST_RATE)}",
            "ingest_rate",
        )
    new_burst = validation.optional_int(burst, "ingest_burst", 1, MAX_INGEST_BURST)
    old = {"rate": tenant.ingest_rate, "burst": tenant.ingest_burst}
    tenant.ingest_rate, tenant.ingest_burst = new_rate, new_burst
    record(db, actor, "tenant.limits", tenant, "tenant", tenant.id, old=old,
           new={"rate": new_rate, "burst": new_burst})  # fmt: skip
    db.commit()
    return tenant


def delete_tenant(
    db: Session, actor: Actor, tenant: Tenant, confirm: str, storage: Storage
) -> None:
    """Delete a tenant with everything it owns, its storage included; ``confirm`` is its slug."""
    require_platform(actor)
    if confirm != tenant.slug:
        raise Invalid(f"type the tenant's slug ({tenant.slug}) to confirm deletion", "confirm")
    # storage first: if InfluxDB refuses, the tenant stays and the deletion can be retried
    if tenant.influx_read_user:
        storage.deprovision(tenant.influx_database, tenant.influx_read_user)
    record(
        db, actor, "tenant.delete", None, "tenant", tenant.id, slug=tenant.slug, name=tenant.name
    )
    db.delete(tenant)
    db.commit()


def reencrypt_stored_credentials(db: Session, actor: Actor, vault: Vault) -> int:
    """Every tenant's stored InfluxDB read password, encrypted again under the current secret.

    After a secret rotation: once done, the previous secret is no longer needed to read them
    (grafana sync and reports can be given the new secret alone). Returns how many there were.
    """
    require_platform(actor)
    tenants = []
    for tenant in db.scalars(select(Tenant).order_by(Tenant.id)):
        if tenant.influx_read_password_encrypted:
            try:
                tenant.influx_read_password_encrypted = vault.reencrypt(
                    tenant.influx_read_password_encrypted
                )
            except ValueError:
                db.rollback()  # all or nothing
                raise Invalid(
                    f"tenant {tenant.slug}: its stored password decrypts under neither secret-key "
                    "nor previous-secret-keys; nothing was changed"
                ) from None
            tenants.append(tenant)
    record(db, actor, "secrets.reencrypt", None, "tenant", "", tenants=len(tenants))
    db.commit()
    return len(tenants)


def grant_ingest_writes(
    db: Session,
    actor: Actor,
    storage: Storage,
    report: Callable[[Tenant, str], None] | None = None,
) -> dict[str, str]:
    """Grant the configured InfluxDB ingest user WRITE on every tenant's database (idempotent).

    For tenants made before the ingest user was configured. Returns slug → "granted",
    "unchanged" or "missing" (the tenant has no database: see provision_storage);
    ``report(tenant, outcome)`` hears each as it is done.
    """
    require_platform(actor)
    if not storage.ingest_user:
        raise Invalid(
            "no InfluxDB ingest user is configured: set influxdb.url, influxdb.ingest-user and "
            "influxdb.ingest-password"
        )
    tenants = {t.influx_database: t for t in db.scalars(select(Tenant).order_by(Tenant.id))}

    def each(database: str, outcome: str) -> None:
        if report is not None:
            report(tenants[database], outcome)

    outcomes = storage.grant_ingest_writes(list(tenants), each)
    granted = sum(outcome == "granted" for outcome in outcomes.values())
    record(db, actor, "storage.grant_ingest_writes", None, "tenant", "", granted=granted)
    db.commit()
    return {tenants[database].slug: outcome for database, outcome in outcomes.items()}
