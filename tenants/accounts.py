"""Users, memberships, login and password changes (throttled: tenants/throttle.py) and API
tokens."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from tenants import invitations, validation, websessions
from tenants.access import RANK, Actor, require, require_platform
from tenants.audit import record
from tenants.crypto import (
    TOKEN_PREFIX,
    CredentialHasher,
    hash_password,
    password_problem,
    verify_password,
)
from tenants.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from tenants.grants import no_later_than_calling_token, refuse_if_expiring_token
from tenants.models import ApiToken, Membership, Tenant, User, utcnow
from tenants.paging import Order, Page, fetch_page
from tenants.throttle import Throttle

MAX_TOKEN_EXPIRY_DAYS = 3650
NOT_AN_EMAIL = "(not an e-mail address)"  # a failed login's e-mail field as the audit log has it
TOKEN_ID = re.compile(r"[a-z2-7]{13}")  # a token's public id, as crypto.CredentialHasher makes it

# verifying against this keeps a login for an unknown e-mail as slow as one for a known e-mail
_DUMMY_HASH = hash_password("timing equaliser, never a real password")


def create_user(
    db: Session,
    actor: Actor,
    email: str,
    password: str,
    name: str = "",
    platform_admin: bool = False,
) -> User:
    require_platform(actor)
    refuse_if_expiring_token(db, actor, "create a user")
    email = validation.email(email)
    name = validation.name(name, "name", required=False)
    problem = password_problem(password if isinstance(password, str) else "")
    if problem:
        raise Invalid(problem, "password")
    _refuse_taken_email(db, email)
    user = User(
        email=email,
        name=name,
        password_hash=hash_password(password),
        is_platform_admin=platform_admin,
    )
    db.add(user)
    try:
        db.flush()
    except IntegrityError:  # the same address, stored by a concurrent request since the check
        db.rollback()
        _refuse_taken_email(db, email)
        raise
    record(
        db, actor, "user.create", None, "user", user.id, email=email, platform_admin=platform_admin
    )
    db.commit()
    return user


def _refuse_taken_email(db: Session, email: str) -> None:
    if db.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with e-mail {email} already exists", "email")


def get_user_by_email(db: Session, email: str) -> User | None:
    return db.scalar(select(User).where(User.email == email.strip().lower()))


def authenticate(db: Session, throttle: Throttle, email: str, password: str, ip: str) -> User:
    """The user with ``email`` and ``password``; Unauthenticated, alike for a wrong password, an
    unknown address and a disabled account, or Throttled. The attempt is counted (reserved)
    before the password is verified, so that concurrent guesses cannot outrun the throttle."""
    email = (email or "").strip().lower()[:254]
    throttle.reserve(email, ip)
    user = get_user_by_email(db, email) if email else None
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is None or not ok or not user.is_active:
        record(
            db,
            Actor(None, user.email if user else _typed_address(email), ip),
            "login.failure",
            None,
            "user",
            user.id if user else "",
        )
        db.commit()
        raise Unauthenticated("wrong e-mail or password")
    throttle.succeeded(email, ip)
    user.last_login_at = utcnow()
    record(db, Actor(user, user.email, ip), "login.success", None, "user", user.id)
    db.commit()
    return user


def _typed_address(typed: str) -> str:
    """What the audit log keeps of a failed login's e-mail field that names no account: the text
    only when it is an e-mail address, so that a password typed there by mistake is not kept."""
    if not typed:
        return "(empty)"
    try:
        return validation.email(typed)
    except Invalid:
        return NOT_AN_EMAIL


def change_password(
    db: Session, throttle: Throttle, user: User, current: str, new: str, ip: str = ""
) -> None:
    """Give ``user`` the password ``new`` once ``current`` is theirs. A wrong current password
    counts in the login throttle (the account's e-mail and ``ip``), so that a session someone
    else holds cannot guess the password faster than a login could, and is audited."""
    throttle.reserve(user.email, ip)
    if not verify_password(user.password_hash, current or ""):
        record(db, Actor(user, user.email, ip), "user.password_change.failure", None, "user",
               user.id)  # fmt: skip
        db.commit()
        raise Invalid("the current password is wrong", "current_password")
    throttle.succeeded(user.email, ip)
    problem = password_problem(new or "")
    if problem:
        raise Invalid(problem, "new_password")
    if new == current:
        raise Invalid("the new password must differ from the current one", "new_password")
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    record(db, Actor(user, user.email, ip), "user.password_change", None, "user", user.id)
    db.commit()


def set_password(db: Session, actor: Actor, user: User, new: str) -> None:
    """A platform admin (or the CLI) gives ``user`` a new password, under the rules of every
    other path; the changed stamp ends the user's sessions (their API tokens are kept). The
    caller also tells this process's PrincipalCache (``forget_user``)."""
    require_platform(actor)
    refuse_if_expiring_token(db, actor, "set a user's password", "password")
    problem = password_problem(new if isinstance(new, str) else "")
    if problem:
        raise Invalid(problem, "password")
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    record(db, actor, "user.password_reset", None, "user", user.id, email=user.email)
    websessions.end_all(db, user.id)
    db.commit()


def set_active(db: Session, actor: Actor, user: User, active: bool) -> bool:
    """Enable or disable ``user``; whether anything changed (a second call changes nothing and
    records nothing). A disabled user cannot log in, their sessions end, their API tokens are
    refused and the invitations they may no longer grant are revoked; enabling them again brings
    back their unexpired tokens only. The last active platform admin is not disabled. The
    caller also tells this process's PrincipalCache (``forget_user``); other processes see the
    change within its ttl."""
    return change_user(db, actor, user, active=active)


def set_platform_admin(db: Session, actor: Actor, user: User, platform_admin: bool) -> bool:
    """Grant or revoke platform-admin rights; whether anything changed. The last active
    platform admin keeps them. The caller tells the PrincipalCache, as for ``set_active``."""
    return change_user(db, actor, user, platform_admin=platform_admin)


def change_user(
    db: Session,
    actor: Actor,
    user: User,
    *,
    active: bool | None = None,
    platform_admin: bool | None = None,
) -> bool:
    """``set_active`` and ``set_platform_admin`` at once (None leaves a flag as it is), in one
    transaction: a refusal of either leaves both unchanged. Whether anything changed."""
    require_platform(actor)
    if active and not user.is_active:
        refuse_if_expiring_token(db, actor, f"enable {user.email}", "active")
    if platform_admin and not user.is_platform_admin:
        refuse_if_expiring_token(db, actor, f"make {user.email} platform admin", "platform_admin")
    changed = False
    if active is not None and user.is_active != active:
        if not active and user.is_platform_admin:
            _refuse_if_last_platform_admin(db, user, "disable", "active")
        user.is_active = active
        record(db, actor, "user.enable" if active else "user.disable", None, "user", user.id,
               email=user.email)  # fmt: skip
        if not active:
            invitations.revoke_ungrantable(db, actor, user)
            websessions.end_all(db, user.id)  # enabling them again signs nobody back in
        changed = True
    if platform_admin is not None and user.is_platform_admin != platform_admin:
        if not platform_admin and user.is_active:
            _refuse_if_last_platform_admin(db, user, "revoke platform admin from", "platform_admin")
        user.is_platform_admin = platform_admin
        action = "user.platform_admin.grant" if platform_admin else "user.platform_admin.revoke"
        record(db, actor, action, None, "user", user.id, email=user.email)
        if not platform_admin:
            invitations.revoke_ungrantable(db, actor, user)
        changed = True
    if changed:
        db.commit()
    return changed


def _refuse_if_last_platform_admin(db: Session, admin: User, change: str, field: str) -> None:
    """Conflict, naming ``field`` (the flag the change sets), when ``admin`` is the only active
    platform admin: nobody could manage users or tenants on the pages or the API after it.

    The active platform admins' rows are locked first (FOR UPDATE on PostgreSQL), so two
    demotions at the same moment are counted one after the other and cannot both succeed.
    """
    admins = db.scalars(
        select(User.id)
        .where(User.is_platform_admin.is_(True), User.is_active.is_(True))
        .with_for_update()
    ).all()
    if not set(admins) - {admin.id}:
        raise Conflict(
            f"cannot {change} {admin.email}: they are the last active platform admin; "
            "make another user platform admin first",
            field,
        )


def set_membership(db: Session, actor: Actor, tenant: Tenant, email: str, role: str) -> Membership:
    """Give the user with ``email`` ``role`` in the tenant.

    A platform admin (or the CLI) adds any existing user; they may list every user anyway. A
    tenant admin only changes the role of a member: any other address is "no member" whether or
    not an account has it, so that it cannot be probed (they invite it instead:
    tenants/invitations.py).
    """
    _may_give(db, actor, tenant, role)
    email = validation.email(email)
    if actor.is_platform_admin:
        user = get_user_by_email(db, email)
        if user is None:
            raise NotFound(f"no user with e-mail {email}", "email")
        membership = db.scalar(
            select(Membership).where(
                Membership.user_id == user.id, Membership.tenant_id == tenant.id
            )
        )
    else:
        found = _member(db, tenant, User.email == email)
        if found is None:
            raise NotFound(
                f"no member with e-mail {email} in this tenant: invite them instead", "email"
            )
        user, membership = found
    return _give_role(db, actor, tenant, user, membership, role)


def set_role(db: Session, actor: Actor, tenant: Tenant, user_id: int, role: str) -> Membership:
    """Give the member with ``user_id`` ``role``: by id, so a member whose stored address the
    e-mail check would now refuse can still have their role changed."""
    _may_give(db, actor, tenant, role)
    found = _member(db, tenant, User.id == user_id)
    if found is None:
        raise NotFound("no such member in this tenant")
    user, membership = found
    return _give_role(db, actor, tenant, user, membership, role)


def _may_give(db: Session, actor: Actor, tenant: Tenant, role: str) -> None:
    """The tenant's admins (and platform admins) give roles, and only roles that exist."""
    require(db, actor, tenant, "admin")
    if role not in RANK:
        raise Invalid(f"role must be one of {', '.join(RANK)}", "role")


def _member(
    db: Session, tenant: Tenant, which: ColumnElement[bool]
) -> tuple[User, Membership] | None:
    """The tenant's member that ``which`` picks, with their membership; None for a non-member."""
    found = db.execute(
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == tenant.id, which)
    ).first()
    return None if found is None else (found[0], found[1])


