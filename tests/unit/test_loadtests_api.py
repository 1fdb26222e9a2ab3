"""The load-test API: uploads by collector key and by user, the price catalog, prices copied
onto runs, comparisons, right-sizing, roles, and tenancy on every route."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.accounts import get_user_by_email, issue_token
from tenants.loadtests import prices as price_catalog
from tenants.loadtests import runs as stored_runs
from tenants.loadtests.cpu_history import HistoryUnavailable
from tenants.loadtests.models import PriceEntry
from tenants.loadtests.prices import seed_prices
from tenants.models import Collector, Tenant
from tenants.openapi import document as main_document
from tenants.views.loadtests import api as api_blueprint
from tenants.views.loadtests import openapi_components, openapi_paths
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    ADMIN,
    ANALYST,
    OUTSIDER,
    SEED,
    UNITS,
    VIEWER,
    World,
    build_world,
    cheap_password_hashing,
    document,
    run_ids,
    table_rows,
    upload_with_key,
)

JSON = "application/json"


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


def bearer(app: Flask, email: str) -> dict[str, str]:
    with app.app_context():
        db = database.session()
        user = get_user_by_email(db, email)
        assert user is not None
        _, plaintext = issue_token(db, user, app.extensions["pa_hasher"], "test")
        db.commit()
    return {"Authorization": f"Bearer {plaintext}"}


def call(client: FlaskClient, method: str, path: str, headers: dict[str, str],
         body: Any = None) -> Any:  # fmt: skip
    data = None if body is None else json.dumps(body)
    return client.open(path, method=method, data=data, content_type=JSON, headers=headers)


def scaled(factor: float) -> dict[str, Any]:
    """Another valid result: every level's units times ``factor``."""
    return document([round(u * factor, 1) for u in UNITS])


# ---- uploads with a collector key -----------------------------------------------------------


def test_collector_key_uploads_into_its_own_tenant_and_collector(
    app: Flask, client: FlaskClient, world: World
) -> None:
    response = upload_with_key(client, world.key_a, document())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/tenants/a/loadtests/{body['id']}"
    assert body["url"].endswith(f"/tenants/a/loadtests/{body['id']}")
    assert body["collector_id"] == world.collector_a
    assert body["uploaded_via"] == "collector_key"
    assert body["uploaded_by"] == "collector web-a"
    assert len(body["levels"]) == 10
    # the host is an E5.Flex with 1 OCPU and 4 GB in Phoenix: 0.03 + 4 x 0.002 = $0.038/hour
    assert body["price"]["usd_per_hour"] == 0.038
    assert body["price"]["match"] == "matched exactly"
    assert body["units_per_usd_hour"] == 4789.47  # 182 / 0.038
    assert run_ids(app, "a") == [body["id"]]
    assert run_ids(app, "b") == []


def test_collector_key_cannot_name_another_tenant_or_collector(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with_tenant = {**document(), "tenant": "b"}
    assert (
        upload_with_key(client, world.key_a, with_tenant).get_json()["error"]["field"] == "/tenant"
    )
    response = client.post("/api/v1/loadtests?collector_id=2", data=json.dumps(document()),
                           content_type=JSON, headers={"Authorization": f"Token {world.key_a}"})  # fmt: skip
    assert response.status_code == 400
    assert upload_with_key(client, world.key_b, document()).status_code == 201
    assert len(run_ids(app, "b")) == 1
    assert run_ids(app, "a") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{oops", "/"),
        ({**document(), "schema": "other/1"}, "/schema"),
        ({**document(), "max_units_per_second": 100.0}, "/max_units_per_second"),
        ({**document(), "levels": document()["levels"][::-1]}, "/levels/1/target_busy_percent"),
    ],
)
def test_bad_uploads_are_400_naming_the_field(
    app: Flask, client: FlaskClient, world: World, body: Any, field: str
) -> None:
    response = upload_with_key(client, world.key_a, body)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field
    assert run_ids(app, "a") == []


