"""The server-rendered admin pages: tenants; a tenant's collectors, members, invitations and
keys; its settings; a collector; the audit log.

* Every write is a POST form carrying the CSRF token (checked in ``tenants.web``), goes through
  the service functions (roles, tenancy and the audit log apply there) and answers with a
  303 redirect and a flash (POST/redirect/GET).
* Input the services refuse re-renders the form with the message and what the user typed
  (400, 409, or 404 for a field naming nothing in the tenant); a role that does not allow the
  action is 403 and another tenant's object 404, raised by the services and rendered as the
  app's error page (``tenants.web``).
* A row's form (disable a collector, rotate or revoke a key, issue a key) sends ``return_to``,
  the page it is on with its lists' positions (search, cursors); the answer returns there. Only
  the tenant's page and the page of the collector acted on are accepted, so it cannot redirect
  elsewhere.
* Issuing or rotating a key, and inviting a member, are the writes answered by a page rather
  than a redirect: the key's plaintext, or the invitation's link, is rendered once, in that
  no-store response, and kept nowhere (not in the session, not in a URL of ours). A reloaded or
  resent form is recognised by its one-time form id and redirected.
* Members join by invitation (tenants/invitations.py): inviting answers the same whether or not
  the address has an account, so that a tenant admin cannot probe addresses. Platform admins,
  who may list every user anyway, also add an existing user directly.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from tenants import audit, collectors, invitations, keys, tenancy, validation
from tenants import db as database
from tenants.access import require_platform, role_in, tenant_for, visible_tenants_page
from tenants.accounts import (
    get_member,
    members_page,
    remove_membership,
    set_membership,
    set_role,
)
from tenants.crypto import CredentialHasher
from tenants.errors import Invalid, ServiceError, is_form_error
from tenants.models import ROLES, ApiKey, Collector, Tenant, User, utcnow
from tenants.paging import Page
from tenants.summary import tenant_counts, tenant_summary
from tenants.views.formatting import GIB
from tenants.web import MAX_ROW_ID, ROW_ID, current_actor, public

bp = Blueprint("pages", __name__)

AUDIT_PAGE_SIZE = 50
PAGE_ROWS = 50  # rows per page of every list on the pages (tenants, collectors, keys, members)
MAX_OVERLAP_HOURS = 720
MAX_MEMORY_GIB = collectors.MAX_MEMORY // GIB
USED_FORM_IDS_KEPT = 20
COLLECTOR_FIELDS = ("name", "hostname", "labels", "vcpus", "cloud_provider", "region",
                    "instance_type", "host_tag")  # fmt: skip
# a service names the field it checked; the form may call it differently
FORM_FIELD_FOR = {"memory_bytes": "memory_gib"}
# the query arguments that place a page's lists: the collector search and each list's cursor
LIST_POSITIONS = {"pages.tenant": ("q", "collectors", "keys", "members", "invitations"),
                  "pages.collector": ("keys",)}  # fmt: skip


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


# --- what the current user may do ----------------------------------------------------------


@dataclass(frozen=True)
class Permissions:
    """What the current user may do in one tenant: it shapes the page, the services enforce it."""

    role: str | None  # the tenant role; None for a platform admin who is not a member
    platform: bool

    @property
    def admin(self) -> bool:
        return self.platform or self.role == "admin"

    @property
    def label(self) -> str:
        if self.platform:
            return "platform admin" + (f" (and {self.role})" if self.role else "")
        return self.role or ""


def permissions(tenant: Tenant) -> Permissions:
    actor = current_actor()
    role = role_in(_db(), actor.user, tenant) if actor.user else None
    return Permissions(role, actor.is_platform_admin)


# --- a form the services refused -----------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A refused form, re-rendered with the message and what the user typed."""

    form: str
    message: str
    field: str | None
    values: dict[str, str]
    status: int


def form_failure(form: str, error: ServiceError) -> Failure:
    """The refusal of ``form`` to show at its field, its changes rolled back; a refusal by role
    or tenancy is raised on."""
    if not is_form_error(error):
        raise error
    _db().rollback()
    field = FORM_FIELD_FOR.get(error.field or "", error.field)
    return Failure(form, error.message, field, request.form.to_dict(), error.status)


