"""Login, logout, and the account page: password change and personal API tokens.

A new token is shown once, in the no-store page that answers its form, as a new collector key is
(see tenants/views/pages.py): a reloaded or resent form is recognised by its one-time form id
and redirected, and the plaintext is kept nowhere.
"""

from __future__ import annotations

from dataclasses import replace
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
from werkzeug.wrappers import Response

from tenants import db as database
from tenants import validation, websessions
from tenants.accounts import (
    MAX_TOKEN_EXPIRY_DAYS,
    authenticate,
    change_password,
    get_token,
    issue_token,
    list_tokens,
    revoke_token,
    token_state,
)
from tenants.errors import Conflict, Invalid, Throttled, Unauthenticated
from tenants.models import User, utcnow
from tenants.throttle import Throttle, throttle_for
from tenants.views.pages import Failure, first_submission
from tenants.web import client_ip, current_actor, log_in, log_out, page_or_home, public

bp = Blueprint("auth", __name__)
RESUBMIT = (
    "Your session had ended, so the form you sent was not saved: "
    "please fill it in and send it again."
)


def _safe_next(target: str | None) -> str:
    """Only a page of this site: an open redirect to another site, or a GET of a form's
    POST-only action, is refused."""
    if not target:
        return url_for("pages.home") if "pages.home" in current_app.view_functions else "/"
    return page_or_home(target)


def _login_page(status: int = 200, **context: Any) -> Any:
    """The login form, carrying where to go next and whether a form must be sent again."""
    source = request.args if request.method == "GET" else request.form
    html = render_template(
        "login.html", next=source.get("next", ""), resubmit=bool(source.get("resubmit")), **context
    )
    return html, status


def _throttle() -> Throttle:
    """The login throttle, which a password change's current password counts in too."""
    settings = current_app.config["PA_SETTINGS"]
    return throttle_for(
        database.session(), settings["redis_url"], settings["login_max_failures"],
        settings["login_window_seconds"], settings["secret_key"].encode(),
    )  # fmt: skip


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    if request.method == "GET":
        return _login_page()
    email = request.form.get("email", "")
    try:
        user = authenticate(
            database.session(), _throttle(), email, request.form.get("password", ""), client_ip()
        )
    except Throttled as exc:
        html, status = _login_page(429, error=exc.message, email=email)
        return html, status, {"Retry-After": str(exc.retry_after)}
    except Unauthenticated as exc:
        return _login_page(401, error=exc.message, email=email)
    log_in(user)
    if request.form.get("resubmit"):
        flash(RESUBMIT)
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """End the session; then the login page, or ``next`` if it is a page of this site (an
    invitation's link, opened while logged in as someone else)."""
    target = request.form.get("next")
    log_out()
    return redirect(page_or_home(target) if target else url_for("auth.login"))


def _signed_in_user() -> User:
    user = current_actor().user
    assert user is not None, "web.py sends anyone not logged in to the login page"
    return user


def _account_page(failure: Failure | None = None) -> Any:
    user = _signed_in_user()
    now = utcnow()
    tokens = [(token, token_state(token, now)) for token in list_tokens(database.session(), user)]
    html = render_template(
        "account.html", user=user, tokens=tokens, max_expiry_days=MAX_TOKEN_EXPIRY_DAYS,
        failure=failure, error=failure.message if failure else None,
    )  # fmt: skip
    return html, failure.status if failure else 200


def _refused(form: str, error: Invalid | Conflict) -> Failure:
    database.session().rollback()
    values = {name: value for name, value in request.form.items() if "password" not in name}
    return Failure(form, error.message, error.field, values, error.status)


@bp.get("/account")
def account() -> Any:
    return _account_page()


@bp.route("/account/password", methods=["GET", "POST"])
def password() -> Any:
    if request.method == "GET":
        return redirect(url_for("auth.account", _anchor="password"))
    user = _signed_in_user()
    database.session().refresh(user)  # the request's user may come from a cache
    try:
        change_password(
            database.session(), _throttle(), user, request.form.get("current_password", ""),
            request.form.get("new_password", ""), client_ip(),
        )  # fmt: skip
    except Throttled as exc:
        message = "too many wrong passwords; try again later"
        failure = _refused("password", Invalid(message, "current_password"))
        html, status = _account_page(replace(failure, status=exc.status))
        return html, status, {"Retry-After": str(exc.retry_after)}
    except Invalid as exc:
        return _account_page(_refused("password", exc))
    websessions.end_all(database.session(), user.id)
    current_app.extensions["pa_principals"].forget_user(user.id)
    log_in(user)  # a new session for this browser; every other one has ended
    flash("Password changed.")
    return redirect(url_for("auth.account"))


@bp.post("/account/tokens")
def create_token() -> Any:
    user = _signed_in_user()
    back_url = url_for("auth.account", _anchor="tokens")
    try:
        days = validation.optional_int(
            request.form.get("expires_in_days"), "expires_in_days", 1, MAX_TOKEN_EXPIRY_DAYS
        )
        if not first_submission():
            flash(
                "That form was already sent: its token was shown once and cannot be shown "
                "again. If you did not copy it, revoke it and create a new one."
            )
            return redirect(back_url, 303)
        token, plaintext = issue_token(
            database.session(), user, current_app.extensions["pa_hasher"],
            request.form.get("name", ""), client_ip(), expires_in_days=days,
        )  # fmt: skip
    except (Invalid, Conflict) as exc:
        return _account_page(_refused("token", exc))
    html = render_template("token_issued.html", token=token, plaintext=plaintext,
                           back_url=back_url)  # fmt: skip
    response = make_response(html, 200)
    response.headers["Cache-Control"] = "no-store, max-age=0"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/account/tokens/<token_id>/revoke")
def revoke_token_page(token_id: str) -> Response:
    db = database.session()
    token = revoke_token(db, current_actor(), get_token(db, _signed_in_user(), token_id))
    current_app.extensions["pa_principals"].forget_token(token.token_id)
    flash(
        f"Token pat_{token.token_id}_… ({token.name}) revoked: the API refuses it within seconds."
    )
    return redirect(url_for("auth.account", _anchor="tokens"), 303)
