"""The JSON API under /api/v1: tenants, members and invitations, users, tokens, collectors, keys
and the audit log.

Authentication, CSRF and the JSON error bodies come from tenants/web.py. Every operation goes
through the service functions, which check roles and scope every query by the tenant; this
module parses requests (bodies against tenants/openapi.py's schemas) and shapes responses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, current_app, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from tenants import db as database
from tenants import openapi, paging, validation
from tenants.access import Actor, require_platform, role_in, tenant_for, visible_tenants_page
from tenants.accounts import (
    change_user,
    create_user,
    get_token,
    get_user,
    get_user_by_email,
    issue_token,
    list_tokens,
    members_page,
    remove_membership,
    revoke_token,
    set_membership,
    set_role,
    token_state,
    users_page,
)
from tenants.audit import events
from tenants.collectors import (
    collectors_page,
    get_collector,
    register_collector,
    set_collector_host_tag,
    set_collector_status,
)
from tenants.crypto import CredentialHasher
from tenants.errors import Invalid, NotFound
from tenants.invitations import get_pending, invitations_page, invite
from tenants.invitations import revoke as revoke_invitation
from tenants.keys import (
    DEFAULT_OVERLAP,
    KEEP_LIFETIME,
    IssuedKey,
    get_key,
    issue_key,
    keys_page,
    revoke_key,
    rotate_key,
)
from tenants.models import (
    ApiKey,
    ApiToken,
    AuditEvent,
    Collector,
    Invitation,
    Membership,
    Tenant,
    User,
)
from tenants.paging import Page
from tenants.tenancy import (
    Storage,
    create_tenant,
    delete_tenant,
    rename_tenant,
    set_ingest_limits,
    set_tenant_status,
)
from tenants.web import current_actor, public

bp = Blueprint("api", __name__, url_prefix="/api/v1")

JsonBody = dict[str, Any]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


# ---- request helpers --------------------------------------------------------------------------


def _db() -> Session:
    return database.session()


def _actor() -> Actor:
    return current_actor()


def _hasher() -> CredentialHasher:
    hasher: CredentialHasher = current_app.extensions["pa_hasher"]
    return hasher


def _storage() -> Storage:
    storage: Storage = current_app.extensions["pa_storage"]
    return storage


def _tenant(slug: str, need: str = "read") -> Tenant:
    if not openapi.matches(openapi.SLUG_PATTERN, slug):
        raise NotFound("no such tenant")
    return tenant_for(_db(), _actor(), slug, need)


def _row_id(value: int, what: str) -> int:
    """Ids beyond the schema's range name no row (and would overflow the database's integer)."""
    if not 1 <= value <= openapi.MAX_ID:
        raise NotFound(f"no such {what}")
    return value


def _body(schema_name: str, optional: bool = False) -> JsonBody:
    """The request's JSON object, checked against the named schema of the OpenAPI document."""
    raw = request.get_data(cache=True)
    if optional and not raw:
        return openapi.check_body(schema_name, {})
    if not request.is_json:
        raise Invalid("send a JSON body with 'Content-Type: application/json'")
    try:
        value = json.loads(
            raw, parse_constant=_refuse_constant, object_pairs_hook=validation.unique_keys
        )
    except (ValueError, RecursionError):
        raise Invalid("the request body is not valid JSON") from None
    return openapi.check_body(schema_name, value)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _query_int(name: str, default: int | None, maximum: int) -> int | None:
    text = request.args.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or not 1 <= int(text) <= maximum:
        raise Invalid(f"{name} must be a whole number from 1 to {maximum}", name)
    return int(text)


def list_arguments() -> tuple[int, str | None]:
    limit = _query_int("limit", paging.DEFAULT_LIMIT, paging.MAX_LIMIT)
    assert limit is not None
    return limit, request.args.get("cursor") or None


def listed(name: str, items: list[JsonBody], page: Page[Any]) -> Any:
    """A list's page: the items and ``next_cursor``, and the next page as a ``Link`` header
    (RFC 8288) too, with the same query otherwise."""
    body = {name: items, "next_cursor": page.next_cursor}
    if page.next_cursor is None:
        return body
    assert request.endpoint is not None
    arguments = {**request.args.to_dict(), **(request.view_args or {})}
    arguments["cursor"] = page.next_cursor
    following = url_for(request.endpoint, _external=True, **arguments)
    return body, 200, {"Link": f'<{following}>; rel="next"'}


