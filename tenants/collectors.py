"""Collectors: the monitored hosts of a tenant. Every query is scoped by the tenant."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenants import validation
from tenants.access import Actor, require
from tenants.audit import record
from tenants.errors import Conflict, NotFound
from tenants.models import Collector, Tenant

MAX_MEMORY = 1 << 50  # 1 PiB


def register_collector(
    db: Session, actor: Actor, tenant: Tenant, fields: dict[str, Any]
) -> Collector:
    require(db, actor, tenant, "admin")
    name = validation.text(fields.get("name"), "name", 100)
    collector = Collector(
        tenant_id=tenant.id,
        name=name,
        hostname=validation.hostname(fields.get("hostname")),
        labels=validation.labels(fields.get("labels")),
        vcpus=validation.optional_int(fields.get("vcpus"), "vcpus", 1, 4096),
        memory_bytes=validation.optional_int(
            fields.get("memory_bytes"), "memory_bytes", 1, MAX_MEMORY
        ),
        cloud_provider=validation.optional_token(
            fields.get("cloud_provider"), "cloud_provider", 40
        ),
        region=validation.optional_token(fields.get("region"), "region", 60),
        instance_type=validation.optional_token(fields.get("instance_type"), "instance_type", 80),
    )
    if db.scalar(
        select(Collector.id).where(Collector.tenant_id == tenant.id, Collector.name == name)
    ):
        raise Conflict(f"this tenant already has a collector named {name!r}", "name")
    db.add(collector)
    db.flush()
    record(db, actor, "collector.register", tenant, "collector", collector.id, name=name)
    db.commit()
    return collector


def list_collectors(db: Session, actor: Actor, tenant: Tenant) -> list[Collector]:
    require(db, actor, tenant, "read")
    return list(
        db.scalars(
            select(Collector).where(Collector.tenant_id == tenant.id).order_by(Collector.name)
        )
    )


def get_collector(db: Session, actor: Actor, tenant: Tenant, collector_id: int) -> Collector:
    require(db, actor, tenant, "read")
    collector = db.scalar(
        select(Collector).where(Collector.tenant_id == tenant.id, Collector.id == collector_id)
    )
    if collector is None:
        raise NotFound("no such collector in this tenant")
    return collector


def set_collector_status(
    db: Session, actor: Actor, tenant: Tenant, collector: Collector, active: bool
) -> Collector:
    require(db, actor, tenant, "admin")
    if collector.tenant_id != tenant.id:
        raise NotFound("no such collector in this tenant")
    collector.status = "active" if active else "disabled"
    action = "collector.enable" if active else "collector.disable"
    record(db, actor, action, tenant, "collector", collector.id, name=collector.name)
    db.commit()
    return collector