def _page(template: str, failure: Failure | None = None, **context: Any) -> ResponseReturnValue:
    html = render_template(
        template, failure=failure, error=failure.message if failure else None, **context
    )
    return html, failure.status if failure else 200


def _see_other(location: str) -> Response:
    return redirect(location, 303)


# --- small accessors -------------------------------------------------------------------------


def _db() -> Session:
    return database.session()


def _tenant(slug: str, need: str = "read") -> Tenant:
    return tenant_for(_db(), current_actor(), slug, need)


def _form(name: str) -> str:
    return request.form.get(name, "")


# --- home and the tenants list ---------------------------------------------------------------


@bp.get("/favicon.ico")
@public
def favicon() -> ResponseReturnValue:
    """No icon: answered so that browsers log no 404 for it."""
    return "", 204


@bp.get("/")
def home() -> ResponseReturnValue:
    actor = current_actor()
    tenants = visible_tenants_page(_db(), actor, 1).items
    if not actor.is_platform_admin and len(tenants) == 1:
        return redirect(url_for("pages.tenant", slug=tenants[0].slug))
    return redirect(url_for("pages.tenants"))


@bp.get("/tenants")
def tenants() -> ResponseReturnValue:
    return _tenants_page()


def _tenants_page(failure: Failure | None = None) -> ResponseReturnValue:
    actor = current_actor()
    page = visible_tenants_page(_db(), actor, PAGE_ROWS, _cursor("cursor", failure))
    return _page(
        "tenants.html",
        failure,
        tenants=page.items,
        next_page=_next_page_url("pages.tenants", "cursor", page.next_cursor),
        platform=actor.is_platform_admin,
        counts=tenant_counts(_db(), actor, page.items),
    )


@bp.post("/tenants")
def create_tenant() -> ResponseReturnValue:
    actor = current_actor()
    require_platform(actor)
    storage, vault = current_app.extensions["pa_storage"], current_app.extensions["pa_vault"]
    try:
        tenant = tenancy.create_tenant(_db(), actor, _form("slug"), _form("name"), storage, vault)
    except ServiceError as error:
        return _tenants_page(form_failure("create", error))
    flash(f"Tenant {tenant.name} created. Register its first collector below.")
    return _see_other(url_for("pages.tenant", slug=tenant.slug))


# --- a tenant: collectors, keys and members --------------------------------------------------


@bp.get("/tenants/<slug>")
def tenant(slug: str) -> ResponseReturnValue:
    return _tenant_page(_tenant(slug))


def _tenant_page(
    tenant: Tenant, failure: Failure | None = None, chosen: Collector | None = None
) -> ResponseReturnValue:
    """The tenant's overview: counts, and a page of each of its collectors, keys and members.

    Each list pages on its own (``?collectors=``, ``?keys=``, ``?members=`` and, for admins,
    ``?invitations=`` cursors, and ``?q=`` to search collectors); a re-rendered row form shows the page it was sent from,
    other forms first pages. The "Issue a key" form offers the collectors listed, and
    ``chosen`` (a refused form's choice) if it is not.
    """
    db, actor = _db(), current_actor()
    positions = _list_positions(tenant, "pages.tenant")
    search = positions.get("q", "")
    collector_page = collectors.collectors_page(
        db, actor, tenant, PAGE_ROWS, positions.get("collectors"), search[:253]
    )
    key_page = keys.keys_page(db, actor, tenant, PAGE_ROWS, positions.get("keys"))
    member_page = members_page(db, actor, tenant, PAGE_ROWS, positions.get("members"))
    perms = permissions(tenant)
    invitation_page = (
        invitations.invitations_page(db, actor, tenant, PAGE_ROWS, positions.get("invitations"))
        if perms.admin
        else Page([], None)
    )
    return _page(
        "tenant.html",
        failure,
        tenant=tenant,
        perms=perms,
        collectors=collector_page.items,
        key_choices=_with(collector_page.items, chosen),
        summary=tenant_summary(db, actor, tenant),
        search=search,
        page_rows=PAGE_ROWS,
        keys=key_page.items,
        members=member_page.items,
        invitations=invitation_page.items,
        next_pages=_next_pages(
            tenant,
            search,
            collectors=collector_page.next_cursor,
            keys=key_page.next_cursor,
            members=member_page.next_cursor,
            invitations=invitation_page.next_cursor,
        ),
        roles=ROLES,
        now=utcnow(),
        return_url=_page_url("pages.tenant", positions, slug=tenant.slug),
    )


