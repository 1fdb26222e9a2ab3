"""What InfluxDB clients read in ingest's answers besides the points (the audit of 2026-11-24
against InfluxDB 1.6.7, influxdb-client and Telegraf): the status of a body that came too
slowly, the challenges of a 401, /health and /ready in InfluxDB 2.x's shapes, Flask's refusals
in JSON, and a storage timeout below the clients' own."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from influxdb_client.domain.health_check import HealthCheck
from influxdb_client.domain.ready import Ready
from sqlalchemy.orm import sessionmaker
from werkzeug.serving import make_server

from ingest.app import create_app
from ingest.settings import load
from ingest.testing import CollectorKey, issue_collector_key
from perfanalysis import devstack
from perfanalysis.gthread_worker import RequestTimeout
from tenants.crypto import CredentialHasher
from tenants.db import make_engine, transaction
from tenants.schema import upgrade

SECRET = "s" * 40
TELEGRAF_TIMEOUT = 5.0  # seconds: outputs.influxdb(_v2)'s default "timeout"


@pytest.fixture
def ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """An ingest app on a migrated SQLite admin database; storage answers /health's check."""
    url = f"sqlite:///{tmp_path / 'admin.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    app = create_app(load([f"--secret-key={SECRET}", f"--database-url={url}"], {}))
    monkeypatch.setattr(app.extensions["ingest"].writer, "health", lambda: "ok")
    yield app
    app.extensions["ingest"].close()


@pytest.fixture
def key(ingest: Flask) -> CollectorKey:
    sessions = sessionmaker(ingest.extensions["ingest"].engine, expire_on_commit=False)
    with transaction(sessions) as db:
        return issue_collector_key(db, CredentialHasher(SECRET), "acme", "web-01")


class _StalledBody(io.BytesIO):
    """A body the worker gave up waiting for: what perfanalysis.gthread_worker raises."""

    def read(self, size: int | None = -1) -> bytes:
        raise RequestTimeout(2.0)


