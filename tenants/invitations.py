"""Invitations: how a tenant admin brings someone into a tenant without learning whether they
already have an account on this installation (accounts span tenants).

* ``invite`` answers the same whether or not an account has the address: it stores an
  invitation and returns its one-time link, ``/invitations/pai_<token_id>_<secret>``, shown once
  to the admin, who hands it over (there is no mail server), as with collector keys. Only the
  secret's HMAC-SHA256 under the server secret is stored (``crypto.CredentialHasher``, as keys
  and tokens); the 256-bit secret needs no slow hash. Inviting an address anew replaces its
  pending invitation to the tenant; inviting a member is refused ("already a member"), which
  tells the admin nothing the member list does not.
* An invitation is single use and expires (``invitation.valid-days``, 7 by default); its admin
  can revoke it. Expired, revoked, used, replaced and unknown links are all refused alike
  (``NotValid``), with nothing that tells them apart.
* The holder of a valid link accepts it logged in as the invited address (``accept``). A link
  for another address than the logged-in user's is refused. There is no sign-up through a link:
  accounts are made by platform admins (and the CLI) only, as before invitations. Someone invited
  who has no account asks a platform admin for one; the link's page says so to everyone, so it
  tells nothing about the address either.
* An invitation works only while its inviter may still grant it (``inviter_may_grant``): the
  user who made it must still be active and an admin of the tenant or a platform admin, when the
  link is opened and when it is used. An inviter removed, demoted or disabled leaves links that
  are "not valid" like any other; the services that take the right away also revoke those
  invitations (``revoke_ungrantable``), so giving it back does not revive them. Invitations made
  by the CLI or the system (no inviting user) stay valid.

What this guarantees, and what not: no answer to a tenant admin (inviting, the link's page, the
lists) depends on whether an address has an account. A link proves possession of the link, not
of the address: the admin hands it over (there is no mail), and whoever holds it and can log in
as the invited address joins. Accounts themselves are made only by platform admins.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, not_, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from tenants import validation
from tenants.access import RANK, Actor, require
from tenants.audit import record
from tenants.crypto import CredentialHasher
from tenants.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from tenants.grants import refuse_if_expiring_token
from tenants.models import Invitation, Membership, Tenant, User, utcnow
from tenants.paging import Order, Page, fetch_page

INVITATION_PREFIX = "pai"  # "PerfAnalysis invitation"
INVITATION = re.compile(r"^pai_([a-z2-7]{13})_([A-Za-z0-9_-]{43})$")
DEFAULT_VALID_DAYS = 7
NOT_VALID = "This invitation is not valid (expired, used or revoked): ask for a new one."
WRONG_ACCOUNT = (
    "This invitation is for another account than the one you are logged in as. "
    "Log out, then open the invitation link again."
)
NEWEST_FIRST = Order((Invitation.created_at, Invitation.id), descending=True)
_DUMMY_HASH = "0" * 64  # compared against when the id is unknown, so both cost an HMAC


class NotValid(ServiceError):
    """An expired, revoked, used, replaced, unknown or malformed invitation: one answer for all."""

    status, code = 404, "not_found"

    def __init__(self) -> None:
        super().__init__(NOT_VALID)


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    plaintext: str  # the link's token: shown once, never stored


def pending_at(now: datetime) -> ColumnElement[bool]:
    """Invitations neither accepted, revoked nor expired at ``now`` (``state() == "pending"``)."""
    return and_(
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    )


def inviter_may_grant() -> ColumnElement[bool]:
    """Invitations whose inviter may still grant them: made by the CLI or the system (no user:
    ``invited_by`` is a label such as "cli", never an address), or by a user who is still active
    and an admin of the invitation's tenant or a platform admin. A user's invitation whose user
    row has gone (``invited_by_id`` set to NULL) is not one of them."""
    inviter = aliased(User)
    admin_of_tenant = (
        exists()
        .where(
            Membership.user_id == inviter.id,
            Membership.tenant_id == Invitation.tenant_id,
            Membership.role == "admin",
        )
        .correlate_except(Membership)  # the inviter and the invitation are the outer queries'
    )
    by_a_user_who_may = (
        exists()
        .where(
            inviter.id == Invitation.invited_by_id,
            inviter.is_active == true(),
            or_(inviter.is_platform_admin == true(), admin_of_tenant),
        )
        .correlate_except(inviter)
    )
    by_the_system = and_(
        Invitation.invited_by_id.is_(None), not_(Invitation.invited_by.contains("@"))
    )
    return or_(by_the_system, by_a_user_who_may)


def usable_at(now: datetime) -> ColumnElement[bool]:
    """Invitations whose link works at ``now``: pending, and their inviter may still grant them."""
    return and_(pending_at(now), inviter_may_grant())


def invite(
    db: Session,
    actor: Actor,
    tenant: Tenant,
    email: str,
    role: str,
    hasher: CredentialHasher,
    valid_days: int = DEFAULT_VALID_DAYS,
) -> IssuedInvitation:
    """Invite ``email`` to ``tenant`` with ``role``; the same answer whether or not an account
    has that address. Replaces the address's pending invitation to the tenant."""
    require(db, actor, tenant, "admin")
    refuse_if_expiring_token(db, actor, f"invite to {tenant.name}")
    email = validation.email(email)
    if role not in RANK:
        raise Invalid(f"role must be one of {', '.join(RANK)}", "role")
    # one invitation at a time per tenant: two admins inviting one address leave one pending
    db.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update(key_share=True))
    member = db.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == tenant.id, User.email == email)
    )
    if member is not None:
        raise Conflict(f"{email} is already a member of {tenant.name}", "email")
    now = utcnow()
    replaced = list(
        db.scalars(
            select(Invitation).where(
                Invitation.tenant_id == tenant.id, Invitation.email == email, pending_at(now)
            )
        )
    )
    for old in replaced:
        old.revoked_at = now
    new = hasher.issue(INVITATION_PREFIX)
    invitation = Invitation(
        token_id=new.public_id,
        secret_hash=new.secret_hash,
        tenant_id=tenant.id,
        email=email,
        role=role,
        invited_by_id=actor.user.id if actor.user else None,
        invited_by=actor.label,
        created_at=now,
        expires_at=now + timedelta(days=valid_days),
    )
    db.add(invitation)
    db.flush()
    record(db, actor, "invitation.create", tenant, "invitation", invitation.id, email=email,
           role=role, expires_at=invitation.expires_at.isoformat(),
           replaced=[old.id for old in replaced])  # fmt: skip
    db.commit()
    return IssuedInvitation(invitation, new.plaintext)


