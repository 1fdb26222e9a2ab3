"""The load-test pages: every page for every role, uploads and price forms, exports, and the
refusals: another tenant's member gets 404 everywhere (a comparison mixing in one foreign id
too), readers get 403 on writes, a form without its CSRF token gets 400, nothing changing."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import csrf, table_snapshot
from tests.unit.test_loadtests_api import FakeHistory, steady_busy
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    ADMIN,
    ANALYST,
    OUTSIDER,
    PLATFORM,
    VIEWER,
    World,
    build_world,
    cheap_password_hashing,
    document,
    logged_in,
    run_ids,
    table_rows,
    upload_with_key,
)

ROLES = [PLATFORM, ADMIN, ANALYST, VIEWER]


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


@pytest.fixture
def runs(client: FlaskClient, world: World) -> list[int]:
    """Two runs of tenant a (by its collector key) and one of tenant b."""
    first = upload_with_key(client, world.key_a, document()).get_json()["id"]
    faster = document([u * 1.5 for u in _units()], instance_type="c5.large",
                      cloud_provider="aws", region="us-east-1")  # fmt: skip
    second = upload_with_key(client, world.key_a, faster).get_json()["id"]
    third = upload_with_key(client, world.key_b, document()).get_json()["id"]
    return [first, second, third]


def _units() -> list[float]:
    return [level["units_per_second"] for level in document()["levels"]]


def html(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def post(client: FlaskClient, path: str, data: dict[str, Any], token: bool = True) -> TestResponse:
    fields = {**data, "csrf_token": csrf(client)} if token else data
    return client.post(path, data=fields)


def pages_of_a(world: World, runs: list[int]) -> list[str]:
    a1, a2 = runs[0], runs[1]
    return [
        "/tenants/a/loadtests",
        f"/tenants/a/loadtests/{a1}",
        f"/tenants/a/loadtests/compare?ids={a1},{a2}",
        f"/tenants/a/loadtests/compare?ids={a1}&ids={a2}&baseline={a2}",
        f"/tenants/a/loadtests/compare.csv?ids={a1},{a2}",
        f"/tenants/a/loadtests/compare.json?ids={a1},{a2}",
        "/tenants/a/prices",
        f"/tenants/a/collectors/{world.collector_a}/rightsizing",
    ]


def upload_file(client: FlaskClient, body: bytes, **fields: str) -> TestResponse:
    data = {"file": (io.BytesIO(body), "result.json"), "csrf_token": csrf(client), **fields}
    return client.post("/tenants/a/loadtests", data=data, content_type="multipart/form-data")


def writes_of_a(world: World, runs: list[int], price_id: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/tenants/a/loadtests", {"label": "x"}),
        (f"/tenants/a/loadtests/{runs[0]}/price", {"price_id": ""}),
        (f"/tenants/a/loadtests/{runs[0]}/reprice", {}),
        (f"/tenants/a/loadtests/{runs[0]}/delete", {}),
        ("/tenants/a/prices", price_form()),
        (f"/tenants/a/prices/{price_id}", price_form(usd_per_hour="0.2")),
        (f"/tenants/a/prices/{price_id}/delete", {}),
    ]


def price_form(**change: str) -> dict[str, str]:
    return {"provider": "aws", "region": "eu-west-1", "instance_type": "c7i.large", "vcpus": "2",
            "memory_gib": "4", "usd_per_hour": "0.0999", "source": "https://aws.amazon.com/",
            "as_of": "2026-11-01", "notes": "", **change}  # fmt: skip


def tenant_price(
    app: Flask,
    instance_type: str = "m7i.large",
    *,
    slug: str = "a",
    admin: str = ADMIN,
    **change: str,
) -> int:
    client = logged_in(app, admin)
    response = post(
        client, f"/tenants/{slug}/prices", price_form(instance_type=instance_type, **change)
    )
    assert response.status_code == 303, html(response)
    page = html(client.get(f"/tenants/{slug}/prices"))
    match = re.search(
        rf'<code>{instance_type}</code>.*?action="/tenants/{slug}/prices/(\d+)/delete"',
        page,
        re.DOTALL,
    )
    assert match is not None
    return int(match.group(1))


# ---- pages for every role ----------------------------------------------------------------------


@pytest.mark.parametrize("email", ROLES)
def test_every_page_renders_for_each_role(
    app: Flask, world: World, runs: list[int], email: str
) -> None:
    client = logged_in(app, email)
    for path in pages_of_a(world, runs):
        response = client.get(path)
        assert response.status_code == 200, path
        if response.mimetype == "text/html":
            page = html(response)
            assert re.search(r"<script(?![^>]*\bsrc=)", page) is None, path  # CSP: files only
            assert re.search(r"<[^>]+\son[a-z]+\s*=", page) is None, path


def test_readers_see_no_write_forms(app: Flask, world: World, runs: list[int]) -> None:
    viewer = logged_in(app, VIEWER)
    for path in [*pages_of_a(world, runs)[:3], "/tenants/a/prices"]:
        assert 'method="post" action="/tenants/a/' not in html(viewer.get(path)), path
    analyst = logged_in(app, ANALYST)
    assert 'action="/tenants/a/loadtests"' in html(analyst.get("/tenants/a/loadtests"))
    assert 'action="/tenants/a/prices"' not in html(analyst.get("/tenants/a/prices"))
    admin = logged_in(app, ADMIN)
    assert 'action="/tenants/a/prices"' in html(admin.get("/tenants/a/prices"))


def test_history_lists_runs_with_price_and_price_performance(
    app: Flask, world: World, runs: list[int]
) -> None:
    page = html(logged_in(app, VIEWER).get("/tenants/a/loadtests"))
    assert page.count('name="ids"') == 2
    assert "4,789.47" in page  # 182 / $0.038
    assert "web-a" in page
    assert "web.b.test" not in page


def test_the_history_shows_when_each_run_started_in_utc(
    app: Flask, world: World, runs: list[int]
) -> None:
    page = html(logged_in(app, VIEWER).get("/tenants/a/loadtests"))
    for run_id in runs[:2]:
        row = re.search(rf'<tr id="run-{run_id}">.*?</tr>', page, re.DOTALL)
        assert row is not None
        started = re.search(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', row[0])
        assert started is not None
        assert started[1].startswith("2026-11-01T10:00:00")  # the document's started_at
        assert started[2].endswith(" ago")
        assert started[3] == "2026-11-01 10:00:00 UTC"


def test_prices_are_shown_as_stored_never_rounded(
    app: Flask, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # demand one machine of each type can serve, so each candidate costs its catalog price
    monkeypatch.setitem(app.extensions, "pa_cpu_history", FakeHistory(steady_busy(10.0)))
    client = logged_in(app, ANALYST)
    gcp = document(cloud_provider="gcp", region="us-central1", instance_type="e2-standard-2",
                   memory_bytes=8 * 2**30)  # fmt: skip
    run = upload_with_key(client, world.key_a, gcp).get_json()
    assert run["price"]["usd_per_hour"] == 0.067006  # the seed's GCP price
    oci = upload_with_key(client, world.key_a, document([u * 2 for u in _units()])).get_json()
    run_page = html(client.get(f"/tenants/a/loadtests/{run['id']}"))
    assert "<strong>$0.067006</strong><span>per hour, on demand" in run_page
    assert "$0.067006/hour for gcp e2-standard-2" in run_page
    assert ">0.067006</span>" in html(client.get("/tenants/a/loadtests"))
    compared = html(client.get(f"/tenants/a/loadtests/compare?ids={run['id']},{oci['id']}"))
    assert '<td class="num">0.067006</td>' in compared
    advice = html(client.get(f"/tenants/a/collectors/{world.collector_a}/rightsizing"))
    assert "<strong>$0.038</strong><span>per hour on its own machine type" in advice
    assert '<td class="num">0.067006</td>' in advice

    cheap = tenant_price(app, "t4g.nano", usd_per_hour="0.00004")
    assert post(client, f"/tenants/a/loadtests/{run['id']}/price",
                {"price_id": str(cheap)}).status_code == 303  # fmt: skip
    run_page = html(client.get(f"/tenants/a/loadtests/{run['id']}"))
    assert "<strong>$0.00004</strong><span>per hour, on demand" in run_page
    assert "4,550,000.00" in run_page  # 182 units / $0.00004
    assert ">0.00004</span>" in html(client.get("/tenants/a/loadtests"))


def test_the_run_page_shows_the_full_load_minimum_it_was_accepted_at(
    app: Flask, world: World
) -> None:
    client = logged_in(app, VIEWER)
    recorded = document()
    recorded["settings"]["full_load_min"] = 96.5
    stored = upload_with_key(client, world.key_a, recorded).get_json()
    page = html(client.get(f"/tenants/a/loadtests/{stored['id']}"))
    assert "100% level accepted at ≥ 96.5% busy" in page
    older = upload_with_key(client, world.key_a, document([u * 2 for u in _units()])).get_json()
    assert "100% level accepted" not in html(client.get(f"/tenants/a/loadtests/{older['id']}"))


# ---- comparisons and exports ---------------------------------------------------------------


def test_compare_page_carries_the_chart_data_and_the_table(
    app: Flask, world: World, runs: list[int]
) -> None:
    page = html(logged_in(app, VIEWER).get(f"/tenants/a/loadtests/compare?ids={runs[0]},{runs[1]}"))
    for canvas in ("chart-lines", "chart-bars", "chart-difference", "chart-value"):
        assert f'id="{canvas}"' in page
    match = re.search(r'id="compare-data" data-json="([^"]+)"', page)
    assert match is not None
    data = json.loads(match.group(1).replace("&#34;", '"').replace("&amp;", "&"))
    assert data["baseline_id"] == runs[0]
    assert [entry["run"]["id"] for entry in data["runs"]] == runs[:2]
    assert "vendor/chart.js-4.6.1/chart.umd.min.js" in page


def test_a_comparison_without_a_priced_run_says_so_instead_of_drawing_an_empty_chart(
    app: Flask, world: World, runs: list[int]
) -> None:
    client = logged_in(app, ANALYST)
    for run_id in runs[:2]:
        removed = post(client, f"/tenants/a/loadtests/{run_id}/price", {"price_id": ""})
        assert removed.status_code == 303
    page = html(client.get(f"/tenants/a/loadtests/compare?ids={runs[0]},{runs[1]}"))
    assert 'id="chart-value"' not in page
    assert "No compared run has a price: set one on a run to rank price-performance." in page
    for canvas in ("chart-lines", "chart-bars", "chart-difference"):
        assert f'id="{canvas}"' in page


def test_the_compare_page_warns_about_a_run_priced_for_another_size(
    app: Flask, world: World
) -> None:
    client = logged_in(app, VIEWER)
    exact = upload_with_key(client, world.key_a, document()).get_json()
    bigger = document([u * 2 for u in _units()], memory_bytes=64 * 2**30)
    resized = upload_with_key(client, world.key_a, bigger).get_json()
    page = html(client.get(f"/tenants/a/loadtests/compare?ids={exact['id']},{resized['id']}"))
    assert (
        f'<p class="warning">Priced for another size (vCPUs or memory) than the machine tested: '
        f"{resized['name']}. " in page
    )


def test_csv_and_json_exports(app: Flask, world: World, runs: list[int]) -> None:
    client = logged_in(app, VIEWER)
    query = f"ids={runs[0]},{runs[1]}&baseline={runs[1]}"
    exported = client.get(f"/tenants/a/loadtests/compare.csv?{query}")
    assert exported.headers["Content-Type"] == "text/csv; charset=utf-8"  # one charset
    assert (
        exported.headers["Content-Disposition"] == 'attachment; filename="loadtests-a-compare.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(html(exported))))
    assert len(rows) == 20
    top = [
        row for row in rows if row["run_id"] == str(runs[0]) and row["target_busy_percent"] == "100"
    ]
    assert top[0]["units_per_usd_hour"] == "4789.47"
    assert top[0]["baseline"] == "false"
    assert top[0]["difference_vs_baseline_percent"] == "-33.3"
    body = json.loads(html(client.get(f"/tenants/a/loadtests/compare.json?{query}")))
    assert body["baseline_id"] == runs[1]
    assert body["runs"][0]["units_per_usd_hour"] == 4789.47


@pytest.mark.parametrize("kind", ["", ".csv", ".json"])
def test_compare_mixing_in_a_foreign_id_is_404_and_leaks_nothing(
    app: Flask, world: World, runs: list[int], kind: str
) -> None:
    client = logged_in(app, ADMIN)
    response = client.get(f"/tenants/a/loadtests/compare{kind}?ids={runs[0]},{runs[2]}")
    assert response.status_code == 404
    assert "web.b.test" not in html(response)
    assert "no such load test in this tenant" in html(response)  # not which id, nor whose


@pytest.mark.parametrize("row_id", ["0", "2147483648", "99999999999999999999"])
def test_ids_beyond_the_databases_range_are_404_not_an_overflow(
    app: Flask, world: World, row_id: str
) -> None:
    client = logged_in(app, ADMIN)
    before = table_snapshot(app)
    for path in (f"/tenants/a/loadtests/{row_id}", f"/tenants/a/collectors/{row_id}/rightsizing"):
        assert client.get(path).status_code == 404, path
    for path in (f"/tenants/a/loadtests/{row_id}/price", f"/tenants/a/loadtests/{row_id}/delete",
                 f"/tenants/a/prices/{row_id}", f"/tenants/a/prices/{row_id}/delete"):  # fmt: skip
        assert post(client, path, price_form()).status_code == 404, path
    assert table_snapshot(app) == before


def test_compare_refuses_one_run_and_bad_ids(app: Flask, world: World, runs: list[int]) -> None:
    client = logged_in(app, VIEWER)
    assert client.get(f"/tenants/a/loadtests/compare?ids={runs[0]}").status_code == 400
    assert client.get("/tenants/a/loadtests/compare?ids=x").status_code == 400
    assert client.get("/tenants/a/loadtests/compare").status_code == 400


# ---- uploads through the page ---------------------------------------------------------------


def test_analyst_uploads_a_file(app: Flask, world: World) -> None:
    client = logged_in(app, ANALYST)
    response = upload_file(client, json.dumps(document()).encode(), label="after the update",
                           collector_id=str(world.collector_a))  # fmt: skip
    assert response.status_code == 303, html(response)
    page = html(client.get(response.location))
    assert "Load test after the update stored." in page
    assert "web-a" in page
    assert len(run_ids(app, "a")) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{not json", "the load test result is not JSON: Expecting property name"),
     (json.dumps({**document(), "max_units_per_second": 1.0}).encode(), "/max_units_per_second")],
)  # fmt: skip
def test_a_bad_file_is_shown_with_its_field(
    app: Flask, world: World, body: bytes, message: str
) -> None:
    client = logged_in(app, ANALYST)
    response = upload_file(client, body)
    assert response.status_code == 400
    page = html(response)
    assert message in page
    assert 'role="alert"' in page
    assert ('required aria-invalid="true" autofocus aria-describedby="field-upload-file-error" '
            'id="field-upload-file"') in page  # fmt: skip
    assert '<small class="field-error" id="field-upload-file-error">' in page
    assert run_ids(app, "a") == []


def test_a_bad_id_in_a_form_names_what_the_id_is(app: Flask, world: World, runs: list[int]) -> None:
    client = logged_in(app, ANALYST)
    response = upload_file(client, json.dumps(document()).encode(), collector_id="abc",
                           label="kept label")  # fmt: skip
    assert response.status_code == 400
    page = html(response)
    assert ('<small class="field-error" id="field-upload-collector_id-error">collector_id must '
            "be a collector id (a whole number)</small>") in page  # fmt: skip
    assert 'value="kept label"' in page
    assert "field-upload-file-error" not in page
    response = post(client, f"/tenants/a/loadtests/{runs[0]}/price", {"price_id": "x"})
    assert response.status_code == 400
    assert "price_id must be a price id (a whole number)" in html(response)
    response = client.get(f"/tenants/a/loadtests/compare?ids={runs[0]},{runs[1]}&baseline=x")
    assert "baseline must be a load test id (a whole number)" in html(response)


def _price_shown(page: str) -> str:
    match = re.search(r"<dt>Price</dt><dd>(.*?)</dd>", page, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_a_price_gone_from_the_catalog_or_another_tenants_is_refused_at_the_price_field(
    app: Flask, world: World, runs: list[int]
) -> None:
    analyst = logged_in(app, ANALYST)
    path = f"/tenants/a/loadtests/{runs[0]}"
    before = _price_shown(html(analyst.get(path)))
    deleted = tenant_price(app, "t4g.nano")
    admin = logged_in(app, ADMIN)
    assert post(admin, f"/tenants/a/prices/{deleted}/delete", {}).status_code == 303
    foreign = tenant_price(app, slug="b", admin=OUTSIDER)
    for price_id in (deleted, foreign):
        response = post(analyst, f"{path}/price", {"price_id": str(price_id)})
        assert response.status_code == 404
        page = html(response)
        assert '<details class="form-panel" open>' in page
        assert 'aria-invalid="true" autofocus aria-describedby="field-price-price_id-error"' in page
        assert ('<small class="field-error" id="field-price-price_id-error">no such price in this '
                "tenant&#39;s catalog</small>") in page  # fmt: skip
        assert _price_shown(page) == before
        assert _price_shown(html(analyst.get(path))) == before


def test_upload_without_a_file_names_the_file(app: Flask, world: World) -> None:
    client = logged_in(app, ANALYST)
    response = client.post("/tenants/a/loadtests", data={"csrf_token": csrf(client)})
    assert response.status_code == 400
    assert "choose the load test result file" in html(response)


# ---- the price form ------------------------------------------------------------------------


def test_admin_adds_edits_and_deletes_a_tenant_price(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    response = post(client, "/tenants/a/prices", price_form())
    assert response.status_code == 303
    page = html(client.get(response.location))
    assert "c7i.large" in page
    assert "0.0999" in page
    entry = int(re.findall(r'action="/tenants/a/prices/(\d+)/delete"', page)[0])
    form = html(client.get(f"/tenants/a/prices?edit={entry}"))
    assert f'action="/tenants/a/prices/{entry}"' in form
    assert 'value="c7i.large"' in form
    assert (
        post(client, f"/tenants/a/prices/{entry}", price_form(usd_per_hour="0.11")).status_code
        == 303
    )
    assert "0.11" in html(client.get("/tenants/a/prices"))
    assert post(client, f"/tenants/a/prices/{entry}/delete", {}).status_code == 303
    assert "c7i.large" not in html(client.get("/tenants/a/prices"))


@pytest.mark.parametrize(
    ("change", "message"),
    [({"usd_per_hour": "0"}, "more than $0"), ({"usd_per_hour": "-0.5"}, "more than $0"),
     ({"usd_per_hour": "abc"}, "must be a number"), ({"vcpus": "0"}, "vcpus must be between"),
     ({"as_of": "2099-01-01"}, "must not be in the future")],
)  # fmt: skip
def test_a_bad_price_is_shown_with_what_was_typed(
    app: Flask, world: World, change: dict[str, str], message: str
) -> None:
    client = logged_in(app, ADMIN)
    before = table_rows(app)
    response = post(client, "/tenants/a/prices", price_form(**change))
    assert response.status_code == 400
    page = html(response)
    assert message in page
    assert 'value="c7i.large"' in page  # kept
    assert 'aria-invalid="true"' in page
    assert table_rows(app) == before


def test_a_price_changed_to_a_machine_already_priced_shows_its_form_again(
    app: Flask, world: World
) -> None:
    client = logged_in(app, ADMIN)
    assert post(client, "/tenants/a/prices", price_form()).status_code == 303
    other = tenant_price(app)
    before = table_rows(app)
    response = post(client, f"/tenants/a/prices/{other}", price_form())
    assert response.status_code == 409
    page = html(response)
    assert "this tenant already has a price for that machine" in page
    assert f'action="/tenants/a/prices/{other}"' in page  # the change form, not the add form
    assert 'name="instance_type" value="c7i.large" required aria-invalid="true"' in page
    assert table_rows(app) == before


def test_override_prefills_the_form_with_the_global_row(app: Flask, world: World) -> None:
    client = logged_in(app, ADMIN)
    page = html(client.get("/tenants/a/prices"))
    global_id = re.findall(r"/tenants/a/prices\?override=(\d+)", page)[0]
    form = html(client.get(f"/tenants/a/prices?override={global_id}"))
    assert 'action="/tenants/a/prices"' in form
    assert "Add a tenant price" in form


# ---- refusals: roles, tenancy, CSRF --------------------------------------------------------


def test_viewer_gets_403_on_every_write_and_nothing_changes(
    app: Flask, world: World, runs: list[int]
) -> None:
    price_id = tenant_price(app)
    client = logged_in(app, VIEWER)
    before = table_rows(app)
    for path, data in writes_of_a(world, runs, price_id):
        assert post(client, path, data).status_code == 403, path
    assert table_rows(app) == before


def test_analyst_gets_403_on_price_writes(app: Flask, world: World, runs: list[int]) -> None:
    price_id = tenant_price(app)
    client = logged_in(app, ANALYST)
    before = table_rows(app)
    for path, data in writes_of_a(world, runs, price_id)[4:]:
        assert post(client, path, data).status_code == 403, path
    assert table_rows(app) == before


def test_forms_without_their_csrf_token_are_refused(
    app: Flask, world: World, runs: list[int]
) -> None:
    price_id = tenant_price(app)
    client = logged_in(app, ADMIN)
    before = table_rows(app)
    for path, data in writes_of_a(world, runs, price_id):
        response = post(client, path, data, token=False)
        assert response.status_code == 400, path
        assert "security token (CSRF)" in html(response)
    assert table_rows(app) == before


def test_another_tenants_member_gets_404_everywhere(
    app: Flask, world: World, runs: list[int]
) -> None:
    price_id = tenant_price(app)
    client = logged_in(app, OUTSIDER)
    before = table_rows(app)
    for path in pages_of_a(world, runs):
        assert client.get(path).status_code == 404, path
        through_b = path.replace("/tenants/a/", "/tenants/b/")
        if "ids=" in through_b:  # b's own run with a's
            through_b = re.sub(r"ids=\d+", f"ids={runs[2]}", through_b, count=1)
        if through_b.endswith(("/loadtests", "/prices")):
            continue
        response = client.get(through_b)
        assert response.status_code == 404, through_b
        assert "web.a.test" not in html(response)
    for path, data in writes_of_a(world, runs, price_id):
        assert post(client, path, data).status_code == 404, path
        if path.startswith(("/tenants/a/loadtests/", "/tenants/a/prices/")):
            assert post(client, path.replace("/tenants/a/", "/tenants/b/"), data).status_code == 404
    assert table_rows(app) == before


def test_pages_need_a_login(client: FlaskClient, world: World) -> None:
    response = client.get("/tenants/a/loadtests")
    assert response.status_code == 302
    assert response.location.startswith("/login")


# ---- right-sizing page ---------------------------------------------------------------------


def test_rightsizing_page_says_when_there_is_no_influxdb(app: Flask, world: World) -> None:
    client = logged_in(app, VIEWER)
    page = html(client.get(f"/tenants/a/collectors/{world.collector_a}/rightsizing"))
    assert 'data-status="no_influxdb"' in page
    assert "No InfluxDB is configured" in page
    bad = client.get(f"/tenants/a/collectors/{world.collector_a}/rightsizing?percentile=20")
    assert bad.status_code == 400
    assert "percentile must be a number from 50 to 100" in html(bad)
    assert client.get(f"/tenants/a/collectors/{world.collector_b}/rightsizing").status_code == 404