def _created(body: JsonBody, location: str) -> tuple[JsonBody, int, dict[str, str]]:
    return body, 201, {"Location": location}


def _no_content() -> Response:
    return Response(status=204)


@bp.before_request
def _refuse_unknown_query_parameters() -> None:
    rule = request.url_rule
    if rule is None:
        return
    path = re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule.rule.removeprefix(bp.url_prefix or ""))
    allowed = openapi.query_parameters(path, request.method)
    if allowed is None:
        return
    for name in request.args:
        shown = openapi.shorten(name)
        if name not in allowed:
            raise Invalid(f"unknown query parameter {shown!r}", shown)
        if len(request.args.getlist(name)) > 1:
            raise Invalid(f"give {name} once", name)


@bp.after_request
def _escape_markup(response: Response) -> Response:
    """'<', '>' and '&' leave as \\u escapes, so no JSON string can be read as HTML."""
    if response.mimetype == "application/json" and not response.direct_passthrough:
        text = response.get_data(as_text=True)
        if any(char in text for char in "<>&"):
            escaped = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            response.set_data(escaped)
    return response


# ---- response shapes --------------------------------------------------------------------------


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def tenant_json(tenant: Tenant) -> JsonBody:
    return {
        "id": tenant.id,
        "slug": tenant.slug,
        "name": tenant.name,
        "status": tenant.status,
        "influx_database": tenant.influx_database,
        "influx_read_user": tenant.influx_read_user,
        "ingest_rate": tenant.ingest_rate,
        "ingest_burst": tenant.ingest_burst,
        "created_at": _timestamp(tenant.created_at),
        "updated_at": _timestamp(tenant.updated_at),
    }


def member_json(user: User, role: str) -> JsonBody:
    return {"user_id": user.id, "email": user.email, "name": user.name, "role": role}


def user_json(user: User) -> JsonBody:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "is_platform_admin": user.is_platform_admin,
        "is_active": user.is_active,
        "created_at": _timestamp(user.created_at),
        "last_login_at": _timestamp(user.last_login_at),
    }


def collector_json(collector: Collector) -> JsonBody:
    return {
        "id": collector.id,
        "name": collector.name,
        "hostname": collector.hostname,
        "labels": collector.labels or {},
        "vcpus": collector.vcpus,
        "memory_bytes": collector.memory_bytes,
        "cloud_provider": collector.cloud_provider,
        "region": collector.region,
        "instance_type": collector.instance_type,
        "status": collector.status,
        "host_tag": collector.host_tag,
        "created_at": _timestamp(collector.created_at),
        "last_seen_at": _timestamp(collector.last_seen_at),
        "points_received": collector.points_received,
    }


def key_json(key: ApiKey, rotated_from: str | None) -> JsonBody:
    return {
        "key_id": key.key_id,
        "name": key.name,
        "collector_id": key.collector_id,
        "state": key.state(),
        "created_at": _timestamp(key.created_at),
        "created_by": key.created_by_id,
        "expires_at": _timestamp(key.expires_at),
        "revoked_at": _timestamp(key.revoked_at),
        "last_used_at": _timestamp(key.last_used_at),
        "rotated_from": rotated_from,
    }


def keys_json(tenant: Tenant, keys: list[ApiKey]) -> list[JsonBody]:
    """Keys with the public id of the key each replaced, looked up within the tenant."""
    wanted = {key.rotated_from_id for key in keys if key.rotated_from_id is not None}
    public_ids = _public_key_ids(tenant, wanted)
    return [key_json(key, public_ids.get(key.rotated_from_id or 0)) for key in keys]


def _public_key_ids(tenant: Tenant, key_pks: set[int]) -> dict[int, str]:
    if not key_pks:
        return {}
    rows = _db().execute(
        select(ApiKey.id, ApiKey.key_id).where(
            ApiKey.tenant_id == tenant.id, ApiKey.id.in_(key_pks)
        )
    )
    return {pk: key_id for pk, key_id in rows}