def test_uploads_need_json_a_valid_key_and_are_not_stored_twice(
    client: FlaskClient, world: World
) -> None:
    text = client.post("/api/v1/loadtests", data=json.dumps(document()), content_type="text/plain",
                       headers={"Authorization": f"Token {world.key_a}"})  # fmt: skip
    assert text.status_code == 400
    wrong = world.key_a[:-4] + "AAAA"
    assert upload_with_key(client, wrong, document()).status_code == 401
    assert client.post("/api/v1/loadtests", data="{}", content_type=JSON).status_code == 401
    assert upload_with_key(client, world.key_a, document()).status_code == 201
    again = upload_with_key(client, world.key_a, document())
    assert again.status_code == 409
    assert "already uploaded" in again.get_json()["error"]["message"]


def test_the_same_result_stored_by_a_concurrent_request_is_a_409_naming_it(
    app: Flask, client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = upload_with_key(client, world.key_a, document()).get_json()["id"]
    checks: list[str] = []
    check_stored = stored_runs._refuse_stored

    def committed_after_the_first_check(db: Any, tenant: Tenant, digest: str) -> None:
        checks.append(digest)
        if len(checks) > 1:
            check_stored(db, tenant, digest)

    monkeypatch.setattr(stored_runs, "_refuse_stored", committed_after_the_first_check)
    again = upload_with_key(client, world.key_a, document())
    assert again.status_code == 409
    assert again.get_json()["error"]["message"] == (
        f"this result was already uploaded as load test {first}"
    )
    assert len(checks) == 2  # the unique constraint refused the insert, then the run was found
    assert run_ids(app, "a") == [first]


def test_a_disabled_collectors_key_cannot_upload(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.app_context():
        db = database.session()
        collector = db.get(Collector, world.collector_a)
        assert collector is not None
        collector.status = "disabled"
        db.commit()
    app.extensions["pa_key_verifier"]._cache.clear()
    assert upload_with_key(client, world.key_a, document()).status_code == 403


def test_a_user_token_on_the_collector_endpoint_is_pointed_elsewhere(
    app: Flask, client: FlaskClient, world: World
) -> None:
    response = call(client, "POST", "/api/v1/loadtests", bearer(app, ANALYST), document())
    assert response.status_code == 400
    assert "/api/v1/tenants/<slug>/loadtests" in response.get_json()["error"]["message"]


# ---- uploads by users -------------------------------------------------------------------------


def test_analyst_uploads_for_a_collector_with_a_chosen_price(
    app: Flask, client: FlaskClient, world: World
) -> None:
    price_id = _price_id(app, "aws", "c5.large")
    path = f"/api/v1/tenants/a/loadtests?collector_id={world.collector_a}&price_id={price_id}"
    response = call(client, "POST", path, bearer(app, ANALYST), document())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["collector_id"] == world.collector_a
    assert body["uploaded_by"] == ANALYST
    assert body["price"]["instance_type"] == "c5.large"
    assert body["price"]["match"] == f"chosen by {ANALYST}"
    assert body["units_per_usd_hour"] == 2141.18  # 182 / 0.085


def test_viewer_cannot_upload(app: Flask, client: FlaskClient, world: World) -> None:
    response = call(client, "POST", "/api/v1/tenants/a/loadtests", bearer(app, VIEWER), document())
    assert response.status_code == 403
    assert run_ids(app, "a") == []


def test_user_upload_refuses_another_tenants_collector_and_price(
    app: Flask, client: FlaskClient, world: World
) -> None:
    headers = bearer(app, ADMIN)
    foreign_collector = f"/api/v1/tenants/a/loadtests?collector_id={world.collector_b}"
    response = call(client, "POST", foreign_collector, headers, document())
    assert response.status_code == 404
    assert response.get_json()["error"]["field"] == "collector_id"
    b_price = _tenant_price(app, "b", "0.5")
    response = call(client, "POST", f"/api/v1/tenants/a/loadtests?price_id={b_price}", headers,
                    document())  # fmt: skip
    assert response.status_code == 404
    assert response.get_json()["error"]["field"] == "price_id"
    assert run_ids(app, "a") == []


def test_example_host_without_region_gets_the_catalog_region_and_says_so(
    app: Flask, client: FlaskClient, world: World
) -> None:
    azure = document(cloud_provider="azure", region=None, instance_type="Standard_D4s_v3", vcpus=4,
                     memory_bytes=16 * 2**30)  # fmt: skip
    body = call(
        client, "POST", "/api/v1/tenants/a/loadtests", bearer(app, ANALYST), azure
    ).get_json()
    assert body["price"]["region"] == "eastus"
    assert body["price"]["match"] == "matched with differences: region not given"
    unknown = document(instance_type="VM.Unknown.Shape")
    body = call(
        client, "POST", "/api/v1/tenants/a/loadtests", bearer(app, ANALYST), unknown
    ).get_json()
    assert body["price"] is None
    assert body["units_per_usd_hour"] is None


@pytest.mark.parametrize(
    ("vcpus", "memory_bytes", "usd_per_hour", "match"),
    [
        (2, 4 * 2**30 - 200 * 2**20, 0.038, "matched exactly"),  # MemTotal of a 4 GB shape
        (2, int(15.6 * 2**30), 0.062, "matched exactly"),  # MemTotal of a 16 GB shape
        # 1 OCPU + 8 GB costs 0.03 + 8 x 0.002 = $0.046; the catalog's nearest row is 4 GB
        (2, int(7.6 * 2**30), 0.038,
         "matched with differences: catalog has 4 GiB, the host 7.6 GiB"),
        (2, 64 * 2**30, 0.062, "matched with differences: catalog has 16 GiB, the host 64.0 GiB"),
        (4, 16 * 2**30, 0.062, "matched with differences: catalog has 2 vCPUs, the host 4"),
    ],
)  # fmt: skip
def test_a_price_of_another_size_is_never_called_exact(
    client: FlaskClient, world: World, vcpus: int, memory_bytes: int, usd_per_hour: float,
    match: str,
) -> None:  # fmt: skip
    doc = document(vcpus=vcpus, memory_bytes=memory_bytes)
    body = upload_with_key(client, world.key_a, doc).get_json()
    assert (body["price"]["usd_per_hour"], body["price"]["match"]) == (usd_per_hour, match)


# ---- prices stay with their runs -----------------------------------------------------------


def test_a_run_keeps_its_price_when_the_catalog_changes(
    app: Flask, client: FlaskClient, world: World, tmp_path: Path
) -> None:
    first = upload_with_key(client, world.key_a, document()).get_json()
    assert first["price"]["usd_per_hour"] == 0.038
    headers = bearer(app, ADMIN)
    override = {"provider": "oci", "region": "us-phoenix-1", "instance_type": "VM.Standard.E5.Flex",
                "vcpus": 2, "memory_gib": 4, "usd_per_hour": 0.05, "source": "our contract",
                "as_of": "2026-10-01"}  # fmt: skip
    created = call(client, "POST", "/api/v1/tenants/a/prices", headers, override)
    assert created.status_code == 201, created.get_json()
    # the global seed changes too
    seed = yaml.safe_load(SEED.read_text())
    for row in seed["prices"]:
        row["usd_per_hour"] = "9.99"
    changed = tmp_path / "prices.yaml"
    changed.write_text(yaml.safe_dump(seed))
    with app.app_context():
        assert seed_prices(database.session(), system_actor(), changed) == len(seed["prices"])

    again = call(client, "GET", f"/api/v1/tenants/a/loadtests/{first['id']}", headers).get_json()
    assert again["price"] == first["price"]
    assert again["units_per_usd_hour"] == 4789.47
    second = upload_with_key(client, world.key_a, scaled(1.1)).get_json()
    assert second["price"]["usd_per_hour"] == 0.05
    assert second["price"]["scope"] == "tenant"
    # deleting the catalog row leaves the copy on the run
    call(client, "DELETE", f"/api/v1/tenants/a/prices/{created.get_json()['id']}", headers)
    kept = call(client, "GET", f"/api/v1/tenants/a/loadtests/{second['id']}", headers).get_json()
    assert kept["price"]["usd_per_hour"] == 0.05
    assert kept["price"]["entry_id"] is None


def test_set_a_runs_price_later(app: Flask, client: FlaskClient, world: World) -> None:
    run = upload_with_key(client, world.key_a, document(instance_type="VM.Unknown")).get_json()
    headers = bearer(app, ANALYST)
    price_id = _price_id(app, "oci", "VM.Standard.E5.Flex")
    path = f"/api/v1/tenants/a/loadtests/{run['id']}/price"
    priced = call(client, "POST", path, headers, {"price_id": price_id}).get_json()
    assert priced["price"]["entry_id"] == price_id
    assert priced["price"]["match"].startswith(f"chosen by {ANALYST} on ")
    assert call(client, "POST", path, bearer(app, VIEWER), {"price_id": None}).status_code == 403
    cleared = call(client, "POST", path, headers, {"price_id": None}).get_json()
    assert cleared["price"] is None


# ---- the catalog ---------------------------------------------------------------------------


PRICE = {"provider": "aws", "region": "eu-west-1", "instance_type": "c7i.large", "vcpus": 2,
         "memory_gib": 4, "usd_per_hour": 0.0999, "source": "https://aws.amazon.com/ec2/pricing/",
         "as_of": "2026-11-01"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"usd_per_hour": 0}, "usd_per_hour"),
        ({"usd_per_hour": -0.1}, "usd_per_hour"),
        ({"usd_per_hour": "0.1"}, "usd_per_hour"),
        ({"usd_per_hour": 0.0000001}, "usd_per_hour"),
        ({"memory_gib": 0}, "memory_gib"),
        ({"vcpus": 0}, "vcpus"),
        ({"vcpus": 2.5}, "vcpus"),
        ({"as_of": "2099-01-01"}, "as_of"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"instance_type": "c7i large"}, "instance_type"),
        ({"source": ""}, "source"),
        ({"currency": "EUR"}, "currency"),
    ],
)
def test_bad_prices_are_refused_naming_the_field(
    app: Flask, client: FlaskClient, world: World, change: dict[str, Any], field: str
) -> None:
    response = call(client, "POST", "/api/v1/tenants/a/prices", bearer(app, ADMIN),
                    {**PRICE, **change})  # fmt: skip
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field


