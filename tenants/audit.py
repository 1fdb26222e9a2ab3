"""The audit log: who did what to which object, when and from where. Never a secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenants.access import Actor
from tenants.models import AuditEvent, Tenant


def record(
    db: Session,
    actor: Actor,
    action: str,
    tenant: Tenant | None = None,
    target_type: str = "",
    target_id: object = "",
    **details: Any,
) -> AuditEvent:
    if actor.token_id is not None:  # which of the user's tokens, should one be stolen
        details = {**details, "api_token": actor.token_id}
    event = AuditEvent(
        actor_user_id=actor.user.id if actor.user else None,
        actor=actor.label,
        tenant_id=tenant.id if tenant else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=details,
        ip=actor.ip,
    )
    db.add(event)
    return event


def events(
    db: Session, tenant: Tenant | None, limit: int = 200, before_id: int | None = None
) -> list[AuditEvent]:
    """A tenant's events, newest first; ``tenant=None`` is the platform-wide log."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if tenant is not None:
        query = query.where(AuditEvent.tenant_id == tenant.id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(db.scalars(query))