# ----------------------------------------------------------------------------------------------
# 1. A body that came too slowly: 503 with Retry-After, which clients retry (not 408)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v2/write?bucket=b&org=o", {}),
        ("/write?db=telegraf", {}),
        ("/query", {"Content-Type": "application/x-www-form-urlencoded"}),  # Telegraf's form
    ],
)
def test_a_body_that_came_too_slowly_is_503_with_retry_after(
    ingest: Flask, key: CollectorKey, path: str, headers: dict[str, str]
) -> None:
    """Before: 408, on which influxdb-client (it retries 429 and above) and Telegraf (it drops
    a 4xx it does not name) dropped the batch for good."""
    response = ingest.test_client().post(
        path,
        input_stream=_StalledBody(),
        content_length=100_000,
        headers={"Authorization": f"Token {key.key}", **headers},
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json() == {
        "code": "unavailable",
        "message": (
            "the request body arrived too slowly (the request did not arrive whole within 2 s) "
            "and nothing was stored: send it again (in smaller batches if this recurs)"
        ),
        "error": (
            "the request body arrived too slowly (the request did not arrive whole within 2 s) "
            "and nothing was stored: send it again (in smaller batches if this recurs)"
        ),
    }


# ----------------------------------------------------------------------------------------------
# 2. A 401 challenges for Basic (InfluxDB 1.x's) and Token


@pytest.mark.parametrize("path", ["/write?db=x", "/api/v2/write?bucket=b", "/query?q=x"])
def test_a_401_offers_basic_then_token(ingest: Flask, path: str) -> None:
    """Before: Token alone, so clients that send Basic credentials only once challenged for
    them (curl --anyauth, urllib's HTTPBasicAuthHandler) never sent the key."""
    for headers in ({}, {"Authorization": "Token not-a-key"}):
        response = ingest.test_client().post(path, data="cpu value=1", headers=headers)
        assert response.status_code == 401
        assert response.headers.get_all("WWW-Authenticate") == [
            'Basic realm="perfanalysis ingest"',
            'Token realm="perfanalysis ingest"',
        ]


def test_a_401_for_a_key_in_the_url_offers_both_too(ingest: Flask, key: CollectorKey) -> None:
    response = ingest.test_client().post(f"/write?db=x&p={key.key}", data="cpu value=1")
    assert response.status_code == 401
    assert len(response.headers.get_all("WWW-Authenticate")) == 2
    assert "rotate it" in response.get_json()["message"]


# ----------------------------------------------------------------------------------------------
# 3. Query parameters that only look like credentials are taken


def test_u_alone_and_a_value_holding_pak_are_no_credentials(
    ingest: Flask, key: CollectorKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: 401 "credentials in the URL ... rotate it" for both."""
    service = ingest.extensions["ingest"].service
    written: list[bytes] = []
    monkeypatch.setattr(
        service, "write", lambda identity, precision, body, now: written.append(body)
    )
    client = ingest.test_client()
    for path in ("/write?db=telegraf&u=telegraf", "/api/v2/write?org=o&bucket=spak_prod"):
        response = client.post(
            path, data="cpu value=1", headers={"Authorization": f"Token {key.key}"}
        )
        assert response.status_code == 204, response.get_json()
    assert len(written) == 2


# ----------------------------------------------------------------------------------------------
# 4. /health and /ready as InfluxDB 2.x answers them


def _client_model(model: type[Any], body: dict[str, Any]) -> Any:
    """``body`` read as influxdb-client reads it: its model's fields, each checked."""
    return model(**{name: body.get(name) for name in model.attribute_map})


def test_health_is_influxdb_2s_health_check(ingest: Flask) -> None:
    """Before: {"status": "ok", ...} without ``name``: influxdb-client's health() said "fail",
    "Invalid value for `name`, must not be `None`", of a healthy ingest."""
    response = ingest.test_client().get("/health")
    assert response.status_code == 200
    body = response.get_json()
    version = body.pop("version")
    assert version.startswith("perfanalysis-ingest")
    assert body == {
        "name": "perfanalysis-ingest",
        "message": "ready for writes",
        "status": "pass",
        "checks": [
            {"name": "storage", "status": "pass", "message": "ok"},
            {"name": "database", "status": "pass", "message": "ok"},
        ],
        "storage": "ok",
        "database": "ok",
    }
    check = _client_model(HealthCheck, body)
    assert (check.name, check.status) == ("perfanalysis-ingest", "pass")


def test_health_fails_naming_what_is_wrong(ingest: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    down = "down: storage did not answer within 2s"
    monkeypatch.setattr(ingest.extensions["ingest"].writer, "health", lambda: down)
    response = ingest.test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert (body["status"], body["message"], body["storage"]) == ("fail", f"storage: {down}", down)
    assert body["checks"][0] == {"name": "storage", "status": "fail", "message": down}
    assert body["checks"][1]["status"] == "pass"


def test_ready_is_influxdb_2s(ingest: Flask) -> None:
    """Before: 404, in HTML."""
    response = ingest.test_client().get("/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["started"].endswith("Z")
    assert body["up"].endswith("s")
    assert _client_model(Ready, body).status == "ready"


def test_make_status_calls_a_healthy_ingest_healthy(ingest: Flask) -> None:
    """perfanalysis.devstack reads /health's JSON status: "pass" is healthy, not "degraded"."""
    server = make_server("127.0.0.1", 0, ingest, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/health"
        assert devstack.health(devstack.Service("ingest", [], url, {})) == ("healthy", "")
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------------------------------
# 5. Storage gives up before the clients do


def test_storage_timeout_is_below_the_clients_own() -> None:
    """Before: 10 s, as long as influxdb-client's timeout and twice Telegraf's: while storage
    hung they gave up before ingest's 503 with Retry-After came."""
    assert (
        load([], {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET})["storage_timeout"] < TELEGRAF_TIMEOUT
    )


# ----------------------------------------------------------------------------------------------
# 6. Flask's refusals in the API's JSON, not HTML


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "message", "allow"),
    [
        ("GET", "/api/v2/buckets", 404, "not found",
         "no such path: /api/v2/buckets (ingest answers /api/v2/write, /health, /metrics, "
         "/ping, /query, /ready, /write)", None),
        ("POST", "/ping", 405, "method not allowed",
         "POST /ping is not answered: use GET or HEAD", {"GET", "HEAD", "OPTIONS"}),
        ("DELETE", "/health", 405, "method not allowed",
         "DELETE /health is not answered: use GET or HEAD", {"GET", "HEAD", "OPTIONS"}),
    ],
)  # fmt: skip
def test_flasks_refusals_are_json(
    ingest: Flask,
    method: str,
    path: str,
    status: int,
    code: str,
    message: str,
    allow: set[str] | None,
) -> None:
    """Before: werkzeug's HTML page, which Telegraf logs whole."""
    response = ingest.test_client().open(path, method=method)
    assert response.status_code == status
    assert response.content_type == "application/json"
    assert response.get_json() == {"code": code, "message": message, "error": message}
    if allow is not None:
        assert set(response.headers["Allow"].split(", ")) == allow


def test_a_bug_in_a_flask_route_is_a_json_500(
    ingest: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> bytes:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ingest.extensions["ingest"].metrics, "exposition", broken)
    response = ingest.test_client().get("/metrics")
    assert response.status_code == 500
    assert response.content_type == "application/json"
    message = "internal error (RuntimeError); it has been logged"
    assert response.get_json() == {"code": "internal error", "message": message, "error": message}
    assert "RuntimeError: a bug" in caplog.text
