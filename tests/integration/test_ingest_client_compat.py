"""Third-party InfluxDB clients against ingest as ``perfanalysis ingest`` runs it (gunicorn,
perfanalysis.gthread_worker) and the real InfluxDB 1.6.7: clients that send Basic credentials
only once challenged for them, influxdb-client retrying a batch whose body came too slowly, and
influxdb-client's health() and ready(). From the audit of 2026-11-24 against influxd 1.6.7."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import WriteOptions

from ingest.testing import CollectorKey, IngestProcess, ingest_environment, issue_collector_key
from perfanalysis.testing.servers import InfluxDB, ServerRegistry
from tenants import db as database
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.integration
REQUEST_TIMEOUT = 2  # seconds: ingest's web.request-timeout here


def start_ingest(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> tuple[IngestProcess, InfluxDB, CollectorKey]:
    influxdb = servers.influxdb()
    with app.app_context():
        key = issue_collector_key(database.session(), app.extensions["pa_hasher"], "compat", "web")
    influxdb.create_database(key.database)
    environment = ingest_environment(
        TEST_SECRET, database_url, influxdb, tmp_path / "metrics", LIMITS_RATE="0",
        WEB_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
    )  # fmt: skip
    return servers.start(IngestProcess(servers.base_dir, environment)), influxdb, key


def count(influxdb: InfluxDB, key: CollectorKey, measurement: str) -> int:
    rows = influxdb.rows(f'SELECT count("v") FROM "{measurement}"', db=key.database)  # noqa: S608
    return int(rows[0]["count"]) if rows else 0


def test_clients_that_wait_for_a_basic_challenge_write_to_v1(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> None:
    """InfluxDB 1.x challenges for Basic; ingest offered only Token, so urllib's
    HTTPBasicAuthHandler raised "does not support the following scheme: 'Token'" and curl
    --anyauth got 401, and neither sent the key."""
    ingest, influxdb, key = start_ingest(servers, app, database_url, tmp_path)
    now = time.time_ns()

    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, ingest.url, "telegraf", key.key)
    opener = urllib.request.build_opener(
        urllib.request.HTTPBasicAuthHandler(passwords), urllib.request.ProxyHandler({})
    )
    request = urllib.request.Request(
        f"{ingest.url}/write?db=telegraf", data=b"challenged,client=urllib v=1 %d" % now
    )
    try:
        with opener.open(request, timeout=10) as answer:
            by_urllib: object = answer.status
    except (urllib.error.HTTPError, ValueError) as exc:  # ValueError: no scheme it knows
        by_urllib = exc

    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    answered = subprocess.run(
        [curl, "--silent", "--noproxy", "*", "--max-time", "10", "--output", "/dev/null",
         "--write-out", "%{http_code}", "--anyauth", "--user", f"telegraf:{key.key}",
         "--data-binary", f"challenged,client=curl v=1 {now}", f"{ingest.url}/write?db=telegraf"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert (by_urllib, answered.stdout) == (204, "204"), answered.stderr
    assert count(influxdb, key, "challenged") == 2


def test_parameters_that_only_look_like_credentials_are_taken(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> None:
    """``u`` alone (a user name) and a bucket named spak_prod were refused as credentials in
    the URL; a ``p`` still is, the key sent as well or not."""
    ingest, influxdb, key = start_ingest(servers, app, database_url, tmp_path)
    http = requests.Session()
    http.trust_env = False
    auth = {"Authorization": f"Token {key.key}"}
    now = time.time_ns()
    for target in ("/write?db=telegraf&u=telegraf", "/api/v2/write?org=o&bucket=spak_prod"):
        answer = http.post(f"{ingest.url}{target}", data=f"looks v=1 {now}", headers=auth)
        assert answer.status_code == 204, answer.text
        now += 1
    refused = http.post(
        f"{ingest.url}/write?db=telegraf&u=telegraf&p=secret", data=f"looks v=1 {now}", headers=auth
    )
    assert refused.status_code == 401
    assert "query parameter 'p'" in refused.json()["message"]
    assert count(influxdb, key, "looks") == 2


def test_influxdb_client_reads_health_and_ready(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> None:
    """health() said "fail" of a healthy ingest (its answer had no ``name``); ready() got a
    404 in HTML."""
    ingest, _, key = start_ingest(servers, app, database_url, tmp_path)
    with InfluxDBClient(url=ingest.url, token=key.key, org="any") as client:
        with pytest.warns(DeprecationWarning, match="ping"):  # influxdb-client's own
            health = client.health()
        assert (health.status, health.name, health.message) == (
            "pass", "perfanalysis-ingest", "ready for writes",
        )  # fmt: skip
        assert client.ready().status == "ready"
        assert client.ping()


class StallingProxy:
    """A loopback TCP proxy to ``target`` whose first connection passes on only the first
    ``stall_after`` bytes of what the client sends (the rest is read and dropped, as a link
    too slow for the body would leave it); the server's answers, and later connections, pass
    whole."""

    def __init__(self, target: tuple[str, int], stall_after: int) -> None:
        self.target = target
        self.stall_after = stall_after
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener was closed
            while True:
                client, _ = self.listener.accept()
                self.connections += 1
                limit = self.stall_after if self.connections == 1 else None
                upstream = socket.create_connection(self.target)
                threading.Thread(target=self._pump, args=(client, upstream, limit), daemon=True).start()  # fmt: skip
                threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()  # fmt: skip

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        passed = 0
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if limit is not None:
                    data = data[: max(0, limit - passed)]
                passed += len(data)
                if data:
                    sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxies() -> Iterator[list[StallingProxy]]:
    made: list[StallingProxy] = []
    yield made
    for proxy in made:
        proxy.close()


def test_influxdb_client_retries_a_batch_whose_body_came_too_slowly(
    servers: ServerRegistry,
    app: Flask,
    database_url: str,
    tmp_path: Path,
    proxies: list[StallingProxy],
) -> None:
    """Answered 408, the batch went to influxdb-client's error_callback and was lost (it
    retries 429 and above); 503 with Retry-After is retried and the batch stored."""
    ingest, influxdb, key = start_ingest(servers, app, database_url, tmp_path)
    host, port = ingest.url.rsplit("//", 1)[1].rsplit(":", 1)
    # past the 64 KiB the worker reads before a thread takes the request, short of the body
    proxy = StallingProxy((host, int(port)), stall_after=100_000)
    proxies.append(proxy)
    start = time.time_ns() - 60_000_000_000
    lines = [f"slow,host=h{i % 10},pad={'x' * 40} v={i}i {start + i}" for i in range(3000)]
    assert sum(len(line) + 1 for line in lines) > 2 * proxy.stall_after

    failed: list[str] = []
    retried: list[Any] = []
    options = WriteOptions(
        batch_size=len(lines), flush_interval=100, retry_interval=500, max_retries=3
    )
    client = InfluxDBClient(url=f"http://127.0.0.1:{proxy.port}", token=key.key, org="o",
                            timeout=30_000)  # fmt: skip
    with (
        client,
        client.write_api(
            write_options=options,
            error_callback=lambda conf, data, exc: failed.append(f"{exc}"),
            retry_callback=lambda conf, data, exc: retried.append(exc),
        ) as write_api,
    ):
        write_api.write(bucket="b", record=lines)
    assert failed == []
    assert len(retried) == 1
    assert (retried[0].response.status, retried[0].retry_after) == (503, "1")
    assert str(retried[0]).startswith("the request body arrived too slowly")
    assert proxy.connections == 2
    assert count(influxdb, key, "slow") == len(lines)
