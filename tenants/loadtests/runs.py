"""Stored load tests: upload (by a collector's key or by a user), list, fetch, re-price, delete.

Every query is scoped by the tenant. A collector key uploads into its own tenant and collector
only: both come from the verified key, never from the request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, selectinload

from tenants.access import Actor, require
from tenants.audit import record
from tenants.errors import Conflict, Invalid, NotFound, Unauthenticated
from tenants.keys import Identity
from tenants.loadtests.contract import (
    NOT_RECORDED,
    Host,
    LoadTestDocument,
    canonical,
    parse_bytes,
)
from tenants.loadtests.models import LoadTestLevel, LoadTestRun, PriceEntry
from tenants.loadtests.prices import match_price, snapshot, visible_entry
from tenants.models import Collector, Tenant, utcnow
from tenants.paging import Order, Page, fetch_page

MAX_COMPARED = 10
MIN_COMPARED = 2
NEWEST_FIRST = Order((LoadTestRun.started_at, LoadTestRun.id), descending=True)


@dataclass(frozen=True)
class Upload:
    """Who stores a run and how: the audit actor, and the run's uploader fields."""

    actor: Actor
    via: str  # collector_key | user | example
    collector: Collector | None = None
    price_entry: PriceEntry | None = None
    label: str = ""
    notes: str = ""


def upload_as_collector(db: Session, identity: Identity, data: bytes, ip: str) -> LoadTestRun:
    """A run sent with a collector key: stored in that key's tenant, for that key's collector."""
    tenant = db.get(Tenant, identity.tenant_id)
    collector = db.scalar(select(Collector).where(
        Collector.id == identity.collector_id, Collector.tenant_id == identity.tenant_id))  # fmt: skip
    if tenant is None or collector is None:
        raise Unauthenticated("this key's collector no longer exists")
    document = parse_bytes(data)
    actor = Actor(None, f"collector {collector.name}", ip)
    return store_run(db, tenant, document, Upload(actor, "collector_key", collector))


def upload_as_user(
    db: Session,
    actor: Actor,
    tenant: Tenant,
    data: bytes,
    collector_id: int | None = None,
    price_id: int | None = None,
    label: str = "",
) -> LoadTestRun:
    """A run uploaded by an analyst or admin, optionally for one of the tenant's collectors and
    with a price chosen from the tenant's catalog (otherwise matched from the host facts)."""
    require(db, actor, tenant, "analyze")
    collector = None if collector_id is None else _tenant_collector(db, tenant, collector_id)
    entry = visible_entry(db, tenant, price_id) if price_id is not None else None
    document = parse_bytes(data)
    return store_run(db, tenant, document, Upload(actor, "user", collector, entry, label))


def _tenant_collector(db: Session, tenant: Tenant, collector_id: int) -> Collector:
    """The tenant's collector a request names; a 404 naming ``collector_id`` otherwise."""
    collector = db.scalar(select(Collector).where(
        Collector.id == collector_id, Collector.tenant_id == tenant.id))  # fmt: skip
    if collector is None:
        raise NotFound("no such collector in this tenant", "collector_id")
    return collector


def store_run(
    db: Session, tenant: Tenant, document: LoadTestDocument, upload: Upload
) -> LoadTestRun:
    digest = document_digest(document)
    _refuse_stored(db, tenant, digest)
    run = _new_run(tenant, document, upload, digest)
    if upload.price_entry is not None:
        snapshot(run, upload.price_entry, f"chosen by {upload.actor.label}")
    else:
        match = match_price(db, tenant, document.host)
        snapshot(run, match.entry if match else None, match.how if match else None)
    try:
        db.add(run)
        db.flush()
        record(db, upload.actor, "loadtest.upload", tenant, "loadtest", run.id, via=upload.via,
               collector=upload.collector.name if upload.collector else None, host=run.hostname,
               max_units_per_second=run.max_units_per_second,
               usd_per_hour=str(run.price_usd_per_hour) if run.price_usd_per_hour else None)  # fmt: skip
        db.commit()
    except IntegrityError:  # the same result, stored by a concurrent request since the check
        db.rollback()
        _refuse_stored(db, tenant, digest)
        raise
    return run