def _give_role(
    db: Session, actor: Actor, tenant: Tenant, user: User, membership: Membership | None, role: str
) -> Membership:
    if membership is None:  # or one a concurrent request made: changed as if it was there before
        refuse_if_expiring_token(db, actor, f"add {user.email} to {tenant.name}", "email")
        membership, _ = invitations.join_tenant(db, user, tenant, role)
    elif RANK[role] > RANK[membership.role]:
        refuse_if_expiring_token(db, actor, f"raise {user.email}'s role to {role}", "role")
    if membership.role == "admin" and role != "admin":
        _refuse_if_last_admin(db, tenant, user, "demote", "role")
    membership.role = role
    record(db, actor, "member.set", tenant, "user", user.id, email=user.email, role=role)
    invitations.revoke_ungrantable(db, actor, user)
    db.commit()
    return membership


def remove_membership(db: Session, actor: Actor, tenant: Tenant, user_id: int) -> None:
    require(db, actor, tenant, "admin")
    membership = db.scalar(
        select(Membership).where(Membership.user_id == user_id, Membership.tenant_id == tenant.id)
    )
    if membership is None:
        raise NotFound("no such member in this tenant")
    if membership.role == "admin":
        _refuse_if_last_admin(db, tenant, membership.user, "remove")
    inviter = membership.user
    db.delete(membership)
    record(db, actor, "member.remove", tenant, "user", user_id)
    invitations.revoke_ungrantable(db, actor, inviter)
    db.commit()