def _with(listed: list[Collector], chosen: Collector | None) -> list[Collector]:
    return listed if chosen is None or chosen in listed else [chosen, *listed]


def _cursor(name: str, failure: Failure | None) -> str | None:
    """A list's cursor from the query string; none when a refused form is re-rendered."""
    return None if failure else request.args.get(name) or None


def _list_positions(
    tenant: Tenant, endpoint: str, collector_id: int | None = None
) -> dict[str, str]:
    """Where the lists of the page at ``endpoint`` are (search, cursors): from the query string,
    or, when a refused row form re-renders the page, from the page the form was sent from."""
    if request.method == "GET":
        given = {name: request.args.get(name, "") for name in LIST_POSITIONS[endpoint]}
    else:
        returned = _return_to(tenant, collector_id)
        given = returned[1] if returned is not None and returned[0] == endpoint else {}
    return {name: value.strip() for name, value in given.items() if value.strip()}


def _page_url(
    endpoint: str, positions: dict[str, str], anchor: str | None = None, **values: Any
) -> str:
    """The page at ``endpoint`` with its lists at ``positions`` (search, cursors)."""
    return url_for(endpoint, _anchor=anchor, **{**values, **positions})


def _return_to(tenant: Tenant, collector_id: int | None) -> tuple[str, dict[str, str]] | None:
    """The page a row form was sent from (its ``return_to``) as an endpoint and list positions:
    the tenant's page, or the page of the collector acted on; None for any other address."""
    target = urlsplit(_form("return_to"))
    pages = {url_for("pages.tenant", slug=tenant.slug): "pages.tenant"}
    if collector_id is not None:
        collector_page = url_for("pages.collector", slug=tenant.slug, collector_id=collector_id)
        pages[collector_page] = "pages.collector"
    endpoint = pages.get(target.path)
    if endpoint is None or target.scheme or target.netloc:
        return None
    query = parse_qs(target.query)
    positions = {name: query[name][0] for name in LIST_POSITIONS[endpoint] if name in query}
    return endpoint, positions


def _next_page_url(endpoint: str, name: str, cursor: str | None, **values: Any) -> str | None:
    """The page at ``endpoint`` with its list ``name`` at ``cursor``; None on the last page."""
    if cursor is None:
        return None
    return url_for(endpoint, **{**values, name: cursor})


def _next_pages(tenant: Tenant, search: str, **cursors: str | None) -> dict[str, str | None]:
    """The tenant page with one of its lists a page further (the collector search kept)."""
    return {
        name: _next_page_url(
            "pages.tenant", name, cursor, slug=tenant.slug, _anchor=name,
            **({"q": search} if name == "collectors" and search else {}),
        )
        for name, cursor in cursors.items()
    }  # fmt: skip


@bp.post("/tenants/<slug>/collectors")
def register_collector(slug: str) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    try:
        fields = _collector_fields()
        collector = collectors.register_collector(_db(), current_actor(), tenant, fields)
    except ServiceError as error:
        return _tenant_page(tenant, form_failure("collector", error))
    flash(f"Collector {collector.name} registered. Issue it a key to start sending data.")
    return _see_other(url_for("pages.collector", slug=slug, collector_id=collector.id))


def _collector_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {name: _form(name) for name in COLLECTOR_FIELDS}
    fields["memory_bytes"] = _gib_to_bytes(_form("memory_gib"))
    return fields


