"""Login, logout and password change."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from tenants import db as database
from tenants.accounts import authenticate, change_password, throttle_for
from tenants.errors import Invalid, Throttled, Unauthenticated
from tenants.web import client_ip, current_actor, log_in, public

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a local path: an open redirect to another site is refused."""
    if not target:
        return url_for("pages.home") if "pages.home" in current_app.view_functions else "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    settings = current_app.config["PA_SETTINGS"]
    db = database.session()
    throttle = throttle_for(
        db, settings["redis_url"], settings["login_max_failures"], settings["login_window_seconds"]
    )
    email = request.form.get("email", "")
    try:
        user = authenticate(db, throttle, email, request.form.get("password", ""), client_ip())
    except Throttled as exc:
        return (
            render_template("login.html", error=exc.message, email=email),
            429,
            {"Retry-After": str(exc.retry_after)},
        )
    except Unauthenticated as exc:
        return render_template("login.html", error=exc.message, email=email), 401
    log_in(user)
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def password() -> Any:
    if request.method == "GET":
        return render_template("password.html")
    actor = current_actor()
    assert actor.user is not None
    database.session().refresh(actor.user)  # the request's user may come from a cache
    try:
        change_password(
            database.session(), actor.user, request.form.get("current_password", ""),
            request.form.get("new_password", ""), client_ip(),
        )  # fmt: skip
    except Invalid as exc:
        return render_template("password.html", error=exc.message), 400
    current_app.extensions["pa_principals"].forget_user(actor.user.id)
    log_in(actor.user)  # the password stamp changed: keep this session, end all others
    flash("Password changed.")
    return redirect(url_for("auth.password"))
