"""Request-level security for the admin app: who is acting, login by default, CSRF on writes.

* Every view requires a logged-in user unless decorated with ``@public``.
* /api/v1 accepts ``Authorization: Bearer pat_…`` (a user's API token) or the session cookie.
* Every state-changing request authenticated by the session cookie must carry the session's CSRF
  token: the ``csrf_token`` form field, or the ``X-CSRF-Token`` header for scripts on our pages.
  Bearer-token requests carry no cookie and need none.
* A form sent after the session ended goes to the login page, and from there back to the page the
  form was on (never to the form's POST-only action), with a flash asking to send it again.
* Errors outside /api are the app's error page (header, message, a link back); under /api, JSON.
* Every answer but a static file is ``Cache-Control: no-store`` (error pages too: they show the
  signed-in user and the CSRF token). Over HTTPS (served directly, or as a trusted proxy's
  X-Forwarded-Proto says) or with a Secure session cookie, answers carry HSTS.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from flask import (
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.exceptions import RequestTimeout as RequestTimeoutError
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response

from perfanalysis.gthread_worker import BODY_BUFFER, RequestTimeout
from tenants import db as database
from tenants import websessions
from tenants.access import Actor
from tenants.crypto import split_credential
from tenants.errors import ServiceError, StorageUnavailable, Unauthenticated
from tenants.influx import StorageError
from tenants.models import User

F = TypeVar("F", bound=Callable[..., Any])
MAX_ROW_ID = 2**31 - 1  # the database's integer: a larger id names no row and would overflow it
ROW_ID = f"int(min=1, max={MAX_ROW_ID})"  # the URL converter of an id: 404 beyond that range
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_BODY_BYTES = 1 << 20  # a request body (a load test's result file is the largest)
HSTS = "max-age=31536000"  # a year; not includeSubDomains: other hosts of the domain are not ours


def public(view: F) -> F:
    view.pa_public = True  # type: ignore[attr-defined]
    return view


def collector_endpoint(view: F) -> F:
    """The view accepts ``Authorization: Token <collector key>`` (e.g. load-test uploads).

    The request then runs with ``g.collector`` (a tenants.keys.Identity) and no user: the view
    must act only within that identity's tenant.
    """
    view.pa_collector = True  # type: ignore[attr-defined]
    return view


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    token: str = session["csrf"]
    return token


def is_api() -> bool:
    return request.path.startswith("/api/")


def current_actor() -> Actor:
    actor: Actor = g.actor
    return actor


def client_ip() -> str:
    return request.remote_addr or ""


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site (``/tenants/a?q=x``), else None: never another
    site's URL, nor what a browser reads as one (``//host``, ``/\\host``, a control character)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if any(char == "\\" or char <= " " or char == "\x7f" for char in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def referring_page() -> str | None:
    """The path and query of the page on this site the request came from (its Referer)."""
    referrer = urlsplit(request.referrer or "")
    here = urlsplit(request.host_url)
    if (referrer.scheme, referrer.netloc) != (here.scheme, here.netloc):
        return None
    return local_path(urlunsplit(("", "", referrer.path, referrer.query, "")))


def page_or_home(target: str | None) -> str:
    """``target`` when it is a page of this site that a GET shows, else ``/``: never another
    site, nor a form's POST-only action."""
    page = local_path(target)
    return page if page is not None and _is_page(page) else "/"


def _is_page(path: str) -> bool:
    """Whether a GET of the local ``path`` shows a page: false for a form's POST-only action."""
    route = urlsplit(path).path.removeprefix(request.script_root)
    try:
        current_app.url_map.bind_to_environ(request.environ).match(route, method="GET")
    except RequestRedirect:  # the same page with a trailing slash
        return True
    except HTTPException:  # MethodNotAllowed for a form's action, or NotFound
        return False
    return True