def invitations_page(
    db: Session, actor: Actor, tenant: Tenant, limit: int, cursor: str | None = None
) -> Page[Invitation]:
    """A page of the tenant's pending invitations, newest first (its admins only)."""
    require(db, actor, tenant, "admin")
    query = select(Invitation).where(Invitation.tenant_id == tenant.id, pending_at(utcnow()))
    return fetch_page(db, query, NEWEST_FIRST, limit, cursor)


def get_pending(db: Session, actor: Actor, tenant: Tenant, invitation_id: int) -> Invitation:
    """One of the tenant's pending invitations; another tenant's, or a used, revoked or expired
    one, is not found."""
    require(db, actor, tenant, "admin")
    invitation = db.scalar(
        select(Invitation).where(
            Invitation.id == invitation_id,
            Invitation.tenant_id == tenant.id,
            pending_at(utcnow()),
        )
    )
    if invitation is None:
        raise NotFound("no such pending invitation in this tenant")
    return invitation


def revoke(db: Session, actor: Actor, tenant: Tenant, invitation: Invitation) -> bool:
    """Revoke the invitation if it is still pending: a conditional update, so that an accept (or
    another revoke) committed since it was loaded is not overwritten. True if this revoked it (and
    audited that); False if it was used, revoked or expired meanwhile, and nothing changed."""
    require(db, actor, tenant, "admin")
    if invitation.tenant_id != tenant.id:
        raise NotFound("no such pending invitation in this tenant")
    now = utcnow()
    revoked = db.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.tenant_id == tenant.id, pending_at(now))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if revoked.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        db.refresh(invitation)
        return False
    record(db, actor, "invitation.revoke", tenant, "invitation", invitation.id,
           email=invitation.email, role=invitation.role)  # fmt: skip
    db.commit()
    db.refresh(invitation)
    return True


