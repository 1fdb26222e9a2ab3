"""A load-test upload with a collector key is the key's use, as a write to ingest is: once the
admin app's key verifier flushes (its thread, or ``admin serve``'s worker_exit), the key's last
use and the collector's last seen are set, its points received (line-protocol points) unchanged;
a refused upload records nothing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from perfanalysis import serving
from tenants import db as database
from tenants.cli import worker_exit
from tenants.models import ApiKey, Collector
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    World,
    build_world,
    cheap_password_hashing,
    document,
    upload_with_key,
)


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


def usage(app: Flask, collector_id: int) -> tuple[Any, Any, int]:
    """The collector's key's last use, the collector's last seen and its points received."""
    with app.app_context():
        db = database.session()
        collector = db.get(Collector, collector_id)
        assert collector is not None
        key = db.scalar(select(ApiKey).where(ApiKey.collector_id == collector_id))
        assert key is not None
        return key.last_used_at, collector.last_seen_at, collector.points_received


def test_an_upload_records_the_keys_use_and_the_collectors_last_seen(
    app: Flask, client: FlaskClient, world: World
) -> None:
    assert upload_with_key(client, world.key_a, document()).status_code == 201
    app.extensions["pa_key_verifier"].flush()
    last_used, last_seen, points = usage(app, world.collector_a)
    assert last_used is not None
    assert last_seen is not None
    assert points == 0
    assert usage(app, world.collector_b)[:2] == (None, None)  # the other tenant's key unused


def test_a_refused_upload_records_nothing(app: Flask, client: FlaskClient, world: World) -> None:
    assert upload_with_key(client, world.key_a, {"schema": "nonsense"}).status_code == 400
    app.extensions["pa_key_verifier"].flush()
    assert usage(app, world.collector_a) == (None, None, 0)


def test_the_admin_workers_exit_writes_the_pending_use(
    app: Flask, client: FlaskClient, world: World
) -> None:
    app.extensions["pa_key_verifier"].flush_interval = 3600.0  # its thread does not write
    assert upload_with_key(client, world.key_a, document()).status_code == 201
    assert usage(app, world.collector_a)[:2] == (None, None)
    worker_exit(None, SimpleNamespace(wsgi=app))
    last_used, last_seen, _ = usage(app, world.collector_a)
    assert last_used is not None
    assert last_seen is not None


def test_the_workers_exit_hook_passes_over_a_worker_without_an_app() -> None:
    worker_exit(None, SimpleNamespace())  # its app failed to load: nothing to write


def test_admin_serve_gives_gunicorn_the_workers_exit_hook(
    runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: dict[str, Any] = {}

    def serve(*args: Any, **options: Any) -> None:
        served.update(options)

    monkeypatch.setattr(serving, "serve", serve)
    result = runner("serve")
    assert result.exit_code == 0, result.output
    assert served["worker_exit"] is worker_exit