def _gib_to_bytes(text: str) -> int | None:
    """The form asks for GiB (``16``, ``0.5``); the collector stores bytes."""
    text = text.strip()
    if not text:
        return None
    try:
        gib = Decimal(text)
    except InvalidOperation:
        raise Invalid("memory must be a number of GiB, e.g. 16 or 0.5", "memory_gib") from None
    if not gib.is_finite() or not 0 < gib <= MAX_MEMORY_GIB or int(gib * GIB) < 1:
        raise Invalid(f"memory must be more than 0 and at most {MAX_MEMORY_GIB} GiB", "memory_gib")
    return int(gib * GIB)


@bp.get(f"/tenants/<slug>/collectors/<{ROW_ID}:collector_id>")
def collector(slug: str, collector_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug)
    return _collector_page(
        tenant, collectors.get_collector(_db(), current_actor(), tenant, collector_id)
    )


def _collector_page(
    tenant: Tenant, collector: Collector, failure: Failure | None = None
) -> ResponseReturnValue:
    """A collector and a page of its keys (``?keys=`` cursor; a re-rendered row form shows the
    page it was sent from, the key form the first)."""
    positions = _list_positions(tenant, "pages.collector", collector.id)
    key_page = keys.keys_page(
        _db(), current_actor(), tenant, PAGE_ROWS, positions.get("keys"), collector
    )
    next_keys = _next_page_url(
        "pages.collector", "keys", key_page.next_cursor,
        slug=tenant.slug, collector_id=collector.id, _anchor="keys",
    )  # fmt: skip
    return _page(
        "collector.html",
        failure,
        tenant=tenant,
        collector=collector,
        perms=permissions(tenant),
        keys=key_page.items,
        next_keys=next_keys,
        now=utcnow(),
        return_url=_page_url(
            "pages.collector", positions, slug=tenant.slug, collector_id=collector.id
        ),
    )


@bp.post(f"/tenants/<slug>/collectors/<{ROW_ID}:collector_id>/disable", defaults={"active": False})
@bp.post(f"/tenants/<slug>/collectors/<{ROW_ID}:collector_id>/enable", defaults={"active": True})
def collector_status(slug: str, collector_id: int, active: bool) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    db, actor = _db(), current_actor()
    collector = collectors.get_collector(db, actor, tenant, collector_id)
    collectors.set_collector_status(db, actor, tenant, collector, active)
    effect = "enabled" if active else "disabled: ingest refuses its keys until it is enabled"
    flash(f"Collector {collector.name} {effect}.")
    return _see_other(_back_url(tenant, collector.id, "collectors"))


