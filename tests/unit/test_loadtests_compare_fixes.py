"""The comparison's ranking and its record of how each run was priced: ranks and % of best from
unrounded values (tiny values neither divide by zero nor tie), the page's headline, table and
order naming only ranked runs as best, a warning and CSV columns for a price from another region,
and the run page saying truthfully why a run has no price."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tenants.loadtests.compare import compare, csv_rows, percent_of_best, to_json
from tenants.loadtests.openapi_paths import COMPARISON
from tests.conftest import csrf
from tests.unit.test_loadtests_math import make_run
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    ADMIN,
    ANALYST,
    UNITS,
    VIEWER,
    World,
    build_world,
    cheap_password_hashing,
    document,
    logged_in,
    upload_with_key,
)

GIB = 2**30


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


def html(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def text(response: TestResponse) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html(response)))


def stored(client: FlaskClient, world: World, body: dict[str, Any]) -> dict[str, Any]:
    response = upload_with_key(client, world.key_a, body)
    assert response.status_code == 201, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


def two_levels(units: list[float], **host: Any) -> dict[str, Any]:
    """A valid upload of a 50% and a 100% level (tiny units are still units)."""
    body = document(units, **host)
    body["levels"] = body["levels"][:2]
    for level, (target, busy) in zip(body["levels"], [(50, 50.4), (100, 99.2)], strict=True):
        level.update(target_busy_percent=target, measured_busy_percent=busy,
                     repeats=[level["units_per_second"]] * 3)  # fmt: skip
    body["max_units_per_second"] = units[-1]
    return body


def compare_data(page: str) -> dict[str, Any]:
    match = re.search(r'id="compare-data" data-json="([^"]+)"', page)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1).replace("&#34;", '"').replace("&amp;", "&"))
    return data


# ---- 1. ranks from unrounded values -------------------------------------------------------------


def test_values_that_round_to_the_same_cent_still_rank_apart() -> None:
    larger, smaller = make_run(1, [0.002, 0.004], "1"), make_run(2, [0.0002, 0.0004], "1")
    result = compare([smaller, larger])
    first, second = result.summaries
    assert (first.price_performance, second.price_performance) == (Decimal("0.00"),) * 2
    assert (first.rank, second.rank) == (2, 1)
    assert (first.percent_of_best, second.percent_of_best) == (Decimal("10.0"), Decimal("100.0"))
    assert result.value_range == Decimal("10.00")
    exported = to_json(result, lambda run: {"id": run.id})["runs"]
    assert [(run["units_per_usd_hour"], run["rank"]) for run in exported] == [(0.0, 2), (0.0, 1)]


def test_a_best_of_zero_gives_no_percent_instead_of_dividing() -> None:
    assert percent_of_best({1: Decimal(0), 2: Decimal(0), 3: None}) == {1: None, 2: None, 3: None}


def test_tiny_values_compare_on_every_view_without_an_error(app: Flask, world: World) -> None:
    client = logged_in(app, VIEWER)
    ids = [stored(client, world, two_levels(units, hostname=f"h{index}"))["id"]
           for index, units in enumerate([[0.00005, 0.0001], [0.00004, 0.00009]])]  # fmt: skip
    query = f"ids={ids[0]},{ids[1]}"
    api = client.get(f"/api/v1/tenants/a/loadtests/compare?{query}")
    assert api.status_code == 200
    runs = api.get_json()["runs"]
    documented = COMPARISON["properties"]["runs"]["items"]["properties"]
    assert set(runs[0]) == set(documented)
    assert [(run["units_per_usd_hour"], run["rank"], run["percent_of_best"]) for run in runs] == [
        (0.0, 1, 100.0),
        (0.0, 2, 90.0),
    ]
    page = client.get(f"/tenants/a/loadtests/compare?{query}")
    assert page.status_code == 200
    assert "&lt; 0.01" in html(page)  # not "0.00", which would read as worthless
    exported = client.get(f"/tenants/a/loadtests/compare.csv?{query}")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(html(exported))))
    assert {(row["run_id"], row["rank"], row["percent_of_best"]) for row in rows} == {
        (str(ids[0]), "1", "100.0"),
        (str(ids[1]), "2", "90.0"),
    }


# ---- 2. the page names only a ranked run as best ------------------------------------------------


def disturbed_and_quiet(client: FlaskClient, world: World) -> tuple[dict[str, Any], ...]:
    """An unpriced run, a disturbed run with the higher value (its 100% level not accepted)
    and a quiet, ranked one, in that order."""
    unpriced = stored(client, world, document(hostname="u", cloud_provider=None,
                                              instance_type=None, region=None))  # fmt: skip
    busy = document([u * 2 for u in UNITS], hostname="d")
    busy["levels"][-1]["accepted"] = False
    disturbed = stored(client, world, busy)
    quiet = stored(client, world, document(hostname="q"))
    return unpriced, disturbed, quiet


def test_the_headline_table_and_chart_order_put_ranked_runs_first(app: Flask, world: World) -> None:
    client = logged_in(app, VIEWER)
    unpriced, disturbed, quiet = disturbed_and_quiet(client, world)
    assert disturbed["units_per_usd_hour"] > quiet["units_per_usd_hour"]
    page = client.get(f"/tenants/a/loadtests/compare?ids={unpriced['id']},{disturbed['id']},"
                      f"{quiet['id']}")  # fmt: skip
    words = text(page)
    assert f"4,789.47 best units per $/hour: {quiet['name']}" in words
    table = html(page).split('<table class="list value">')[1].split("</table>")[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.DOTALL)[1:]
    names = [re.search(r'data-swatch="(\d+)"', row).group(1) for row in rows]  # type: ignore[union-attr]
    assert names == [str(quiet["id"]), str(disturbed["id"]), str(unpriced["id"])]
    assert "not ranked: its 100% level was not accepted" in rows[1]
    assert "not ranked: no price" in rows[2]
    runs = compare_data(html(page))["runs"]
    reasons = {entry["run"]["id"]: entry["unranked_reason"] for entry in runs}
    assert reasons == {unpriced["id"]: "no price",
                       disturbed["id"]: "its 100% level was not accepted",
                       quiet["id"]: None}  # fmt: skip


def test_without_a_ranked_run_the_headline_names_no_best(app: Flask, world: World) -> None:
    client = logged_in(app, VIEWER)
    unpriced, disturbed, _ = disturbed_and_quiet(client, world)
    page = html(client.get(f"/tenants/a/loadtests/compare?ids={unpriced['id']},{disturbed['id']}"))
    headline = page.split('<ul class="lt-kpis">')[1].split("</li>")[0]
    assert "<strong>\N{EN DASH}</strong><span>best units per $/hour (no ranked run)" in headline
    assert disturbed["name"] not in headline


# ---- 3. a price from another region -------------------------------------------------------------


def test_a_price_from_another_region_is_warned_and_exported(app: Flask, world: World) -> None:
    client = logged_in(app, VIEWER)
    aws = {"cloud_provider": "aws", "instance_type": "c5.large", "memory_bytes": 4 * GIB}
    home = stored(client, world, document(hostname="h1", region="us-east-1", **aws))
    away = stored(client, world, document(hostname="h2", region="us-east-2", **aws))
    unsaid = stored(client, world, document(hostname="h3", region=None, **aws))
    query = f"ids={home['id']},{away['id']},{unsaid['id']}"
    warnings = client.get(f"/api/v1/tenants/a/loadtests/compare?{query}").get_json()["warnings"]
    assert (
        f"Priced with a row of another region than the machine ran in: {away['name']} (ran in "
        f"us-east-2, priced for us-east-1), {unsaid['name']} (region not given, priced for "
        "us-east-1). Prices can differ between regions: check the price, or set the right one "
        "on the run."
    ) in warnings
    rows = list(csv.DictReader(io.StringIO(html(client.get(f"/tenants/a/loadtests/compare.csv?"
                                                           f"{query}")))))  # fmt: skip
    top = {row["run_id"]: row for row in rows if row["target_busy_percent"] == "100"}
    assert [(top[str(run["id"])]["region"], top[str(run["id"])]["price_region"])
            for run in (home, away, unsaid)] == [("us-east-1", "us-east-1"),
                                                 ("us-east-2", "us-east-1"),
                                                 ("", "us-east-1")]  # fmt: skip
    assert "no price for region us-east-2" in top[str(away["id"])]["price_match"]
    assert "region not given" in top[str(unsaid["id"])]["price_match"]
    assert top[str(home["id"])]["price_match"] == "matched exactly"


def test_a_run_in_its_prices_region_is_not_warned() -> None:
    same = make_run(1, [1.0, 2.0], "1")
    same.price_region = "r"
    upper = make_run(2, [1.0, 2.0], "1")
    upper.region, upper.price_region = "US-EAST-1", "us-east-1"
    header = csv_rows(compare([same, upper]))[0]
    assert compare([same, upper]).warnings == []
    assert header.index("price_region") > header.index("usd_per_hour")
    assert header[-1] == "level_accepted"


# ---- 4. why a run has no price ------------------------------------------------------------------


def test_the_run_page_says_a_user_removed_the_price(app: Flask, world: World) -> None:
    client = logged_in(app, ANALYST)
    run = stored(client, world, document())
    removed = client.post(f"/tenants/a/loadtests/{run['id']}/price",
                          data={"price_id": "", "csrf_token": csrf(client)})  # fmt: skip
    assert removed.status_code == 303
    words = text(logged_in(app, VIEWER).get(f"/tenants/a/loadtests/{run['id']}"))
    assert f"no price: removed by {ANALYST} on " in words
    assert "the catalog has no row" not in words


def test_the_run_page_says_why_a_run_was_never_priced(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    unknown = stored(client, world, document(hostname="x", instance_type="VM.Unknown.Shape"))
    unsaid = stored(client, world, document(hostname="y", cloud_provider=None))
    assert "no price: the catalog had no row for this machine type when the run was stored" in (
        text(client.get(f"/tenants/a/loadtests/{unknown['id']}"))
    )
    assert "no price: the upload did not name the cloud provider and machine type" in (
        text(client.get(f"/tenants/a/loadtests/{unsaid['id']}"))
    )