def test_zero_price_message_says_why(app: Flask, client: FlaskClient, world: World) -> None:
    response = call(client, "POST", "/api/v1/tenants/a/prices", bearer(app, ADMIN),
                    {**PRICE, "usd_per_hour": 0})  # fmt: skip
    assert "more than $0" in response.get_json()["error"]["message"]


def test_tenant_admin_edits_its_own_rows_only(
    app: Flask, client: FlaskClient, world: World
) -> None:
    headers = bearer(app, ADMIN)
    created = call(client, "POST", "/api/v1/tenants/a/prices", headers, PRICE)
    assert created.status_code == 201
    row = created.get_json()
    assert row["scope"] == "tenant"
    path = f"/api/v1/tenants/a/prices/{row['id']}"
    changed = call(client, "PATCH", path, headers, {"usd_per_hour": 0.12}).get_json()
    assert changed["usd_per_hour"] == 0.12
    assert call(client, "PATCH", path, headers, {"usd_per_hour": -1}).status_code == 400
    assert call(client, "POST", "/api/v1/tenants/a/prices", headers, PRICE).status_code == 409
    global_row = _price_id(app, "aws", "c5.large")
    refused = call(client, "PATCH", f"/api/v1/tenants/a/prices/{global_row}", headers,
                   {"usd_per_hour": 0.01})  # fmt: skip
    assert refused.status_code == 403
    assert call(client, "DELETE", path, headers).status_code == 204
    listed = call(client, "GET", "/api/v1/tenants/a/prices", headers).get_json()["prices"]
    assert {p["scope"] for p in listed} == {"global"}
    assert len(listed) == len(yaml.safe_load(SEED.read_text())["prices"])


