"""The audit of the price-performance ranking: runs whose units per $/hour do not mean what they
say are shown, not ranked, and the comparison warns about the prices it uses.

1. A burstable type (t3, B-series, shared-core) is measured at burst speed: not ranked, warned
   about; catalog rows carry a ``burstable`` flag (seed, API, form), and right-sizing leaves
   such types out.
2. A run priced with a row of another size is not ranked ("priced for another size").
3. Runs of one type carrying different prices, and a price of another type, are warned about;
   the ranking table shows what each run was priced as and the price's date; a run can be
   re-priced from the current catalog.
4. A price older than ``loadtests.price-max-age-days`` (180) is warned about and marked.
5. Only runs counting the baseline's work unit are ranked.
7. A tenant price more than 10x above or below the global row is warned about (API, form,
   compare); units per $/hour under half a cent read "< 0.01" on every page; the CSV writes
   dollars as the JSON does.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from perfanalysis.config import ConfigError
from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.errors import Invalid
from tenants.loadtests.advice import machine_options
from tenants.loadtests.compare import BURSTABLE, OTHER_SIZE, OTHER_UNIT, compare
from tenants.loadtests.models import LoadTestRun, PriceEntry
from tenants.loadtests.prices import read_seed
from tenants.models import AuditEvent
from tenants.settings import load
from tests.conftest import TEST_SECRET, csrf
from tests.support.schema_states import sqlite_database
from tests.unit.test_loadtests_compare_fixes import compare_data, html, stored, text, two_levels
from tests.unit.test_loadtests_math import make_run
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
    logged_in,
    table_rows,
)
from tests.unit.test_migrations_data import insert, upgrade

GIB = 2**30
AWS = {"cloud_provider": "aws", "region": "us-east-1", "memory_bytes": 4 * GIB}
E4 = {"provider": "oci", "region": "us-phoenix-1", "instance_type": "VM.Standard.E4.Flex",
      "vcpus": 2, "memory_gib": 4, "usd_per_hour": 0.033, "source": "negotiated",
      "as_of": "2026-11-01"}  # fmt: skip


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


def compared(client: FlaskClient, *runs: dict[str, Any], **query: Any) -> dict[str, Any]:
    ids = ",".join(str(run["id"]) for run in runs)
    extra = "".join(f"&{name}={value}" for name, value in query.items())
    response = client.get(f"/api/v1/tenants/a/loadtests/compare?ids={ids}{extra}")
    assert response.status_code == 200, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


def standing(data: dict[str, Any]) -> dict[str, tuple[int | None, str | None]]:
    """host name -> (rank, unranked_reason)"""
    return {entry["run"]["host"]["hostname"]: (entry["rank"], entry["unranked_reason"])
            for entry in data["runs"]}  # fmt: skip


def api_price(client: FlaskClient, body: dict[str, Any], method: str = "POST",
              path: str = "/api/v1/tenants/a/prices") -> Any:  # fmt: skip
    return client.open(path, method=method, json=body, headers={"X-CSRF-Token": csrf(client)})


# ---- 1. burstable types -------------------------------------------------------------------------


def test_a_burstable_type_is_shown_but_not_ranked_and_warned_about(
    app: Flask, world: World
) -> None:
    client = logged_in(app, VIEWER)
    t3 = stored(client, world, document(hostname="t3", instance_type="t3.medium", **AWS))
    c5 = stored(client, world, document(hostname="c5", instance_type="c5.large", **AWS))
    c6 = stored(client, world, document(hostname="c6", instance_type="c6i.large", **AWS))
    assert t3["price"]["burstable"] is True
    assert c5["price"]["burstable"] is False
    data = compared(client, t3, c5, c6)
    assert standing(data) == {"t3": (None, BURSTABLE), "c5": (1, None), "c6": (1, None)}
    by_host = {entry["run"]["host"]["hostname"]: entry for entry in data["runs"]}
    assert by_host["t3"]["units_per_usd_hour"] == 4375.0  # shown: 182 / 0.0416
    assert by_host["t3"]["burstable"] is True
    assert by_host["t3"]["percent_of_best"] is None
    assert data["value_range"] == 1.0  # of the ranked runs only
    [warning] = [w for w in data["warnings"] if "burstable machine type" in w]
    assert warning.startswith(f"{t3['name']}: burstable machine type (AWS t2, t3, t3a and t4g")
    assert "$0.05 per vCPU-hour" in warning
    assert "not ranked" in warning
    page = client.get(f"/tenants/a/loadtests/compare?ids={t3['id']},{c5['id']},{c6['id']}")
    assert f"not ranked: {BURSTABLE}" in text(page)
    assert f"2,141.18 best units per $/hour: {c5['name']}" in text(page)


def test_the_seed_marks_burstable_rows_and_refuses_to_unmark_a_burstable_family(
    tmp_path: Path,
) -> None:
    assert {row["instance_type"] for row in read_seed(SEED) if row["burstable"]} == {"t3.medium"}
    row = ("{provider: %s, region: r1, instance_type: %s, vcpus: 2, memory_gib: 4, "
           "usd_per_hour: '0.02', source: s, as_of: 2025-06-01%s}")  # fmt: skip
    path = tmp_path / "prices.yaml"
    path.write_text("prices:\n" + "".join(f"  - {row % case}\n" for case in [
        ("aws", "t4g.small", ""), ("azure", "Standard_B2ms", ""), ("gcp", "e2-medium", ""),
        ("gcp", "e2-standard-2", ""), ("oci", "VM.Standard.E5.Flex", ", burstable: true")]))  # fmt: skip
    assert [entry["burstable"] for entry in read_seed(path)] == [True, True, True, False, True]
    for flag, message in [("false", "t4g.small is of a burstable family"),
                          ("maybe", "burstable must be true or false")]:  # fmt: skip
        path.write_text(f"prices:\n  - {row % ('aws', 't4g.small', ', burstable: ' + flag)}\n")
        with pytest.raises(Invalid) as refused:
            read_seed(path)
        assert refused.value.field == "prices[0].burstable"
        assert message in refused.value.message


def test_a_tenant_row_marked_burstable_leaves_its_runs_unranked(app: Flask, world: World) -> None:
    """A shape of no burstable family is burstable when its row says so (an OCI flexible shape
    configured with a baseline); the API refuses, naming the field, what cannot be."""
    admin = logged_in(app, ADMIN)
    before = table_rows(app)
    for change, message in [({"burstable": "yes"}, "burstable must be true, false or null"),
                            ({"instance_type": "Standard_B2s", "provider": "azure",
                              "burstable": False}, "Standard_B2s is of a burstable family")]:  # fmt: skip
        refused = api_price(admin, {**E4, **change})
        assert refused.status_code == 400
        assert refused.get_json()["error"]["field"] == "burstable"
        assert message in refused.get_json()["error"]["message"]
    assert table_rows(app) == before
    created = api_price(admin, {**E4, "burstable": True})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["burstable"] is True
    e4 = stored(admin, world, document(hostname="e4", instance_type="VM.Standard.E4.Flex"))
    e5 = stored(admin, world, document(hostname="e5"))
    assert (e4["price"]["burstable"], e4["price"]["scope"]) == (True, "tenant")
    assert standing(compared(admin, e4, e5)) == {"e4": (None, BURSTABLE), "e5": (1, None)}
    # PATCH without the flag keeps it; to a B-series type, that type's family decides
    price_id = created.get_json()["id"]
    kept = api_price(
        admin, {"usd_per_hour": 0.034}, "PATCH", f"/api/v1/tenants/a/prices/{price_id}"
    )
    assert kept.get_json()["burstable"] is True
    cleared = api_price(
        admin, {"burstable": False}, "PATCH", f"/api/v1/tenants/a/prices/{price_id}"
    )
    assert cleared.get_json()["burstable"] is False


def test_the_price_form_sets_and_shows_the_flag(app: Flask, world: World) -> None:
    admin = logged_in(app, ADMIN)
    form = {key: str(value) for key, value in E4.items()}
    refused = admin.post("/tenants/a/prices", data={
        **form, "provider": "aws", "instance_type": "t3.small", "burstable": "false",
        "csrf_token": csrf(admin)})  # fmt: skip
    assert refused.status_code == 400
    assert "t3.small is of a burstable family" in html(refused)
    assert 'aria-invalid="true" autofocus aria-describedby="field-price-burstable-error' in html(
        refused
    )
    added = admin.post("/tenants/a/prices", data={**form, "burstable": "true",
                                                  "csrf_token": csrf(admin)})  # fmt: skip
    assert added.status_code == 303
    page = html(admin.get("/tenants/a/prices"))
    row = page.split("<code>VM.Standard.E4.Flex</code>")[1].split("</tr>")[0]
    assert '<span class="badge muted">burstable</span>' in row
    with app.app_context():
        entry = database.session().scalar(select(PriceEntry).where(
            PriceEntry.tenant_id.is_not(None), PriceEntry.instance_type == "VM.Standard.E4.Flex"))  # fmt: skip
        assert entry is not None
        assert entry.burstable
        edit = html(admin.get(f"/tenants/a/prices?edit={entry.id}"))
    assert '<option value="true" selected>yes</option>' in edit


def test_rightsizing_leaves_burstable_types_out(app: Flask, world: World) -> None:
    client = logged_in(app, VIEWER)
    stored(client, world, document())  # the collector's own run
    stored(client, world, document(hostname="t3", instance_type="t3.medium", **AWS))
    stored(client, world, document(hostname="c5", instance_type="c5.large", **AWS))
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "a")
        own = db.scalar(select(LoadTestRun).where(LoadTestRun.hostname == "web1.a.test"))
        assert own is not None
        options, excluded = machine_options(db, tenant, own)
    assert "t3.medium" not in {entry.instance_type for entry, _ in options}
    assert "c5.large" in {entry.instance_type for entry, _ in options}
    assert (
        "t3.medium (us-east-1, 2 vCPUs, 4 GiB): a burstable machine type, measured at burst "
        "speed, which it sustains only on CPU credits or at an extra charge"
    ) in excluded


# ---- 2. priced for another size -----------------------------------------------------------------


def test_a_run_priced_for_another_size_is_not_ranked(app: Flask, world: World) -> None:
    """4 vCPUs / 32 GiB of E5.Flex priced with the 2 vCPU / 16 GiB row: ranked, it came first."""
    client = logged_in(app, VIEWER)
    small = stored(client, world, document(hostname="small"))
    big = stored(client, world, document([u * 2 for u in UNITS], hostname="big", vcpus=4,
                                         memory_bytes=32 * GIB - 300 * 2**20))  # fmt: skip
    assert (big["price"]["vcpus"], big["price"]["memory_gib"]) == (2, 16.0)
    data = compared(client, small, big)
    by_host = {entry["run"]["host"]["hostname"]: entry for entry in data["runs"]}
    assert by_host["big"]["units_per_usd_hour"] > by_host["small"]["units_per_usd_hour"]
    assert standing(data) == {"small": (1, None), "big": (None, OTHER_SIZE)}
    assert by_host["big"]["percent_of_best"] is None
    assert any(w.startswith("Priced for another size") and big["name"] in w and "not ranked" in w
               for w in data["warnings"])  # fmt: skip
    page = text(client.get(f"/tenants/a/loadtests/compare?ids={small['id']},{big['id']}"))
    assert f"4,789.47 best units per $/hour: {small['name']}" in page
    assert "not ranked: priced for another size" in page


# ---- 3. different prices for one type, another type's price, re-pricing -------------------------


def test_runs_of_one_type_with_different_prices_and_another_types_price_are_warned_about(
    app: Flask, world: World
) -> None:
    admin = logged_in(app, ADMIN)
    old = stored(admin, world, document(hostname="old", instance_type="c5.large", **AWS))
    override = api_price(admin, {**E4, "provider": "aws", "region": "us-east-1",
                                 "instance_type": "c5.large", "usd_per_hour": 0.05})  # fmt: skip
    assert override.status_code == 201
    new = stored(admin, world, document(hostname="new", instance_type="c5.large", **AWS))
    t3 = admin.post(f"/api/v1/tenants/a/loadtests?price_id={old['price']['entry_id']}",
                    json=document(hostname="t3", instance_type="t3.medium", **AWS),
                    headers={"X-CSRF-Token": csrf(admin)}).get_json()  # fmt: skip
    data = compared(admin, old, new, t3)
    assert (
        f"Runs of the same machine type (aws c5.large) carry different prices: {old['name']} "
        f"$0.085/h (global price for us-east-1 as of 2025-06-01), {new['name']} $0.05/h "
        "(tenant price for us-east-1 as of 2026-11-01)."
    ) in " ".join(data["warnings"])
    assert (
        f"Priced with a catalog row of another machine type than the one tested: {t3['name']} "
        "(aws t3.medium, priced as aws c5.large)."
    ) in " ".join(data["warnings"])
    assert (
        "Priced with the catalog row of another machine type (aws c5.large) than the one "
        "tested (aws t3.medium)"
    ) in text(admin.get(f"/tenants/a/loadtests/{t3['id']}"))
    assert 'id="price-other-type"' not in html(admin.get(f"/tenants/a/loadtests/{old['id']}"))
    page = html(admin.get(f"/tenants/a/loadtests/compare?ids={old['id']},{new['id']},{t3['id']}"))
    assert "<th>Priced as</th><th>Price as of</th>" in page
    cells = re.findall(r'data-swatch="(\d+)".*?data-priced-as>(.*?)</td>\s*'
                       r'<td class="nowrap" data-price-as-of><time datetime="([0-9-]+)"',
                       page, re.DOTALL)  # fmt: skip
    assert {run_id: (priced.split(" · ")[0], day) for run_id, priced, day in cells} == {
        str(old["id"]): ("aws c5.large", "2025-06-01"),
        str(new["id"]): ("aws c5.large", "2026-11-01"),
        str(t3["id"]): ("aws c5.large", "2025-06-01"),
    }


def test_repricing_takes_the_tenants_current_catalog_and_is_audited(
    app: Flask, world: World
) -> None:
    admin = logged_in(app, ADMIN)
    old = stored(admin, world, document(hostname="old", instance_type="c5.large", **AWS))
    ours = {**E4, "provider": "aws", "region": "us-east-1", "instance_type": "c5.large",
            "usd_per_hour": 0.05}  # fmt: skip
    assert api_price(admin, ours).status_code == 201
    outsider = logged_in(app, OUTSIDER)  # another tenant's cheaper row is never taken
    assert api_price(outsider, {**ours, "usd_per_hour": 0.01},
                     path="/api/v1/tenants/b/prices").status_code == 201  # fmt: skip
    new = stored(admin, world, document(hostname="new", instance_type="c5.large", **AWS))
    analyst = logged_in(app, ANALYST)
    done = analyst.post(f"/tenants/a/loadtests/{old['id']}/reprice",
                        data={"csrf_token": csrf(analyst)})  # fmt: skip
    assert done.status_code == 303
    run = analyst.get(f"/api/v1/tenants/a/loadtests/{old['id']}").get_json()
    assert (run["price"]["usd_per_hour"], run["price"]["scope"]) == (0.05, "tenant")
    assert run["price"]["match"].startswith(f"re-priced by {ANALYST} on ")
    assert run["price"]["match"].endswith("matched exactly")
    assert not any("carry different prices" in w for w in compared(analyst, old, new)["warnings"])
    with app.app_context():
        event = database.session().scalar(select(AuditEvent).where(
            AuditEvent.action == "loadtest.price", AuditEvent.target_id == str(old["id"])))  # fmt: skip
        assert event is not None
        assert event.details == {"before": "0.085000", "after": "0.050000", "matched": True}
    api = analyst.post(f"/api/v1/tenants/a/loadtests/{new['id']}/reprice",
                       headers={"X-CSRF-Token": csrf(analyst)})  # fmt: skip
    assert api.status_code == 200
    assert api.get_json()["price"]["usd_per_hour"] == 0.05
    viewer = logged_in(app, VIEWER)
    before = table_rows(app)
    assert viewer.post(f"/api/v1/tenants/a/loadtests/{old['id']}/reprice",
                       headers={"X-CSRF-Token": csrf(viewer)}).status_code == 403  # fmt: skip
    assert outsider.post(f"/api/v1/tenants/a/loadtests/{old['id']}/reprice",
                         headers={"X-CSRF-Token": csrf(outsider)}).status_code == 404  # fmt: skip
    assert outsider.post(f"/api/v1/tenants/b/loadtests/{old['id']}/reprice",
                         headers={"X-CSRF-Token": csrf(outsider)}).status_code == 404  # fmt: skip
    assert analyst.post(f"/api/v1/tenants/a/loadtests/{old['id']}/reprice").status_code == 400
    assert table_rows(app) == before


def test_repricing_a_run_whose_row_left_the_catalog_says_so(app: Flask, world: World) -> None:
    admin = logged_in(app, ADMIN)
    ours = {**E4, "provider": "aws", "region": "us-east-1", "instance_type": "m7i.large"}
    price_id = api_price(admin, ours).get_json()["id"]
    run = stored(admin, world, document(hostname="m7", instance_type="m7i.large", **AWS))
    assert run["price"]["entry_id"] == price_id
    deleted = admin.delete(f"/api/v1/tenants/a/prices/{price_id}",
                           headers={"X-CSRF-Token": csrf(admin)})  # fmt: skip
    assert deleted.status_code == 204
    done = admin.post(f"/tenants/a/loadtests/{run['id']}/reprice", data={"csrf_token": csrf(admin)},
                      follow_redirects=True)  # fmt: skip
    assert "the current catalog has no row for this machine type" in text(done)
    assert (f"no price: re-priced from the catalog by {ADMIN} on ") in text(done)
    assert "which had no row for this machine type" in text(done)


# ---- 4. out-of-date prices ----------------------------------------------------------------------


def test_old_prices_are_warned_about_and_marked_with_their_date(app: Flask, world: World) -> None:
    client = logged_in(app, VIEWER)
    first = stored(client, world, document(hostname="first"))
    second = stored(client, world, document([u * 2 for u in UNITS], hostname="second",
                                            instance_type="c5.large", **AWS))  # fmt: skip
    data = compared(client, first, second)
    days = data["runs"][0]["price_age_days"]
    assert days > 180
    assert [entry["price_stale"] for entry in data["runs"]] == [True, True]
    assert (
        f"Prices older than 180 days: as of 2025-06-01 ({days} days ago): {first['name']}, "
        f"{second['name']}."
    ) in " ".join(data["warnings"])
    page = html(client.get(f"/tenants/a/loadtests/compare?ids={first['id']},{second['id']}"))
    assert page.count('<time datetime="2025-06-01">2025-06-01</time> '
                      '<span class="badge muted">out of date</span>') == 2  # fmt: skip
    app.config["PA_SETTINGS"]["loadtests_price_max_age_days"] = days
    data = compared(client, first, second)
    assert not any("older than" in w for w in data["warnings"])
    assert [entry["price_stale"] for entry in data["runs"]] == [False, False]
    assert "out of date" not in html(
        client.get(f"/tenants/a/loadtests/compare?ids={first['id']},{second['id']}")
    )


def test_the_price_age_is_a_setting() -> None:
    base = {"PERFANALYSIS_ADMIN_SECRET_KEY": TEST_SECRET}
    assert load([], base)["loadtests_price_max_age_days"] == 180
    assert load(["--loadtests.price-max-age-days=30"], base)["loadtests_price_max_age_days"] == 30
    variable = {**base, "PERFANALYSIS_ADMIN_LOADTESTS_PRICE_MAX_AGE_DAYS": "90"}
    assert load([], variable)["loadtests_price_max_age_days"] == 90
    with pytest.raises(ConfigError) as refused:
        load(["--loadtests.price-max-age-days=0"], base)
    assert "loadtests.price-max-age-days" in str(refused.value)


def test_compare_counts_a_prices_age_from_today() -> None:
    young, old = make_run(1, [1.0, 2.0], "1"), make_run(2, [1.0, 2.0], "2")
    young.price_as_of, old.price_as_of = date(2026, 10, 1), date(2026, 3, 1)
    result = compare([young, old], today=date(2026, 11, 25), max_price_age_days=180)
    assert [(s.price_age_days, s.price_stale) for s in result.summaries] == [(55, False),
                                                                            (269, True)]  # fmt: skip
    assert result.warnings == ["Prices older than 180 days: as of 2026-03-01 (269 days ago): "
                               "run 2. Providers change prices: check them against their "
                               "source, and re-price the runs once the catalog is updated."]  # fmt: skip
    assert [s.rank for s in result.summaries] == [1, 2]  # an old price warns, it still ranks


# ---- 5. different work units --------------------------------------------------------------------


def test_only_runs_counting_the_baselines_work_unit_are_ranked() -> None:
    ours = make_run(1, [1.0, 2.0], "1")
    theirs = make_run(2, [1.0, 30.0], "1", unit="perfcpumeasure-4mib")  # the better value
    ranked = compare([ours, theirs])
    assert [(s.rank, s.unranked_reason) for s in ranked.summaries] == [(1, None),
                                                                      (None, OTHER_UNIT)]  # fmt: skip
    assert [s.percent_of_best for s in ranked.summaries] == [Decimal("100.0"), None]
    assert (
        "Only runs counting the baseline's unit (pa-mem4m-v1) are ranked; run 2"
        in (ranked.warnings[0])
    )
    flipped = compare([ours, theirs], baseline_id=2)
    assert [(s.rank, s.unranked_reason) for s in flipped.summaries] == [(None, OTHER_UNIT),
                                                                       (1, None)]  # fmt: skip


def test_a_run_of_another_unit_is_not_ranked_through_the_api(app: Flask, world: World) -> None:
    client = logged_in(app, VIEWER)
    ours = stored(client, world, document(hostname="ours"))
    other = document([u * 3 for u in UNITS], hostname="theirs")
    other["settings"]["unit"] = {"name": "perfcpumeasure-4mib", "buffer_bytes": 4194304}
    theirs = stored(client, world, other)
    assert standing(compared(client, ours, theirs)) == {"ours": (1, None),
                                                        "theirs": (None, OTHER_UNIT)}  # fmt: skip


# ---- 7. far from the global price, "< 0.01", the CSV's dollars ----------------------------------


def test_a_tenant_price_far_from_the_global_one_is_warned_about(app: Flask, world: World) -> None:
    admin = logged_in(app, ADMIN)
    c5 = {**E4, "provider": "aws", "region": "us-east-1", "instance_type": "c5.large"}
    monthly = api_price(admin, {**c5, "usd_per_hour": 62.05})
    assert monthly.status_code == 201
    [warning] = monthly.get_json()["warnings"]
    assert warning.startswith("usd_per_hour 62.05 is 730x of the global catalog's 0.085 for aws "
                              "c5.large (us-east-1)")  # fmt: skip
    fair = api_price(admin, {**c5, "instance_type": "c6i.large", "usd_per_hour": 0.08})
    assert fair.get_json()["warnings"] == []
    tiny = api_price(admin, {"usd_per_hour": 0.005}, "PATCH",
                     f"/api/v1/tenants/a/prices/{fair.get_json()['id']}")  # fmt: skip
    assert tiny.get_json()["warnings"][0].startswith("usd_per_hour 0.005 is 1/17 of the global")
    form = admin.post("/tenants/a/prices", data={
        **{key: str(value) for key, value in c5.items()}, "instance_type": "m5.large",
        "memory_gib": "8", "usd_per_hour": "70.08", "csrf_token": csrf(admin)},
        follow_redirects=True)  # fmt: skip
    assert "Warning: usd_per_hour 70.08 is 730x of the global catalog&#39;s 0.096" in html(form)
    run = stored(admin, world, document(hostname="c5", instance_type="c5.large", **AWS))
    other = stored(admin, world, document(hostname="e5"))
    assert run["price"]["usd_per_hour"] == 62.05
    assert (
        f"Tenant prices far from the global catalog's for the same machine: {run['name']} "
        "($62.05/h, 730x of the global $0.085/h)."
    ) in " ".join(compared(admin, run, other)["warnings"])


def test_a_value_under_half_a_cent_reads_the_same_on_every_page(app: Flask, world: World) -> None:
    client = logged_in(app, VIEWER)
    tiny = stored(client, world, two_levels([0.00005, 0.0001], hostname="tiny"))
    other = stored(client, world, document(hostname="other"))
    assert tiny["units_per_usd_hour"] == 0.0
    history = html(client.get("/tenants/a/loadtests"))
    row = history.split(f'<tr id="run-{tiny["id"]}">')[1].split("</tr>")[0]
    assert row.rstrip().endswith('<td class="num">&lt; 0.01</td>')
    run_page = html(client.get(f"/tenants/a/loadtests/{tiny['id']}"))
    assert "<strong>&lt; 0.01</strong><span>units per $/hour</span>" in run_page
    compare_page = html(client.get(f"/tenants/a/loadtests/compare?ids={tiny['id']},{other['id']}"))
    assert '<td class="num">&lt; 0.01</td>' in compare_page


def test_the_csv_writes_dollars_and_the_priced_type_as_the_json_does(
    app: Flask, world: World
) -> None:
    client = logged_in(app, VIEWER)
    e5 = stored(client, world, document(hostname="e5"))
    t3 = stored(client, world, document(hostname="t3", instance_type="t3.medium", **AWS))
    query = f"ids={e5['id']},{t3['id']}"
    exported = {entry["run"]["id"]: entry for entry in compared(client, e5, t3)["runs"]}
    rows = list(csv.DictReader(io.StringIO(html(client.get(f"/tenants/a/loadtests/compare.csv?"
                                                           f"{query}")))))  # fmt: skip
    top = {int(row["run_id"]): row for row in rows if row["target_busy_percent"] == "100"}
    assert [top[run["id"]]["usd_per_hour"] for run in (e5, t3)] == ["0.038", "0.0416"]
    for run_id, row in top.items():
        price = exported[run_id]["run"]["price"]
        assert row["usd_per_hour"] == repr(price["usd_per_hour"])
        assert (row["price_provider"], row["price_instance_type"]) == (price["provider"],
                                                                       price["instance_type"])  # fmt: skip
        assert row["unranked_reason"] == (exported[run_id]["unranked_reason"] or "")
        assert row["price_burstable"] == str(price["burstable"]).lower()
    assert top[t3["id"]]["unranked_reason"] == BURSTABLE
    assert (
        compare_data(html(client.get(f"/tenants/a/loadtests/compare?{query}")))["runs"][1][
            "burstable"
        ]
        is True
    )


# ---- the migration ------------------------------------------------------------------------------


def test_0009_marks_stored_burstable_rows_and_runs(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path / "admin.db", "0008")
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        for row_id, provider, instance_type in [(1, "aws", "t3.medium"), (2, "aws", "c5.large"),
                                                (3, "azure", "Standard_B2s"),
                                                (4, "gcp", "e2-micro"), (5, "gcp", "e2-standard-2")]:  # fmt: skip
            insert(connection, "price_entries", id=row_id, provider=provider, region="r",
                   instance_type=instance_type, vcpus=2, memory_gib=4, usd_per_hour=0.1,
                   as_of="2025-06-01", created_at="2025-06-01 00:00:00",
                   updated_at="2025-06-01 00:00:00")  # fmt: skip
        for run_id, provider, instance_type, price in [(1, "aws", "T3.Medium", 0.04),
                                                       (2, "aws", "c5.large", 0.085),
                                                       (3, None, None, None)]:  # fmt: skip
            insert(connection, "loadtest_runs", id=run_id, document_sha256=f"{run_id:064d}",
                   price_provider=provider, price_instance_type=instance_type,
                   price_usd_per_hour=price)  # fmt: skip
    upgrade(url, "0009")
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        rows = dict(connection.execute("SELECT id, burstable FROM price_entries").fetchall())
        runs = dict(connection.execute("SELECT id, price_burstable FROM loadtest_runs").fetchall())
    assert rows == {1: 1, 2: 0, 3: 1, 4: 1, 5: 0}
    assert runs == {1: 1, 2: 0, 3: None}
