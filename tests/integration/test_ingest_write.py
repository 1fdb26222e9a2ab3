"""Ingest against the real InfluxDB 1.6.7 (auth on): what lands where, and every refusal.

Tenants, collectors and keys are made through the tenants services in the admin app's context;
ingest runs as its Flask app (the test client, or a real HTTP server for influxdb-client) and
writes with the InfluxDB admin as its write user (one test: with the write-only ingest user the
admin app provisions). Counts are read back with InfluxQL.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import logging
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point as ClientPoint
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from werkzeug.serving import make_server

from ingest.app import create_app
from ingest.lineprotocol import LineProtocolError, parse_line
from ingest.ratelimit import RedisTokenBucket
from ingest.settings import load
from ingest.storage import StoragePartialRefusal, StorageTooLarge, StorageWholeConflict, V1Writer
from ingest.testing import CollectorKey, issue_collector_key
from perfanalysis.testing.servers import (
    InfluxDB,
    ServerError,
    ServerProcess,
    ServerRegistry,
    ensure_installed,
    quote_identifier,
    wait_until,
)
from tenants import db as database
from tenants.access import system_actor
from tenants.collectors import set_collector_status
from tenants.crypto import split_credential
from tenants.influx import InfluxStorage
from tenants.keys import get_key, revoke_key
from tenants.models import ApiKey, Collector, Tenant
from tenants.tenancy import set_ingest_limits, set_tenant_status
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.integration

NOW_S = int(time.time())
MakeKey = Callable[..., CollectorKey]
MakeIngest = Callable[..., FlaskClient]


@pytest.fixture(scope="module")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    with InfluxDB(tmp_path_factory.mktemp("ingest-influxdb"), auth=True) as server:
        yield server


@pytest.fixture
def keys(app: Flask, influxdb: InfluxDB) -> MakeKey:
    """keys(tenant=None, collector="web-01", create_database=True, **registered): a key in a
    (new) tenant; ``registered`` gives the collector's hostname and host_tag (by default pinned
    to host.example: a test whose key writes for several hosts registers it free)."""

    def make(
        tenant: str | None = None,
        collector: str = "web-01",
        create_database: bool = True,
        **registered: str,
    ) -> CollectorKey:
        slug = tenant or f"t{secrets.token_hex(4)}"  # the InfluxDB outlives each test's tenants
        with app.app_context():
            key = issue_collector_key(
                database.session(), app.extensions["pa_hasher"], slug, collector, **registered
            )
        if create_database:
            influxdb.create_database(key.database)
        return key

    return make


@pytest.fixture
def make_ingest(database_url: str, influxdb: InfluxDB) -> Iterator[MakeIngest]:
    """make_ingest(*flags, storage=None, env=None): a test client of an ingest app."""
    apps: list[Flask] = []

    def make(
        *flags: str, storage: ServerProcess | None = None, env: dict[str, str] | None = None
    ) -> FlaskClient:
        environ = {
            "PERFANALYSIS_INGEST_SECRET_KEY": TEST_SECRET,
            "PERFANALYSIS_INGEST_DATABASE_URL": database_url,
            "PERFANALYSIS_INGEST_STORAGE_URL": (storage or influxdb).url,
            "PERFANALYSIS_INGEST_KEY_CACHE_SECONDS": "0.01",
            "PERFANALYSIS_INGEST_LIMITS_RATE": "0",
        }
        if storage is None:
            environ["PERFANALYSIS_INGEST_STORAGE_USERNAME"] = influxdb.admin_user
            environ["PERFANALYSIS_INGEST_STORAGE_PASSWORD"] = influxdb.admin_password
        application = create_app(load(list(flags), {**environ, **(env or {})}))
        application.config["TESTING"] = True
        apps.append(application)
        return application.test_client()

    yield make
    for application in apps:
        application.extensions["ingest"].close()


def token(key: CollectorKey) -> dict[str, str]:
    return {"Authorization": f"Token {key.key}"}


def series(
    influxdb: InfluxDB, db: str, measurement: str = "cpu", field: str = "value"
) -> list[Any]:
    """(tags..., count) of every series of ``measurement``, sorted."""
    rows = influxdb.rows(
        f"SELECT count({quote_identifier(field)}) FROM {quote_identifier(measurement)} GROUP BY *",  # noqa: S608
        db=db,
    )
    return sorted(tuple(sorted((k, v) for k, v in row.items() if k != "time")) for row in rows)


def findings(health: Any) -> dict[str, Any]:
    """/health's status and findings by name (InfluxDB 2.x's other fields aside)."""
    body = health.get_json()
    return {name: body[name] for name in ("status", "storage", "database")}


def row(**columns: Any) -> tuple[Any, ...]:
    """A series as ``series`` gives it."""
    return tuple(sorted(columns.items()))


def measurements(influxdb: InfluxDB, db: str) -> list[str]:
    rows = influxdb.rows("SHOW MEASUREMENTS", db=db)
    return [row["name"] for row in rows]


def count(influxdb: InfluxDB, db: str, measurement: str = "cpu", field: str = "value") -> int:
    return sum(dict(row)["count"] for row in series(influxdb, db, measurement, field))


def requests_counted(client: FlaskClient) -> dict[tuple[str, str], float]:
    """perfanalysis_ingest_requests_total by (api, code), from the app's /metrics."""
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (sample.labels["api"], sample.labels["code"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "perfanalysis_ingest_requests"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def requests_counted_points(client: FlaskClient, tenant: str) -> dict[str, float]:
    """The tenant's accepted points and its rejected ones by reason, from the app's /metrics."""
    text = client.get("/metrics").get_data(as_text=True)
    return {
        sample.labels.get("reason", "accepted"): sample.value
        for family in text_string_to_metric_families(text)
        if family.name
        in ("perfanalysis_ingest_points_accepted", "perfanalysis_ingest_points_rejected")
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["tenant"] == tenant
    }


@contextlib.contextmanager
def http_server(client: FlaskClient) -> Iterator[str]:
    """The client's app on a real loopback HTTP server (for clients that need a socket)."""
    server = make_server("127.0.0.1", 0, client.application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


# ----------------------------------------------------------------------------------------------
# What lands where


def test_raw_line_protocol_lands_in_the_tenants_database_with_its_tags(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    key = keys(host_tag="free")  # one key writing for three hosts
    client = make_ingest()
    body = "\n".join(f"cpu,host=h{i % 3},cpu=0 value={i} {NOW_S - i}" for i in range(30))
    response = client.post("/write?db=whatever&rp=autogen&precision=s", data=body,
                           headers=token(key))  # fmt: skip
    assert response.status_code == 204, response.get_json()
    basic = base64.b64encode(f"telegraf:{key.key}".encode()).decode()
    gzipped = gzip.compress(f"cpu,host=h0,cpu=0 value=1 {NOW_S - 100}000".encode())
    response = client.post("/write?db=x&precision=ms", data=gzipped,
                           headers={"Authorization": f"Basic {basic}", "Content-Encoding": "gzip"})  # fmt: skip
    assert response.status_code == 204, response.get_json()
    tags = {"collector": "web-01", "cpu": "0", "tenant": key.tenant_slug}
    assert series(influxdb, key.database) == sorted(
        [row(count=11, host="h0", **tags), row(count=10, host="h1", **tags),
         row(count=10, host="h2", **tags)]
    )  # fmt: skip
    last = influxdb.rows("SELECT last(value) FROM cpu", db=key.database, epoch="s")
    assert last[0]["time"] == NOW_S  # precision s, converted to ns and back


def test_influxdb_clients_v2_write_api_works_through_ingest(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    key = keys(host_tag="free")  # one key writing for six hosts
    client = make_ingest()
    points = [
        ClientPoint("mem")
        .tag("host", f"h{i % 5}")
        .field("used", i)
        .time(NOW_S - i, WritePrecision.S)
        for i in range(25)
    ]
    with (
        http_server(client) as url,
        InfluxDBClient(url=url, token=key.key, org="someone-else") as influx_client,
    ):
        write_api = influx_client.write_api(write_options=SYNCHRONOUS)
        write_api.write(bucket="pa_elsewhere", record=points, write_precision=WritePrecision.S)
        write_api.write(
            bucket="b", record=f"mem,host=h9 used=7i {NOW_S * 1000}", write_precision="ms"
        )
        with pytest.raises(ApiException) as refused:
            write_api.write(bucket="b", record="mem used=oops")
    assert refused.value.status == 400
    assert "nothing was written" in refused.value.message
    assert count(influxdb, key.database, "mem", "used") == 26
    rows = influxdb.rows("SELECT sum(used) FROM mem GROUP BY tenant, collector", db=key.database)
    assert rows == [
        {"tenant": key.tenant_slug, "collector": "web-01", "time": rows[0]["time"],
         "sum": sum(range(25)) + 7}
    ]  # fmt: skip


def influx_cli(url: str, key: CollectorKey, *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's influx CLI (a Go InfluxDB 1.x client) against ``url``, the key as password."""
    address = urlsplit(url)
    return subprocess.run(
        [ensure_installed("influx", "influxdb-client"), "-host", str(address.hostname),
         "-port", str(address.port), "-username", "telegraf", "-password", key.key, *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_influx_cli_creates_its_database_and_inserts_through_ingest(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    """The CLI's INSERT sends its line with a leading space, which InfluxDB skips; its CREATE
    DATABASE goes to /query. Both work through ingest, and the points land in the key's tenant
    database with the forced tags, not in the database the CLI names."""
    key = keys(hostname="cli")  # the host the INSERT names
    client = make_ingest()
    with http_server(client) as url:
        created = influx_cli(url, key, "-execute", "CREATE DATABASE telegraf")
        inserted = influx_cli(url, key, "-database", "telegraf", "-precision", "s",
                              "-execute", f"INSERT cpu,host=cli value=4 {NOW_S}")  # fmt: skip
        refused = influx_cli(url, key, "-database", "telegraf", "-execute", "INSERT cpu value=")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "CREATE DATABASE telegraf changed nothing" in created.stdout + created.stderr
    assert inserted.returncode == 0, inserted.stdout + inserted.stderr
    assert "ERR" not in inserted.stdout + inserted.stderr
    assert "nothing was written" in refused.stdout + refused.stderr
    assert series(influxdb, key.database) == [
        row(collector="web-01", count=1, host="cli", tenant=key.tenant_slug)
    ]
    assert influxdb.rows("SELECT value FROM cpu", db=key.database, epoch="s") == [
        {"time": NOW_S, "value": 4}
    ]
    assert "telegraf" not in [r["name"] for r in influxdb.rows("SHOW DATABASES")]


def test_query_answers_create_database_alone_as_influxdb_1x_does(
    keys: MakeKey, make_ingest: MakeIngest
) -> None:
    """What Telegraf's outputs.influxdb sends before writing (a form POST with basic auth) gets
    200 with no error, so it stops retrying; anything else gets a refusal that says why."""
    key = keys()
    client = make_ingest()
    basic = base64.b64encode(f"telegraf:{key.key}".encode()).decode()
    telegraf = client.post("/query", data={"q": 'CREATE DATABASE "telegraf"'},
                           headers={"Authorization": f"Basic {basic}"})  # fmt: skip
    assert telegraf.status_code == 200
    [result] = telegraf.get_json()["results"]
    assert result["statement_id"] == 0
    assert "error" not in result
    assert 'CREATE DATABASE "telegraf" changed nothing' in result["messages"][0]["text"]
    two = client.get("/query", query_string={"q": "create database a; CREATE DATABASE b WITH "
                                                  "DURATION 30d SHARD DURATION 1d NAME rp;"},
                     headers=token(key))  # fmt: skip
    assert [r["statement_id"] for r in two.get_json()["results"]] == [0, 1]

    def refusal(status: int, data: Any = None, **kwargs: Any) -> str:
        kwargs.setdefault("headers", token(key))
        response = client.post("/query", data=data, **kwargs)
        assert response.status_code == status, response.get_json()
        message: str = response.get_json()["error"]
        return message

    assert "'SHOW DATABASES' is not answered here" in refusal(
        403, {"q": "CREATE DATABASE a; SHOW DATABASES"}
    )
    assert "statement 1: 'CREATE DATABASE a WITH' is not valid" in refusal(
        400, {"q": "CREATE DATABASE a WITH"}
    )
    assert "unterminated quote" in refusal(400, {"q": 'CREATE DATABASE "a'})
    assert 'missing required parameter "q"' in refusal(400, {"q": " ; "})
    assert "must be application/x-www-form-urlencoded" in refusal(
        415, '{"q": "CREATE DATABASE a"}', content_type="application/json"
    )
    assert "the /query form is not UTF-8" in refusal(
        400, b"q=CREATE DATABASE \xff", content_type="application/x-www-form-urlencoded"
    )
    assert "no collector key" in refusal(401, {"q": "CREATE DATABASE a"}, headers={})
    assert "query parameter 'p'" in refusal(  # u, a user name, is no secret
        401, {"q": "CREATE DATABASE a"}, query_string={"u": "x", "p": key.key}
    )
    huge = {"q": "CREATE DATABASE a", "padding": "x" * 8 * 1024 * 1024}
    assert "the /query form is larger than 8388608 bytes" in refusal(413, huge)
    put = client.put("/query", data={"q": "CREATE DATABASE a"}, headers=token(key))
    assert put.status_code == 405
    assert put.headers["Allow"] == "GET, POST"
    assert put.get_json()["message"] == "PUT /query is not answered: use GET or POST"
    assert requests_counted(client) == {
        ("query", "200"): 2, ("query", "400"): 4, ("query", "401"): 2, ("query", "403"): 1,
        ("query", "405"): 1, ("query", "413"): 1, ("query", "415"): 1,
    }  # fmt: skip


def test_spoofed_tenant_tags_and_another_tenants_names_land_under_the_keys_tenant(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    mine, theirs = keys(hostname="x"), keys()
    client = make_ingest()
    spoofed = f"cpu,tenant={theirs.tenant_slug},collector=spoofed,host=x value=1 {NOW_S}"
    assert client.post(f"/write?db={theirs.database}&precision=s", data=spoofed,
                       headers=token(mine)).status_code == 204  # fmt: skip
    response = client.post(
        f"/api/v2/write?org={theirs.tenant_slug}&bucket={theirs.database}&precision=s",
        data=spoofed.replace("value=1", "value=2").replace(str(NOW_S), str(NOW_S - 1)),
        headers=token(mine),
    )
    assert response.status_code == 204
    assert series(influxdb, mine.database) == [
        row(collector="web-01", count=2, host="x", tenant=mine.tenant_slug)
    ]
    assert measurements(influxdb, theirs.database) == []


def test_escaped_names_are_stored_as_ingest_parsed_them(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    key = keys()
    lines = [
        rf'my\ meas\,x,tag\ key=tag\,v\=1 field\ k="str \\ back \"q\"",f2=2 {NOW_S}',
        rf'esc,t=a\\b,u=x\ y s="a\\",n=5i {NOW_S}',
        r'esc,t=c\d,u=\,\  s="tab' + "\t" + rf'and \b",n=6i {NOW_S}',
        f"uni,t=\u00e9\\ \u00fc v=1.5 {NOW_S}",
        f'"q",t="x" "f"=1 {NOW_S}',
    ]
    response = make_ingest().post("/write?precision=s", data="\n".join(lines), headers=token(key))
    assert response.status_code == 204, response.get_json()
    for line in lines:
        point = parse_line(line)
        rows = influxdb.rows(
            f"SELECT * FROM {quote_identifier(point.measurement)}",  # noqa: S608
            db=key.database,
        )
        stored = [row for row in rows if all(row.get(k) == v for k, v in point.tags)]
        assert len(stored) == 1, (line, point, rows)
        assert stored[0]["collector"] == "web-01"
        for field, value in point.fields:
            assert stored[0][field] == value, (line, field)


def test_strings_spanning_lines_are_stored_as_influxdb_itself_stores_them(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    """influxdb-client sends a newline in a string field raw, and InfluxDB keeps it: ingest must
    take the same body and store the same values (InfluxDB written directly is the oracle)."""
    key = keys()
    body = (
        f'log,unit=a msg="first\nsecond",n=1i {NOW_S}\r\n'
        f'log,unit=b msg="kept\r\ncr, \\\nand \\"q\\"\n# not a comment\n" {NOW_S}\r\n'
        f"# a comment\r\n"
        f"log,unit=c n=3i {NOW_S}\n"
    ).encode()
    assert body.count(b"\n") == 9
    direct = influxdb.unique_database("oracle")
    line_ends = body.replace(f" {NOW_S}\r\n".encode(), f" {NOW_S}\n".encode())
    influxdb.write(direct, line_ends.replace(b"comment\r\n", b"comment\n"), "s")  # no CR LF ends
    response = make_ingest().post("/write?precision=s", data=body, headers=token(key))
    assert response.status_code == 204, response.get_json()
    query = "SELECT msg, n FROM log GROUP BY unit"
    stored = influxdb.rows(query, db=key.database)
    assert [(r["unit"], r["msg"], r["n"]) for r in stored] == [
        (r["unit"], r["msg"], r["n"]) for r in influxdb.rows(query, db=direct)
    ]
    assert [r["msg"] for r in stored] == [
        "first\nsecond",
        'kept\r\ncr, \\\nand "q"\n# not a comment\n',
        None,
    ]

    with (
        http_server(make_ingest()) as url,
        InfluxDBClient(url=url, token=key.key, org="o") as influx_client,
    ):
        influx_client.write_api(write_options=SYNCHRONOUS).write(
            bucket="b",
            record=ClientPoint("log").tag("unit", "d").field("msg", "one\ntwo").time(NOW_S, "s"),
            write_precision=WritePrecision.S,
        )
    rows = influxdb.rows("SELECT msg FROM log WHERE unit = 'd'", db=key.database)
    assert [r["msg"] for r in rows] == ["one\ntwo"]


def test_a_string_left_open_is_one_bad_line_from_where_it_opens(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    key = keys()
    body = f'log v=1 {NOW_S}\nlog msg="never closed {NOW_S}\nlog v=2 {NOW_S}\n'
    response = make_ingest().post("/write?precision=s", data=body, headers=token(key))
    assert response.status_code == 400
    assert response.get_json()["invalid_lines"] == [
        {"line": 2, "reason": "column 9: field 'msg': unterminated string"}
    ]
    assert measurements(influxdb, key.database) == []


# ----------------------------------------------------------------------------------------------
# Refusals


def test_bad_missing_and_url_keys_get_401_and_nothing_is_stored(
    app: Flask, keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    key = keys()
    revoked = keys(key.tenant_slug, "web-02", create_database=False)
    with app.app_context():
        db = database.session()
        tenant = db.get(Tenant, key.tenant_id)
        assert tenant is not None
        key_id = split_credential(revoked.key)[1]  # type: ignore[index]
        revoke_key(db, system_actor(), tenant, get_key(db, system_actor(), tenant, key_id))
    client = make_ingest()
    wrong_secret = key.key[:-1] + ("B" if key.key[-1] != "B" else "C")
    unknown = "pak_" + "a" * 13 + "_" + "A" * 43
    empty_basic = base64.b64encode(b"user:").decode()
    headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Token"},
        {"Authorization": "Token nonsense"},
        {"Authorization": f"Token {wrong_secret}"},
        {"Authorization": f"Token {unknown}"},
        {"Authorization": f"Token {revoked.key}"},
        {"Authorization": f"Basic {empty_basic}"},
        {"Authorization": f"Digest {key.key}"},
    ]
    body = f"cpu value=1 {NOW_S}"
    for header in headers:
        for path in ("/write?precision=s", "/api/v2/write?precision=s"):
            response = client.post(path, data=body, headers=header)
            assert response.status_code == 401, (header, response.get_json())
            assert [challenge.split()[0] for challenge in
                    response.headers.get_all("WWW-Authenticate")] == ["Basic", "Token"]  # fmt: skip
            assert response.get_json()["code"] == "unauthorized"
    assert "revoked" in client.post("/write", data=body, headers=token(revoked)).get_json()["error"]
    for query in (f"u=me&p={key.key}", f"token={key.key}", f"db={key.key}"):
        response = client.post(f"/write?{query}&precision=s", data=body, headers=token(key))
        assert response.status_code == 401
        assert "Authorization: Token" in response.get_json()["message"]
    assert measurements(influxdb, key.database) == []


def test_a_disabled_tenant_or_collector_gets_403(
    app: Flask, keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    key = keys()
    client = make_ingest()

    def post(value: int) -> Any:
        time.sleep(0.05)  # past the key cache (0.01 s here)
        return client.post("/write?precision=s", data=f"cpu value={value} {NOW_S - value}",
                           headers=token(key))  # fmt: skip

    def change(tenant_active: bool, collector_active: bool) -> None:
        with app.app_context():
            db = database.session()
            tenant = db.get(Tenant, key.tenant_id)
            collector = db.get(Collector, key.collector_id)
            assert tenant is not None
            assert collector is not None
            set_tenant_status(db, system_actor(), tenant, tenant_active)
            set_collector_status(db, system_actor(), tenant, collector, collector_active)

    assert post(1).status_code == 204
    change(tenant_active=False, collector_active=True)
    refused = post(2)
    assert refused.status_code == 403
    assert refused.get_json()["message"] == "this key's tenant is disabled"
    change(tenant_active=True, collector_active=False)
    refused = post(3)
    assert refused.status_code == 403
    assert refused.get_json()["message"] == "this key's collector is disabled"
    change(tenant_active=True, collector_active=True)
    assert post(4).status_code == 204
    assert count(influxdb, key.database) == 2


def test_a_batch_with_one_bad_line_is_refused_whole_and_nothing_is_stored(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    key = keys()
    client = make_ingest()
    lines = [f"cpu,host=h value={i} {NOW_S - i}" for i in range(1000)]
    lines[499] = "cpu,host=h value=oops"
    response = client.post("/write?precision=s", data="\n".join(lines), headers=token(key))
    assert response.status_code == 400
    body = response.get_json()
    assert body["invalid_count"] == 1
    assert body["line"] == 500
    assert body["invalid_lines"] == [
        {"line": 500, "reason": "column 18: field 'value': invalid value 'oops' (expected a "
                                "float, 1i, 1u, a boolean or a \"string\")"}
    ]  # fmt: skip
    # clients that log only the message (Telegraf, the influx CLI) show which line and why
    assert body["message"] == (
        "1 of 1000 lines are invalid; nothing was written (line 500: column 18: field 'value': "
        "invalid value 'oops' (expected a float, 1i, 1u, a boolean or a \"string\"))"
    )
    many_bad = ["cpu value=+1"] * 150 + lines[:10]
    body = client.post(
        "/write?precision=s", data="\n".join(many_bad), headers=token(key)
    ).get_json()
    assert body["invalid_count"] == 150
    assert body["message"].endswith("; and 149 more)")
    assert len(body["invalid_lines"]) == 100
    response = client.post("/write?precision=xx", data=lines[0], headers=token(key))
    assert response.status_code == 400
    assert "unknown precision 'xx'" in response.get_json()["message"]
    v2 = client.post("/api/v2/write?precision=h", data=lines[0], headers=token(key))
    assert v2.status_code == 400  # hours exist in v1 only
    assert measurements(influxdb, key.database) == []


def test_too_large_bodies_points_and_zip_bombs_get_413(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    key = keys()
    client = make_ingest("--limits.max-body-bytes=2000", "--limits.max-decompressed-bytes=4000",
                         "--limits.max-points=10")  # fmt: skip
    lines = [f"cpu,host=h value={i} {NOW_S - i}" for i in range(11)]
    big = "\n".join(lines * 10)
    bomb = gzip.compress(b"#" * 1_000_000)
    for data, headers, reason in [
        (big, {}, "request body larger than 2000 bytes"),
        (bomb, {"Content-Encoding": "gzip"}, "decompressed body larger than 4000 bytes"),
        ("\n".join(lines), {}, "11 points in one request; at most 10"),
    ]:
        response = client.post("/write?precision=s", data=data, headers={**token(key), **headers})
        assert response.status_code == 413, response.get_json()
        assert reason in response.get_json()["message"]
    ten = gzip.compress("\n".join(lines[:10]).encode())
    ok = client.post("/write?precision=s", data=ten, headers={**token(key),
                     "Content-Encoding": "gzip"})  # fmt: skip
    assert ok.status_code == 204
    assert count(influxdb, key.database) == 10


def test_write_paths_refuse_other_methods_odd_lengths_and_bugs_in_json_and_count_them(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB, caplog: pytest.LogCaptureFixture
) -> None:
    """The write paths are answered before Flask (ingest/writeapi.py): every answer is JSON,
    counted, and a chunked body is read whole."""
    key = keys()
    client = make_ingest()
    for method, path in (("GET", "/write"), ("PUT", "/api/v2/write"), ("HEAD", "/write")):
        response = client.open(path, method=method, headers=token(key))
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"
        if method != "HEAD":
            assert response.get_json()["code"] == "method not allowed"
    odd = client.post("/write", data=f"cpu value=1 {NOW_S}", headers=token(key),
                      environ_overrides={"CONTENT_LENGTH": "12x"})  # fmt: skip
    assert odd.status_code == 400
    assert "Content-Length '12x' is not a byte count" in odd.get_json()["message"]

    def chunks() -> Iterator[bytes]:
        yield f"cpu value=1 {NOW_S}\n".encode()
        yield f"cpu value=2 {NOW_S - 1}\n".encode()

    with http_server(client) as url:
        chunked = requests.post(f"{url}/write?precision=s", data=chunks(), headers=token(key),
                                timeout=10)  # fmt: skip
    assert chunked.status_code == 204, chunked.text
    assert count(influxdb, key.database) == 2

    service = client.application.extensions["ingest"].service

    def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    service.write = broken
    bug = client.post("/api/v2/write", data=f"cpu value=3 {NOW_S}", headers=token(key))
    assert bug.status_code == 500
    assert bug.get_json()["message"] == "internal error (RuntimeError); it has been logged"
    assert "unexpected error on POST /api/v2/write" in caplog.text
    assert requests_counted(client) == {
        ("v1", "405"): 2, ("v2", "405"): 1, ("v1", "400"): 1, ("v1", "204"): 1, ("v2", "500"): 1,
    }  # fmt: skip
    assert count(influxdb, key.database) == 2


def rate_limited_ingest(make_ingest: MakeIngest, prefix: str) -> FlaskClient:
    redis_url = os.environ.get("REDIS_URL", "")
    return make_ingest("--limits.rate=100", "--limits.burst=100",
                       f"--limits.redis-prefix={prefix}",
                       env={"PERFANALYSIS_INGEST_REDIS_URL": redis_url})  # fmt: skip


def test_over_the_tenants_rate_gets_429_with_retry_after(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    key = keys()
    client = rate_limited_ingest(make_ingest, f"test:ingest:{secrets.token_hex(4)}:")
    limiter = client.application.extensions["ingest"].service.limiter
    assert isinstance(limiter, RedisTokenBucket) == bool(os.environ.get("REDIS_URL"))

    def post(points: int, start: int) -> Any:
        body = "\n".join(f"cpu value={i} {NOW_S - i}" for i in range(start, start + points))
        return client.post("/write?precision=s", data=body, headers=token(key))

    assert post(100, 0).status_code == 204
    refused = post(40, 100)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.get_json()["code"] == "too many requests"
    too_big = post(101, 200)
    assert too_big.status_code == 413
    assert "at most 100 at once" in too_big.get_json()["message"]
    deadline = time.monotonic() + 5  # 40 points come back in 0.4 s at 100/s
    while (again := post(40, 100)).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.05)  # a refused request takes no tokens
    assert again.status_code == 204
    assert count(influxdb, key.database) == 140


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI sets it)")
def test_the_rate_limit_holds_across_workers_through_redis(
    keys: MakeKey, make_ingest: MakeIngest
) -> None:
    key, other = keys(), keys()
    prefix = f"test:ingest:{secrets.token_hex(4)}:"
    first, second = (
        rate_limited_ingest(make_ingest, prefix),
        rate_limited_ingest(make_ingest, prefix),
    )
    lines = [f"cpu value={i} {NOW_S - i}" for i in range(100)]
    body = "\n".join(lines)
    assert first.post("/write?precision=s", data=body, headers=token(key)).status_code == 204
    refused = second.post("/write?precision=s", data="\n".join(lines[:20]), headers=token(key))
    assert refused.status_code == 429
    assert second.post("/write?precision=s", data=body, headers=token(other)).status_code == 204


def test_a_write_that_storage_did_not_take_gives_its_rate_tokens_back(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    """Retries while storage refuses ingest (here: its database is missing) must not leave the
    tenant throttled once storage takes writes again; a batch storage read and partly refused
    (422) keeps its tokens spent. At 1 point/s, spent tokens would take 100 s to come back."""
    key = keys(create_database=False)
    redis_url = os.environ.get("REDIS_URL", "")
    client = make_ingest("--limits.rate=1", "--limits.burst=100",
                         f"--limits.redis-prefix=test:ingest:{secrets.token_hex(4)}:",
                         env={"PERFANALYSIS_INGEST_REDIS_URL": redis_url})  # fmt: skip

    def post(lines: list[str]) -> Any:
        return client.post("/write?precision=s", data="\n".join(lines), headers=token(key))

    batch = [f"cpu value={i} {NOW_S - i}" for i in range(100)]
    for _ in range(3):
        assert post(batch).status_code == 503
    influxdb.create_database(key.database)
    assert post(batch).status_code == 204
    assert count(influxdb, key.database) == 100
    assert post(batch[:50]).status_code == 429, "the stored batch spent the burst"
    limited = keys()
    client = make_ingest("--limits.rate=1", "--limits.burst=100",
                         f"--limits.redis-prefix=test:ingest:{secrets.token_hex(4)}:",
                         env={"PERFANALYSIS_INGEST_REDIS_URL": redis_url})  # fmt: skip
    typed = client.post("/write?precision=s", data=f"cpu value=1i {NOW_S}", headers=token(limited))
    assert typed.status_code == 204
    conflict = [f"cpu value={i} {NOW_S - i}" for i in range(1, 100)]
    refused = client.post("/write?precision=s", data="\n".join(conflict), headers=token(limited))
    assert refused.status_code == 422
    again = client.post("/write?precision=s", data="\n".join(f"cpu value={i}i {NOW_S - i}" for i in range(50)),
                        headers=token(limited))  # fmt: skip
    assert again.status_code == 429, "a batch storage read keeps its tokens spent"


def test_a_tenants_own_limits_apply_to_it_alone_and_can_be_reset(
    app: Flask, keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    limited, other = keys(), keys()
    redis_url = os.environ.get("REDIS_URL", "")
    client = make_ingest("--limits.rate=0", f"--limits.redis-prefix=test:ingest:{secrets.token_hex(4)}:",
                         env={"PERFANALYSIS_INGEST_REDIS_URL": redis_url})  # fmt: skip

    def limit(rate: float | None, burst: int | None) -> None:
        with app.app_context():
            db = database.session()
            tenant = db.get(Tenant, limited.tenant_id)
            assert tenant is not None
            set_ingest_limits(db, system_actor(), tenant, rate, burst)

    def post(key: CollectorKey, points: int, start: int) -> Any:
        body = "\n".join(f"cpu value={i} {NOW_S - i}" for i in range(start, start + points))
        return client.post("/write?precision=s", data=body, headers=token(key))

    limit(0.001, 50)  # 50 points, then one point every 1,000 s
    assert post(limited, 50, 0).status_code == 204
    refused = post(limited, 10, 50)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 9_000
    too_big = post(limited, 51, 100)
    assert too_big.status_code == 413
    assert "at most 50 at once" in too_big.get_json()["message"]
    assert post(other, 500, 0).status_code == 204  # ingest's default: no limit
    limit(None, None)  # back to ingest's default, felt within key-cache-seconds (0.01 s here)
    answered = wait_until(
        lambda: (answer := post(limited, 500, 200)).status_code != 413 and answer,  # 413: unstored
        timeout=2.0,
        interval=0.01,
        what="ingest to apply the tenant's new limits",
    )
    assert answered.status_code == 204
    assert count(influxdb, limited.database) == 550
    assert count(influxdb, other.database) == 500


def test_storage_down_gives_503_with_retry_after_and_recovers(
    servers: ServerRegistry, keys: MakeKey, make_ingest: MakeIngest
) -> None:
    own = servers.influxdb()  # this test stops it
    key = keys(create_database=False)
    own.create_database(key.database)
    client = make_ingest("--storage.retry-after=7", storage=own)

    def post(value: int) -> Any:
        return client.post("/write?precision=s", data=f"cpu value={value} {NOW_S - value}",
                           headers=token(key))  # fmt: skip

    assert post(1).status_code == 204
    own.stop()
    down = post(2)
    assert down.status_code == 503
    assert down.headers["Retry-After"] == "7"
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json()["storage"].startswith("down: storage unreachable")
    own.start()
    assert post(3).status_code == 204
    assert findings(client.get("/health")) == {"status": "pass", "storage": "ok", "database": "ok"}
    assert count(own, key.database) == 2


def test_slow_storage_gives_503(keys: MakeKey, make_ingest: MakeIngest) -> None:
    key = keys(create_database=False)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = make_ingest("--storage.timeout=300ms",
                             env={"PERFANALYSIS_INGEST_STORAGE_URL": url})  # fmt: skip
        started = time.monotonic()
        response = client.post("/write", data="cpu value=1", headers=token(key))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert time.monotonic() - started < 3


def test_storage_refusing_ingest_is_503_and_refusing_points_is_422(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing database is ingest's misconfiguration, not the client's fault: the client keeps
    its points and retries; a field type conflict is the points' own: retrying cannot help."""
    missing = keys(create_database=False)
    client = make_ingest("--storage.retry-after=9")
    response = client.post("/write", data="cpu value=1", headers=token(missing))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "9"
    assert "an operator must fix it" in response.get_json()["message"]
    assert "storage refused ingest's write to " + missing.database in caplog.text
    assert "database not found" in caplog.text
    metrics = client.get("/metrics").get_data(as_text=True)
    rejected = (f'perfanalysis_ingest_points_rejected_total{{reason="storage_refused",'
                f'tenant="{missing.tenant_slug}"}} 1.0')  # fmt: skip
    assert rejected in metrics
    key = keys()
    assert client.post("/write?precision=s", data=f"cpu value=1 {NOW_S}",
                       headers=token(key)).status_code == 204  # fmt: skip
    conflict = client.post(
        "/write?precision=s",
        data=f"cpu value=2i {NOW_S - 1}\ncpu value=3 {NOW_S - 2}",
        headers=token(key),
    )
    assert conflict.status_code == 422
    assert "field type conflict" in conflict.get_json()["message"]
    assert "the other 1 of the batch's 2 points were written" in conflict.get_json()["message"]
    assert (conflict.get_json()["written"], conflict.get_json()["rejected"]) == (1, 1)
    assert count(influxdb, key.database) == 2  # InfluxDB 1.x wrote the other point
    counted = requests_counted_points(client, key.tenant_slug)
    assert counted == {"accepted": 2.0, "storage_conflict": 1.0}


def test_a_batch_giving_a_field_two_types_is_400_in_a_new_shard_and_422_in_an_existing_one(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    """Ingest does not look for a field given two types in one batch; InfluxDB 1.6.7 does. In a
    shard that is new (a new tenant's database, a new shard group) it refuses the whole write,
    ``field type conflict`` without ``partial write``, and stores nothing: the answer must not
    be 422 "the others were written", or the collector would drop points never stored. In a
    shard that exists (here without the field) it stores the rest and drops the conflicting
    point (partial write)."""
    client = make_ingest()
    stamp = NOW_S - 10  # one timestamp: every point in the same shard
    good = [f"cpu,host=h{i} value={i} {stamp}" for i in range(50)]
    body = "\n".join([*good, f"disk,host=h1 used=1 {stamp}", f'disk,host=h2 used="full" {stamp}'])
    reason = ("field 'used' of measurement 'disk' is a string here and a float on line 51: "
              "InfluxDB refuses a batch that gives a field two types")  # fmt: skip

    new_shard = keys(host_tag="free")  # a fresh database: no shard yet; fifty hosts
    refused = client.post("/write?precision=s", data=body, headers=token(new_shard))
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["invalid_lines"] == [{"line": 52, "reason": reason}]
    assert refused.get_json()["invalid_count"] == 1
    assert "storage refused the batch for it: nothing was written" in refused.get_json()["message"]
    assert "written" not in refused.get_json()
    assert count(influxdb, new_shard.database) == 0
    assert count(influxdb, new_shard.database, "disk", "used") == 0
    assert requests_counted_points(client, new_shard.tenant_slug) == {"storage_conflict": 52.0}
    fixed = client.post("/write?precision=s", data=body.replace('"full"', "2"),
                        headers=token(new_shard))  # fmt: skip
    assert fixed.status_code == 204
    assert count(influxdb, new_shard.database) == 50
    assert count(influxdb, new_shard.database, "disk", "used") == 2

    existing_shard = keys(host_tag="free")
    first = client.post("/write?precision=s", data=f"load value=1 {stamp}",
                        headers=token(existing_shard))  # fmt: skip
    assert first.status_code == 204
    partial = client.post("/write?precision=s", data=body, headers=token(existing_shard))
    assert partial.status_code == 422, partial.get_json()
    assert (partial.get_json()["written"], partial.get_json()["rejected"]) == (51, 1)
    assert "the other 51 of the batch's 52 points were written" in partial.get_json()["message"]
    assert count(influxdb, existing_shard.database) == 50
    assert series(influxdb, existing_shard.database, "disk", "used") == [
        row(collector="web-01", count=1, host="h1", tenant=existing_shard.tenant_slug)
    ]
    assert count(influxdb, existing_shard.database, "load") == 1


def test_a_key_too_long_for_influxdb_is_400_and_storages_partial_refusals_are_not_500(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    """InfluxDB 1.6.7 refuses a point whose series key, 4 bytes and a field key take more than
    65,535 bytes, as a parse error in a partial write. Ingest refuses the line itself (400,
    nothing stored) and passes it one byte shorter, which InfluxDB stores. Were such a refusal
    to reach storage, the rest being written, it is 422, not a 500 that has clients resend."""
    key = keys()
    client = make_ingest()
    series_key = f"m,collector=web-01,host={key.hostname},tenant={key.tenant_slug}"

    def line(total: int) -> str:  # series key + 4 + field key = total
        return f"m {'f' * (total - len(series_key) - 4)}=1 {NOW_S}"

    body = f"good value=1 {NOW_S}\n{line(65_536)}"
    refused = client.post("/write?precision=s", data=body, headers=token(key))
    assert refused.status_code == 400
    assert refused.get_json()["line"] == 2
    assert refused.get_json()["invalid_lines"][0]["reason"].endswith("(here 65536)")
    assert measurements(influxdb, key.database) == []
    fits = client.post("/write?precision=s", data=f"good value=1 {NOW_S}\n{line(65_535)}",
                       headers=token(key))  # fmt: skip
    assert fits.status_code == 204
    assert measurements(influxdb, key.database) == ["good", "m"]

    writer = V1Writer(influxdb.url, influxdb.admin_user, influxdb.admin_password, 10.0)
    database = influxdb.unique_database()
    stamp = NOW_S * 10**9
    too_long = b"m " + b"f" * (65_536 - len("m") - 4) + b"=1 %d" % stamp
    with pytest.raises(StoragePartialRefusal, match="max key length exceeded: 65536 > 65535 dr"):
        writer.write(database, b"good value=1 %d\n%s" % (stamp, too_long))
    assert count(influxdb, database, "good") == 1  # InfluxDB wrote the rest
    fresh = influxdb.unique_database()  # no shard yet: refused whole, as measured
    conflict = b'disk used=1 %d\ndisk used="x" %d\ncpu value=1 %d' % (stamp, stamp - 1, stamp)
    with pytest.raises(StorageWholeConflict, match="field type conflict"):
        writer.write(fresh, conflict)
    # no point stored (SHOW MEASUREMENTS lists both: InfluxDB indexed the series first)
    assert count(influxdb, fresh, "disk", "used") + count(influxdb, fresh) == 0
    writer.close()


def test_influxdbs_cardinality_limits_are_422(
    keys: MakeKey, make_ingest: MakeIngest, tmp_path: Any
) -> None:
    """Past data.max-values-per-tag or data.max-series-per-database InfluxDB 1.x refuses new
    series until an operator acts: a retry cannot help, so the client must not keep it."""
    limits = {"data": {"max-values-per-tag": 3, "max-series-per-database": 5}}
    with InfluxDB(tmp_path / "limited", settings=limits) as limited:
        key = keys(create_database=False)
        limited.create_database(key.database)
        client = make_ingest(storage=limited)
        fill = "\n".join(
            f"cpu,a={a},b={b} value=1 {NOW_S}" for a, b in ((0, 0), (0, 1), (0, 2), (1, 0))
        )
        assert client.post("/write?precision=s", data=fill, headers=token(key)).status_code == 204
        values = client.post("/write?precision=s", headers=token(key),
                             data=f"cpu,a=0,b=0 value=2 {NOW_S + 1}\ncpu,a=0,b=3 value=1 {NOW_S}")  # fmt: skip
        assert values.status_code == 422
        assert "max-values-per-tag limit exceeded" in values.get_json()["message"]
        too_many = client.post("/write?precision=s", headers=token(key),
                               data=f"cpu,a=1,b=1 value=1 {NOW_S}\ncpu,a=1,b=2 value=1 {NOW_S}")  # fmt: skip
        assert too_many.status_code == 422
        assert "max-series-per-database limit exceeded" in too_many.get_json()["message"]
        assert "an operator raises it or drops series" in too_many.get_json()["message"]
        assert "written" not in too_many.get_json()  # unknown: InfluxDB may have dropped others
        stored = {(dict(r)["a"], dict(r)["b"]) for r in series(limited, key.database)}
        assert stored == {("0", "0"), ("0", "1"), ("0", "2"), ("1", "0")}
        # InfluxDB 1.6.7 drops the points before a refused series in the batch too: no count
        metrics = client.get("/metrics").get_data(as_text=True)
        assert (f'perfanalysis_ingest_points_rejected_total{{reason="storage_conflict",'
                f'tenant="{key.tenant_slug}"}} 4.0') in metrics  # fmt: skip


def test_a_batch_over_storages_body_limit_is_413_and_stores_nothing(
    keys: MakeKey, make_ingest: MakeIngest, tmp_path: Any
) -> None:
    """InfluxDB refuses a body over its http.max-body-size with 413 before reading the rest, and
    resets the connection when much more follows. Either way the client must split the batch:
    a 500 or 503 would have it resend the same batch forever."""
    with InfluxDB(tmp_path / "small", settings={"http": {"max-body-size": 200_000}}) as small:
        key = keys(create_database=False)
        small.create_database(key.database)
        client = make_ingest(storage=small)

        def batch(points: int) -> str:
            return "\n".join(f"cpu,host=host-{i % 50},region=europe-west value={i} {NOW_S - i}"
                             for i in range(points))  # fmt: skip

        for points in (5_000, 100_000):  # 0.3 MB: a clean 413; 7 MB: a reset mid-send
            response = client.post("/write?precision=s", data=batch(points), headers=token(key))
            assert response.status_code == 413, response.get_json()
            assert "as too large; split the batch" in response.get_json()["message"]
        assert count(small, key.database) == 0
        accepted = client.post("/write?precision=s", data=batch(1_000), headers=token(key))
        assert accepted.status_code == 204
        assert count(small, key.database) == 1_000
        counted = requests_counted_points(client, key.tenant_slug)
        assert counted == {"accepted": 1_000.0, "too_large": 105_000.0}

        writer = V1Writer(small.url, "", "", 10.0)
        with pytest.raises(StorageTooLarge):  # 10 MB: far beyond the socket buffers
            writer.write(key.database, batch(200_000).encode())
        writer.close()


def test_health_metrics_and_key_use(app: Flask, keys: MakeKey, make_ingest: MakeIngest) -> None:
    key = keys()
    client = make_ingest()
    for batch in range(2):
        body = "\n".join(f"cpu value={i} {NOW_S - batch * 10 - i}" for i in range(5))
        assert client.post("/write?precision=s", data=body, headers=token(key)).status_code == 204
    assert client.post("/write", data="cpu value=x", headers=token(key)).status_code == 400
    assert findings(client.get("/health")) == {"status": "pass", "storage": "ok", "database": "ok"}
    ping = client.get("/ping")
    assert ping.status_code == 204
    assert ping.headers["X-Influxdb-Version"].startswith("perfanalysis-ingest-")
    text = client.get("/metrics").get_data(as_text=True)
    slug = key.tenant_slug
    for sample in [
        f'perfanalysis_ingest_points_accepted_total{{tenant="{slug}"}} 10.0',
        f'perfanalysis_ingest_points_rejected_total{{reason="invalid",tenant="{slug}"}} 1.0',
        'perfanalysis_ingest_requests_total{api="v1",code="204"} 2.0',
        'perfanalysis_ingest_requests_total{api="v1",code="400"} 1.0',
        'perfanalysis_ingest_storage_write_seconds_count{outcome="ok"} 2.0',
        'perfanalysis_ingest_batch_points_bucket{le="10.0"} 2.0',
    ]:
        assert sample in text
    client.application.extensions["ingest"].service.verifier.flush()
    with app.app_context():
        db = database.session()
        collector = db.get(Collector, key.collector_id)
        assert collector is not None
        assert collector.points_received == 10
        stored = db.scalar(select(ApiKey).where(ApiKey.collector_id == key.collector_id))
        assert stored is not None
        assert stored.last_used_at is not None


def test_ingest_as_the_write_only_ingest_user_stores_points_and_is_healthy(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    """Deployed, ingest writes as the user the admin app grants WRITE on each tenant database."""
    ingest_user, ingest_password = "ingest", secrets.token_urlsafe(18)
    storage = InfluxStorage(
        influxdb.url,
        influxdb.admin_user,
        influxdb.admin_password,
        ingest_user=ingest_user,
        ingest_password=ingest_password,
    )
    provisioned = keys(create_database=False)
    storage.provision(provisioned.database, f"{provisioned.database}_read")
    by_hand = keys()  # a database the admin made directly: no grant for the ingest user
    client = make_ingest(
        env={
            "PERFANALYSIS_INGEST_STORAGE_USERNAME": ingest_user,
            "PERFANALYSIS_INGEST_STORAGE_PASSWORD": ingest_password,
        }
    )
    body = "\n".join(f"cpu value={i} {NOW_S - i}" for i in range(5))

    answer = client.post("/write?precision=s", data=body, headers=token(provisioned))
    assert answer.status_code == 204, answer.get_data(as_text=True)
    assert count(influxdb, provisioned.database) == 5
    assert findings(client.get("/health")) == {"status": "pass", "storage": "ok", "database": "ok"}

    refused = client.post("/write?precision=s", data=body, headers=token(by_hand))
    assert refused.status_code == 503  # InfluxDB's 403: kept by the client until a grant is made
    assert "Retry-After" in refused.headers
    assert count(influxdb, by_hand.database) == 0
    with pytest.raises(ServerError, match="not authorized"):
        influxdb.rows(
            "SELECT count(value) FROM cpu",
            db=provisioned.database,
            user=ingest_user,
            password=ingest_password,
        )


def test_health_is_down_while_storage_refuses_the_credentials(
    keys: MakeKey, make_ingest: MakeIngest, influxdb: InfluxDB
) -> None:
    """InfluxDB's /ping answers anyone: a wrong password must not look healthy."""
    key = keys()
    client = make_ingest(
        env={
            "PERFANALYSIS_INGEST_STORAGE_USERNAME": influxdb.admin_user,
            "PERFANALYSIS_INGEST_STORAGE_PASSWORD": "not-" + influxdb.admin_password,
        }
    )
    health = client.get("/health")
    assert health.status_code == 503
    assert findings(health) == {
        "status": "fail",
        "storage": "refused: storage answered 401: authorization failed",
        "database": "ok",
    }
    answer = client.post("/write?precision=s", data=f"cpu value=1 {NOW_S}", headers=token(key))
    assert answer.status_code == 503  # the write fails as health said it would
    assert count(influxdb, key.database) == 0


# ----------------------------------------------------------------------------------------------
# Generated input: 4xx, never 5xx, and nothing stored


def _invalid(line: str) -> bool:
    if not line.strip() or line.startswith("#"):
        return False
    try:
        parse_line(line)
    except LineProtocolError:
        return True
    return False


bad_lines = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), min_size=1, max_size=60),
    st.lists(st.sampled_from(["cpu", ",", "=", " ", "\\", '"', "1", "i", "t", "_", "é"]),
             min_size=1, max_size=16).map("".join),
).filter(_invalid)  # fmt: skip
good_lines = st.integers(0, 1000).map(lambda i: f"cpu,host=h{i % 7} value={i} {NOW_S}")


@pytest.fixture
def fuzz_target(keys: MakeKey, make_ingest: MakeIngest) -> tuple[FlaskClient, CollectorKey]:
    return make_ingest(), keys()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(goods=st.lists(good_lines, max_size=5), bad=bad_lines, where=st.integers(0, 5),
       api=st.sampled_from(["/write", "/api/v2/write"]))  # fmt: skip
def test_generated_malformed_line_protocol_gets_400_and_stores_nothing(
    fuzz_target: tuple[FlaskClient, CollectorKey],
    influxdb: InfluxDB,
    goods: list[str],
    bad: str,
    where: int,
    api: str,
) -> None:
    client, key = fuzz_target
    lines = [*goods]
    lines.insert(min(where, len(lines)), bad)
    response = client.post(f"{api}?precision=s", data="\n".join(lines), headers=token(key))
    assert response.status_code == 400, (lines, response.get_json())
    assert response.get_json()["invalid_count"] >= 1
    assert measurements(influxdb, key.database) == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300), gzipped=st.booleans(),
       api=st.sampled_from(["/write", "/api/v2/write"]),
       precision=st.sampled_from(["", "ns", "s", "u", "xx"]))  # fmt: skip
def test_random_bytes_get_4xx_never_5xx_and_store_nothing(
    fuzz_target: tuple[FlaskClient, CollectorKey],
    influxdb: InfluxDB,
    data: bytes,
    gzipped: bool,
    api: str,
    precision: str,
) -> None:
    client, key = fuzz_target
    headers = {**token(key), **({"Content-Encoding": "gzip"} if gzipped else {})}
    response = client.post(f"{api}?precision={precision}", data=data, headers=headers)
    assert response.status_code < 500, response.get_json()
    if response.status_code == 204:  # only bodies without a point: blank lines or comments
        text = data.decode()  # raw bytes: gzip bodies that are valid gzip are vanishingly rare
        assert all(not line.strip() or line.startswith("#") for line in text.split("\n"))
    else:
        assert 400 <= response.status_code < 500
    assert measurements(influxdb, key.database) == []


def test_a_refusal_before_the_service_is_logged_with_tenant_and_collector(
    keys: MakeKey, make_ingest: MakeIngest, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown precision or an unreadable body is refused by the write API itself, before
    the service sees the batch: the log still names who was refused."""
    key = keys()
    client = make_ingest()
    caplog.set_level(logging.INFO, logger="ingest")
    refused = client.post("/write?precision=fortnight", data="cpu value=1", headers=token(key))
    assert refused.status_code == 400
    lines = [r.getMessage() for r in caplog.records if "write refused 400" in r.getMessage()]
    assert len(lines) == 1
    assert f"tenant {key.tenant_slug}" in lines[0]
    assert key.collector_name in lines[0]
    assert "unknown precision 'fortnight'" in lines[0]