def new_key_json(tenant: Tenant, issued: IssuedKey) -> JsonBody:
    return {**keys_json(tenant, [issued.key])[0], "key": issued.plaintext}


def token_json(token: ApiToken) -> JsonBody:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "state": token_state(token),
        "created_at": _timestamp(token.created_at),
        "expires_at": _timestamp(token.expires_at),
        "last_used_at": _timestamp(token.last_used_at),
        "revoked_at": _timestamp(token.revoked_at),
    }


def new_token_json(token: ApiToken, plaintext: str) -> JsonBody:
    return {
        "token": plaintext,
        "token_id": token.token_id,
        "name": token.name,
        "created_at": _timestamp(token.created_at),
        "expires_at": _timestamp(token.expires_at),
    }


def event_json(event: AuditEvent, show_ip: bool = True) -> JsonBody:
    return {
        "id": event.id,
        "at": _timestamp(event.at),
        "actor": event.actor,
        "actor_user_id": event.actor_user_id,
        "tenant_id": event.tenant_id,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "details": event.details or {},
        "ip": event.ip if show_ip else None,
    }


def audit_page(found: list[AuditEvent], limit: int, show_ip: bool = True) -> JsonBody:
    next_before = found[-1].id if len(found) == limit else None
    events_json = [event_json(event, show_ip) for event in found]
    return {"events": events_json, "next_before": next_before}


# ---- tenants ----------------------------------------------------------------------------------


@bp.get("/tenants")
def list_tenants_view() -> Any:
    page = visible_tenants_page(_db(), _actor(), *list_arguments())
    return listed("tenants", [tenant_json(t) for t in page.items], page)


@bp.post("/tenants")
def create_tenant_view() -> Any:
    require_platform(_actor())
    body = _body("TenantCreate")
    vault = current_app.extensions["pa_vault"]
    tenant = create_tenant(_db(), _actor(), body["slug"], body["name"], _storage(), vault,
                           body.get("adopt_database", False))  # fmt: skip
    return _created(tenant_json(tenant), url_for(".get_tenant_view", slug=tenant.slug))


@bp.get("/tenants/<slug>")
def get_tenant_view(slug: str) -> JsonBody:
    return tenant_json(_tenant(slug))


@bp.patch("/tenants/<slug>")
def update_tenant_view(slug: str) -> JsonBody:
    tenant = _tenant(slug, "admin")
    body = _body("TenantUpdate")
    limits = "ingest_rate" in body or "ingest_burst" in body
    if "status" in body or limits:
        require_platform(_actor())
    if "name" in body:
        rename_tenant(_db(), _actor(), tenant, body["name"])
    if "status" in body:
        set_tenant_status(_db(), _actor(), tenant, body["status"] == "active")
    if limits:  # an absent limit stays as it is; null returns it to ingest's default
        rate = body.get("ingest_rate", tenant.ingest_rate)
        burst = body.get("ingest_burst", tenant.ingest_burst)
        set_ingest_limits(_db(), _actor(), tenant, rate, burst)
    return tenant_json(tenant)


@bp.delete("/tenants/<slug>")
def delete_tenant_view(slug: str) -> Response:
    tenant = _tenant(slug, "admin")
    require_platform(_actor())
    body = _body("TenantDelete")
    delete_tenant(_db(), _actor(), tenant, body["confirm"], _storage())
    return _no_content()


# ---- members ----------------------------------------------------------------------------------


@bp.get("/tenants/<slug>/members")
def list_members_view(slug: str) -> Any:
    page = members_page(_db(), _actor(), _tenant(slug), *list_arguments())
    return listed("members", [member_json(user, role) for user, role in page.items], page)


