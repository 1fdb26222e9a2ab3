"""Who may do what: a platform admin everywhere; in a tenant, admin > analyst > viewer.

| need    | granted to                                               |
|---------|----------------------------------------------------------|
| read    | viewer, analyst, admin                                   |
| analyze | analyst, admin (load tests, reports)                     |
| admin   | admin (collectors, keys, members and invitations, name)  |
| platform| platform admins (create, disable, delete tenants; users) |
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tenants.errors import Forbidden, NotFound
from tenants.models import Membership, Tenant, User
from tenants.paging import Order, Page, fetch_page

RANK = {"viewer": 1, "analyst": 2, "admin": 3}
NEEDS = {"read": 1, "analyze": 2, "admin": 3}
BY_NAME = Order((Tenant.name, Tenant.id))  # names need not be unique
ROLE_MEMO = "pa_roles"  # Session.info key: (transaction, {(user id, tenant id): role})


@dataclass(frozen=True)
class Actor:
    """Who acts, for permissions and the audit log: a user, or the CLI/system (user None)."""

    user: User | None
    label: str
    ip: str = ""
    token_id: str | None = None  # the API token the request came with; None for a session

    @property
    def is_platform_admin(self) -> bool:
        return self.user is None or self.user.is_platform_admin


def system_actor(label: str = "cli") -> Actor:
    return Actor(None, label)


def role_in(db: Session, user: User, tenant: Tenant) -> str | None:
    """The user's role in the tenant, asked of the database once per transaction."""
    pair = (user.id, tenant.id)
    known = _role_memo(db)
    if pair in known:
        return known[pair]
    role = db.scalar(
        select(Membership.role).where(
            Membership.user_id == user.id, Membership.tenant_id == tenant.id
        )
    )
    _role_memo(db)[pair] = role  # after the query: it may have begun the transaction
    return role


def _role_memo(db: Session) -> dict[tuple[int, int], str | None]:
    transaction, known = db.info.get(ROLE_MEMO, (None, {}))
    if transaction is not db.get_transaction():
        known = {}
        db.info[ROLE_MEMO] = (db.get_transaction(), known)
    memo: dict[tuple[int, int], str | None] = known
    return memo


def forget_roles(db: Session, *_: object) -> None:
    """Session hook after a flush: a change within the transaction may have moved a role."""
    db.info.pop(ROLE_MEMO, None)


def require_platform(actor: Actor) -> None:
    if not actor.is_platform_admin:
        raise Forbidden("only a platform admin may do this")


def require(db: Session, actor: Actor, tenant: Tenant, need: str) -> None:
    """Raise unless the actor may act on the tenant; a non-member learns nothing (404)."""
    if actor.is_platform_admin:
        return
    assert actor.user is not None
    role = role_in(db, actor.user, tenant)
    if role is None:
        raise NotFound("no such tenant")
    if RANK[role] < NEEDS[need]:
        raise Forbidden(f"your role in this tenant ({role}) does not allow this")


def visible_tenants(db: Session, actor: Actor) -> list[Tenant]:
    return list(db.scalars(_visible(actor).order_by(*BY_NAME.by())))


def visible_tenants_page(
    db: Session, actor: Actor, limit: int, cursor: str | None = None
) -> Page[Tenant]:
    """A page of the tenants the actor may see, by name."""
    return fetch_page(db, _visible(actor), BY_NAME, limit, cursor)


def _visible(actor: Actor) -> Select[Tenant]:
    query = select(Tenant)
    if not actor.is_platform_admin:
        assert actor.user is not None
        query = query.join(Membership, Membership.tenant_id == Tenant.id).where(
            Membership.user_id == actor.user.id
        )
    return query


def tenant_for(db: Session, actor: Actor, slug: str, need: str = "read") -> Tenant:
    """The tenant by slug if the actor may act on it; its role comes in the same query."""
    if actor.is_platform_admin:
        tenant = db.scalar(select(Tenant).where(Tenant.slug == slug))
    else:
        assert actor.user is not None
        row = db.execute(
            select(Tenant, Membership.role)
            .outerjoin(
                Membership,
                (Membership.tenant_id == Tenant.id) & (Membership.user_id == actor.user.id),
            )
            .where(Tenant.slug == slug)
        ).first()
        tenant = None if row is None else row[0]
        if row is not None:
            _role_memo(db)[(actor.user.id, row[0].id)] = row[1]
    if tenant is None:
        raise NotFound("no such tenant")
    require(db, actor, tenant, need)
    return tenant
