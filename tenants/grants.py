"""What a request made with an expiring API token may not do: grant access that outlives it.

A token issues only tokens that expire no later than itself (``accounts.issue_token``). That
bound would mean little if the same token could create an account with a password it chooses,
make an account platform admin, enable one, add a member, raise a role or send an invitation:
signing in as that account afterwards issues tokens without expiry. So those changes need a
signed-in session, the CLI, or a token without expiry (which is lasting access already).
Lowering access (disabling, demoting, removing) stays open to every token, and so does making
collector keys, which write one collector's points and nothing else.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenants.access import Actor
from tenants.errors import Forbidden
from tenants.models import ApiToken


def refuse_if_expiring_token(
    db: Session, actor: Actor, doing: str, field: str | None = None
) -> None:
    """Forbidden when ``actor`` came with an API token that expires, naming what was refused."""
    if actor.token_id is None:
        return
    expires_at = db.scalar(select(ApiToken.expires_at).where(ApiToken.token_id == actor.token_id))
    if expires_at is None:
        return
    raise Forbidden(
        f"cannot {doing} with an API token that expires: it would grant access lasting beyond "
        "the token. Sign in to do this (the pages, or the API with a session), or use the admin "
        "CLI",
        field,
    )