@bp.post("/tenants/<slug>/members")
def set_member_view(slug: str) -> Any:
    """A member's new role (200); a platform admin also adds an existing user (201). A tenant
    admin naming anyone but a member gets the same 404 whether or not the address has an
    account, and no lookup of it is made (they invite it: POST .../invitations)."""
    tenant = _tenant(slug, "admin")
    body = _body("MemberSet")
    db, actor = _db(), _actor()
    was_member = True
    if actor.is_platform_admin:
        user = get_user_by_email(db, body["email"])
        was_member = user is not None and role_in(db, user, tenant) is not None
    membership = set_membership(db, actor, tenant, body["email"], body["role"])
    member = member_json(membership.user, membership.role)
    if was_member:
        return member
    return _created(member, url_for(".list_members_view", slug=tenant.slug))


@bp.patch("/tenants/<slug>/members/<int:user_id>")
def set_role_view(slug: str, user_id: int) -> Any:
    """A member's new role, by user id (the id the member list gives): unlike the e-mail form,
    it never re-validates the stored address."""
    tenant = _tenant(slug, "admin")
    body = _body("RoleSet")
    member_id = _row_id(user_id, "member in this tenant")
    membership = set_role(_db(), _actor(), tenant, member_id, body["role"])
    return member_json(membership.user, membership.role)


@bp.delete("/tenants/<slug>/members/<int:user_id>")
def remove_member_view(slug: str, user_id: int) -> Response:
    tenant = _tenant(slug, "admin")
    remove_membership(_db(), _actor(), tenant, _row_id(user_id, "member in this tenant"))
    return _no_content()


# ---- invitations ------------------------------------------------------------------------------


def invitation_json(invitation: Invitation) -> JsonBody:
    return {
        "id": invitation.id,
        "email": invitation.email,
        "role": invitation.role,
        "invited_by": invitation.invited_by,
        "created_at": _timestamp(invitation.created_at),
        "expires_at": _timestamp(invitation.expires_at),
    }


@bp.get("/tenants/<slug>/invitations")
def list_invitations_view(slug: str) -> Any:
    page = invitations_page(_db(), _actor(), _tenant(slug, "admin"), *list_arguments())
    return listed("invitations", [invitation_json(i) for i in page.items], page)


@bp.post("/tenants/<slug>/invitations")
def create_invitation_view(slug: str) -> Any:
    """The same answer whether or not the address has an account: the link, shown once."""
    tenant = _tenant(slug, "admin")
    body = _body("InvitationCreate")
    issued = invite(
        _db(), _actor(), tenant, body["email"], body["role"], _hasher(),
        current_app.config["PA_SETTINGS"]["invitation_valid_days"],
    )  # fmt: skip
    link = url_for("invitation.show", token=issued.plaintext, _external=True)
    created = {**invitation_json(issued.invitation), "token": issued.plaintext, "url": link}
    return _created(created, url_for(".list_invitations_view", slug=tenant.slug))


@bp.delete("/tenants/<slug>/invitations/<int:invitation_id>")
def revoke_invitation_view(slug: str, invitation_id: int) -> Response:
    tenant = _tenant(slug, "admin")
    pending = get_pending(
        _db(), _actor(), tenant, _row_id(invitation_id, "pending invitation in this tenant")
    )
    if not revoke_invitation(_db(), _actor(), tenant, pending):  # used or expired meanwhile
        raise NotFound("no such pending invitation in this tenant")
    return _no_content()


# ---- users and tokens -------------------------------------------------------------------------


def _memberships(db: Session, user: User) -> Iterable[JsonBody]:
    rows = db.execute(
        select(Tenant.slug, Tenant.name, Membership.role)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(Membership.user_id == user.id)
        .order_by(Tenant.slug)
    )
    return [{"tenant": slug, "tenant_name": name, "role": role} for slug, name, role in rows]


def user_detail_json(user: User) -> JsonBody:
    """A user with their tenants and roles."""
    return {**user_json(user), "memberships": _memberships(_db(), user)}


@bp.get("/users")
def list_users_view() -> Any:
    page = users_page(_db(), _actor(), *list_arguments())
    return listed("users", [user_json(user) for user in page.items], page)


@bp.post("/users")
def create_user_view() -> Any:
    require_platform(_actor())
    body = _body("UserCreate")
    email = validation.email(body["email"])
    if len(email) > openapi.EMAIL["maxLength"]:
        raise Invalid("email is too long once lower-cased", "email")
    user = create_user(
        _db(), _actor(), email, body["password"], body.get("name") or "",
        body.get("platform_admin", False),
    )  # fmt: skip
    return _created(user_json(user), url_for(".get_user_view", user_id=user.id))


