"""What a request made with an expiring API token may not do: grant access that outlasts it.

A token issues only tokens that expire no later than itself (``accounts.issue_token``). That
bound would mean little if the same token could create an account with a password it chooses,
make an account platform admin, enable one, add a member, raise a role or send an invitation:
signing in as that account afterwards issues tokens without expiry. So those changes need a
signed-in session, the CLI, or a token without expiry (which is lasting access already).
Collector keys it issues expire with it at the latest (``keys.issue_key``), and it may not free
a pinned collector's host tag, which would let that collector's existing keys write as any host.
Lowering access (disabling, demoting, removing, revoking, pinning) stays open to every token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenants.access import Actor
from tenants.errors import Forbidden, Invalid
from tenants.models import ApiToken, utcnow


def calling_token_expiry(db: Session, actor: Actor) -> datetime | None:
    """When the API token ``actor`` came with expires; None for a session, the CLI or a token
    without expiry. A token whose row is gone (it cannot be, while it authenticates this
    request) is refused rather than taken as lasting."""
    if actor.token_id is None:
        return None
    row = db.execute(select(ApiToken.expires_at).where(ApiToken.token_id == actor.token_id)).first()
    if row is None:
        raise Forbidden("the API token this request came with no longer exists")
    expires_at: datetime | None = row[0]
    return expires_at


def refuse_if_expiring_token(
    db: Session, actor: Actor, doing: str, field: str | None = None
) -> None:
    """Forbidden when ``actor`` came with an API token that expires, naming what was refused."""
    if calling_token_expiry(db, actor) is None:
        return
    raise Forbidden(
        f"cannot {doing} with an API token that expires: it would grant access lasting beyond "
        "the token. Sign in to do this (the pages, or the API with a session), or use the admin "
        "CLI",
        field,
    )


def no_later_than_calling_token(
    db: Session, actor: Actor, expires_at: datetime | None, field: str, command: str
) -> datetime | None:
    """``expires_at`` of a credential issued by ``actor``: with an expiring API token, None
    (never) becomes the token's own expiry, and a later one is refused (Invalid on ``field``,
    naming the limit, what may be given, and ``command``, the admin CLI's way round it)."""
    limit = calling_token_expiry(db, actor)
    if limit is None or (expires_at is not None and expires_at <= limit):
        return expires_at
    if expires_at is None:
        return limit
    whole_days = (limit - utcnow()) // timedelta(days=1)
    allowed = (
        f"give at most {whole_days} or leave it out to take the same expiry"
        if whole_days >= 1
        else "leave it out to take the same expiry"
    )
    raise Invalid(
        f"{field} reaches beyond {limit.astimezone(UTC):%Y-%m-%d %H:%M} UTC, when the API token "
        f"this request came with expires, and what a token issues expires no later than itself: "
        f"{allowed}. Signing in (the Account page) lifts the limit, as does {command}",
        field,
    )
