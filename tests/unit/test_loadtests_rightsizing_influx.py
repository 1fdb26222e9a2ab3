"""Right-sizing against a real InfluxDB 1.x with authentication on.

The tenant is provisioned by the admin app (database and read-only user); synthetic
``node_cpu_seconds_total`` counters are written in the exporter's push format (tags cpu, mode,
host, tenant, collector; field value) for the collector and for a noisy neighbour; the advice,
read with the tenant's read credentials, finds the collector's own busy percentile (iowait
counted as idle, as the load test counts it).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from perfanalysis.testing.servers import InfluxDB, ServerRegistry
from tenants.app import create_app
from tenants.settings import load
from tests.conftest import TEST_SECRET, empty_tables
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    ANALYST,
    World,
    build_world,
    cheap_password_hashing,
    document,
    logged_in,
    upload_with_key,
)

pytestmark = pytest.mark.integration

STEP = 60
BUSY = [float(10 + (i * 37) % 80) for i in range(90)]  # 10..89 %, shuffled, one per minute


@pytest.fixture
def influxdb(servers: ServerRegistry) -> InfluxDB:
    return servers.influxdb(auth=True)


@pytest.fixture
def app(database_url: str, migrated_engine: Engine, influxdb: InfluxDB) -> Iterator[Flask]:
    empty_tables(migrated_engine)
    application = create_app(load([], {
        "PERFANALYSIS_ADMIN_DATABASE_URL": database_url,
        "PERFANALYSIS_ADMIN_SECRET_KEY": TEST_SECRET,
        "PERFANALYSIS_ADMIN_INFLUXDB_URL": influxdb.url,
        "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_USER": influxdb.admin_user,
        "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD": influxdb.admin_password,
    }))  # fmt: skip
    application.config["TESTING"] = True
    yield application
    application.extensions["pa_engine"].dispose()


def counter_lines(collector: str, busy: list[float], start: int) -> str:
    """Two CPUs' idle, iowait and user counters, one point a minute, as the exporter pushes
    them; the time not busy is half idle, half waiting on the disk (iowait)."""
    lines, idle, iowait, user = [], 1000.0, 200.0, 500.0
    for index in range(len(busy) + 1):
        if index:
            idle += (100 - busy[index - 1]) / 200 * STEP
            iowait += (100 - busy[index - 1]) / 200 * STEP
            user += busy[index - 1] / 100 * STEP
        moment = (start + index * STEP + 5) * 10**9  # inside its one-minute bucket
        for cpu in ("0", "1"):
            for mode, value in (("idle", idle), ("iowait", iowait), ("user", user)):
                lines.append(f"node_cpu_seconds_total,collector={collector},cpu={cpu},"
                             f"host={collector}.a.test,mode={mode},tenant=a value={value} {moment}")  # fmt: skip
    return "\n".join(lines)


def test_rightsizing_reads_the_collectors_cpu_history(
    app: Flask, influxdb: InfluxDB, make_user: Any, make_tenant: Any
) -> None:
    world: World = build_world(app, make_user, make_tenant)
    start = (int(time.time()) // STEP - len(BUSY) - 2) * STEP
    influxdb.write("pa_a", counter_lines("web-a", BUSY, start))
    influxdb.write("pa_a", counter_lines("noisy", [99.0] * len(BUSY), start))
    client = logged_in(app, ANALYST)
    assert upload_with_key(client, world.key_a, document()).status_code == 201

    response = client.get(f"/api/v1/tenants/a/collectors/{world.collector_a}/rightsizing?days=1")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ok", body["message"]
    assert body["samples"] == len(BUSY)
    expected = statistics.quantiles(BUSY, n=100, method="inclusive")[94]
    assert body["busy_percentile"] == pytest.approx(expected, abs=0.01)
    assert body["busy_peak"] == pytest.approx(max(BUSY), abs=0.01)
    assert body["demand_units_per_second"] > 0
    assert body["candidates"][0]["current"] is True

    page = client.get(f"/tenants/a/collectors/{world.collector_a}/rightsizing?days=1")
    assert 'data-status="ok"' in page.get_data(as_text=True)


def test_rightsizing_without_points_says_there_is_no_history(
    app: Flask, make_user: Any, make_tenant: Any
) -> None:
    world: World = build_world(app, make_user, make_tenant)
    client = logged_in(app, ANALYST)
    body = client.get(f"/api/v1/tenants/a/collectors/{world.collector_a}/rightsizing").get_json()
    assert body["status"] == "no_history"
    assert "No CPU history for collector web-a" in body["message"]