@bp.get("/users/<int:user_id>")
def get_user_view(user_id: int) -> JsonBody:
    user = get_user(_db(), _actor(), _row_id(user_id, "user"))
    return user_detail_json(user)


@bp.patch("/users/<int:user_id>")
def update_user_view(user_id: int) -> JsonBody:
    """Enable or disable a user and grant or revoke platform admin, as the CLI's disable-user,
    enable-user, grant- and revoke-platform-admin do: both fields in one transaction, the last
    active platform admin kept (409). A platform admin may disable or demote themselves while
    another active one remains. This worker forgets the user's cached sessions and tokens, so
    that a disabled user's next request here is refused; other workers within
    key-cache-seconds."""
    db, actor = _db(), _actor()
    user = get_user(db, actor, _row_id(user_id, "user"))
    body = _body("UserUpdate")
    changed = change_user(
        db, actor, user, active=body.get("active"), platform_admin=body.get("platform_admin")
    )
    if changed:
        current_app.extensions["pa_principals"].forget_user(user.id)
    return user_detail_json(user)


@bp.get("/me")
def me_view() -> JsonBody:
    return user_detail_json(_signed_in_user())


@bp.get("/me/tokens")
def list_tokens_view() -> JsonBody:
    return {"tokens": [token_json(token) for token in list_tokens(_db(), _signed_in_user())]}


@bp.post("/me/tokens")
def create_token_view() -> Any:
    user = _signed_in_user()
    body = _body("TokenCreate")
    token, plaintext = issue_token(
        _db(), user, _hasher(), body["name"], expires_in_days=body.get("expires_in_days"),
        issued_by=_actor(),
    )  # fmt: skip
    return _created(new_token_json(token, plaintext), url_for(".list_tokens_view"))


@bp.delete("/me/tokens/<token_id>")
def revoke_token_view(token_id: str) -> Response:
    if not openapi.matches(openapi.KEY_ID_PATTERN, token_id):
        raise NotFound("no such API token")
    token = revoke_token(_db(), _actor(), get_token(_db(), _signed_in_user(), token_id))
    current_app.extensions["pa_principals"].forget_token(token.token_id)
    return _no_content()


def _signed_in_user() -> User:
    user = _actor().user
    assert user is not None, "web.py authenticates every /api/v1 request as a user"
    return user


# ---- collectors -------------------------------------------------------------------------------


@bp.get("/tenants/<slug>/collectors")
def list_collectors_view(slug: str) -> Any:
    search = validation.text(request.args.get("q", ""), "q", 253, required=False)
    page = collectors_page(_db(), _actor(), _tenant(slug), *list_arguments(), search=search)
    return listed("collectors", [collector_json(c) for c in page.items], page)


@bp.post("/tenants/<slug>/collectors")
def register_collector_view(slug: str) -> Any:
    tenant = _tenant(slug, "admin")
    collector = register_collector(_db(), _actor(), tenant, _body("CollectorCreate"))
    location = url_for(".get_collector_view", slug=tenant.slug, collector_id=collector.id)
    return _created(collector_json(collector), location)


@bp.get("/tenants/<slug>/collectors/<int:collector_id>")
def get_collector_view(slug: str, collector_id: int) -> JsonBody:
    tenant = _tenant(slug)
    collector = get_collector(_db(), _actor(), tenant, _row_id(collector_id, "collector"))
    return collector_json(collector)


@bp.patch("/tenants/<slug>/collectors/<int:collector_id>")
def update_collector_view(slug: str, collector_id: int) -> JsonBody:
    tenant = _tenant(slug, "admin")
    body = _body("CollectorUpdate")
    collector = get_collector(_db(), _actor(), tenant, _row_id(collector_id, "collector"))
    if "host_tag" in body:
        set_collector_host_tag(_db(), _actor(), tenant, collector, body["host_tag"])
    if "status" in body:
        set_collector_status(_db(), _actor(), tenant, collector, body["status"] == "active")
    return collector_json(collector)