def test_changing_a_price_to_a_machine_the_tenant_prices_already_is_a_409(
    app: Flask, client: FlaskClient, world: World
) -> None:
    headers = bearer(app, ADMIN)
    assert call(client, "POST", "/api/v1/tenants/a/prices", headers, PRICE).status_code == 201
    bigger = {**PRICE, "instance_type": "c7i.xlarge", "vcpus": 4, "memory_gib": 8}
    other = call(client, "POST", "/api/v1/tenants/a/prices", headers, bigger).get_json()
    path = f"/api/v1/tenants/a/prices/{other['id']}"
    before = table_rows(app)
    refused = call(client, "PATCH", path, headers,
                   {"instance_type": "c7i.large", "vcpus": 2, "memory_gib": 4})  # fmt: skip
    assert refused.status_code == 409
    assert refused.get_json()["error"]["field"] == "instance_type"
    assert "already has a price for that machine" in refused.get_json()["error"]["message"]
    assert table_rows(app) == before
    assert call(client, "PATCH", path, headers, {"usd_per_hour": 0.2}).status_code == 200


def test_a_price_stored_by_a_concurrent_request_is_a_409(
    app: Flask, client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = bearer(app, ADMIN)
    assert call(client, "POST", "/api/v1/tenants/a/prices", headers, PRICE).status_code == 201
    bigger = {**PRICE, "instance_type": "c7i.xlarge", "vcpus": 4, "memory_gib": 8}
    other = call(client, "POST", "/api/v1/tenants/a/prices", headers, bigger).get_json()
    before = table_rows(app)
    # the other request commits after this one's check: only the unique constraint sees it
    monkeypatch.setattr(price_catalog, "_refuse_duplicate", lambda *checked: None)
    created = call(client, "POST", "/api/v1/tenants/a/prices", headers, PRICE)
    changed = call(client, "PATCH", f"/api/v1/tenants/a/prices/{other['id']}", headers,
                   {"instance_type": "c7i.large", "vcpus": 2, "memory_gib": 4})  # fmt: skip
    for response in (created, changed):
        assert response.status_code == 409
        assert response.get_json()["error"]["field"] == "instance_type"
    assert table_rows(app) == before


@pytest.mark.parametrize("email", [VIEWER, ANALYST])
def test_readers_cannot_change_prices(
    app: Flask, client: FlaskClient, world: World, email: str
) -> None:
    headers = bearer(app, email)
    own = _tenant_price(app, "a", "0.5")
    before = table_rows(app)
    assert call(client, "POST", "/api/v1/tenants/a/prices", headers, PRICE).status_code == 403
    assert call(client, "PATCH", f"/api/v1/tenants/a/prices/{own}", headers,
                {"usd_per_hour": 1}).status_code == 403  # fmt: skip
    assert call(client, "DELETE", f"/api/v1/tenants/a/prices/{own}", headers).status_code == 403
    assert table_rows(app) == before


def test_a_tenant_override_hides_the_global_row(
    app: Flask, client: FlaskClient, world: World
) -> None:
    headers = bearer(app, ADMIN)
    override = {**PRICE, "region": "us-east-1", "instance_type": "c5.large", "usd_per_hour": 0.07}
    call(client, "POST", "/api/v1/tenants/a/prices", headers, override)
    rows = call(client, "GET", "/api/v1/tenants/a/prices", headers).get_json()["prices"]
    c5 = [row for row in rows if row["instance_type"] == "c5.large"]
    assert [(row["scope"], row["usd_per_hour"]) for row in c5] == [("tenant", 0.07)]
    b_rows = call(client, "GET", "/api/v1/tenants/b/prices", bearer(app, OUTSIDER)).get_json()
    assert [r["usd_per_hour"] for r in b_rows["prices"] if r["instance_type"] == "c5.large"] == [
        0.085
    ]


# ---- comparing -----------------------------------------------------------------------------


def test_compare_three_runs_against_a_chosen_baseline(
    app: Flask, client: FlaskClient, world: World
) -> None:
    ids = [upload_with_key(client, world.key_a, scaled(f)).get_json()["id"] for f in (1, 1.5, 2)]
    path = f"/api/v1/tenants/a/loadtests/compare?ids={ids[0]},{ids[1]},{ids[2]}&baseline={ids[1]}"
    body = call(client, "GET", path, bearer(app, VIEWER)).get_json()
    assert body["baseline_id"] == ids[1]
    assert body["levels"] == list(range(10, 101, 10))
    _first, second, third = body["runs"]
    assert second["difference_vs_baseline_percent"] == [0.0] * 10
    assert third["max_difference_vs_baseline_percent"] == 33.3
    assert [entry["rank"] for entry in body["runs"]] == [3, 2, 1]
    assert third["percent_of_best"] == 100.0
    assert body["value_range"] == 2.0


def test_compare_warns_about_runs_priced_for_another_size(
    app: Flask, client: FlaskClient, world: World
) -> None:
    exact = upload_with_key(client, world.key_a, document()).get_json()
    bigger = document([u * 2 for u in UNITS], memory_bytes=64 * 2**30)
    resized = upload_with_key(client, world.key_a, bigger).get_json()
    path = f"/api/v1/tenants/a/loadtests/compare?ids={exact['id']},{resized['id']}"
    warnings = call(client, "GET", path, bearer(app, VIEWER)).get_json()["warnings"]
    [warning] = [text for text in warnings if "another size" in text]
    assert f"than the machine tested: {resized['name']}." in warning
    assert exact["name"] not in warning


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/api/v1/tenants/a/loadtests?collector_id=abc",
         "collector_id must be a collector id (a whole number)"),
        ("POST", "/api/v1/tenants/a/loadtests?collector_id=0",
         "collector_id must be a collector id (a whole number)"),
        ("POST", "/api/v1/tenants/a/loadtests?price_id=x", "price_id must be a price id (a whole number)"),
        ("GET", "/api/v1/tenants/a/loadtests/compare?ids=1,2&baseline=x",
         "baseline must be a load test id (a whole number)"),
    ],
)  # fmt: skip
def test_an_id_error_names_what_the_id_is(
    app: Flask, client: FlaskClient, world: World, method: str, path: str, message: str
) -> None:
    body = document() if method == "POST" else None
    response = call(client, method, path, bearer(app, ANALYST), body)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == message


