"""Wrong-tenant tests for the fleet-scale paths: the load-tests page's collector search (and an
upload naming another tenant's collector), right-sizing's choice of runs in SQL, and
``admin export-targets --tenant``; and export-targets' lines on a terminal, which escape what a
terminal would act on as the listings' tables do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from flask import Flask
from sqlalchemy import func, select

from perfanalysis.alerting.targets import read_target_file
from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.accounts import set_membership
from tenants.keys import issue_key
from tenants.loadtests.models import LoadTestRun
from tenants.models import Collector
from tests.unit.test_admin_fleet_cli import (  # noqa: F401 (a fixture)
    acme,
    add_collector,
    stored_as_is,
)
from tests.unit.test_loadtests_api import FakeHistory, bearer, call, steady_busy
from tests.unit.test_loadtests_fleet_scale import collector_choices
from tests.unit.test_loadtests_pages import html, upload_file
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    ANALYST,
    PLATFORM,
    UNITS,
    World,
    build_world,
    cheap_password_hashing,
    document,
    logged_in,
    run_ids,
    upload_with_key,
)

AdminRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


def stored_runs(app: Flask) -> int:
    with app.app_context():
        return database.session().scalar(select(func.count()).select_from(LoadTestRun)) or 0


# ---- the load-tests page's collector search ------------------------------------------------


@pytest.mark.parametrize("email", [ANALYST, PLATFORM])  # a platform admin reads every tenant
def test_the_collector_search_finds_none_of_another_tenants_collectors(
    app: Flask, world: World, email: str
) -> None:
    client = logged_in(app, email)
    for search in ("web-b", "WEB.B.TEST", "b.test", f"{world.collector_b}"):
        page = html(client.get(f"/tenants/a/loadtests?q={search}"))
        assert collector_choices(page) == ([], None), search
        assert "web.b.test" not in page
    assert collector_choices(html(client.get("/tenants/a/loadtests?q=web"))) == (["web-a"],
                                                                                 "web-a")  # fmt: skip


def test_an_upload_naming_another_tenants_collector_stores_nothing_and_offers_none(
    app: Flask, world: World
) -> None:
    client = logged_in(app, ANALYST)
    valid = json.dumps(document()).encode()
    response = upload_file(client, valid, collector_id=str(world.collector_b), q="web-b")
    assert response.status_code == 404
    page = html(response)
    assert "no such collector in this tenant" in page
    assert collector_choices(page) == ([], None)  # neither the one named nor one its search found
    assert stored_runs(app) == 0


# ---- right-sizing --------------------------------------------------------------------------


def machine(units: list[float], instance_type: str, started: str, accepted: bool) -> dict[str, Any]:
    """A result of an AWS machine type in us-east-1, the seed catalog's region for it."""
    doc = document(units, cloud_provider="aws", region="us-east-1", instance_type=instance_type,
                   hostname=instance_type)  # fmt: skip
    doc["started_at"], doc["finished_at"] = started, started.replace("10:00", "10:05")
    doc["levels"][-1]["accepted"] = accepted
    return doc