def _authenticate() -> Response | None:
    g.actor = None
    g.collector = None
    header = request.headers.get("Authorization", "")
    view = current_app.view_functions.get(request.endpoint or "")
    if is_api() and header:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "token" and getattr(view, "pa_collector", False):
            g.collector = current_app.extensions["pa_key_verifier"].verify(credential)
            g.via_token = True  # g.actor stays None: a collector key is no user
            return None
        if scheme.lower() != "bearer":
            raise Unauthenticated(_credential_hint(view, "use 'Authorization: Bearer <API token>'"))
        principals = current_app.extensions["pa_principals"]
        user = principals.user_for_token(database.session(), credential)
        parts = split_credential(credential)
        assert parts is not None, "user_for_token refuses a malformed token"
        g.actor = Actor(user, user.email, client_ip(), token_id=parts[1])
        g.via_token = True
        return None
    g.via_token = False
    user_id = session.get("user_id")
    if user_id is not None:
        principals = current_app.extensions["pa_principals"]
        session_user = principals.user_for_session(
            database.session(), user_id, session.get("pw"), session.get("sid")
        )
        if session_user is not None:
            g.actor = Actor(session_user, session_user.email, client_ip())
        else:
            session.clear()  # logged out, a password change or a disabled account
    if g.actor is None and not getattr(view, "pa_public", False) and request.endpoint != "static":
        if is_api():
            raise Unauthenticated(
                _credential_hint(view, "log in or send 'Authorization: Bearer <API token>'")
            )
        return _to_login()
    return None


def _credential_hint(view: Any, for_users: str) -> str:
    """What a refused request should send: a collector endpoint is for collector keys."""
    if getattr(view, "pa_collector", False):
        return "this endpoint takes a collector key: send 'Authorization: Token pak_…'"
    return for_users


def _to_login() -> Response:
    """The login page, then this page; a form sent after the session ended returns to the page it
    was on, where it is sent again (its action may take only POST)."""
    if request.method in SAFE_METHODS:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if request.endpoint == "auth.logout":
        return redirect(url_for("auth.login"))
    return redirect(url_for("auth.login", next=page_or_home(referring_page()), resubmit=1))


def _limit_anonymous_bodies() -> None:
    """A client not signed in may send only a body that the worker's event loop reads whole
    before a thread takes the request (perfanalysis.gthread_worker). A larger one, trickled in,
    would hold a thread for web.request-timeout without any credential."""
    if request.method in SAFE_METHODS or g.actor is not None or g.get("via_token"):
        return
    length = request.content_length
    if length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        abort(411, description="Send the body with a Content-Length, not chunked.")
    if length is not None and length > BODY_BUFFER:
        abort(
            413,
            description=f"A request body of {length} bytes needs a signed-in session or an API "
            f"token; without one, at most {BODY_BUFFER} bytes.",
        )


def _check_csrf() -> None:
    """Refuse a cookie-authenticated write without the session's token. A request that no route
    takes (404, or 405 for its method) changes nothing, and is told that instead."""
    unrouted = request.routing_exception is not None
    if request.method in SAFE_METHODS or g.get("via_token") or unrouted:
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf", "")
    # as bytes: compare_digest refuses str with characters beyond ASCII (TypeError, a 500)
    if not expected or not hmac.compare_digest(_utf8(sent), _utf8(expected)):
        if is_api():
            raise ServiceError("missing or wrong CSRF token: send the X-CSRF-Token header", None)
        abort(
            400,
            description="The form was missing its security token (CSRF), or it comes from an "
            "earlier login. Go back to the page, reload it and send the form again.",
        )


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def log_in(user: User) -> None:
    """A fresh session for ``user``, recorded server-side (tenants.websessions); the one this
    browser had ends. The same user logging in again or changing their password keeps the CSRF
    token, so that the forms open in their other tabs still work."""
    kept_csrf = session.get("csrf") if session.get("user_id") == user.id else None
    log_out()
    session["sid"] = websessions.start(
        database.session(), user, current_app.permanent_session_lifetime
    )
    session["user_id"] = user.id
    session["pw"] = user.password_changed_at.isoformat()
    session.permanent = True
    if kept_csrf:
        session["csrf"] = kept_csrf
    csrf_token()


def log_out() -> None:
    """End this browser's session, server-side too: a copy of its cookie no longer signs in."""
    session_id = session.get("sid")
    if session_id:
        websessions.end(database.session(), session_id)
        current_app.extensions["pa_principals"].forget_session(session_id)
    session.clear()