@pytest.mark.parametrize(
    ("query", "field"),
    [("ids=1", "ids"), ("ids=1,1", "ids"), ("ids=1,2,3,4,5,6,7,8,9,10,11", "ids"), ("ids=a,b", "ids"),
     ("ids=1,2&baseline=x", "baseline"), ("ids=1,2&bogus=1", "bogus")],
)  # fmt: skip
def test_compare_refuses_bad_ids(
    app: Flask, client: FlaskClient, world: World, query: str, field: str
) -> None:
    response = call(
        client, "GET", f"/api/v1/tenants/a/loadtests/compare?{query}", bearer(app, VIEWER)
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field


# ---- right-sizing --------------------------------------------------------------------------


class FakeHistory:
    def __init__(self, counters: dict[str, list[tuple[float, float]]] | None) -> None:
        self.counters = counters
        self.asked: list[tuple[str, str, int]] = []

    def idle_counters(self, tenant: Tenant, collector: Collector, days: int) -> Any:
        self.asked.append((tenant.slug, collector.name, days))
        if self.counters is None:
            raise HistoryUnavailable("no_influxdb", "No InfluxDB is configured.")
        return self.counters


def steady_busy(busy: float, minutes: int = 30) -> dict[str, list[tuple[float, float]]]:
    """Two CPUs, each idle (100 - busy)% of every minute."""
    idle = (100 - busy) / 100 * 60
    return {cpu: [(60.0 * i, 1000.0 + idle * i) for i in range(minutes)] for cpu in ("0", "1")}


def test_rightsizing_ranks_tested_machine_types_by_hourly_cost(
    app: Flask, client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = FakeHistory(steady_busy(45.0))
    monkeypatch.setitem(app.extensions, "pa_cpu_history", history)
    upload_with_key(client, world.key_a, document())  # its own: E5.Flex, 182 units at 100 %
    headers = bearer(app, ANALYST)
    c5 = document([u * 2 for u in UNITS], cloud_provider="aws", region="us-east-1",
                  instance_type="c5.large", hostname="c5")  # fmt: skip
    call(client, "POST", "/api/v1/tenants/a/loadtests", headers, c5)
    path = f"/api/v1/tenants/a/collectors/{world.collector_a}/rightsizing?percentile=95&headroom=50"
    body = call(client, "GET", path, headers).get_json()
    assert history.asked == [("a", "web-a", 7)]
    assert body["status"] == "ok"
    assert body["busy_percentile"] == 45.0
    # 45 % busy on its own profile (40 % -> 72 at 40.6 measured, 50 % -> 92 at 50.6)
    assert body["demand_units_per_second"] == pytest.approx(72 + 20 * (45 - 40.6) / 10, abs=1e-3)
    ranked = [(c["price"]["instance_type"], c["price"]["region"], c["price"]["memory_gib"],
               c["machines"], c["usd_per_hour"], c["current"]) for c in body["candidates"]]  # fmt: skip
    # at 50 %: E5.Flex gives 90.8 units (1 machine), c5.large 181.6 (1 machine); each catalog
    # row of a tested machine type is a candidate (the same E5.Flex test sizes every E5.Flex row)
    assert ranked == [("VM.Standard.E5.Flex", "us-phoenix-1", 4.0, 1, 0.038, True),
                      ("VM.Standard.E5.Flex", "us-ashburn-1", 16.0, 1, 0.062, False),
                      ("VM.Standard.E5.Flex", "us-phoenix-1", 16.0, 1, 0.062, False),
                      ("c5.large", "us-east-1", 4.0, 1, 0.085, False)]  # fmt: skip
    assert body["candidates"][0]["usd_per_month"] == 27.74  # 0.038 x 730


def test_rightsizing_skips_a_load_test_whose_full_load_level_was_not_accepted(
    app: Flask, client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disturbed run measured less than the machine can do; the latest accepted run of the
    same machine type sizes it instead, and a type with none is left out, saying why."""
    monkeypatch.setitem(app.extensions, "pa_cpu_history", FakeHistory(steady_busy(45.0)))
    upload_with_key(client, world.key_a, document())
    headers = bearer(app, ANALYST)

    def c5(units: list[float], started: str, accepted: bool, **host: Any) -> dict[str, Any]:
        doc = document(units, cloud_provider="aws", region="us-east-1",
                       instance_type="c5.large", hostname="c5", **host)  # fmt: skip
        doc["started_at"], doc["finished_at"] = started, started.replace("10:00", "10:05")
        doc["levels"][-1]["accepted"] = accepted
        return doc

    call(client, "POST", "/api/v1/tenants/a/loadtests", headers,
         c5([u * 2 for u in UNITS], "2026-11-01T10:00:00Z", True))  # fmt: skip
    call(client, "POST", "/api/v1/tenants/a/loadtests", headers,
         c5([u * 20 for u in UNITS], "2026-11-02T10:00:00Z", False))  # fmt: skip
    m5 = document([u * 3 for u in UNITS], cloud_provider="aws", region="us-east-1",
                  instance_type="m5.large", hostname="m5")  # fmt: skip
    m5["levels"][-1]["accepted"] = False
    call(client, "POST", "/api/v1/tenants/a/loadtests", headers, m5)
    path = f"/api/v1/tenants/a/collectors/{world.collector_a}/rightsizing?percentile=95&headroom=50"
    body = call(client, "GET", path, headers).get_json()
    c5_candidate = next(c for c in body["candidates"]
                        if c["price"]["instance_type"] == "c5.large")  # fmt: skip
    assert c5_candidate["units_at_headroom"] == pytest.approx(181.6, abs=0.5)  # the accepted run
    assert not any(c["price"]["instance_type"] == "m5.large" for c in body["candidates"])
    assert [line for line in body["excluded"] if line.startswith("m5.large")] == [
        "m5.large (us-east-1, 2 vCPUs, 8 GiB): no load test of it had its 100% level accepted"
    ]


def test_rightsizing_says_what_is_missing(
    app: Flask, client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = bearer(app, VIEWER)
    path = f"/api/v1/tenants/a/collectors/{world.collector_a}/rightsizing"
    body = call(client, "GET", path, headers).get_json()
    assert body["status"] == "no_influxdb"  # the test app has no InfluxDB
    assert "No InfluxDB is configured" in body["message"]
    monkeypatch.setitem(app.extensions, "pa_cpu_history", FakeHistory({}))
    assert call(client, "GET", path, headers).get_json()["status"] == "no_history"
    monkeypatch.setitem(app.extensions, "pa_cpu_history", FakeHistory(steady_busy(30)))
    body = call(client, "GET", path, headers).get_json()
    assert body["status"] == "no_loadtest"
    assert body["busy_percentile"] == 30.0
    bad = call(client, "GET", path + "?headroom=5", headers)
    assert bad.status_code == 400
    assert bad.get_json()["error"]["field"] == "headroom"


# ---- tenancy on every route ----------------------------------------------------------------


def a_routes(world: World, run_id: int, price_id: int) -> list[tuple[str, str, Any]]:
    """Every load-test API route on tenant a's own URLs, reaching tenant a's objects."""
    base = "/api/v1/tenants/a"
    return [
        ("GET", f"{base}/loadtests", None),
        ("POST", f"{base}/loadtests", document()),
        ("GET", f"{base}/loadtests/{run_id}", None),
        ("POST", f"{base}/loadtests/{run_id}/price", {"price_id": None}),
        ("POST", f"{base}/loadtests/{run_id}/reprice", None),
        ("DELETE", f"{base}/loadtests/{run_id}", None),
        ("GET", f"{base}/loadtests/compare?ids={run_id},{run_id + 1}", None),
        ("GET", f"{base}/prices", None),
        ("POST", f"{base}/prices", PRICE),
        ("PATCH", f"{base}/prices/{price_id}", {"usd_per_hour": 1}),
        ("DELETE", f"{base}/prices/{price_id}", None),
        ("GET", f"{base}/collectors/{world.collector_a}/rightsizing", None),
    ]


def test_another_tenants_member_gets_404_on_every_route_and_nothing_changes(
    app: Flask, client: FlaskClient, world: World
) -> None:
    run_a = upload_with_key(client, world.key_a, document()).get_json()["id"]
    upload_with_key(client, world.key_a, scaled(1.2))
    run_b = upload_with_key(client, world.key_b, document()).get_json()["id"]
    price_a = _tenant_price(app, "a", "0.5")
    headers = bearer(app, OUTSIDER)
    before = table_rows(app)
    for method, path, body in a_routes(world, run_a, price_a):
        response = call(client, method, path, headers, body)
        assert response.status_code == 404, (method, path, response.get_json())
        # the same objects through tenant b's own URLs
        through_b = path.replace("/tenants/a/", "/tenants/b/")
        if "ids=" in through_b:
            through_b = f"/api/v1/tenants/b/loadtests/compare?ids={run_b},{run_a}"
        if through_b.endswith(("/loadtests", "/prices")):
            continue  # b's own lists and creations, not a's objects
        response = call(client, method, through_b, headers, body)
        assert response.status_code == 404, (method, through_b, response.get_json())
        assert b"web.a.test" not in response.data
    assert table_rows(app) == before
    listed = call(client, "GET", "/api/v1/tenants/b/loadtests", headers).get_json()["loadtests"]
    assert [run["id"] for run in listed] == [run_b]


# ---- the OpenAPI path items ------------------------------------------------------------------


def test_openapi_paths_cover_every_api_route_and_make_a_valid_document(app: Flask) -> None:
    from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR

    documented = openapi_paths()
    merged = {**main_document(), "paths": {**main_document()["paths"], **documented}}
    merged["components"] = {**merged["components"], "securitySchemes": {
        **merged["components"]["securitySchemes"], **openapi_components()["securitySchemes"]}}  # fmt: skip
    assert list(OPENAPI_30_VALIDATOR.iter_errors(merged)) == []
    routed = {
        (method.lower(), re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1")))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(f"{api_blueprint.name}.")
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }  # fmt: skip
    assert routed == {(method, path) for path, item in documented.items() for method in item}
    text = json.dumps(documented)
    for reference in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        kind, name = reference.removeprefix("#/components/").split("/")
        assert name in merged["components"][kind], reference


# ---- helpers ---------------------------------------------------------------------------------


def _price_id(app: Flask, provider: str, instance_type: str) -> int:
    with app.app_context():
        found = database.session().scalar(
            select(PriceEntry.id).where(PriceEntry.tenant_id.is_(None),
                                        PriceEntry.provider == provider,
                                        PriceEntry.instance_type == instance_type)
            .order_by(PriceEntry.memory_gib))  # fmt: skip
        assert found is not None
        return found


def _tenant_price(app: Flask, slug: str, price: str) -> int:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), slug)
        entry = PriceEntry(tenant_id=tenant.id, provider="aws", region="eu-west-1",
                           instance_type="m5.large", vcpus=2, memory_gib=Decimal(8),
                           usd_per_hour=Decimal(price), source="test", as_of=_today())  # fmt: skip
        db.add(entry)
        db.commit()
        return entry.id


def _today() -> date:
    return date(2026, 1, 1)