def test_rightsizing_never_picks_another_tenants_runs(
    app: Flask, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tenant b's runs are newer, accepted where a's are not, and of types a never tested: a's
    advice takes its own runs only, and leaves out no type for b's sake."""
    monkeypatch.setitem(app.extensions, "pa_cpu_history", FakeHistory(steady_busy(45.0)))
    client = app.test_client()
    upload_with_key(client, world.key_a, document())  # a's own collector: E5.Flex
    headers = bearer(app, ANALYST)
    own_c5 = call(client, "POST", "/api/v1/tenants/a/loadtests", headers,
                  machine([u * 2 for u in UNITS], "c5.large", "2026-11-01T10:00:00Z", True))  # fmt: skip
    for doc in (
        machine([u * 20 for u in UNITS], "c5.large", "2026-11-03T10:00:00Z", True),
        machine([u * 20 for u in UNITS], "c6i.large", "2026-11-03T10:00:00Z", True),
        machine([u * 3 for u in UNITS], "m5.large", "2026-11-03T10:00:00Z", False),
    ):
        assert upload_with_key(client, world.key_b, doc).status_code == 201
    foreign = set(run_ids(app, "b"))
    assert len(foreign) == 3

    path = f"/api/v1/tenants/a/collectors/{world.collector_a}/rightsizing?percentile=95&headroom=50"
    body = call(client, "GET", path, headers).get_json()
    assert body["status"] == "ok"
    chosen = {candidate["loadtest_id"] for candidate in body["candidates"]}
    assert chosen
    assert not chosen & foreign
    assert chosen <= set(run_ids(app, "a"))
    c5 = [c for c in body["candidates"] if c["price"]["instance_type"] == "c5.large"]
    assert {c["loadtest_id"] for c in c5} == {own_c5.get_json()["id"]}
    assert c5[0]["units_at_headroom"] == pytest.approx(181.6, abs=0.5)  # a's, not b's 20x
    types = {c["price"]["instance_type"] for c in body["candidates"]}
    assert types == {"VM.Standard.E5.Flex", "c5.large"}  # b's c6i.large is not a's
    assert not [line for line in body["excluded"] if line.startswith(("m5.large", "c6i.large"))]

    outsider_path = f"/api/v1/tenants/a/collectors/{world.collector_b}/rightsizing"
    assert call(client, "GET", outsider_path, headers).status_code == 404


# ---- the listings -------------------------------------------------------------------------


@pytest.mark.usefixtures("acme", "fast_password_hashing")
def test_a_tenants_listings_hold_nothing_of_another_tenant(
    app: Flask, runner: Callable[..., Result], make_user: Any
) -> None:
    make_user("only@globex.test")
    with app.app_context():
        db = database.session()
        globex = tenant_for(db, system_actor(), "globex")
        set_membership(db, system_actor(), globex, "only@globex.test", "admin")
        for slug, name in (("acme", "web-1"), ("globex", "db-1")):
            tenant = tenant_for(db, system_actor(), slug)
            collector = db.scalar(select(Collector).where(Collector.tenant_id == tenant.id,
                                                          Collector.name == name))  # fmt: skip
            assert collector is not None
            issue_key(db, system_actor(), tenant, collector, app.extensions["pa_hasher"],
                      f"{slug}-key")  # fmt: skip

    def listed(command: str) -> list[dict[str, Any]]:
        result = runner(command, "acme", "--format", "json")
        assert result.exit_code == 0, result.output
        assert "globex" not in result.output
        return list(json.loads(result.output))

    assert "db-1" not in {row["name"] for row in listed("list-collectors")}
    assert [(row["name"], row["collector"]) for row in listed("list-keys")] == [
        ("acme-key", "web-1")]  # fmt: skip
    assert [(row["email"], row["role"]) for row in listed("list-users")] == [
        ("boss@acme.test", "admin"), ("vic@acme.test", "viewer")]  # fmt: skip


# ---- export-targets ------------------------------------------------------------------------


def targets_of(path: Path) -> list[tuple[str, dict[str, str]]]:
    return [(target, group["labels"]) for group in yaml.safe_load(path.read_text())
            for target in group["targets"]]  # fmt: skip


@pytest.mark.usefixtures("acme")
def test_export_targets_for_one_tenant_writes_only_its_collectors(
    app: Flask, runner: Callable[..., Result], tmp_path: Path
) -> None:
    add_collector(app, "globex", "web-1", "web-1.globex.test")  # the same name as acme's web-1
    result = runner("export-targets", str(tmp_path), "--tenant", "acme")
    assert result.exit_code == 0, result.output
    assert "globex" not in result.output
    assert [path.name for path in tmp_path.iterdir()] == ["acme.yml"]
    assert targets_of(tmp_path / "acme.yml") == [
        (f"web-{n}.acme.test:9100", {"tenant": "acme", "collector": f"web-{n}"})
        for n in range(1, 6)
    ]
    assert read_target_file(tmp_path / "acme.yml").tenants == {"acme": 5}

    assert runner("export-targets", str(tmp_path)).exit_code == 0
    assert sorted(targets_of(tmp_path / "globex.yml")) == [
        ("db-1.globex.test:9100", {"tenant": "globex", "collector": "db-1"}),
        ("web-1.globex.test:9100", {"tenant": "globex", "collector": "web-1"}),
    ]
    assert read_target_file(tmp_path / "acme.yml").tenants == {"acme": 5}


# ---- export-targets on a terminal ----------------------------------------------------------


@pytest.mark.usefixtures("acme")
def test_export_targets_escapes_control_characters_in_what_it_prints(
    app: Flask, admin_run: AdminRun, tmp_path: Path
) -> None:
    directory = tmp_path / "targets\x1b[2J"
    directory.mkdir()
    (directory / "stale\x1b]0;owned\x07\u202e.yml").write_text("[]\n")
    stored_as_is(app, "acme", "evil\x1b[31m", "bad host\x9b1m")
    status, out, err = admin_run("export-targets", str(directory))
    assert status == 0, err
    for text in (out, err):
        assert not any(char in text for char in "\x1b\x07\x9b\u202e"), text
    shown_directory = str(tmp_path / "targets\\x1b[2J")
    assert f"{shown_directory}/stale\\x1b]0;owned\\x07\\u202e.yml: no tenant " in out
    assert out.splitlines()[-1].startswith(f"{shown_directory}: 2 tenants, 6 targets")
    assert err == (f"warning: acme: collector 'evil\\x1b[31m': hostname 'bad host\\x9b1m' is not a "
                   f"DNS name: left out of {shown_directory}/acme.yml\n")  # fmt: skip

    (directory / "acme.yml").unlink()
    (directory / "acme.yml").mkdir()
    status, out, err = admin_run("export-targets", str(directory), "--tenant", "acme")
    assert status == 1
    assert err.splitlines()[-1].startswith(
        f"Error: cannot update {shown_directory}/acme.yml: it is a directory"
    )
    assert "\x1b" not in out + err
