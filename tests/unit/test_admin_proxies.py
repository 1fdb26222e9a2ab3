"""``web.trusted-proxies``: whose address the audit log records behind a reverse proxy."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine

from perfanalysis.config import ConfigError
from tenants import db as database
from tenants.models import AuditEvent
from tests.conftest import PASSWORD

FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def _app(admin_settings: dict[str, Any], migrated_engine: Engine, hops: int) -> Flask:
    from tenants.app import create_app
    from tests.conftest import empty_tables

    empty_tables(migrated_engine)
    return create_app({**admin_settings, "web_trusted_proxies": hops})


def _login_address(app: Flask, make_user_email: str, headers: dict[str, str]) -> str:
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    answer = client.post(
        "/login",
        data={"email": make_user_email, "password": PASSWORD, "csrf_token": token},
        headers=headers,
    )
    assert answer.status_code == 302
    with app.app_context():
        event = database.session().scalar(
            select(AuditEvent).where(AuditEvent.action == "login.success")
        )
        assert event is not None
        return event.ip


@pytest.mark.parametrize(("hops", "expected"), [(0, "127.0.0.1"), (1, "203.0.113.9")])
def test_the_audit_log_records_the_client_behind_trusted_proxies_only(
    admin_settings: dict[str, Any], migrated_engine: Engine, hops: int, expected: str
) -> None:
    from tenants.access import system_actor
    from tenants.accounts import create_user

    app = _app(admin_settings, migrated_engine, hops)
    try:
        with app.app_context():
            create_user(database.session(), system_actor(), "ana@acme.test", PASSWORD)
        assert _login_address(app, "ana@acme.test", FORWARDED) == expected
    finally:
        app.extensions["pa_engine"].dispose()


@pytest.mark.parametrize("bad", ["-1", "x", "6", "1.5"])
def test_a_bad_proxy_count_is_refused_naming_the_setting(bad: str) -> None:
    from tenants.settings import load

    with pytest.raises(ConfigError, match=r"web\.trusted-proxies"):
        load(["--web.trusted-proxies", bad], {"PERFANALYSIS_ADMIN_SECRET_KEY": "k" * 40})