def revoke_ungrantable(db: Session, actor: Actor, inviter: User) -> int:
    """Revoke the pending invitations ``inviter`` made that they may no longer grant, after the
    change that took that right away (demoted or removed as a tenant's admin, disabled, no
    longer platform admin): giving the right back later does not bring old links back to life.
    How many were revoked, each audited; the caller commits, with the change."""
    db.flush()
    now = utcnow()
    lost = db.execute(
        select(Invitation, Tenant)
        .join(Tenant, Tenant.id == Invitation.tenant_id)
        .where(Invitation.invited_by_id == inviter.id, pending_at(now), not_(inviter_may_grant()))
    ).all()
    revoked = 0
    for invitation, tenant in lost:
        done = db.execute(
            update(Invitation)
            .where(Invitation.id == invitation.id, pending_at(now))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            revoked += 1
            record(db, actor, "invitation.revoke", tenant, "invitation", invitation.id,
                   email=invitation.email, role=invitation.role,
                   reason=f"{inviter.email} may no longer grant it")  # fmt: skip
    return revoked


def find_valid(db: Session, hasher: CredentialHasher, token: str) -> Invitation:
    """The pending invitation behind a link's token; NotValid for anything else."""
    match = INVITATION.match(token)
    if match is None:
        raise NotValid()
    token_id, secret = match.groups()
    invitation = db.scalar(select(Invitation).where(Invitation.token_id == token_id))
    secret_hash = invitation.secret_hash if invitation is not None else _DUMMY_HASH
    if not hasher.matches(secret, secret_hash) or invitation is None:
        raise NotValid()
    usable = db.scalar(
        select(Invitation.id).where(Invitation.id == invitation.id, usable_at(utcnow()))
    )
    if usable is None:  # used, revoked, expired, or its inviter may no longer grant it
        raise NotValid()
    return invitation


def same_address(user: User, invitation: Invitation) -> bool:
    return hmac.compare_digest(user.email.encode(), invitation.email.encode())


def join_tenant(db: Session, user: User, tenant: Tenant, role: str) -> tuple[Membership, bool]:
    """``user``'s membership of ``tenant``, made with ``role`` if there is none (True), or the one
    there is, with its own role (False), also when a concurrent request (CLI, API, page, another
    accept) added it between the lookup and the insert: the insert is in a savepoint, so its
    failure keeps the rest of the caller's transaction."""
    existing = select(Membership).where(
        Membership.user_id == user.id, Membership.tenant_id == tenant.id
    )
    membership = db.scalar(existing)
    if membership is not None:
        return membership, False
    try:
        with db.begin_nested():
            membership = Membership(user_id=user.id, tenant_id=tenant.id, role=role)
            db.add(membership)
    except IntegrityError:
        membership = db.scalar(existing)
        if membership is None:
            raise
        return membership, False
    return membership, True


def accept(db: Session, invitation: Invitation, user: User, ip: str = "") -> Membership:
    """``user``, logged in as the invited address, joins the tenant with the invited role.

    A member already (added some other way since) keeps their role; the invitation is used.
    """
    if not same_address(user, invitation):
        raise Forbidden(WRONG_ACCOUNT)
    membership = _join(db, invitation, user, ip)
    db.commit()
    return membership


def _join(db: Session, invitation: Invitation, user: User, ip: str = "") -> Membership:
    """Use the invitation (once: a conditional update, so two requests cannot both; and only while
    its inviter may still grant it) and give ``user`` its membership. The caller commits."""
    now = utcnow()
    used = db.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, usable_at(now))
        .values(accepted_at=now, accepted_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        raise NotValid()
    db.refresh(invitation)
    tenant = invitation.tenant
    membership, joined = join_tenant(db, user, tenant, invitation.role)  # a member keeps the role
    actor = Actor(user, user.email, ip)
    record(db, actor, "invitation.accept", tenant, "invitation", invitation.id,
           email=user.email, role=membership.role, joined=joined)  # fmt: skip
    db.flush()
    return membership
