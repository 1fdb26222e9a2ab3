"""The users page, for platform admins: every user with their tenants and roles, and the forms
that disable or enable them and grant or revoke platform admin (what the CLI's disable-user,
enable-user, grant- and revoke-platform-admin do, through the same service).

* Anyone else gets 403, on the page and on every form, before anything is looked up.
* A row form sends the list's position (``cursor``); the answer (303 and a flash) returns there,
  and a refusal (the last active platform admin, 409) re-renders that page with the message in
  the row.
* Disabling the last active admin of a tenant is allowed (nobody's offboarding waits for a
  tenant's admins); the answer names the tenants left without an admin who can log in.
* A platform admin may disable or demote themselves while another active one remains, as
  through the API; their own row says so and asks first. Disabling oneself ends the session at
  once, so the answer is the login page; demoting oneself goes home, since this page is no
  longer theirs.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from tenants import db as database
from tenants.access import require_platform
from tenants.accounts import (
    change_user,
    get_user,
    memberships_of,
    tenants_without_active_admin,
    users_page,
)
from tenants.errors import ServiceError
from tenants.models import Tenant, User
from tenants.views.pages import PAGE_ROWS, Failure, form_failure
from tenants.web import ROW_ID, current_actor, log_out

bp = Blueprint("users", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/users")
def users() -> ResponseReturnValue:
    require_platform(current_actor())
    return _users_page(request.args.get("cursor") or None)


def _users_page(cursor: str | None, failure: Failure | None = None) -> ResponseReturnValue:
    """A page of the users by e-mail, from ``cursor``; ``failure`` shows a refused row form."""
    db, actor = database.session(), current_actor()
    page = users_page(db, actor, PAGE_ROWS, cursor)
    following = page.next_cursor
    html = render_template(
        "users.html",
        failure=failure,
        error=failure.message if failure else None,
        users=page.items,
        memberships=memberships_of(db, actor, page.items),
        cursor=cursor or "",
        next_page=url_for("users.users", cursor=following) if following else None,
        me=actor.user,
        key_cache_seconds=current_app.config["PA_SETTINGS"]["key_cache_seconds"],
    )
    return html, failure.status if failure else 200


@bp.post(f"/users/<{ROW_ID}:user_id>/disable", defaults={"active": False})
@bp.post(f"/users/<{ROW_ID}:user_id>/enable", defaults={"active": True})
def user_status(user_id: int, active: bool) -> ResponseReturnValue:
    return _change(user_id, "status", active=active)


@bp.post(f"/users/<{ROW_ID}:user_id>/platform-admin/grant", defaults={"platform_admin": True})
@bp.post(f"/users/<{ROW_ID}:user_id>/platform-admin/revoke", defaults={"platform_admin": False})
def platform_admin_rights(user_id: int, platform_admin: bool) -> ResponseReturnValue:
    return _change(user_id, "platform-admin", platform_admin=platform_admin)


def _change(
    user_id: int, form: str, *, active: bool | None = None, platform_admin: bool | None = None
) -> ResponseReturnValue:
    actor = current_actor()
    require_platform(actor)  # anyone else learns 403, not whether the user exists
    db = database.session()
    user = get_user(db, actor, user_id)
    cursor = request.form.get("cursor", "").strip() or None
    try:
        changed = change_user(db, actor, user, active=active, platform_admin=platform_admin)
    except ServiceError as error:
        return _users_page(cursor, form_failure(f"{form}-{user.id}", error))
    if not changed:
        flash(_unchanged(user, active, platform_admin))
        return _back(user, cursor)
    current_app.extensions["pa_principals"].forget_user(user.id)
    orphaned = tenants_without_active_admin(db, user) if active is False else []
    yourself = actor.user is not None and actor.user.id == user.id
    if yourself and active is False:  # the service ended this session with the others
        log_out()
        flash(f"You disabled your own account ({user.email}); another platform admin can "
              f"enable it again.{_without_admin(orphaned)}")  # fmt: skip
        return redirect(url_for("auth.login"), 303)
    flash(_changed(user, active, platform_admin) + _without_admin(orphaned))
    if yourself and platform_admin is False:
        return redirect(url_for("pages.home"), 303)
    return _back(user, cursor)


def _changed(user: User, active: bool | None, platform_admin: bool | None) -> str:
    if active is True:
        return f"{user.email} enabled: they may log in, and their unexpired API tokens work again."
    if active is False:
        return (f"{user.email} disabled: they cannot log in, and every server refuses their "
                "sessions and API tokens within seconds.")  # fmt: skip
    if platform_admin:
        disabled = "" if user.is_active else " They are disabled: enable them to let them log in."
        return f"{user.email} is now a platform admin.{disabled}"
    return f"{user.email} is no longer a platform admin; their tenant roles stay."


def _without_admin(tenants: list[Tenant]) -> str:
    """The tenants a disabling left without an admin who can log in: allowed, so that nobody's
    offboarding waits, but said, since their members can no longer manage them."""
    if not tenants:
        return ""
    names = ", ".join(tenant.name for tenant in tenants)
    return (f" No admin of {names} can log in now: make another member admin there (platform "
            "admins still manage it).")  # fmt: skip


def _unchanged(user: User, active: bool | None, platform_admin: bool | None) -> str:
    if active is not None:
        return f"{user.email} was already {'enabled' if active else 'disabled'}."
    return f"{user.email} {'was already' if platform_admin else 'was not'} a platform admin."


def _back(user: User, cursor: str | None) -> Response:
    """The page of the list the form was sent from, at the user's row."""
    return redirect(url_for("users.users", cursor=cursor, _anchor=f"user-{user.id}"), 303)
