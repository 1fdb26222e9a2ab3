"""Collectors: the monitored hosts of a tenant. Every query is scoped by the tenant."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenants import validation
from tenants.access import Actor, require
from tenants.audit import record
from tenants.db import lower
from tenants.errors import Conflict, Invalid, NotFound
from tenants.grants import refuse_if_expiring_token
from tenants.models import HOST_TAG_PINNED, HOST_TAGS, Collector, Tenant
from tenants.paging import Order, Page, fetch_page

MAX_MEMORY = 1 << 50  # 1 PiB
SILENT_AFTER = timedelta(minutes=10)  # an active collector not heard from for this long
BY_NAME = Order((Collector.name,))  # names are unique within a tenant (also ignoring case)


def register_collector(
    db: Session, actor: Actor, tenant: Tenant, fields: dict[str, Any]
) -> Collector:
    """A new collector of the tenant; a name another of its collectors has, ignoring case, is a
    Conflict, also when a concurrent request registers it meanwhile. Its ``host_tag`` is pinned
    unless the fields say free."""
    require(db, actor, tenant, "admin")
    name = validation.name(fields.get("name"), "name", 100)
    collector = Collector(
        tenant_id=tenant.id,
        name=name,
        hostname=validation.hostname(fields.get("hostname")),
        host_tag=host_tag(fields.get("host_tag")),
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
    # the tenant's row is locked (PostgreSQL) while the names are compared and the new one
    # stored, so that two registrations of names differing in case cannot both pass the check
    db.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update(key_share=True))
    _refuse_taken(db, tenant, name)
    db.add(collector)
    try:
        db.flush()
    except IntegrityError:  # the same name, stored by a concurrent request since the check
        db.rollback()
        _refuse_taken(db, tenant, name)
        raise
    # SQLite has no row locks: its write lock, held from the flush, orders the registrations
    # instead, and a name stored meanwhile by another is seen now
    _refuse_taken(db, tenant, name, collector.id)
    record(db, actor, "collector.register", tenant, "collector", collector.id, name=name,
           host_tag=collector.host_tag)  # fmt: skip
    db.commit()
    return collector


def _refuse_taken(db: Session, tenant: Tenant, name: str, new_id: int | None = None) -> None:
    """Conflict (rolling back) when another collector of the tenant has ``name``, ignoring case.

    Names stored before they were normalised may be decomposed (NFD): both forms are compared.
    """
    forms = {name.lower(), unicodedata.normalize("NFD", name).lower()}
    query = select(Collector.name).where(
        Collector.tenant_id == tenant.id, lower(Collector.name).in_(forms)
    )
    if new_id is not None:
        query = query.where(Collector.id != new_id)
    taken = db.scalars(query.order_by(Collector.id).limit(1)).first()
    if taken is None:
        return
    db.rollback()
    alike = unicodedata.normalize("NFC", taken) == name  # the same, or looks it
    case = "" if alike else " (names that differ only in case are the same name)"
    raise Conflict(f"this tenant already has a collector named {taken!r}{case}", "name")


def list_collectors(db: Session, actor: Actor, tenant: Tenant) -> list[Collector]:
    require(db, actor, tenant, "read")
    query = select(Collector).where(Collector.tenant_id == tenant.id)
    return list(db.scalars(query.order_by(*BY_NAME.by())))


def collectors_page(
    db: Session,
    actor: Actor,
    tenant: Tenant,
    limit: int,
    cursor: str | None = None,
    search: str = "",
) -> Page[Collector]:
    """A page of the tenant's collectors by name; ``search`` keeps those whose name or hostname
    contains it, ignoring case."""
    require(db, actor, tenant, "read")
    query = select(Collector).where(Collector.tenant_id == tenant.id)
    if search:
        pattern = _contains(search.lower())
        query = query.where(
            or_(
                lower(Collector.name).like(pattern, escape="\\"),
                lower(Collector.hostname).like(pattern, escape="\\"),
            )
        )
    return fetch_page(db, query, BY_NAME, limit, cursor)


def _contains(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere, its own ``%`` and ``_`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def get_collector(
    db: Session, actor: Actor, tenant: Tenant, collector_id: int, field: str | None = None
) -> Collector:
    """The tenant's collector; NotFound otherwise, naming ``field`` when a form or body field
    gave the id (a page then shows the form again with the error there) rather than the URL."""
    require(db, actor, tenant, "read")
    collector = db.scalar(
        select(Collector).where(Collector.tenant_id == tenant.id, Collector.id == collector_id)
    )
    if collector is None:
        raise NotFound("no such collector in this tenant", field)
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


def host_tag(value: Any, field: str = "host_tag", required: bool = False) -> str:
    """A collector's host tag setting, one of HOST_TAGS; absent (None or ""), pinned unless
    ``required`` (a change must say which)."""
    choices = " or ".join(repr(choice) for choice in HOST_TAGS)
    if value is None or value == "":
        if required:
            raise Invalid(f"{field} is required: {choices}", field)
        return HOST_TAG_PINNED
    if value not in HOST_TAGS:
        raise Invalid(f"{field} must be {choices}", field)
    return str(value)


def set_collector_host_tag(
    db: Session, actor: Actor, tenant: Tenant, collector: Collector, value: Any
) -> Collector:
    """Pin the collector's points to its hostname, or free them (the client's host tag kept).

    Ingest learns of it as of a disabled collector: when its cached key lookup expires
    (key-cache-seconds). A hostname stored before it was checked as one is refused for pinning:
    it becomes the value of every point's host tag.
    """
    require(db, actor, tenant, "admin")
    if collector.tenant_id != tenant.id:
        raise NotFound("no such collector in this tenant")
    chosen = host_tag(value, required=True)
    if chosen == HOST_TAG_PINNED:
        try:
            validation.hostname(collector.hostname)
        except Invalid as error:
            raise Invalid(
                f"this collector's hostname {collector.hostname!r} cannot be the host tag: "
                f"{error.message}; register the host again under a valid hostname",
                "host_tag",
            ) from None
    if chosen == collector.host_tag:
        return collector
    if chosen != HOST_TAG_PINNED:
        refuse_if_expiring_token(db, actor, "free a collector's host tag", "host_tag")
    previous = collector.host_tag
    collector.host_tag = chosen
    record(db, actor, "collector.host_tag", tenant, "collector", collector.id,
           name=collector.name, host_tag=chosen, previous=previous,
           hostname=collector.hostname)  # fmt: skip
    db.commit()
    return collector
