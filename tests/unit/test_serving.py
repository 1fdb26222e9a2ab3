"""perfanalysis.serving: what gunicorn's workers load."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask
from gunicorn.http.message import _check_fast_parser

from perfanalysis.redact import RedactingFilter, redact_credentials
from perfanalysis.serving import (
    GunicornApp,
    RedactingLogger,
    gunicorn_options,
    heartbeat_directory,
)
from tenants.web import public


class Built:
    """Stands for an app with the reference cycles apps have."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_what_loading_built_is_left_out_of_garbage_collection(unfrozen: None) -> None:
    made: list[Built] = []

    def factory() -> Built:
        made.append(Built())
        return made[-1]

    app = GunicornApp(factory, {"workers": 1}).load()

    assert app is made[0]
    assert gc.get_freeze_count() > 0
    assert not any(tracked is app for tracked in gc.get_objects())  # a collection skips it
    later = Built()
    assert any(tracked is later for tracked in gc.get_objects())  # what requests make is not


def test_requests_are_parsed_by_gunicorns_c_parser() -> None:
    """gunicorn falls back to its Python parser (about 1.5 times the CPU per request: 100 against
    68 us for a write's head here) when gunicorn_h1c is missing or a setting it cannot honour
    is on."""
    app = GunicornApp(lambda: None, gunicorn_options("127.0.0.1", 8000, 2, 4, timeout=40))
    assert _check_fast_parser(app.cfg)


def test_no_control_socket_is_shared_between_servers() -> None:
    app = GunicornApp(lambda: None, gunicorn_options("127.0.0.1", 8000, 2, 4))
    assert app.cfg.control_socket_disable


def test_workers_beat_their_heartbeat_in_memory_where_there_is_some(tmp_path: Path) -> None:
    app = GunicornApp(lambda: None, gunicorn_options("127.0.0.1", 8000, 2, 4))
    assert app.cfg.worker_tmp_dir == ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    assert heartbeat_directory(str(tmp_path)) == {"worker_tmp_dir": str(tmp_path)}
    assert heartbeat_directory(str(tmp_path / "missing")) == {}


SECRET = "Zq3_-" + "k" * 38  # 43 characters of the alphabet, "_" and "-" among them
LINK_TOKEN = f"pai_abcdefghijk23_{SECRET}"


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        (f"GET /invitations/{LINK_TOKEN} HTTP/1.1", "GET /invitations/pai_abcdefghijk23_[redacted] HTTP/1.1"),
        (f"http://admin.test/invitations/{LINK_TOKEN}", "http://admin.test/invitations/pai_abcdefghijk23_[redacted]"),
        (f"/login?next=%2Finvitations%2F{LINK_TOKEN}", "/login?next=/invitations/pai_abcdefghijk23_[redacted]"),
        ("GET /invitations/pai%5Fabcdefghijk23%5F" + SECRET.replace("_", "%5F") + "%22%0Ax HTTP/1.1",
         "GET /invitations/pai_abcdefghijk23_[redacted]%22%0Ax HTTP/1.1"),  # no forged line
        ("/login?next=%252Finvitations%252F" + LINK_TOKEN.replace("_", "%255F"),
         "/login?next=/invitations/pai_abcdefghijk23_[redacted]"),
        ("Bearer pat_abcdefghijk23_" + SECRET, "Bearer pat_abcdefghijk23_[redacted]"),
        ("GET /tenants/acme?q=%22a%20b%22 HTTP/1.1", "GET /tenants/acme?q=%22a%20b%22 HTTP/1.1"),
        ("-", "-"),
    ],
)  # fmt: skip
def test_credentials_secrets_are_redacted_encoded_or_not(text: str, logged: str) -> None:
    assert redact_credentials(text) == logged


def test_the_access_log_holds_no_invitation_secret(tmp_path: Path) -> None:
    """gunicorn's default format: request line, Referer; and a format naming the query and a
    header. Only the secret goes; the rest of the line is as gunicorn writes it."""
    log_path = tmp_path / "access.log"
    fmt = '%(h)s "%(r)s" %(s)s "%(f)s" "%(a)s" %(U)s %(q)s %({x-link}i)s'
    app = GunicornApp(
        lambda: None,
        gunicorn_options("127.0.0.1", 8000, 1, 1, accesslog=str(log_path), access_log_format=fmt),
    )
    assert app.cfg.logger_class is RedactingLogger
    logger = app.cfg.logger_class(app.cfg)
    try:
        link = f"/invitations/{LINK_TOKEN}"
        environ = {
            "REQUEST_METHOD": "GET",
            "RAW_URI": f"/login?next={link}",
            "PATH_INFO": "/login",
            "QUERY_STRING": f"next={link}",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "192.0.2.7",
            "HTTP_REFERER": f"http://admin.test{link}",
            "HTTP_USER_AGENT": 'curl "8"',
        }
        response = SimpleNamespace(status="200 OK", sent=12, headers=[])
        request = SimpleNamespace(headers=[("X-LINK", link)])
        logger.access(response, request, environ, timedelta(milliseconds=3))
        for handler in logger.access_log.handlers:
            handler.flush()
        written = log_path.read_text()
    finally:
        for handler in list(logger.access_log.handlers):
            logger.access_log.removeHandler(handler)
            handler.close()
    assert SECRET not in written
    shown = "/invitations/pai_abcdefghijk23_[redacted]"
    assert written == (
        f'192.0.2.7 "GET /login?next={shown} HTTP/1.1" 200 "http://admin.test{shown}" '
        f'"curl \\"8\\"" /login next={shown} {shown}\n'
    )


def test_the_admin_apps_own_log_holds_no_credential_secret(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """Flask logs an unhandled error as "Exception on <path>": an invitation's link there would
    let whoever reads the log use it."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def fail(link: str) -> str:
        raise RuntimeError("the database went away")

    app.add_url_rule("/invitations/<link>/fail", view_func=public(fail))
    secret = "pai_abcdefghijklm_" + "S" * 43
    with caplog.at_level(logging.ERROR):
        assert app.test_client().get(f"/invitations/{secret}/fail").status_code == 500
    logged = [record.getMessage() for record in caplog.records]
    assert "Exception on /invitations/pai_abcdefghijklm_[redacted]/fail [GET]" in logged
    assert "S" * 43 not in caplog.text


def test_redaction_survives_what_logging_survives() -> None:
    """A logging call whose arguments do not fit its format, and a lone surrogate beside a
    secret: logging reports or writes these; the redaction must not turn them into errors."""
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s and %s", ("one",), None)
    assert RedactingFilter().filter(record) is True
    assert record.args == ("one",)  # left for the handler to report
    text = "\ud800 /invitations/pai_abcdefghijklm_" + "S" * 43
    redacted = redact_credentials(text)
    assert "S" * 43 not in redacted
    assert "pai_abcdefghijklm_[redacted]" in redacted