def _carries_an_invitation() -> bool:
    """An invitation's pages, and the login page on the way back to one (``?next=``): their
    URL holds the link's secret, which a Referer would send on with every request the page makes
    (its stylesheet, its forms), into logs of ours and of proxies."""
    next_page = request.args.get("next", "")
    return request.path.startswith("/invitations/") or next_page.startswith("/invitations/")


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault(
        "Referrer-Policy", "no-referrer" if _carries_an_invitation() else "same-origin"
    )
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    )
    if not _is_static_file(response):  # pages, API answers and every error page
        response.headers.setdefault("Cache-Control", "no-store")
    if request.is_secure or current_app.config["SESSION_COOKIE_SECURE"]:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def _is_static_file(response: Response) -> bool:
    """A stylesheet or script served: cacheable. An error page on a static path is not: it
    shows the signed-in user's e-mail and the session's CSRF token, as every page does."""
    return request.endpoint == "static" and response.status_code < 400


def _service_error(error: ServiceError) -> Any:
    if is_api():
        response = jsonify(error.body())
        response.status_code = error.status
        if getattr(error, "retry_after", None):
            response.headers["Retry-After"] = str(error.retry_after)  # type: ignore[attr-defined]
        return response
    if isinstance(error, Unauthenticated):
        return redirect(url_for("auth.login"))
    return _error_page(error.status, error.message)


def _error_page(status: int, message: str, title: str | None = None) -> tuple[str, int]:
    """The app's error page: its header, the message, and a link back to the page before."""
    back_url = referring_page()
    if back_url == request.full_path.rstrip("?"):
        back_url = None
    html = render_template(
        "error.html", status=status, title=title, message=message, back_url=back_url
    )
    return html, status


def _storage_error(error: StorageError) -> Any:
    current_app.logger.error("tenant storage: %s", error)  # names the statement, never a password
    return _service_error(
        StorageUnavailable("the tenant storage (InfluxDB) refused or did not answer; try again")
    )


def _client_disconnected(error: ClientDisconnected) -> Any:
    """werkzeug's answer when a body stops coming: 408 when it was the server that stopped
    waiting for the rest (web.request-timeout, perfanalysis.gthread_worker)."""
    if isinstance(error.__context__, RequestTimeout):
        return _http_error(RequestTimeoutError(f"{error.__context__}; send it again"))
    return _http_error(error)


def _too_large(error: RequestEntityTooLarge) -> RequestEntityTooLarge:
    """werkzeug's 413 for a body over MAX_BODY_BYTES, in words that say the limit."""
    if error.description != RequestEntityTooLarge.description:
        return error  # one of ours, which says it already
    limit = request.max_content_length
    if limit is not None and (request.content_length is None or request.content_length > limit):
        described = (f"The request body is larger than the limit of {limit >> 20} MiB "
                     f"({limit:,} bytes); nothing was stored.")  # fmt: skip
    else:  # a form field over Flask's MAX_FORM_MEMORY_SIZE, or too many parts
        described = (
            "A part of the form is too large, or the form has too many parts; nothing was stored."
        )
    return RequestEntityTooLarge(description=described)


def _http_error(error: HTTPException) -> Any:
    if isinstance(error, RequestEntityTooLarge):
        error = _too_large(error)
    if not is_api():
        html, status = _error_page(error.code or 500, error.description or "", error.name)
        headers = [(name, value) for name, value in error.get_headers()
                   if name.lower() != "content-type"]  # fmt: skip
        return html, status, headers
    code = (error.name or "error").lower().replace(" ", "_")
    response = jsonify({"error": {"code": code, "message": error.description or error.name}})
    response.status_code = error.code or 500
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value  # e.g. Allow on 405
    return response


def init_app(app: Flask) -> None:
    app.before_request(_authenticate)
    app.before_request(_limit_anonymous_bodies)
    app.before_request(_check_csrf)
    app.after_request(_security_headers)
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(StorageError, _storage_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ClientDisconnected, _client_disconnected)
    app.jinja_env.globals["csrf_token"] = csrf_token