# ---- keys -------------------------------------------------------------------------------------


def _key(tenant: Tenant, key_id: str) -> ApiKey:
    if not openapi.matches(openapi.KEY_ID_PATTERN, key_id):
        raise NotFound("no such key in this tenant")
    return get_key(_db(), _actor(), tenant, key_id)


def _named_collector(tenant: Tenant, collector_id: int) -> Collector:
    """The collector a request names in its ``collector_id`` field: a 404 names that field."""
    return get_collector(_db(), _actor(), tenant, collector_id, "collector_id")


@bp.get("/tenants/<slug>/keys")
def list_keys_view(slug: str) -> Any:
    tenant = _tenant(slug)
    collector_id = _query_int("collector_id", None, openapi.MAX_ID)
    collector = None if collector_id is None else _named_collector(tenant, collector_id)
    page = keys_page(_db(), _actor(), tenant, *list_arguments(), collector=collector)
    return listed("keys", keys_json(tenant, page.items), page)


@bp.post("/tenants/<slug>/keys")
def issue_key_view(slug: str) -> Any:
    tenant = _tenant(slug, "admin")
    body = _body("KeyIssue")
    name = validation.text(body.get("name"), "name", 100, required=False)
    collector = _named_collector(tenant, body["collector_id"])
    issued = issue_key(
        _db(), _actor(), tenant, collector, _hasher(), name, body.get("expires_in_days")
    )
    return _created(new_key_json(tenant, issued), _key_location(tenant, issued.key))


@bp.get("/tenants/<slug>/keys/<key_id>")
def get_key_view(slug: str, key_id: str) -> JsonBody:
    tenant = _tenant(slug)
    return keys_json(tenant, [_key(tenant, key_id)])[0]


@bp.post("/tenants/<slug>/keys/<key_id>/revoke")
def revoke_key_view(slug: str, key_id: str) -> JsonBody:
    tenant = _tenant(slug, "admin")
    key = revoke_key(_db(), _actor(), tenant, _key(tenant, key_id))
    return keys_json(tenant, [key])[0]


@bp.post("/tenants/<slug>/keys/<key_id>/rotate")
def rotate_key_view(slug: str, key_id: str) -> Any:
    tenant = _tenant(slug, "admin")
    body = _body("KeyRotate", optional=True)
    overlap = timedelta(hours=body["overlap_hours"]) if "overlap_hours" in body else DEFAULT_OVERLAP
    expires_in_days = body.get("expires_in_days", KEEP_LIFETIME)  # absent: the old key's lifetime
    issued = rotate_key(
        _db(), _actor(), tenant, _key(tenant, key_id), _hasher(), overlap, expires_in_days
    )
    return _created(new_key_json(tenant, issued), _key_location(tenant, issued.key))


def _key_location(tenant: Tenant, key: ApiKey) -> str:
    return url_for(".get_key_view", slug=tenant.slug, key_id=key.key_id)


# ---- audit ------------------------------------------------------------------------------------


def _page_arguments() -> tuple[int, int | None]:
    limit = _query_int("limit", openapi.DEFAULT_AUDIT_LIMIT, openapi.MAX_AUDIT_LIMIT)
    assert limit is not None
    return limit, _query_int("before", None, openapi.MAX_ID)


@bp.get("/tenants/<slug>/audit")
def tenant_audit_view(slug: str) -> JsonBody:
    """Every member reads it, as on the pages; addresses are for the tenant's admins."""
    tenant = _tenant(slug)
    actor = _actor()
    show_ip = actor.is_platform_admin or (
        actor.user is not None and role_in(_db(), actor.user, tenant) == "admin"
    )
    limit, before = _page_arguments()
    return audit_page(events(_db(), tenant, limit, before), limit, show_ip)


@bp.get("/audit")
def platform_audit_view() -> JsonBody:
    require_platform(_actor())
    limit, before = _page_arguments()
    return audit_page(events(_db(), None, limit, before), limit)


# ---- the document -----------------------------------------------------------------------------


@bp.get("/openapi.json")
@public
def openapi_view() -> JsonBody:
    return openapi.document()
