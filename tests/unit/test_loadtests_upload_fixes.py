"""Load-test uploads and the price catalog, as an audit found them wanting: a host's size weighs
more than its region for flexible shapes, each level's CV comes from its repeats, an unknown
provider is refused, a re-upload is recognised whatever its number spelling or ignored fields,
and the collector endpoint's 401 asks for a collector key."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from exporter.loadtest.stats import cv_percent
from tenants.errors import Invalid
from tenants.loadtests.contract import check
from tenants.loadtests.prices import read_seed
from tenants.loadtests.runs import document_digest
from tests.support.schema_states import sqlite_database
from tests.unit.test_loadtests_api import PRICE, bearer, call
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    ADMIN,
    World,
    build_world,
    cheap_password_hashing,
    document,
    upload_with_key,
    variant,
)
from tests.unit.test_migrations_data import insert, upgrade

GIB = 2**30
C5_MEMTOTAL = int(3.7 * GIB)


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


def add_price(app: Flask, client: FlaskClient, **fields: Any) -> None:
    response = call(client, "POST", "/api/v1/tenants/a/prices", bearer(app, ADMIN),
                    {**PRICE, **fields})  # fmt: skip
    assert response.status_code == 201, response.get_json()


def price_of(client: FlaskClient, world: World, doc: dict[str, Any]) -> tuple[float, str, str]:
    body = upload_with_key(client, world.key_a, doc).get_json()
    return body["price"]["usd_per_hour"], body["price"]["region"], body["price"]["match"]


# ---- defect 1: a flexible shape's size before its region ----------------------------------------


def test_a_flexible_shape_is_priced_at_its_size_from_another_region_before_another_size(
    client: FlaskClient, world: World
) -> None:
    """The seed has 2 vCPU/4 GB only in Phoenix and 16 GB in Ashburn too; OCI's list prices are
    the same in every commercial region, a 16 GB shape's are not a 4 GB one's."""
    doc = document(region="us-ashburn-1")
    assert price_of(client, world, doc) == (
        0.038, "us-phoenix-1",
        "matched with differences: no price for this size in region us-ashburn-1",
    )  # fmt: skip


def test_a_row_of_the_hosts_size_and_region_comes_first(
    app: Flask, client: FlaskClient, world: World
) -> None:
    add_price(app, client, provider="oci", region="us-ashburn-1",
              instance_type="VM.Standard.E5.Flex", vcpus=2, memory_gib=4, usd_per_hour=0.04)  # fmt: skip
    assert price_of(client, world, document(region="us-ashburn-1")) == (
        0.04,
        "us-ashburn-1",
        "matched exactly",
    )


def test_without_a_row_of_its_size_a_flexible_shape_takes_its_regions_nearest(
    app: Flask, client: FlaskClient, world: World
) -> None:
    add_price(app, client, provider="oci", region="us-phoenix-1",
              instance_type="VM.Standard.E5.Flex", vcpus=2, memory_gib=48, usd_per_hour=0.126)  # fmt: skip
    doc = document(region="us-ashburn-1", memory_bytes=64 * GIB)
    assert price_of(client, world, doc) == (
        0.062,
        "us-ashburn-1",
        "matched with differences: catalog has 16 GiB, the host 64.0 GiB",
    )


def test_a_fixed_type_is_priced_in_its_region_even_if_the_row_states_another_size(
    app: Flask, client: FlaskClient, world: World
) -> None:
    """A fixed type's size is the type's: its region's row is its price, and the row's size is
    reported as a difference rather than a reason to price it elsewhere."""
    add_price(app, client, region="us-east-2", instance_type="c5.large", memory_gib=8,
              usd_per_hour=0.095)  # fmt: skip
    east2 = document(cloud_provider="aws", region="us-east-2", instance_type="c5.large",
                     memory_bytes=C5_MEMTOTAL)  # fmt: skip
    assert price_of(client, world, east2) == (
        0.095,
        "us-east-2",
        "matched with differences: catalog has 8 GiB, the host 3.7 GiB",
    )
    west = variant(variant(east2, "/host/region", "us-west-2"), "/host/hostname", "w2")
    assert price_of(client, world, west) == (
        0.085,
        "us-east-1",
        "matched with differences: no price for region us-west-2",
    )


# ---- defect 2: a level's CV is its repeats' ----------------------------------------------------


def test_a_levels_cv_is_recomputed_from_its_repeats(client: FlaskClient, world: World) -> None:
    doc = variant(document(), "/levels/9/repeats", [182.0, 182.0, 182.0])
    doc = variant(doc, "/levels/9/cv_percent", 45.0)
    body = upload_with_key(client, world.key_a, doc).get_json()
    assert body["levels"][-1]["cv_percent"] == 0.0
    assert body["repeatability_cv_percent"] == 0.0


def test_the_cv_is_the_clients_sample_cv_to_two_decimals(client: FlaskClient, world: World) -> None:
    """The client (exporter/loadtest/stats.py) divides the sample standard deviation by the
    mean and rounds to two decimals; [182, 182, 183] gives 0.32 (the population CV is 0.26)."""
    doc = variant(document(), "/levels/9/cv_percent", 9.99)
    body = upload_with_key(client, world.key_a, doc).get_json()
    expected = cv_percent([182.0, 182.0, 183.0])
    assert expected is not None
    assert body["levels"][-1]["cv_percent"] == round(expected, 2) == 0.32


def test_a_single_repeat_has_no_cv_whatever_the_client_says(
    client: FlaskClient, world: World
) -> None:
    doc = variant(document(), "/settings/repeats", 1)
    for level in doc["levels"]:
        level["repeats"] = [level["units_per_second"]]
        level["cv_percent"] = 12.0
    body = upload_with_key(client, world.key_a, doc).get_json()
    assert [level["cv_percent"] for level in body["levels"]] == [None] * 10
    assert body["repeatability_cv_percent"] is None


def test_a_claimed_cv_does_not_excuse_units_that_fall(client: FlaskClient, world: World) -> None:
    doc = document([10, 20, 30, 40, 50, 60, 70, 80, 900, 100], hostname="web4")
    doc = variant(variant(doc, "/levels/8/repeats", [900, 900, 901]), "/levels/8/cv_percent", 400.0)
    response = upload_with_key(client, world.key_a, doc)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "/levels/9/units_per_second"


# ---- defect 3: only known providers in the catalog ----------------------------------------------


def test_the_price_api_refuses_an_unknown_provider(
    app: Flask, client: FlaskClient, world: World
) -> None:
    response = call(client, "POST", "/api/v1/tenants/a/prices", bearer(app, ADMIN),
                    {**PRICE, "provider": "awz"})  # fmt: skip
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["field"], error["message"]) == (
        "provider",
        "provider must be one of aws, azure, gcp, oci",
    )
    add_price(app, client, provider="AWS")


def test_the_seed_file_refuses_an_unknown_provider(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("prices:\n  - {provider: awz, region: us-east-1, instance_type: c5.large, "
                    "vcpus: 2, memory_gib: 4, usd_per_hour: '0.085', source: s, "
                    "as_of: 2025-06-01}\n")  # fmt: skip
    with pytest.raises(Invalid) as caught:
        read_seed(path)
    assert caught.value.field == "prices[0].provider"
    assert caught.value.message == (
        f"{path}: prices[0]: provider must be one of aws, azure, gcp, oci"
    )


# ---- defect 4: a re-upload is one, however it is spelled ---------------------------------------


@pytest.mark.parametrize(
    "respelled",
    [
        lambda text: text.replace('"max_units_per_second": 182.0', '"max_units_per_second": 182'),
        lambda text: text.replace('"repeatability_cv_percent": 2.4', '"repeatability_cv_percent": 2.5'),
        lambda text: text.replace('"cv_percent": 3.1', '"cv_percent": 3.2'),
        lambda text: text.replace("10:05:00Z", "11:05:00+01:00"),
    ],
    ids=["integer", "repeatability", "level-cv", "utc-offset"],
)  # fmt: skip
def test_the_same_result_spelled_otherwise_is_a_duplicate(
    client: FlaskClient, world: World, respelled: Any
) -> None:
    original = json.dumps(document())
    assert upload_with_key(client, world.key_a, original).status_code == 201
    again = respelled(original)
    assert again != original
    response = upload_with_key(client, world.key_a, again)
    assert response.status_code == 409, response.get_json()


def test_a_different_measurement_is_not_a_duplicate(client: FlaskClient, world: World) -> None:
    assert upload_with_key(client, world.key_a, document()).status_code == 201
    other = variant(document(), "/levels/0/repeats", [18.0, 18.0, 19.1])
    assert upload_with_key(client, world.key_a, other).status_code == 201


def stored_run(connection: sqlite3.Connection, run_id: int, doc: dict[str, Any]) -> None:
    insert(connection, "loadtest_runs", id=run_id, tenant_id=1, document=json.dumps(doc),
           document_sha256=f"{run_id:064d}", repeatability_cv_percent=2.4)  # fmt: skip
    for level in doc["levels"]:
        insert(connection, "loadtest_levels", run_id=run_id,
               target_busy_percent=level["target_busy_percent"],
               repeats=json.dumps(level["repeats"]), cv_percent=level["cv_percent"],
               accepted=level["accepted"])  # fmt: skip


def test_0008_gives_stored_runs_the_new_digest_and_their_repeats_cv(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path / "admin.db", "0007")
    first = variant(document(), "/levels/9/cv_percent", 45.0)
    respelled = json.loads(json.dumps(first).replace("182.0", "182"))
    rejected = variant(document(UNITS_OTHER), "/levels/9/accepted", False)
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        stored_run(connection, 1, first)
        stored_run(connection, 2, respelled)  # a duplicate under the new digest
        stored_run(connection, 3, rejected)
    upgrade(url, "0008")
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        runs = {row[0]: row[1:] for row in connection.execute(
            "SELECT id, document_sha256, repeatability_cv_percent FROM loadtest_runs")}  # fmt: skip
        full = dict(connection.execute(
            "SELECT run_id, cv_percent FROM loadtest_levels WHERE target_busy_percent = 100"))  # fmt: skip
    assert runs == {
        1: (document_digest(check(first)), 0.32),
        2: (f"{2:064d}", 0.32),  # kept: the unique digest is the first run's
        3: (document_digest(check(rejected)), None),
    }
    assert full == {1: 0.32, 2: 0.32, 3: 0.31}


UNITS_OTHER = [19.0, 37.0, 55.0, 73.0, 93.0, 111.0, 129.0, 147.0, 165.0, 183.0]


# ---- defect 5: the collector endpoint asks for a collector key ----------------------------------


def test_the_collector_upload_without_credentials_asks_for_a_collector_key(
    client: FlaskClient, world: World
) -> None:
    response = client.post("/api/v1/loadtests", data="{}", content_type="application/json")
    assert response.status_code == 401
    message = response.get_json()["error"]["message"]
    assert "collector key" in message
    assert "Authorization: Token pak_" in message
    assert "Bearer" not in message
    basic = client.post("/api/v1/loadtests", data="{}", content_type="application/json",
                        headers={"Authorization": "Basic dTpw"})  # fmt: skip
    assert basic.get_json()["error"]["message"] == message
    other = client.get("/api/v1/tenants/a/loadtests")
    assert other.status_code == 401
    assert other.get_json()["error"]["message"] == (
        "log in or send 'Authorization: Bearer <API token>'"
    )
