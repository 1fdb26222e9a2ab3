"""What a user meets when their session ended, their form's CSRF token is stale, or the page they
asked for does not exist: the login page and then the page the form was on (never a GET of the
form's POST-only action), the CSRF token kept across their own re-logins, and the app's error
page, with its header and a link back; the API's errors stay JSON."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import EnvironBuilder, TestResponse

from perfanalysis.gthread_worker import BODY_BUFFER, RequestTimeout
from tenants import db as database
from tenants.models import Collector
from tests.conftest import PASSWORD, csrf, issue_test_token
from tests.unit.test_admin_pages import (  # noqa: F401 (world is a fixture)
    ADMIN,
    ANALYST,
    html,
    logged_in,
    post,
    world,
)

SITE = "http://localhost"  # the test client's origin
RESUBMIT = "Your session had ended, so the form you sent was not saved"

pytestmark = pytest.mark.usefixtures("fast_password_hashing", "world")


def log_in_with(client: FlaskClient, email: str, **fields: str) -> TestResponse:
    client.get("/login")
    data = {"email": email, "password": PASSWORD, "csrf_token": csrf(client), **fields}
    return client.post("/login", data=data)


def login_query(response: TestResponse) -> dict[str, list[str]]:
    assert response.status_code == 302
    location = urlsplit(response.location)
    assert location.path == "/login"
    return parse_qs(location.query)


# --- a form sent after the session ended ----------------------------------------------------


def test_a_form_sent_after_the_session_ended_is_sent_again_from_its_page(app: Flask) -> None:
    with app.app_context():
        collector_id = database.session().scalar(
            select(Collector.id).where(Collector.name == "web-a")
        )
    client = app.test_client()  # no session cookie: the session ended
    disable = f"/tenants/a/collectors/{collector_id}/disable"
    sent = client.post(disable, headers={"Referer": f"{SITE}/tenants/a?q=web"})
    assert login_query(sent) == {"next": ["/tenants/a?q=web"], "resubmit": ["1"]}
    form = html(client.get(sent.location))
    assert "Your session has ended, so the form you sent was not saved." in form
    assert '<input type="hidden" name="next" value="/tenants/a?q=web">' in form
    assert '<input type="hidden" name="resubmit" value="1">' in form

    logged = log_in_with(client, ADMIN, next="/tenants/a?q=web", resubmit="1")
    assert logged.location == "/tenants/a?q=web"
    page = html(client.get(logged.location))
    assert RESUBMIT in page
    assert 'value="web"' in page  # the search the form was sent from
    assert f'action="{disable}"' in page  # nothing was done: the collector is still active


@pytest.mark.parametrize(
    "referrer",
    [
        None,
        "https://evil.test/tenants/a",
        "http://localhost.evil.test/tenants/a",
        f"{SITE}//evil.test/tenants/a",
        f"{SITE}/tenants/a/keys",  # a form's action: POST only
    ],
)
def test_after_the_login_a_form_sent_without_a_session_never_leaves_the_site(
    app: Flask, referrer: str | None
) -> None:
    headers = {"Referer": referrer} if referrer else {}
    sent = app.test_client().post("/tenants/a/keys", headers=headers)
    assert login_query(sent) == {"next": ["/"], "resubmit": ["1"]}


@pytest.mark.parametrize(
    ("wanted", "landed"),
    [
        ("/tenants/a?q=web", "/tenants/a?q=web"),
        ("/tenants/a/keys", "/"),  # POST only: a GET would be 405
        ("https://evil.test/", "/"),
        ("//evil.test/", "/"),
        ("/\\evil.test/", "/"),
        ("/\t/evil.test/", "/"),
    ],
)
def test_the_login_goes_next_only_to_a_page_of_the_site(
    app: Flask, wanted: str, landed: str
) -> None:
    assert log_in_with(app.test_client(), ADMIN, next=wanted).location == landed


def test_a_failed_login_keeps_where_to_go_and_the_resubmit_notice(app: Flask) -> None:
    client = app.test_client()
    client.get("/login")
    refused = client.post("/login", data={
        "email": ADMIN, "password": "wrong", "csrf_token": csrf(client),
        "next": "/tenants/a", "resubmit": "1"})  # fmt: skip
    assert refused.status_code == 401
    page = html(refused)
    assert '<input type="hidden" name="next" value="/tenants/a">' in page
    assert '<input type="hidden" name="resubmit" value="1">' in page


def test_logging_out_without_a_session_just_shows_the_login(app: Flask) -> None:
    sent = app.test_client().post("/logout", headers={"Referer": f"{SITE}/tenants/a"})
    assert sent.location == "/login"


# --- the CSRF token across logins -------------------------------------------------------------


def test_a_password_change_keeps_the_forms_of_other_tabs_working(app: Flask) -> None:
    client = logged_in(app, ANALYST)
    token = csrf(client)
    changed = post(client, "/account/password",
                   {"current_password": PASSWORD, "new_password": "a new password 5678"})  # fmt: skip
    assert changed.status_code == 302
    assert csrf(client) == token
    other_tab = client.post("/account/tokens", data={"name": "ci", "csrf_token": token})
    assert other_tab.status_code == 200


def test_the_same_user_logging_in_again_keeps_the_csrf_token_another_user_does_not(
    app: Flask,
) -> None:
    client = app.test_client()
    client.get("/login")
    anonymous = csrf(client)
    log_in_with(client, ANALYST)
    token = csrf(client)
    assert token != anonymous
    log_in_with(client, ANALYST)
    assert csrf(client) == token
    log_in_with(client, ADMIN)
    assert csrf(client) != token


def test_a_stale_csrf_token_is_the_apps_error_page_with_a_link_back(app: Flask) -> None:
    client = logged_in(app, ADMIN)
    fields = {"name": "web9", "hostname": "web9.a.test", "csrf_token": "stale"}
    refused = client.post("/tenants/a/collectors", data=fields,
                          headers={"Referer": f"{SITE}/tenants/a?q=web"})  # fmt: skip
    assert refused.status_code == 400
    page = html(refused)
    assert '<header class="top">' in page
    assert "<h1>400 · Bad request</h1>" in page
    assert "security token (CSRF)" in page
    assert '<a href="/tenants/a?q=web">Back to the page you came from</a>' in page
    foreign = client.post("/tenants/a/collectors", data=fields,
                          headers={"Referer": "https://evil.test/tenants/a"})  # fmt: skip
    assert foreign.status_code == 400
    assert "Back to the page you came from" not in html(foreign)


# --- error pages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "heading"),
    [
        ("GET", "/tenants/a/nope", 404, "404 · Not found"),
        ("GET", "/nowhere", 404, "404 · Not found"),
        ("GET", "/tenants/a/keys", 405, "405 · Method not allowed"),
        ("POST", "/account/tokens/nope/revoke", 404, "404 · Not found"),
    ],
)
def test_http_errors_are_the_apps_error_page(
    app: Flask, method: str, path: str, status: int, heading: str
) -> None:
    client = logged_in(app, ADMIN)
    response = client.open(path, method=method, data={"csrf_token": csrf(client)},
                           headers={"Referer": f"{SITE}/tenants/a"})  # fmt: skip
    assert response.status_code == status
    assert response.mimetype == "text/html"
    page = html(response)
    assert '<header class="top">' in page
    assert f"<h1>{heading}</h1>" in page
    assert '<a href="/tenants/a">Back to the page you came from</a>' in page
    if status == 405:
        assert "POST" in response.headers["Allow"]


def test_api_errors_stay_json(app: Flask) -> None:
    headers = {"Authorization": f"Bearer {issue_test_token(app, ADMIN)}"}
    response = app.test_client().get("/api/v1/nowhere", headers=headers)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


# --- bodies from clients not signed in ------------------------------------------------------


def test_a_large_or_chunked_body_without_a_session_is_refused_before_it_is_read(
    app: Flask,
) -> None:
    """Larger than what the worker reads before a thread takes the request: trickled in, it
    would hold that thread for web.request-timeout, without any credential."""
    client = app.test_client()
    client.get("/login")
    filler = "x" * (BODY_BUFFER + 1)
    large = client.post("/login", data={"csrf_token": csrf(client), "email": filler})
    assert large.status_code == 413
    assert f"without one, at most {BODY_BUFFER} bytes" in html(large)
    environ = login_post_environ(b"7\r\nemail=a\r\n0\r\n\r\n")
    del environ["CONTENT_LENGTH"]
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    chunked = client.open(environ)
    assert chunked.status_code == 411
    small = client.post("/login", data={"csrf_token": csrf(client), "email": "x" * 1000})
    assert small.status_code == 401  # read and judged: no such user
    signed_in = logged_in(app, ADMIN)
    name = "y" * (BODY_BUFFER + 1)
    refused = post(signed_in, "/tenants/a/collectors", {"name": name, "hostname": "big.test"})
    assert refused.status_code == 400  # read and judged: the name is too long, not 413


def test_a_body_over_the_limit_is_refused_with_the_limit_named(app: Flask) -> None:
    analyst = logged_in(app, ANALYST)
    upload = analyst.post(
        "/tenants/a/loadtests", content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"{" + b" " * (2 << 20) + b"}"), "result.json"),
              "csrf_token": csrf(analyst)},
    )  # fmt: skip
    said = "larger than the limit of 1 MiB (1,048,576 bytes); nothing was stored"
    assert upload.status_code == 413
    assert said in html(upload)
    token = issue_test_token(app, ANALYST)
    api = app.test_client().post("/api/v1/tenants/a/loadtests", data=b" " * (2 << 20),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})  # fmt: skip
    assert api.status_code == 413
    assert said in api.get_json()["error"]["message"]


def login_post_environ(body: bytes) -> dict[str, Any]:
    builder = EnvironBuilder(
        path="/login", method="POST", data=body, content_type="application/x-www-form-urlencoded"
    )
    return builder.get_environ()


class CutOff(io.RawIOBase):
    """A request body the server stopped waiting for (perfanalysis.gthread_worker)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise RequestTimeout(60.0)


def test_a_body_the_server_stopped_waiting_for_is_answered_408(app: Flask) -> None:
    environ = login_post_environ(b"x" * 100)
    environ["wsgi.input"] = CutOff()  # straight to the app: the test client would read it first
    statuses: list[str] = []
    page = b"".join(app(environ, lambda status, headers, *_: statuses.append(status)))
    assert statuses == ["408 REQUEST TIMEOUT"]
    assert b"the request did not arrive whole within 60 s; send it again" in page
