"""The v2 storage writer (POST /api/v2/write) against the real VictoriaMetrics,
and against Debian's InfluxDB 1.6.7, which has no v2 API.

VictoriaMetrics names each series ``<measurement>_<field>`` and ignores the bucket, so tenants
are told apart there by the forced ``tenant`` tag alone. It keeps milliseconds.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask

from ingest.app import create_app
from ingest.settings import load
from ingest.storage import StorageRejected, V1Writer, V2Writer
from ingest.testing import issue_collector_key
from perfanalysis.testing.servers import ServerRegistry, wait_until
from tenants import db as database
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.integration


def test_the_v2_writer_stores_points_in_victoriametrics(
    servers: ServerRegistry, app: Flask, database_url: str
) -> None:
    vm = servers.victoriametrics()
    with app.app_context():
        key = issue_collector_key(  # free: its points are for two hosts
            database.session(), app.extensions["pa_hasher"], "vm", "web-01", host_tag="free"
        )
    settings = load(["--storage.api=v2", f"--storage.url={vm.url}"],
                    {"PERFANALYSIS_INGEST_SECRET_KEY": TEST_SECRET,
                     "PERFANALYSIS_INGEST_DATABASE_URL": database_url})  # fmt: skip
    ingest = create_app(settings)
    try:
        client = ingest.test_client()
        now_ms = time.time_ns() // 1_000_000
        body = "\n".join([
            f"cpu,host=h1,tenant=spoofed value=1.5,count=5u {now_ms}",
            f"cpu,host=h2 value=2.5,count=7u {now_ms - 1000}",
            f"mem,host=h1 used=3i {now_ms}",
        ])  # fmt: skip
        response = client.post(
            "/api/v2/write?org=o&bucket=elsewhere&precision=ms",
            data=body,
            headers={"Authorization": f"Token {key.key}"},
        )
        assert response.status_code == 204, response.get_json()
        health = client.get("/health").get_json()
        assert (health["status"], health["storage"], health["database"]) == ("pass", "ok", "ok")
    finally:
        ingest.extensions["ingest"].close()

    def exported() -> list[tuple[str, str, float, int]] | None:
        vm.force_flush()
        rows = vm.export('{tenant="vm"}')
        found = sorted(
            (row["metric"]["__name__"], row["metric"]["host"], value, stamp)
            for row in rows
            for value, stamp in zip(row["values"], row["timestamps"], strict=True)
        )
        return found if len(found) == 5 else None

    assert wait_until(exported, 15, interval=0.2, what="5 samples in VictoriaMetrics") == [
        ("cpu_count", "h1", 5, now_ms),
        ("cpu_count", "h2", 7, now_ms - 1000),
        ("cpu_value", "h1", 1.5, now_ms),
        ("cpu_value", "h2", 2.5, now_ms - 1000),
        ("mem_used", "h1", 3, now_ms),
    ]
    labels = {tuple(sorted(row["metric"].items())) for row in vm.export('{__name__=~".+"}')}
    assert all(dict(row)["tenant"] == "vm" for row in labels)
    assert all(dict(row)["collector"] == "web-01" for row in labels)


def test_a_text_refusal_from_victoriametrics_is_the_same_refusal_through_either_writer(
    servers: ServerRegistry,
) -> None:
    """VictoriaMetrics refuses a line over -influx.maxLineSize with 400 and a text/plain body
    (only one longer than its read buffer: a 200-byte line passes, measured). The v2 writer
    raised AttributeError on such a body (influxdb-client hands it over as a str), so ingest
    answered 500 as for a bug of its own whatever storage said (a 502 or 503 included)."""
    vm = servers.victoriametrics(["-influx.maxLineSize=100"])
    line = b'm,host=h1 note="' + b"x" * 70_000 + b'" 1700000000000000000'
    for writer in (V1Writer(vm.url, "", "", timeout=5), V2Writer(vm.url, "any", "-", timeout=5)):
        try:
            with pytest.raises(StorageRejected) as refused:
                writer.write("db", line)
        finally:
            writer.close()
        assert refused.value.status == 400
        assert refused.value.message.startswith("storage answered 400: remoteAddr: ")
        assert refused.value.message.endswith(
            "cannot read influx line protocol data: too long line: more than 100 bytes"
        )


def test_v2_health_fails_against_influxdb_1_6_whose_ping_answers_but_not_its_writes(
    servers: ServerRegistry, app: Flask, database_url: str
) -> None:
    """Before, /health passed: the buckets API's 404 was taken for VictoriaMetrics' (which in
    fact answers it 400) while every write failed with 404. An empty write tells: InfluxDB
    1.6.7 answers 404 ``404 page not found``, VictoriaMetrics 204 (test above)."""
    influxdb = servers.influxdb()
    settings = load(["--storage.api=v2", f"--storage.url={influxdb.url}"],
                    {"PERFANALYSIS_INGEST_SECRET_KEY": TEST_SECRET,
                     "PERFANALYSIS_INGEST_DATABASE_URL": database_url})  # fmt: skip
    ingest = create_app(settings)
    try:
        health = ingest.test_client().get("/health")
    finally:
        ingest.extensions["ingest"].close()
    assert health.status_code == 503
    found = health.get_json()
    assert found["status"] == "fail"
    assert found["storage"] == (
        "unsupported: storage answered 404 to an empty write: 404 page not found; this storage "
        "has no /api/v2/write (InfluxDB 1.x before 1.8 serves only /write): set storage.api to v1"
    )