def _refuse_stored(db: Session, tenant: Tenant, digest: str) -> None:
    existing = db.scalar(select(LoadTestRun.id).where(
        LoadTestRun.tenant_id == tenant.id, LoadTestRun.document_sha256 == digest))  # fmt: skip
    if existing is not None:
        raise Conflict(f"this result was already uploaded as load test {existing}", "/")


def document_digest(document: LoadTestDocument) -> str:
    return canonical_digest(document.raw)


def canonical_digest(raw: dict[str, Any]) -> str:
    """What recognises a result uploaded again: the SHA-256 of its canonical form, so that
    spelling a number otherwise or changing a figure the server ignores makes no new run."""
    text = json.dumps(canonical(raw), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _new_run(tenant: Tenant, doc: LoadTestDocument, upload: Upload, digest: str) -> LoadTestRun:
    host, settings = doc.host, doc.settings
    run = LoadTestRun(
        tenant_id=tenant.id, collector_id=upload.collector.id if upload.collector else None,
        label=upload.label, notes=upload.notes, uploaded_at=utcnow(),
        uploaded_by=upload.actor.label,
        uploaded_by_user_id=upload.actor.user.id if upload.actor.user else None,
        uploaded_via=upload.via, document_sha256=digest, document=doc.raw,
        schema=doc.raw["schema"], started_at=doc.started_at, finished_at=doc.finished_at,
        hostname=host.hostname, cpu_model=host.cpu_model, vcpus=host.vcpus,
        memory_bytes=host.memory_bytes, kernel=NOT_RECORDED if host.kernel is None else host.kernel,
        cloud_provider=host.cloud_provider,
        region=host.region, instance_type=host.instance_type, unit_name=settings.unit.name,
        unit_buffer_bytes=settings.unit.buffer_bytes, window_seconds=settings.window_seconds,
        repeats=settings.repeats, tolerance_points=settings.tolerance_points,
        max_units_per_second=doc.max_units_per_second,
        repeatability_cv_percent=doc.repeatability_cv_percent,
        all_levels_accepted=all(level.accepted for level in doc.levels),
    )  # fmt: skip
    run.levels = [
        LoadTestLevel(
            target_busy_percent=level.target_busy_percent,
            measured_busy_percent=level.measured_busy_percent,
            units_per_second=level.units_per_second,
            repeats=list(level.repeats),
            cv_percent=level.cv_percent,
            attempts=level.attempts,
            accepted=level.accepted,
        )
        for level in doc.levels
    ]
    return run


# ---- reading ----------------------------------------------------------------------------------


def runs_page(
    db: Session,
    actor: Actor,
    tenant: Tenant,
    limit: int,
    cursor: str | None = None,
    collector_id: int | None = None,
) -> Page[LoadTestRun]:
    """A page of the tenant's runs, newest first (by start); ``collector_id``: one of its
    collectors' runs (another tenant's collector is not found, as one that does not exist).
    Without their uploaded documents, which no list shows (a run's page does)."""
    require(db, actor, tenant, "read")
    if collector_id is not None:
        _tenant_collector(db, tenant, collector_id)
    query = (
        select(LoadTestRun)
        .where(LoadTestRun.tenant_id == tenant.id)
        .options(defer(LoadTestRun.document), selectinload(LoadTestRun.collector))
    )
    if collector_id is not None:
        query = query.where(LoadTestRun.collector_id == collector_id)
    return fetch_page(db, query, NEWEST_FIRST, limit, cursor)


def selected_runs(db: Session, actor: Actor, tenant: Tenant, ids: list[int]) -> list[LoadTestRun]:
    """Those of ``ids`` that are the tenant's runs, newest first: the history page's choice
    for a comparison, kept while it pages (an id since deleted, or of another tenant, is left
    out; the comparison itself checks every id)."""
    require(db, actor, tenant, "read")
    if not ids:
        return []
    return list(
        db.scalars(
            select(LoadTestRun)
            .where(LoadTestRun.tenant_id == tenant.id, LoadTestRun.id.in_(ids))
            .options(defer(LoadTestRun.document))
            .order_by(*NEWEST_FIRST.by())
        )
    )


def get_run(db: Session, actor: Actor, tenant: Tenant, run_id: int) -> LoadTestRun:
    require(db, actor, tenant, "read")
    run = db.scalar(select(LoadTestRun).where(
        LoadTestRun.tenant_id == tenant.id, LoadTestRun.id == run_id))  # fmt: skip
    if run is None:
        raise NotFound("no such load test in this tenant")
    return run


def runs_by_ids(db: Session, actor: Actor, tenant: Tenant, ids: list[int]) -> list[LoadTestRun]:
    """2 to 10 runs of the tenant, in the order asked; one unknown id fails the whole request
    without telling which (another tenant's id is indistinguishable from a missing one)."""
    require(db, actor, tenant, "read")
    if len(set(ids)) != len(ids):
        raise Invalid("ids: each load test may appear once", "ids")
    if not MIN_COMPARED <= len(ids) <= MAX_COMPARED:
        raise Invalid(f"ids: compare {MIN_COMPARED} to {MAX_COMPARED} load tests", "ids")
    found = {run.id: run for run in db.scalars(
        select(LoadTestRun)
        .where(LoadTestRun.tenant_id == tenant.id, LoadTestRun.id.in_(ids))
        .options(selectinload(LoadTestRun.levels), selectinload(LoadTestRun.collector)))}  # fmt: skip
    if len(found) != len(ids):
        raise NotFound("no such load test in this tenant")
    return [found[run_id] for run_id in ids]


def latest_for_collector(db: Session, tenant: Tenant, collector_id: int) -> LoadTestRun | None:
    return db.scalar(
        select(LoadTestRun)
        .where(LoadTestRun.tenant_id == tenant.id, LoadTestRun.collector_id == collector_id)
        .order_by(*NEWEST_FIRST.by())
        .limit(1)
    )


# ---- changing ---------------------------------------------------------------------------------


def set_run_price(
    db: Session, actor: Actor, tenant: Tenant, run: LoadTestRun, price_id: int | None
) -> LoadTestRun:
    """Apply a catalog price chosen now (or none); the run keeps a copy, as at upload."""
    require(db, actor, tenant, "analyze")
    if run.tenant_id != tenant.id:
        raise NotFound("no such load test in this tenant")
    entry = visible_entry(db, tenant, price_id) if price_id is not None else None
    before = str(run.price_usd_per_hour) if run.price_usd_per_hour is not None else None
    when = utcnow().date().isoformat()
    snapshot(run, entry, f"chosen by {actor.label} on {when}")
    record(db, actor, "loadtest.price", tenant, "loadtest", run.id, before=before,
           after=str(entry.usd_per_hour) if entry else None)  # fmt: skip
    db.commit()
    return run


def reprice_run(db: Session, actor: Actor, tenant: Tenant, run: LoadTestRun) -> LoadTestRun:
    """Price the run again from the tenant's current catalog, matched from its host facts as at
    upload (no row for it: no price); the run keeps a copy, and the audit log the change."""
    require(db, actor, tenant, "analyze")
    if run.tenant_id != tenant.id:
        raise NotFound("no such load test in this tenant")
    host = Host(hostname=run.hostname, cpu_model=run.cpu_model, vcpus=run.vcpus,
                memory_bytes=run.memory_bytes, kernel=run.kernel,
                cloud_provider=run.cloud_provider, region=run.region,
                instance_type=run.instance_type)  # fmt: skip
    match = match_price(db, tenant, host)
    before = str(run.price_usd_per_hour) if run.price_usd_per_hour is not None else None
    when = utcnow().date().isoformat()
    how = f"re-priced by {actor.label} on {when}, {match.how}" if match else None
    snapshot(run, match.entry if match else None, how)
    record(db, actor, "loadtest.price", tenant, "loadtest", run.id, before=before,
           after=str(match.entry.usd_per_hour) if match else None, matched=True)  # fmt: skip
    db.commit()
    return run


def delete_run(db: Session, actor: Actor, tenant: Tenant, run: LoadTestRun) -> None:
    require(db, actor, tenant, "analyze")
    if run.tenant_id != tenant.id:
        raise NotFound("no such load test in this tenant")
    record(db, actor, "loadtest.delete", tenant, "loadtest", run.id, host=run.hostname)
    db.delete(run)
    db.commit()
