"""An invitation's link, ``/invitations/<token>``: see it, then accept it logged in.

* GET shows the invitation (tenant, role, the invited address) to anyone holding the link:
  logged in as the invited address, a button to join; logged in as anyone else, a refusal with a
  button to log out and come back; not logged in, one page for every address: log in as the
  invited address to accept (the login returns here), or, with no account yet, ask a platform
  admin for one and open the link again. Nothing on it depends on whether the address has an
  account, and no request through the link makes one (accounts are made by platform admins and
  the CLI only), so the link tells its holder nothing about that; the login answers alike for
  a wrong password and an unknown address, and is throttled (tenants/accounts.authenticate).
* POST ``accept`` (logged in, with the CSRF token) joins.
* Expired, revoked, used, replaced and unknown links, and those whose inviter may no longer grant
  them, get one page, with nothing to tell them apart (tenants.invitations.NotValid).
* Every answer here is ``Referrer-Policy: no-referrer`` (tenants/web.py), so the link's secret
  is not sent on in a Referer, and the access log redacts it (perfanalysis/serving.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from tenants import db as database
from tenants.access import Actor
from tenants.crypto import CredentialHasher
from tenants.errors import Forbidden
from tenants.invitations import NOT_VALID, WRONG_ACCOUNT, NotValid, accept, find_valid, same_address
from tenants.models import Invitation, User
from tenants.web import client_ip, current_actor, public

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
    response = make_response(render_template("invitation.html", **context), status)
    response.headers["Cache-Control"] = "no-store, max-age=0"
    return response


def _not_valid() -> Response:
    return _render(404, mode="invalid", message=NOT_VALID)


def _invitation_page(token: str, invitation: Invitation) -> Response:
    user = _user()
    if user is not None and not same_address(user, invitation):
        return _render(403, mode="wrong", message=WRONG_ACCOUNT, token=token, user=user)
    return _render(
        200,
        mode="confirm" if user is not None else "anonymous",
        invitation=invitation,
        tenant=invitation.tenant,
        token=token,
        login_url=url_for("auth.login", next=url_for("invitation.show", token=token)),
    )


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
