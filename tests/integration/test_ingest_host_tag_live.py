"""A collector's host tag through a real ingest (gunicorn) into the real InfluxDB 1.6.7.

A pinned collector's points land with host=<its registered hostname>, whatever host tag they
were sent with (on the line path and, once its series are cached, on the whole-batch path); a
free collector's keep theirs; a field named host is refused from both; a change made through the admin API reaches the running ingest
within its key cache's lifetime, without a restart, and is audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from ingest.testing import CollectorKey, IngestProcess, ingest_environment, issue_collector_key
from perfanalysis.testing.servers import InfluxDB, ServerRegistry
from tenants import db as database
from tenants.access import system_actor, tenant_for
from tests.conftest import TEST_SECRET, Caller, issue_test_token

pytestmark = pytest.mark.integration

TENANT = "hosts"
ADMIN = "boss@hosts.test"
PINNED_HOSTNAME = "web-01.hosts.test"
SWITCH_WITHIN = 30.0  # seconds: the key cache (0.2 s here) plus a loaded machine's slack


class Stack:
    """Ingest on the admin database, writing into InfluxDB; ``write`` posts line protocol."""

    def __init__(self, ingest: IngestProcess, influxdb: InfluxDB) -> None:
        self.ingest = ingest
        self.influxdb = influxdb
        self.stamp = int(time.time()) - 3_600  # each write a second later: no point overwritten

    def write(self, key: CollectorKey, body: str) -> requests.Response:
        return requests.post(
            f"{self.ingest.url}/api/v2/write?org=any&bucket=any&precision=s",
            data=body.encode(),
            headers={"Authorization": f"Token {key.key}"},
            timeout=30,
        )

    def next_stamp(self) -> int:
        self.stamp += 1
        return self.stamp

    def hosts_at(self, key: CollectorKey, stamp: int) -> list[str | None]:
        """The host tags of the key's cpu points stored at ``stamp`` (seconds), by value."""
        rows = self.influxdb.rows(
            f"SELECT value, host FROM cpu WHERE collector = '{key.collector_name}' "  # noqa: S608
            f"AND time = {stamp}s",
            db=key.database,
        )
        return [row["host"] for row in sorted(rows, key=lambda row: row["value"])]


@pytest.fixture
def stack(
    servers: ServerRegistry, app: Flask, make_tenant: Callable[..., object], database_url: str
) -> Stack:
    make_tenant(TENANT, {ADMIN: "admin"})
    influxdb = servers.influxdb(auth=True)
    with app.app_context():
        tenant = tenant_for(database.session(), system_actor(), TENANT)
        influxdb.create_database(tenant.influx_database)
    env = ingest_environment(
        TEST_SECRET, database_url, influxdb, servers.base_dir / "metrics",
        KEY_CACHE_SECONDS="0.2", LIMITS_RATE="0",
    )  # fmt: skip
    (servers.base_dir / "metrics").mkdir()
    return Stack(servers.start(IngestProcess(servers.base_dir, env)), influxdb)


def collector_key(app: Flask, name: str, hostname: str, host_tag: str) -> CollectorKey:
    with app.app_context():
        return issue_collector_key(
            database.session(), app.extensions["pa_hasher"], TENANT, name,
            hostname=hostname, host_tag=host_tag,
        )  # fmt: skip


def test_a_pinned_key_writes_as_its_registered_host_and_a_free_key_as_it_says(
    stack: Stack, app: Flask
) -> None:
    pinned = collector_key(app, "web-01", PINNED_HOSTNAME, "pinned")
    free = collector_key(app, "poller", "poller.hosts.test", "free")
    for _ in range(2):  # the second time every series is cached: the whole-batch path
        stamp = stack.next_stamp()
        body = f"cpu,host=other,cpu=0 value=1 {stamp}\ncpu,cpu=1 value=2 {stamp}"
        for key in (pinned, free):
            response = stack.write(key, body)
            assert response.status_code == 204, response.text
        assert stack.hosts_at(pinned, stamp) == [PINNED_HOSTNAME, PINNED_HOSTNAME]
        assert stack.hosts_at(free, stamp) == ["other", None]
    shadowed = {
        pinned: "field 'host' has the name of a tag ingest sets from the key",
        free: "field 'host' has the name of the host tag the dashboards filter on",
    }
    for key, reason in shadowed.items():  # cached series: the whole-batch path first
        shadowing = stack.write(key, f'cpu,cpu=0 value=1,host="other" {stack.next_stamp()}')
        assert shadowing.status_code == 400
        [invalid] = shadowing.json()["invalid_lines"]
        assert (invalid["line"], invalid["reason"][: len(reason)]) == (1, reason)
    stored = stack.influxdb.rows('SHOW TAG VALUES FROM cpu WITH KEY = "host"', db=pinned.database)
    assert sorted(row["value"] for row in stored) == ["other", PINNED_HOSTNAME]


def test_switching_the_host_tag_through_the_api_reaches_running_ingest(
    stack: Stack, app: Flask, client: FlaskClient
) -> None:
    key = collector_key(app, "web-01", PINNED_HOSTNAME, "pinned")
    boss = Caller(client, issue_test_token(app, ADMIN))
    path = f"/tenants/{TENANT}/collectors/{key.collector_id}"

    def lands_as(expected: str) -> None:
        """Write until a point lands with host ``expected``: ingest's cached lookup of the key
        expires within its key-cache-seconds; until then the old setting may apply."""
        deadline = time.monotonic() + SWITCH_WITHIN
        while True:
            stamp = stack.next_stamp()
            response = stack.write(key, f"cpu,host=other value=1 {stamp}")
            assert response.status_code == 204, response.text
            if stack.hosts_at(key, stamp) == [expected]:
                return
            assert time.monotonic() < deadline, f"no point landed as {expected} in time"

    lands_as(PINNED_HOSTNAME)
    freed = boss("PATCH", path, {"host_tag": "free"})
    assert freed.status_code == 200, freed.get_json()
    assert freed.get_json()["host_tag"] == "free"
    lands_as("other")
    pinned = boss("PATCH", path, {"host_tag": "pinned"})
    assert pinned.get_json()["host_tag"] == "pinned"
    lands_as(PINNED_HOSTNAME)
    events = boss("GET", f"/tenants/{TENANT}/audit").get_json()["events"]
    changes = [event["details"] for event in events if event["action"] == "collector.host_tag"]
    assert [(change["previous"], change["host_tag"]) for change in changes] == [
        ("free", "pinned"),
        ("pinned", "free"),
    ]  # newest first
    assert all(change["hostname"] == PINNED_HOSTNAME for change in changes)