@bp.post(f"/tenants/<slug>/collectors/<{ROW_ID}:collector_id>/host-tag")
def collector_host_tag(slug: str, collector_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    db, actor = _db(), current_actor()
    collector = collectors.get_collector(db, actor, tenant, collector_id)
    try:
        collectors.set_collector_host_tag(db, actor, tenant, collector, _form("host_tag"))
    except ServiceError as error:
        return _collector_page(tenant, collector, form_failure("host_tag", error))
    if collector.pinned_host is not None:
        effect = f"pinned: ingest writes its points with host={collector.pinned_host}"
    else:
        effect = "free: ingest keeps the host tag its points are sent with"
    flash(f"Collector {collector.name} {effect}, from ingest's next key lookup "
          "(within its key-cache-seconds).")  # fmt: skip
    return _see_other(url_for("pages.collector", slug=slug, collector_id=collector.id))


def _back_url(tenant: Tenant, collector_id: int, section: str) -> str:
    """The page a row form was sent from, its lists where they were (the tenant's page at
    ``section`` when ``return_to`` names no page the form may return to)."""
    endpoint, positions = _return_to(tenant, collector_id) or ("pages.tenant", {})
    if endpoint == "pages.collector":
        anchor = "keys" if section == "keys" else None
        return _page_url(endpoint, positions, anchor, slug=tenant.slug, collector_id=collector_id)
    return _page_url(endpoint, positions, section, slug=tenant.slug)


# --- keys: issued and rotated ones are shown once ---------------------------------------------


@bp.post("/tenants/<slug>/keys")
def issue_key(slug: str) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    db, actor = _db(), current_actor()
    collector: Collector | None = None
    try:
        collector = collectors.get_collector(db, actor, tenant, _collector_id(), "collector_id")
        if not first_submission():
            return _already_shown(_back_url(tenant, collector.id, "keys"))
        issued = keys.issue_key(
            db, actor, tenant, collector, _hasher(), _key_name(), _expiry_days()
        )
    except ServiceError as error:
        return _key_form_page(tenant, collector, form_failure("key", error))
    return _shown_once(tenant, collector, issued, _back_url(tenant, collector.id, "keys"))


def _collector_id() -> int:
    value = validation.optional_int(_form("collector_id"), "collector_id", 1, 2**31 - 1)
    if value is None:
        raise Invalid("choose the collector the key is for", "collector_id")
    return value


def _key_name() -> str:
    return validation.text(_form("name"), "name", 100, required=False)


def _expiry_days() -> int | None:
    return validation.optional_int(_form("expires_in_days"), "expires_in_days", 1,
                                   keys.MAX_EXPIRY_DAYS)  # fmt: skip


def _hasher() -> CredentialHasher:
    hasher: CredentialHasher = current_app.extensions["pa_hasher"]
    return hasher


def _key_form_page(
    tenant: Tenant, collector: Collector | None, failure: Failure
) -> ResponseReturnValue:
    returned = None if collector is None else _return_to(tenant, collector.id)
    if collector is not None and returned is not None and returned[0] == "pages.collector":
        return _collector_page(tenant, collector, failure)
    return _tenant_page(tenant, failure, collector)


@bp.post("/tenants/<slug>/keys/<key_id>/rotate")
def rotate_key(slug: str, key_id: str) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    db, actor = _db(), current_actor()
    key = keys.get_key(db, actor, tenant, key_id)
    back_url = _back_url(tenant, key.collector_id, "keys")
    if not first_submission():
        return _already_shown(back_url)
    try:
        overlap = timedelta(hours=_overlap_hours())
        expires_in_days = _expiry_days()  # blank: the new key lives as long as the old one
        issued = keys.rotate_key(
            db, actor, tenant, key, _hasher(), overlap,
            keys.KEEP_LIFETIME if expires_in_days is None else expires_in_days,
        )  # fmt: skip
    except ServiceError as error:
        return _key_form_page(tenant, key.collector, form_failure(f"rotate-{key.key_id}", error))
    return _shown_once(tenant, key.collector, issued, back_url, rotated_from=key)


def _overlap_hours() -> int:
    hours = validation.optional_int(_form("overlap_hours"), "overlap_hours", 0, MAX_OVERLAP_HOURS)
    return keys.DEFAULT_OVERLAP // timedelta(hours=1) if hours is None else hours


@bp.post("/tenants/<slug>/keys/<key_id>/revoke")
def revoke_key(slug: str, key_id: str) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    db, actor = _db(), current_actor()
    key = keys.get_key(db, actor, tenant, key_id)
    keys.revoke_key(db, actor, tenant, key)
    flash(f"Key {key.key_id} revoked: ingest refuses it within seconds.")
    return _see_other(_back_url(tenant, key.collector_id, "keys"))


def first_submission() -> bool:
    """False when this form's one-time id was already used: a reload or a resent form."""
    form_id = _form("form_id")
    if not form_id:
        return True
    used: list[str] = session.get("used_form_ids", [])
    if form_id in used:
        return False
    session["used_form_ids"] = [*used, form_id][-USED_FORM_IDS_KEPT:]
    return True


def _already_shown(back_url: str) -> Response:
    flash(
        "That form was already sent: its key was shown once and cannot be shown again. "
        "If you did not copy it, revoke it and issue a new one."
    )
    return _see_other(back_url)


def _shown_once(
    tenant: Tenant,
    collector: Collector,
    issued: keys.IssuedKey,
    back_url: str,
    rotated_from: ApiKey | None = None,
) -> Response:
    html = render_template(
        "key_issued.html", tenant=tenant, collector=collector, key=issued.key,
        plaintext=issued.plaintext, rotated_from=rotated_from, back_url=back_url,
    )  # fmt: skip
    response = make_response(html, 200)
    response.headers["Cache-Control"] = "no-store, max-age=0"
    response.headers["Pragma"] = "no-cache"
    return response


bp.add_app_template_filter(validation.readable_number, "pa_number")


@bp.app_template_global("pa_form_id")
def form_id() -> str:
    """A one-time id for a form whose answer must not be repeated (a key shown once)."""
    return secrets.token_urlsafe(16)


# --- members ---------------------------------------------------------------------------------


@bp.post("/tenants/<slug>/invitations")
def invite(slug: str) -> ResponseReturnValue:
    """Invite an address: the same answer whether or not it has an account (its one-time link,
    shown once as a new key is), so that a tenant admin cannot probe addresses."""
    tenant = _tenant(slug, "admin")
    back_url = url_for("pages.tenant", slug=slug, _anchor="invitations")
    if not first_submission():
        flash(
            "That form was already sent: its invitation link was shown once and cannot be "
            "shown again. If you did not copy it, invite the address again: the new link "
            "replaces it."
        )
        return _see_other(back_url)
    try:
        issued = invitations.invite(
            _db(), current_actor(), tenant, _form("email"), _form("role"), _hasher(),
            current_app.config["PA_SETTINGS"]["invitation_valid_days"],
        )  # fmt: skip
    except ServiceError as error:
        return _tenant_page(tenant, form_failure("invite", error))
    html = render_template(
        "invitation_issued.html", tenant=tenant, invitation=issued.invitation,
        link=url_for("invitation.show", token=issued.plaintext, _external=True),
        back_url=back_url,
    )  # fmt: skip
    response = make_response(html, 200)
    response.headers["Cache-Control"] = "no-store, max-age=0"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post(f"/tenants/<slug>/invitations/<{ROW_ID}:invitation_id>/revoke")
def revoke_invitation(slug: str, invitation_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    db, actor = _db(), current_actor()
    invitation = invitations.get_pending(db, actor, tenant, invitation_id)
    if invitations.revoke(db, actor, tenant, invitation):
        flash(f"Invitation of {invitation.email} revoked: its link no longer works.")
    else:  # used (or revoked, or expired) since the page was loaded
        flash(
            f"The invitation of {invitation.email} was not revoked: it was used, revoked or "
            "expired meanwhile."
        )
    return _see_other(url_for("pages.tenant", slug=slug, _anchor="invitations"))


@bp.post("/tenants/<slug>/members")
def add_member(slug: str) -> ResponseReturnValue:
    """A platform admin adds an existing user (the form is theirs: they list every user anyway).
    A tenant admin's post only changes an existing member's role; any other address is "no
    member" whether or not it has an account (accounts.set_membership)."""
    tenant = _tenant(slug, "admin")
    try:
        membership = set_membership(_db(), current_actor(), tenant, _form("email"), _form("role"))
    except ServiceError as error:
        return _tenant_page(tenant, form_failure("member", error))
    flash(f"{membership.user.email} is now {membership.role} in {tenant.name}.")
    return _see_other(url_for("pages.tenant", slug=slug, _anchor="members"))


@bp.post(f"/tenants/<slug>/members/<{ROW_ID}:user_id>/role")
def change_role(slug: str, user_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    member = _member(tenant, user_id)
    try:
        membership = set_role(_db(), current_actor(), tenant, member.id, _form("role"))
    except ServiceError as error:
        return _tenant_page(tenant, form_failure("role", error))
    flash(f"{member.email} is now {membership.role} in {tenant.name}.")
    return _see_other(url_for("pages.tenant", slug=slug, _anchor="members"))


@bp.post(f"/tenants/<slug>/members/<{ROW_ID}:user_id>/remove")
def remove_member(slug: str, user_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    member = _member(tenant, user_id)
    try:
        remove_membership(_db(), current_actor(), tenant, member.id)
    except ServiceError as error:
        return _tenant_page(tenant, form_failure("remove", error))
    flash(f"{member.email} removed from {tenant.name}.")
    return _see_other(url_for("pages.tenant", slug=slug, _anchor="members"))


def _member(tenant: Tenant, user_id: int) -> User:
    return get_member(_db(), current_actor(), tenant, user_id)


# --- tenant settings -------------------------------------------------------------------------


@bp.get("/tenants/<slug>/settings")
def settings(slug: str) -> ResponseReturnValue:
    return _settings_page(_tenant(slug))


def _settings_page(tenant: Tenant, failure: Failure | None = None) -> ResponseReturnValue:
    return _page("tenant_settings.html", failure, tenant=tenant, perms=permissions(tenant))


@bp.post("/tenants/<slug>/settings/name")
def rename_tenant(slug: str) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    try:
        tenancy.rename_tenant(_db(), current_actor(), tenant, _form("name"))
    except ServiceError as error:
        return _settings_page(tenant, form_failure("rename", error))
    flash(f"Tenant renamed to {tenant.name}.")
    return _see_other(url_for("pages.settings", slug=slug))


@bp.post("/tenants/<slug>/settings/limits")
def tenant_limits(slug: str) -> ResponseReturnValue:
    tenant = _tenant(slug)
    try:
        tenancy.set_ingest_limits(
            _db(), current_actor(), tenant, _form("ingest_rate"), _form("ingest_burst")
        )
    except ServiceError as error:
        return _settings_page(tenant, form_failure("limits", error))
    flash(f"Ingest limits of {tenant.name} saved; ingest applies them within seconds.")
    return _see_other(url_for("pages.settings", slug=slug))


@bp.post("/tenants/<slug>/disable", defaults={"active": False})
@bp.post("/tenants/<slug>/enable", defaults={"active": True})
def tenant_status(slug: str, active: bool) -> ResponseReturnValue:
    tenant = _tenant(slug)
    tenancy.set_tenant_status(_db(), current_actor(), tenant, active)
    effect = "enabled" if active else "disabled: ingest refuses all of its keys"
    flash(f"Tenant {tenant.name} {effect}.")
    return _see_other(url_for("pages.settings", slug=slug))


@bp.post("/tenants/<slug>/delete")
def delete_tenant(slug: str) -> ResponseReturnValue:
    tenant = _tenant(slug)
    actor = current_actor()
    require_platform(actor)  # a tenant admin learns 403 before any confirmation check
    storage = current_app.extensions["pa_storage"]
    try:
        tenancy.delete_tenant(_db(), actor, tenant, _form("confirm"), storage)
    except ServiceError as error:
        return _settings_page(tenant, form_failure("delete", error))
    flash(f"Tenant {slug} deleted with its collectors, keys and storage.")
    return _see_other(url_for("pages.tenants"))


# --- the audit log ---------------------------------------------------------------------------


@bp.get("/tenants/<slug>/audit")
def tenant_audit(slug: str) -> ResponseReturnValue:
    tenant = _tenant(slug)
    return _audit_page(tenant, show_ip=permissions(tenant).admin)


@bp.get("/audit")
def platform_audit() -> ResponseReturnValue:
    require_platform(current_actor())
    return _audit_page(None, show_ip=True)


def _audit_page(tenant: Tenant | None, show_ip: bool) -> ResponseReturnValue:
    before = validation.optional_int(request.args.get("before"), "before", 1, MAX_ROW_ID)
    rows = audit.events(_db(), tenant, AUDIT_PAGE_SIZE + 1, before)
    page = rows[:AUDIT_PAGE_SIZE]
    older = page[-1].id if len(rows) > AUDIT_PAGE_SIZE else None
    slugs = _tenant_slugs({event.tenant_id for event in page}) if tenant is None else {}
    return _page("audit.html", tenant=tenant, events=page, older=older, before=before,
                 tenant_slugs=slugs, show_ip=show_ip,
                 perms=permissions(tenant) if tenant else None)  # fmt: skip


def _tenant_slugs(ids: set[int | None]) -> dict[int, str]:
    wanted = [tenant_id for tenant_id in ids if tenant_id is not None]
    query = select(Tenant.id, Tenant.slug).where(Tenant.id.in_(wanted))
    return {tenant_id: slug for tenant_id, slug in _db().execute(query)}
