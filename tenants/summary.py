"""A tenant's counts for its overview, in one query however large the tenant is."""

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