def _refuse_if_last_admin(
    db: Session, tenant: Tenant, admin: User, change: str, field: str | None = None
) -> None:
    """Conflict when ``admin`` is the tenant's last active admin: with the others disabled (or
    none), nobody but a platform admin could manage the tenant after the change. A disabled
    admin may always be demoted or removed: they manage nothing already.

    The tenant's row is locked first (FOR NO KEY UPDATE on PostgreSQL), so two admins demoting
    each other at the same moment are counted one after the other and cannot both succeed.
    """
    if not admin.is_active:
        return
    db.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update(key_share=True))
    others = db.scalars(
        select(User.is_active)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.tenant_id == tenant.id,
            Membership.role == "admin",
            Membership.user_id != admin.id,
        )
    ).all()
    if not any(others):
        disabled = " (its other admins are disabled)" if others else ""
        raise Conflict(
            f"cannot {change} {admin.email}: they are the last admin of {tenant.name} with an "
            f"active account{disabled}; make another member admin first",
            field,
        )


def tenants_without_active_admin(db: Session, user: User) -> list[Tenant]:
    """The tenants ``user`` is an admin of that have no active admin, by name: after disabling
    them, those they were the last active admin of (platform admins still manage them)."""
    admins = aliased(Membership)
    active_admin = (
        select(admins.id)
        .join(User, User.id == admins.user_id)
        .where(admins.tenant_id == Tenant.id, admins.role == "admin", User.is_active.is_(True))
        .exists()
    )
    return list(
        db.scalars(
            select(Tenant)
            .join(Membership, Membership.tenant_id == Tenant.id)
            .where(Membership.user_id == user.id, Membership.role == "admin", ~active_admin)
            .order_by(Tenant.name, Tenant.id)
        )
    )


BY_EMAIL = Order((User.email,))  # e-mails are unique


def get_member(db: Session, actor: Actor, tenant: Tenant, user_id: int) -> User:
    require(db, actor, tenant, "read")
    found = db.execute(_members(tenant).where(User.id == user_id)).first()
    if found is None:
        raise NotFound("no such member in this tenant")
    return found[0]


def members_page(
    db: Session, actor: Actor, tenant: Tenant, limit: int, cursor: str | None = None
) -> Page[tuple[User, str]]:
    """A page of the tenant's members and their roles, by e-mail."""
    require(db, actor, tenant, "read")
    query = _members(tenant)
    found = fetch_page(db, query, BY_EMAIL, limit, cursor, rows=True, row_key=lambda row: row[0])
    return Page([(user, role) for user, role in found.items], found.next_cursor)


