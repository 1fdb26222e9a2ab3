"""Ingest as ``perfanalysis ingest`` runs it: gunicorn, two workers, a child process stopped by PID.

influxdb-client (the v2 path) and raw gzip posts (the v1 path) go through it into the real
InfluxDB 1.6.7; /metrics must add up both workers whichever answers the scrape; a key sent in
the URL must not reach the access log; stopping it must record the keys' use.
"""

from __future__ import annotations

import gzip
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from flask import Flask
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision

from ingest.testing import IngestProcess, issue_collector_key
from perfanalysis.testing.servers import InfluxDB, ServerRegistry
from tenants import db as database
from tenants.models import Collector
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.integration

POINTS_PER_BATCH = 50
NOW_S = int(time.time())


def count(influxdb: InfluxDB, db: str) -> int:
    rows = influxdb.rows("SELECT count(value) FROM cpu", db=db)
    return int(rows[0]["count"]) if rows else 0


def batch(number: int) -> str:
    start = NOW_S - 86_400 + number * POINTS_PER_BATCH  # a day back: room for many rounds
    return "\n".join(
        f"cpu,host=h{i % 4},cpu={i % 2} value={i}.5 {start + i}" for i in range(POINTS_PER_BATCH)
    )


def test_ingest_under_gunicorn_with_two_workers(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> None:
    influxdb = servers.influxdb(auth=True)
    with app.app_context():
        key = issue_collector_key(database.session(), app.extensions["pa_hasher"], "gun", "web-01")
    influxdb.create_database(key.database)
    metrics_dir = tmp_path / "metrics"
    env = {
        "PERFANALYSIS_INGEST_SECRET_KEY": TEST_SECRET,
        "PERFANALYSIS_INGEST_DATABASE_URL": database_url,
        "PERFANALYSIS_INGEST_STORAGE_URL": influxdb.url,
        "PERFANALYSIS_INGEST_STORAGE_USERNAME": influxdb.admin_user,
        "PERFANALYSIS_INGEST_STORAGE_PASSWORD": influxdb.admin_password,
        "PERFANALYSIS_INGEST_WEB_WORKERS": "2",
        "PERFANALYSIS_INGEST_LIMITS_RATE": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    ingest = servers.start(IngestProcess(servers.base_dir, env))

    def push_v2(number: int) -> None:
        with InfluxDBClient(url=ingest.url, token=key.key, org="anyone") as client:
            client.write_api(write_options=SYNCHRONOUS).write(
                bucket="anything", record=batch(number), write_precision=WritePrecision.S
            )

    def writers() -> set[str]:
        """The workers that have counted something: each writes its own files."""
        return {path.name.split("_")[-1] for path in metrics_dir.glob("counter_*.db")}

    # Rounds of 20 concurrent writes, each on a new connection, until both workers have answered
    # some: which worker accepts a connection is up to the kernel, and one may win them all.
    v2_batches, deadline = 0, time.monotonic() + 60
    while len(writers()) < 2:
        assert time.monotonic() < deadline, f"one worker answered every write: {writers()}"
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(push_v2, range(v2_batches, v2_batches + 20)))
        v2_batches += 20
    batches = v2_batches + 10
    http = requests.Session()
    http.trust_env = False
    headers = {"Authorization": f"Token {key.key}", "Content-Encoding": "gzip"}
    for number in range(v2_batches, batches):
        response = http.post(f"{ingest.url}/write?db=x&precision=s",
                             data=gzip.compress(batch(number).encode()), headers=headers)  # fmt: skip
        assert response.status_code == 204, response.text
    refused = http.post(f"{ingest.url}/write?u=me&p={key.key}", data=batch(0), headers=headers)
    assert refused.status_code == 401
    assert count(influxdb, key.database) == batches * POINTS_PER_BATCH

    for _ in range(6):  # each scrape may be answered by either worker: all must see the totals
        text = http.get(f"{ingest.url}/metrics").text
        for sample in [
            f'perfanalysis_ingest_requests_total{{api="v2",code="204"}} {v2_batches}.0',
            'perfanalysis_ingest_requests_total{api="v1",code="204"} 10.0',
            'perfanalysis_ingest_requests_total{api="v1",code="401"} 1.0',
            f'perfanalysis_ingest_points_accepted_total{{tenant="gun"}} {batches * POINTS_PER_BATCH}.0',
            f"perfanalysis_ingest_batch_points_sum {batches * POINTS_PER_BATCH}.0",
        ]:
            assert sample in text

    assert ingest.stop() == 0
    log = ingest.log_path.read_text()
    assert '"POST /write HTTP/1.1" 401' in log
    assert key.key.split("_", 2)[2] not in log  # the secret never reaches the log
    with app.app_context():  # the workers recorded the key's use as they exited
        collector = database.session().get(Collector, key.collector_id)
        assert collector is not None
        assert collector.points_received == batches * POINTS_PER_BATCH
