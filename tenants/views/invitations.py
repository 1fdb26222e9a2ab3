"""An invitation's link, ``/invitations/<token>``: see it, then accept it or sign up through it.

* GET shows the invitation (tenant, role, the invited address) to anyone holding the link:
  logged in as the invited address, a button to join; logged in as anyone else, a refusal with a
  button to log out and come back; not logged in, both ways in, whichever applies: log in
  (the login returns here) or choose a password for a new account. The page is the same whether
  or not the address has an account, so the link tells nothing about that either.
* POST ``accept`` (logged in) and POST ``signup`` (not logged in) act, each with the CSRF token;
  a sign-up creates the account and its membership in one transaction and logs it in.
* A sign-up for an address that has an account is refused ("log in instead") and counted by the
  login throttle as a failed login for that address, so that it cannot be used to probe
  addresses at speed; the throttle refuses sign-ups, as logins, once it has counted too many.
* Expired, revoked, used, replaced and unknown links get one page, with nothing to tell them
  apart (tenants.invitations.NotValid).
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from tenants import db as database
from tenants.access import Actor
from tenants.accounts import throttle_for
from tenants.audit import record
from tenants.crypto import CredentialHasher
from tenants.errors import Conflict, Forbidden, Invalid, Throttled
from tenants.invitations import (
    NOT_VALID,
    WRONG_ACCOUNT,
    NotValid,
    accept,
    find_valid,
    same_address,
    sign_up,
)
from tenants.models import Invitation, User
from tenants.views.pages import Failure
from tenants.web import client_ip, current_actor, log_in, public

bp = Blueprint("invitation", __name__)


def _db() -> Session:
    return database.session()


def _hasher() -> CredentialHasher:
    hasher: CredentialHasher = current_app.extensions["pa_hasher"]
    return hasher


def _user() -> User | None:
    actor: Actor | None = current_actor()
    return actor.user if actor is not None else None


def _render(status: int, **context: Any) -> Response:
    headers: dict[str, str] = context.pop("headers", None) or {}
    response = make_response(render_template("invitation.html", **context), status)
    response.headers["Cache-Control"] = "no-store, max-age=0"
    response.headers.update(headers)
    return response


def _not_valid() -> Response:
    return _render(404, mode="invalid", message=NOT_VALID)


def _invitation_page(
    token: str, invitation: Invitation, failure: Failure | None = None, **extra: Any
) -> Response:
    user = _user()
    if user is not None and not same_address(user, invitation):
        return _render(403, mode="wrong", message=WRONG_ACCOUNT, token=token, user=user)
    context = {
        "mode": "confirm" if user is not None else "anonymous",
        "invitation": invitation,
        "tenant": invitation.tenant,
        "token": token,
        "failure": failure,
        "error": failure.message if failure else None,
        "login_url": url_for("auth.login", next=url_for("invitation.show", token=token)),
    }
    return _render(failure.status if failure else 200, **context, **extra)


@bp.get("/invitations/<token>")
@public
def show(token: str) -> ResponseReturnValue:
    try:
        invitation = find_valid(_db(), _hasher(), token)
    except NotValid:
        return _not_valid()
    return _invitation_page(token, invitation)


@bp.post("/invitations/<token>/accept")
def accept_invitation(token: str) -> ResponseReturnValue:
    user = _user()
    assert user is not None, "web.py sends anyone not logged in to the login page"
    db = _db()
    try:
        invitation = find_valid(db, _hasher(), token)
        membership = accept(db, invitation, user, client_ip())
    except NotValid:
        return _not_valid()
    except Forbidden:
        return _render(403, mode="wrong", message=WRONG_ACCOUNT, token=token, user=user)
    tenant = membership.tenant
    flash(f"You are now {membership.role} in {tenant.name}.")
    return redirect(url_for("pages.tenant", slug=tenant.slug), 303)


@bp.post("/invitations/<token>/signup")
@public
def signup(token: str) -> ResponseReturnValue:
    db = _db()
    try:
        invitation = find_valid(db, _hasher(), token)
    except NotValid:
        return _not_valid()
    if _user() is not None:  # logged in meanwhile (another tab): join or be refused from here
        return redirect(url_for("invitation.show", token=token), 303)
    settings = current_app.config["PA_SETTINGS"]
    throttle = throttle_for(
        db, settings["redis_url"], settings["login_max_failures"], settings["login_window_seconds"]
    )
    email, ip = invitation.email, client_ip()
    try:
        throttle.check(email, ip)
        user = sign_up(
            db, invitation, request.form.get("password", ""), request.form.get("name", ""), ip
        )
    except NotValid:
        return _not_valid()
    except Throttled as exc:
        failure = _refused(exc.message, None, exc.status)
        return _invitation_page(
            token, invitation, failure, headers={"Retry-After": str(exc.retry_after)}
        )
    except Conflict as exc:  # the address has an account: log in instead
        db.rollback()
        # in the platform's log only: a tenant's log would tell its admins the account exists
        record(db, Actor(None, email, ip), "invitation.signup_refused", None, "invitation",
               invitation.id, tenant_slug=invitation.tenant.slug)  # fmt: skip
        db.commit()
        throttle.failed(email, ip)
        return _invitation_page(token, invitation, _refused(exc.message, None, exc.status))
    except Invalid as exc:
        return _invitation_page(token, invitation, _refused(exc.message, exc.field, exc.status))
    throttle.succeeded(email, ip)
    log_in(user)
    tenant = invitation.tenant
    flash(f"Welcome, your account is ready: you are {invitation.role} in {tenant.name}.")
    return redirect(url_for("pages.tenant", slug=tenant.slug), 303)


def _refused(message: str, field: str | None, status: int) -> Failure:
    _db().rollback()
    values = {name: value for name, value in request.form.items() if "password" not in name}
    return Failure("signup", message, field, values, status)