def _members(tenant: Tenant) -> Select[User, str]:
    return (
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == tenant.id)
    )


def users_page(db: Session, actor: Actor, limit: int, cursor: str | None = None) -> Page[User]:
    """Every user, by e-mail (platform admins only)."""
    require_platform(actor)
    return fetch_page(db, select(User), BY_EMAIL, limit, cursor)


def get_user(db: Session, actor: Actor, user_id: int) -> User:
    """Any user by id (platform admins only)."""
    require_platform(actor)
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


def memberships_of(
    db: Session, actor: Actor, users: list[User]
) -> dict[int, list[tuple[Tenant, str]]]:
    """Each user's tenants and roles, by tenant slug, in one query (platform admins only)."""
    require_platform(actor)
    found: dict[int, list[tuple[Tenant, str]]] = {user.id: [] for user in users}
    if not found:
        return found
    rows = db.execute(
        select(Membership.user_id, Tenant, Membership.role)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.user_id.in_(list(found)))
        .order_by(Tenant.slug)
    )
    for user_id, tenant, role in rows:
        found[user_id].append((tenant, role))
    return found


def issue_token(
    db: Session,
    user: User,
    hasher: CredentialHasher,
    name: str,
    ip: str = "",
    *,
    expires_in_days: int | None = None,
    issued_by: Actor | None = None,
) -> tuple[ApiToken, str]:
    """A personal API token for automation: returns the row and the plaintext, shown once.

    Users issue their own tokens; ``issued_by`` names a platform admin or the CLI issuing one
    for ``user``, or the user acting through the API (whose API token, if the request came with
    one, bounds the new token's expiry).
    """
    actor = issued_by or Actor(user, user.email, ip)
    if actor.user is None or actor.user.id != user.id:
        require_platform(actor)
    name = validation.text(name, "name", 100)
    expires_at = _token_expiry(expires_in_days)
    expires_at = no_later_than_calling_token(
        db, actor, expires_at, "expires_in_days", "admin issue-token"
    )
    if not user.is_active:
        raise Conflict(f"user {user.email} is disabled", "email")
    new = hasher.issue(TOKEN_PREFIX)
    token = ApiToken(
        token_id=new.public_id,
        secret_hash=new.secret_hash,
        user_id=user.id,
        name=name,
        expires_at=expires_at,
    )
    db.add(token)
    db.flush()
    record(
        db, actor, "token.issue", None, "api_token", token.token_id, name=name, user=user.email,
        expires_at=expires_at.isoformat() if expires_at else None,
    )  # fmt: skip
    db.commit()
    return token, new.plaintext


def _token_expiry(days: int | None) -> datetime | None:
    if days is None:
        return None
    if (
        not isinstance(days, int)
        or isinstance(days, bool)
        or not 1 <= days <= MAX_TOKEN_EXPIRY_DAYS
    ):
        raise Invalid(
            f"expires_in_days must be a whole number from 1 to {MAX_TOKEN_EXPIRY_DAYS}",
            "expires_in_days",
        )
    return utcnow() + timedelta(days=days)


def token_state(token: ApiToken, now: datetime | None = None) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def list_tokens(db: Session, user: User) -> list[ApiToken]:
    """The user's own tokens, newest first."""
    return list(
        db.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id)
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def get_token(db: Session, owner: User | None, token_id: str) -> ApiToken:
    """``owner``'s token by its public id: another user's is not found, as if it did not exist.
    ``owner=None`` (the CLI) finds anyone's."""
    if not TOKEN_ID.fullmatch(token_id):
        raise NotFound("no such API token")
    query = select(ApiToken).where(ApiToken.token_id == token_id)
    if owner is not None:
        query = query.where(ApiToken.user_id == owner.id)
    token = db.scalar(query)
    if token is None:
        raise NotFound("no such API token")
    return token


def revoke_token(db: Session, actor: Actor, token: ApiToken) -> ApiToken:
    """Revoke a token (a second revocation changes nothing). A request that came with an API
    token revokes only that token: a stolen one cannot revoke its owner's others. The caller
    also tells this process's PrincipalCache (``forget_token``); other workers refuse it within
    its ttl."""
    if actor.user is not None and actor.user.id != token.user_id:
        raise NotFound("no such API token")
    if actor.token_id is not None and actor.token_id != token.token_id:
        raise Forbidden(
            "an API token may revoke only itself: to revoke another token, sign in (the Account "
            "page, or this API with the session) or use admin revoke-token"
        )
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record(db, actor, "token.revoke", None, "api_token", token.token_id, name=token.name,
               user=token.user.email)  # fmt: skip
        db.commit()
    return token
