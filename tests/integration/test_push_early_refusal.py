"""The push client against the real ingest (gunicorn) when it refuses a batch on the head alone.

Ingest answers 413 to a Content-Length over limits.max-body-bytes, and 401 to an unknown key,
before reading the body; gunicorn keeps the connection open and resets it once the body comes.
With a body larger than the socket buffers the client's write fails (EPIPE, ECONNRESET; over
TLS SSLEOFError) with the answer waiting in its socket: the client must read it, split the batch
until storage holds every point, and report a refused key as such rather than as a network
error. Before the fix, over HTTPS every such batch came back as a transport error, retried
forever.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask import Flask

from exporter.push.client import PushClient, Verdict
from exporter.push.keyfile import KeyFile
from exporter.push.transport import TLSFiles
from ingest.testing import IngestProcess, ingest_environment, issue_collector_key
from perfanalysis.testing.servers import ServerRegistry
from tenants import db as database
from tests.conftest import TEST_SECRET
from tests.integration.test_web_tls import HTTPSIngest
from tests.support.tls import make_pki
from tests.unit.test_push_transport import large_batch

pytestmark = pytest.mark.integration

LIMIT = 1 << 20


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_batch_over_ingests_body_limit_is_split_until_stored_whole(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path, scheme: str
) -> None:
    pki = make_pki(tmp_path / "pki")
    influxdb = servers.influxdb(auth=True)
    with app.app_context():
        key = issue_collector_key(database.session(), app.extensions["pa_hasher"], "big", "web-01")
    influxdb.create_database(key.database)
    (tmp_path / "metrics").mkdir()
    settings = {"LIMITS_MAX_BODY_BYTES": str(LIMIT), "LIMITS_RATE": "0"}
    tls = None
    if scheme == "https":
        settings |= {"WEB_TLS_CERT_FILE": str(pki.cert), "WEB_TLS_KEY_FILE": str(pki.key)}
        tls = TLSFiles(ca_file=str(pki.ca))
    environment = ingest_environment(
        TEST_SECRET, database_url, influxdb, tmp_path / "metrics", **settings
    )
    ingest = servers.start(
        HTTPSIngest(servers.base_dir, environment, pki.ca)
        if tls
        else IngestProcess(servers.base_dir, environment)
    )
    assert ingest.url.startswith(f"{scheme}://")
    key_file = tmp_path / "collector.key"
    key_file.write_text(key.key + "\n")
    key_file.chmod(0o600)
    client = PushClient(ingest.url, KeyFile(str(key_file)), 30.0, tls)

    body, points = large_batch(epoch_ns=time.time_ns() - 3600 * 10**9)
    delivery = client.deliver(body, points)
    assert delivery.verdict is Verdict.SETTLED, delivery.error
    assert (delivery.sent, delivery.rejected) == (points, 0)
    assert client.requests.get("413", 0) > 0  # ingest did refuse the batch on its size
    assert "error" not in client.requests
    rows = influxdb.rows("SELECT count(value) FROM m", db=key.database)
    assert rows, "storage holds none of the points"
    assert rows[0]["count"] == points

    key_file.write_text("pak_unknown.key\n")
    client.key.reload()
    refused = client.deliver(*large_batch(epoch_ns=time.time_ns() - 1800 * 10**9))
    assert refused.verdict is Verdict.UNAUTHORIZED, refused.error
    assert refused.error.startswith("401: ")
