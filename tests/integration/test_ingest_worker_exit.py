"""A gunicorn worker that exits (SIGTERM to it, SIGHUP to the master, a timeout abort) leaves
the metrics directory the others write to: with no PROMETHEUS_MULTIPROC_DIR given, ingest makes
a private one, and a worker once removed it on its way out, so its replacement failed to boot and
the master shut ingest down."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests
from flask import Flask

from ingest.testing import IngestProcess, ingest_environment, issue_collector_key
from perfanalysis.testing.servers import ServerRegistry, wait_until
from tenants import db as database
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.integration

NOW_S = int(time.time())


def workers(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def accepted(http: requests.Session, url: str) -> float:
    for line in http.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith('perfanalysis_ingest_requests_total{api="v1",code="204"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_worker_exiting_leaves_ingest_serving_and_counting(
    servers: ServerRegistry, app: Flask, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    influxdb = servers.influxdb(auth=True)
    with app.app_context():
        key = issue_collector_key(database.session(), app.extensions["pa_hasher"], "wx", "web-01")
    influxdb.create_database(key.database)
    env = ingest_environment(TEST_SECRET, database_url, influxdb, "unused",
                             WEB_WORKERS="2", LIMITS_RATE="0")  # fmt: skip
    del env["PROMETHEUS_MULTIPROC_DIR"]  # ingest makes its own: the case under test
    ingest = servers.start(IngestProcess(servers.base_dir, env))
    master = ingest.pid
    assert master is not None
    http = requests.Session()
    http.trust_env = False
    sent = 0

    def write(count: int) -> None:
        nonlocal sent
        for _ in range(count):
            line = f"cpu value={sent} {NOW_S - 3600 + sent}"
            answer = http.post(f"{ingest.url}/write?precision=s", data=line,
                               headers={"Authorization": f"Token {key.key}"}, timeout=10)  # fmt: skip
            assert answer.status_code == 204, answer.text
            sent += 1

    def replaced(old: set[int]) -> set[int] | None:
        assert ingest.running, "ingest's master exited"
        now = workers(master)
        return now if len(now) == 2 and not now & old else None

    write(20)
    assert accepted(http, ingest.url) == 20
    before = workers(master)
    assert len(before) == 2

    gone = min(before)
    os.kill(gone, signal.SIGTERM)

    def one_new() -> bool:
        assert ingest.running, "ingest's master exited"
        now = workers(master)
        return len(now) == 2 and gone not in now

    wait_until(one_new, timeout=30, what="a new worker in place of the one stopped")
    write(10)
    assert accepted(http, ingest.url) == 30  # the stopped worker's counts stay in the sum

    old = workers(master)
    os.kill(master, signal.SIGHUP)
    wait_until(lambda: replaced(old), timeout=60, what="both workers replaced after SIGHUP")
    write(10)
    assert accepted(http, ingest.url) == 40
    assert ingest.running
    assert ingest.stop() == 0
    rows = influxdb.rows("SELECT count(value) FROM cpu", db=key.database)
    assert rows
    assert int(rows[0]["count"]) == 40
