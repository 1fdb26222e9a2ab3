"""Counts for the overviews, each in one query however large the tenants are: a tenant's for
its page, and a page of tenants' for the tenants list."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from tenants.access import Actor, require
from tenants.collectors import SILENT_AFTER
from tenants.keys import accepted_at
from tenants.models import ApiKey, Collector, Membership, Tenant, utcnow


@dataclass(frozen=True)
class TenantSummary:
    collectors: int
    reporting: int  # active collectors heard from within SILENT_AFTER
    active_keys: int  # neither revoked nor expired
    members: int


def tenant_summary(db: Session, actor: Actor, tenant: Tenant) -> TenantSummary:
    require(db, actor, tenant, "read")
    now = utcnow()
    heard = and_(Collector.status == "active", Collector.last_seen_at >= now - SILENT_AFTER)
    in_tenant = Collector.tenant_id == tenant.id
    collectors = select(func.count()).where(in_tenant).scalar_subquery()
    reporting = select(func.count(case((heard, 1)))).where(in_tenant).scalar_subquery()
    active_keys = (
        select(func.count())
        .where(ApiKey.tenant_id == tenant.id, accepted_at(now))
        .scalar_subquery()
    )
    members = select(func.count()).where(Membership.tenant_id == tenant.id).scalar_subquery()
    row = db.execute(select(collectors, reporting, active_keys, members)).one()
    return TenantSummary(row[0], row[1], row[2], row[3])


@dataclass(frozen=True)
class TenantCounts:
    collectors: int
    active_keys: int
    members: int
    my_role: str | None  # the user's role in the tenant; None for a platform admin's view


def tenant_counts(db: Session, actor: Actor, tenants: list[Tenant]) -> dict[int, TenantCounts]:
    """Counts of each of ``tenants``, a page of ``access.visible_tenants_page(actor)``, by id."""
    if not tenants:
        return {}
    user = actor.user
    now = utcnow()
    collectors = select(func.count()).where(Collector.tenant_id == Tenant.id)
    active_keys = select(func.count()).where(ApiKey.tenant_id == Tenant.id, accepted_at(now))
    members = select(func.count()).where(Membership.tenant_id == Tenant.id)
    role = select(Membership.role).where(
        Membership.tenant_id == Tenant.id,
        Membership.user_id == (user.id if user is not None else None),
    )
    rows = db.execute(
        select(
            Tenant.id,
            collectors.scalar_subquery(),
            active_keys.scalar_subquery(),
            members.scalar_subquery(),
            role.scalar_subquery(),
        ).where(Tenant.id.in_([tenant.id for tenant in tenants]))
    )
    return {row[0]: TenantCounts(row[1], row[2], row[3], row[4]) for row in rows}
