"""The load-test pages at fleet scale: right-sizing picks each machine type's latest accepted run
in SQL, exactly as the old walk over every run did, without the runs' documents; the runs list
leaves the document out too; the history page's upload form offers a page of collectors found
by a search, not the whole fleet; and migration 0011's indexes for the keys and runs lists."""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from sqlalchemy import Engine, event, inspect, select
from sqlalchemy.orm import Session, selectinload

from perfanalysis.testing.postgres import throwaway_database
from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.db import make_engine
from tenants.loadtests.advice import machine_options
from tenants.loadtests.models import LoadTestLevel, LoadTestRun, PriceEntry
from tenants.loadtests.prices import burstable_family, effective_catalog
from tenants.loadtests.runs import runs_page
from tenants.models import Collector, Tenant
from tenants.schema import alembic_config
from tests.support.schema_states import sqlite_database
from tests.unit.test_loadtests_pages import html, upload_file
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    ANALYST,
    World,
    build_world,
    cheap_password_hashing,
    document,
    logged_in,
    upload_with_key,
)
from tests.unit.test_migrations_data import insert, upgrade

UNIT, OTHER_UNIT = "pa-mem4m-v1", "pa-other-v1"
START = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
# (provider, instance type as runs name it, vCPUs): case variants of one type, a type at two
# sizes, burstable ones (by family and by the catalog's flag), one never accepted, one missing
# from the catalog, and runs that name no machine
MACHINES = [
    ("aws", "c5.large", 2), ("aws", "C5.Large", 2), ("aws", "c5.large", 4),
    ("aws", "t3.medium", 2), ("gcp", "e2-small", 2), ("gcp", "n2-standard-2", 2),
    ("azure", "Standard_D2s_v5", 2), ("oci", "VM.Standard.E5.Flex", 2),
    ("aws", "m5.large", 2), ("aws", "r5.large", 2), ("aws", "c6i.large", 2),
    (None, None, 2), ("aws", None, 2), ("aws", "", 2), ("", "c5.large", 2),
]  # fmt: skip
NEVER_ACCEPTED = ("aws", "m5.large", 2)
# (provider, instance type as the catalog names it, vCPUs, burstable flag)
CATALOG = [
    ("aws", "c5.large", 2, False), ("aws", "c5.large", 4, False), ("aws", "t3.medium", 2, False),
    ("gcp", "e2-small", 2, True), ("gcp", "n2-standard-2", 2, False),
    ("azure", "standard_d2s_v5", 2, False), ("oci", "VM.Standard.E5.Flex", 2, False),
    ("aws", "m5.large", 2, False), ("aws", "c6i.large", 2, False), ("aws", "c7i.large", 2, False),
]  # fmt: skip


def old_machine_options(
    db: Session, tenant: Tenant, own: LoadTestRun
) -> tuple[list[tuple[PriceEntry, LoadTestRun]], list[str]]:
    """The oracle: machine_options as it was, walking every run of the tenant with its levels."""
    latest: dict[tuple[str, str, int], LoadTestRun] = {}
    runs = db.scalars(
        select(LoadTestRun).where(LoadTestRun.tenant_id == tenant.id)
        .options(selectinload(LoadTestRun.levels))
        .order_by(LoadTestRun.started_at.desc(), LoadTestRun.id.desc())
    )  # fmt: skip
    tested_machines = set()
    for tested in runs:
        if tested.cloud_provider and tested.instance_type:
            tested_machines.add(_machine(tested))
            if tested.full_load_accepted:
                latest.setdefault(_machine(tested), tested)
    options, excluded = [], []
    for entry in effective_catalog(db, tenant):
        machine = (entry.provider, entry.instance_type.lower(), entry.vcpus)
        run = latest.get(machine)
        name = (f"{entry.instance_type} ({entry.region}, {entry.vcpus} vCPUs, "
                f"{entry.memory_gib.normalize():f} GiB)")  # fmt: skip
        if run is None:
            if machine in tested_machines:
                excluded.append(f"{name}: no load test of it had its 100% level accepted")
            continue
        if entry.burstable or burstable_family(entry.provider, entry.instance_type):
            excluded.append(f"{name}: a burstable machine type, measured at burst speed, which it "
                            "sustains only on CPU credits or at an extra charge")  # fmt: skip
            continue
        if run.unit_name != own.unit_name:
            excluded.append(f"{name}: its load test counts {run.unit_name}, not {own.unit_name}")
            continue
        options.append((entry, run))
    return options, excluded


def _machine(run: LoadTestRun) -> tuple[str, str, int]:
    return (run.cloud_provider or "", (run.instance_type or "").lower(), run.vcpus)


def a_run(tenant_id: int, machine: tuple[str | None, str | None, int], started_at: datetime,
          levels: dict[int, bool], unit: str = UNIT) -> LoadTestRun:  # fmt: skip
    """A stored run of ``machine`` with ``levels`` (target busy% -> accepted)."""
    provider, instance_type, vcpus = machine
    run = LoadTestRun(
        tenant_id=tenant_id, uploaded_by="test", uploaded_via="user",
        document_sha256=f"{random.getrandbits(256):064x}", document={"big": "x" * 1000},
        schema="perfanalysis.loadtest/1", started_at=started_at,
        finished_at=started_at + timedelta(minutes=5), hostname="h.test", cpu_model="cpu",
        vcpus=vcpus, memory_bytes=2**32, kernel="6.1", cloud_provider=provider,
        instance_type=instance_type, unit_name=unit, unit_buffer_bytes=4194304,
        window_seconds=1.0, repeats=3, tolerance_points=3.0, max_units_per_second=100.0,
        all_levels_accepted=all(levels.values()),
    )  # fmt: skip
    run.levels = [
        LoadTestLevel(target_busy_percent=target, measured_busy_percent=target - 0.5,
                      units_per_second=float(target), repeats=[1.0], cv_percent=None,
                      attempts=1, accepted=accepted)
        for target, accepted in levels.items()
    ]  # fmt: skip
    return run


def random_levels(
    rng: random.Random, machine: tuple[str | None, str | None, int]
) -> dict[int, bool]:
    """Levels whose highest (most often 100%, sometimes lower) is accepted or not, the others at
    random; now and then none at all."""
    if rng.random() < 0.05:
        return {}
    targets = sorted(rng.sample(range(10, 100, 10), rng.randint(1, 4)))
    targets.append(rng.choice([100, 100, 100, targets[-1] + 5]))
    top_accepted = machine != NEVER_ACCEPTED and rng.random() < 0.6
    return {target: (top_accepted if target == targets[-1] else rng.random() < 0.5)
            for target in targets}  # fmt: skip


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


@pytest.fixture
def tenants(app: Flask, make_tenant: Any) -> tuple[int, int]:
    make_tenant("a")
    make_tenant("b")
    with app.app_context():
        db = database.session()
        ids = tuple(tenant_for(db, system_actor(), slug).id for slug in ("a", "b"))
        for number, (provider, instance_type, vcpus, burstable) in enumerate(CATALOG):
            db.add(PriceEntry(
                tenant_id=ids[0], provider=provider, region=f"region-{number}",
                instance_type=instance_type, vcpus=vcpus, memory_gib=Decimal(4),
                usd_per_hour=Decimal("0.1") + number, source="test", as_of=START.date(),
                burstable=burstable,
            ))  # fmt: skip
        db.commit()
    return ids[0], ids[1]


def outcome(
    found: tuple[list[tuple[PriceEntry, LoadTestRun]], list[str]],
) -> tuple[list[tuple[int, int, list[tuple[int, float, float, bool]]]], list[str]]:
    """Options as (catalog row, run, the run's levels), and the reasons for those left out."""
    options, excluded = found
    return [
        (entry.id, run.id, [(level.target_busy_percent, level.measured_busy_percent,
                             level.units_per_second, level.accepted) for level in run.levels])
        for entry, run in options
    ], excluded  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_rightsizing_picks_the_same_runs_as_the_walk_over_every_run(
    app: Flask, tenants: tuple[int, int], seed: int
) -> None:
    rng = random.Random(seed)
    a, b = tenants
    with app.app_context():
        db = database.session()
        for _ in range(160):
            machine = rng.choice(MACHINES)
            started_at = START + timedelta(hours=rng.randint(0, 12))  # many ties on the start
            unit = OTHER_UNIT if machine[1] == "c6i.large" or rng.random() < 0.05 else UNIT
            db.add(a_run(a, machine, started_at, random_levels(rng, machine), unit))
        for machine in MACHINES:  # another tenant's newer, accepted runs count for nothing
            db.add(a_run(b, machine, START + timedelta(days=1), {50: True, 100: True}))
        own = a_run(a, ("oci", "VM.Standard.E5.Flex", 2), START, {50: True, 100: False})
        db.add(own)
        db.commit()
        own_id = own.id

    with app.app_context():
        db = database.session()
        tenant, own = db.get(Tenant, a), db.get(LoadTestRun, own_id)
        assert tenant is not None
        assert own is not None
        new = machine_options(db, tenant, own)
        got = outcome(new)
        assert all("document" in inspect(run).unloaded for _, run in new[0] if run is not own)
    with app.app_context():
        db = database.session()
        tenant, own = db.get(Tenant, a), db.get(LoadTestRun, own_id)
        assert tenant is not None
        assert own is not None
        expected = outcome(old_machine_options(db, tenant, own))
    assert got == expected
    assert expected[0], "the data set gives some options"
    assert any("100% level accepted" in reason for reason in expected[1])
    assert any("burstable" in reason for reason in expected[1])
    assert any(reason.startswith("c6i.large") for reason in expected[1])


def test_rightsizing_loads_only_the_chosen_runs_and_their_levels(
    app: Flask, tenants: tuple[int, int]
) -> None:
    a, _ = tenants
    c5, n2 = ("aws", "c5.large", 2), ("gcp", "n2-standard-2", 2)
    with app.app_context():
        db = database.session()
        for hour in range(30):  # older accepted runs of c5.large, and later ones not accepted
            db.add(a_run(a, c5, START + timedelta(hours=hour), {50: True, 100: hour < 20}))
        db.add(a_run(a, n2, START, {50: True, 100: True}))
        db.commit()
        latest_accepted = db.scalar(select(LoadTestRun.id).where(
            LoadTestRun.instance_type == "c5.large",
            LoadTestRun.started_at == START + timedelta(hours=19)))  # fmt: skip
    with app.app_context(), _statements(app.extensions["pa_engine"]) as statements:
        db = database.session()
        tenant = db.get(Tenant, a)
        own = db.scalar(select(LoadTestRun).where(LoadTestRun.instance_type == "n2-standard-2"))
        assert tenant is not None
        assert own is not None
        statements.clear()
        options, _ = machine_options(db, tenant, own)
        loaded_levels = [o for o in db.identity_map.values() if isinstance(o, LoadTestLevel)]
    assert sorted((entry.instance_type, run.id) for entry, run in options) == [
        ("c5.large", latest_accepted), ("n2-standard-2", own.id)]  # fmt: skip
    assert sorted(level.run_id for level in loaded_levels) == sorted(
        [latest_accepted] * 2 + [own.id] * 2)  # fmt: skip
    assert not [s for s in statements if re.search(r"\bloadtest_runs\.document\b", s)]


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement run on ``engine`` meanwhile."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# ---- the runs list leaves the documents out --------------------------------------------------


def test_the_runs_list_and_the_history_page_read_no_document(app: Flask, world: World) -> None:
    client = logged_in(app, ANALYST)
    ids = [upload_with_key(client, world.key_a, document(hostname=f"h{n}.a.test")).get_json()["id"]
           for n in range(3)]  # fmt: skip
    with _statements(app.extensions["pa_engine"]) as statements:
        page = client.get(f"/tenants/a/loadtests?ids={ids[0]}&ids={ids[1]}")
        listed = client.get("/api/v1/tenants/a/loadtests?limit=2")
    assert page.status_code == 200
    assert listed.status_code == 200
    assert [run["id"] for run in listed.get_json()["loadtests"]] == [ids[2], ids[1]]
    assert any("FROM loadtest_runs" in statement for statement in statements)
    assert not [s for s in statements if re.search(r"\bloadtest_runs\.document\b", s)]
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "a")
        runs = runs_page(db, system_actor(), tenant, 10).items
        assert [run.id for run in runs] == ids[::-1]
        assert all("document" in inspect(run).unloaded for run in runs)
        assert runs[0].document["host"]["hostname"] == "h2.a.test"  # read when asked for


# ---- the upload form's collectors ------------------------------------------------------------

FLEET = 60  # collectors node-000 to node-059, besides web-a: more than a page (PAGE_ROWS, 50)


@pytest.fixture
def fleet(app: Flask, world: World) -> World:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "a")
        db.add_all(Collector(tenant_id=tenant.id, name=f"node-{n:03d}", hostname=f"n{n}.a.test")
                   for n in range(FLEET))  # fmt: skip
        db.commit()
    return world


def collector_choices(page: str) -> tuple[list[str], str | None]:
    """The upload form's collector options (their names) and the one selected (None: "none")."""
    select_element = re.search(r'<select name="collector_id".*?</select>', page, re.DOTALL)
    assert select_element is not None
    options = re.findall(r'<option value="(\d*)"( selected)?>([^<]*)</option>',
                         select_element.group(0))  # fmt: skip
    assert options[0][::2] == ("", "none")
    names = [name for _, _, name in options[1:]]
    selected = [name for _, chosen, name in options[1:] if chosen]
    assert len(selected) <= 1
    return names, selected[0] if selected else None


def test_the_upload_form_offers_a_page_of_collectors_and_a_search_for_the_others(
    app: Flask, fleet: World
) -> None:
    client = logged_in(app, ANALYST)
    page = html(client.get("/tenants/a/loadtests"))
    names, selected = collector_choices(page)
    assert names == [f"node-{n:03d}" for n in range(50)]
    assert selected is None
    assert 'id="collector-search"' in page
    assert ('aria-describedby="field-upload-collector_id-hint" id="field-upload-collector_id"'
            in page)  # fmt: skip
    assert "The first 50 collectors, by name: find others with the search above." in page

    page = html(client.get("/tenants/a/loadtests?q=node-05"))
    assert collector_choices(page) == ([f"node-{n:03d}" for n in range(50, 60)], None)
    assert "field-upload-collector_id-hint" not in page
    assert '<input type="hidden" name="q" value="node-05">' in page  # the upload keeps the search

    page = html(client.get("/tenants/a/loadtests?q=WEB.A.TEST"))  # a hostname, in any case
    assert collector_choices(page) == (["web-a"], "web-a")  # the one found is chosen

    page = html(client.get("/tenants/a/loadtests?q=50%25"))
    assert collector_choices(page) == ([], None)
    assert "No collector's name or hostname contains “50%”." in page


def test_a_search_keeps_the_runs_page_and_the_runs_chosen(app: Flask, fleet: World) -> None:
    client = logged_in(app, ANALYST)
    run_id = upload_with_key(client, fleet.key_a, document()).get_json()["id"]
    page = html(client.get(f"/tenants/a/loadtests?ids={run_id}&q=node"))
    search_form = re.search(r'<form [^>]*id="collector-search">.*?</form>', page, re.DOTALL)
    assert search_form is not None
    assert f'<input type="hidden" name="ids" value="{run_id}">' in search_form.group(0)
    assert f'name="ids" value="{run_id}" aria-label="Compare' in page
    assert f'href="/tenants/a/loadtests?ids={run_id}#upload">Show all</a>' in page
    compare_form = re.search(r'<form [^>]*id="compare-form">.*?</form>', page, re.DOTALL)
    assert compare_form is not None
    assert '<input type="hidden" name="q" value="node">' in compare_form.group(0)


def test_an_upload_stores_the_collector_found_by_the_search(app: Flask, fleet: World) -> None:
    client = logged_in(app, ANALYST)
    response = upload_file(client, json.dumps(document()).encode(),
                           collector_id=str(fleet.collector_a), q="web-a")  # fmt: skip
    assert response.status_code == 303, html(response)
    with app.app_context():
        stored = database.session().scalars(select(LoadTestRun.collector_id)).all()
    assert stored == [fleet.collector_a]


def test_a_refused_upload_offers_its_collector_again_with_its_search(
    app: Flask, fleet: World
) -> None:
    client = logged_in(app, ANALYST)
    response = upload_file(client, b"{not json", collector_id=str(fleet.collector_a))
    assert response.status_code == 400
    names, selected = collector_choices(html(response))
    assert names == ["web-a", *[f"node-{n:03d}" for n in range(50)]]  # beyond the first page
    assert selected == "web-a"
    response = upload_file(client, b"{not json", collector_id="", q="node-05")
    assert response.status_code == 400
    assert collector_choices(html(response)) == ([f"node-{n:03d}" for n in range(50, 60)], None)
    with app.app_context():
        other = tenant_for(database.session(), system_actor(), "b")
        foreign = database.session().scalar(
            select(Collector.id).where(Collector.tenant_id == other.id))  # fmt: skip
    response = upload_file(client, json.dumps(document()).encode(), collector_id=str(foreign))
    assert response.status_code == 404
    names, selected = collector_choices(html(response))
    assert "web-b" not in names  # another tenant's is never offered
    assert selected is None


# ---- migration 0011 ------------------------------------------------------------------------

NEWEST_FIRST_INDEXES = {
    "ix_api_keys_tenant_id_created_at_id": ("api_keys", ["tenant_id", "created_at", "id"]),
    "ix_api_keys_collector_id_created_at_id": ("api_keys", ["collector_id", "created_at", "id"]),
    "ix_loadtest_runs_tenant_id_started_at_id": ("loadtest_runs",
                                                 ["tenant_id", "started_at", "id"]),
}  # fmt: skip
# every index column after the first descends, as the lists' ORDER BY ... DESC, id DESC
DESCENDING = [False, True, True]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at_0010(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database migrated to 0010: a SQLite file, and a PostgreSQL one when DATABASE_URL
    names a server."""
    if request.param == "sqlite":
        yield sqlite_database(tmp_path / "admin.db", "0010")
        return
    server = os.environ.get("DATABASE_URL")
    if not server:
        pytest.skip("set DATABASE_URL to a PostgreSQL server to migrate one")
    with throwaway_database(server, "pa_migration") as url:
        upgrade(url, "0010")
        yield url


def downgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        config = alembic_config(url)
        with engine.begin() as migrating:
            config.attributes["connection"] = migrating
            command.downgrade(config, revision)
    finally:
        engine.dispose()


def newest_first_indexes(url: str) -> dict[str, tuple[str, list[str], list[bool]]]:
    """The 0011 indexes found: table, columns, and which columns descend."""
    engine = make_engine(url)
    try:
        found = {}
        with engine.connect() as connection:
            inspector = inspect(connection)
            for table in ("api_keys", "loadtest_runs"):
                for index in inspector.get_indexes(table):
                    if index["name"] in NEWEST_FIRST_INDEXES:
                        found[index["name"]] = (table, list(index["column_names"]),
                                                _descending(connection, index))  # fmt: skip
        return found
    finally:
        engine.dispose()


def _descending(connection: Any, index: Any) -> list[bool]:
    if connection.dialect.name == "sqlite":  # SQLAlchemy does not reflect SQLite's sort order
        rows = connection.exec_driver_sql(f"PRAGMA index_xinfo({index['name']})").all()
        return [bool(row[3]) for row in rows if row[5]]  # desc, of the key columns
    sorting = index.get("column_sorting", {})
    return ["desc" in sorting.get(column, ()) for column in index["column_names"]]


def test_0011_adds_the_newest_first_indexes_and_its_downgrade_removes_them(
    database_at_0010: str,
) -> None:
    url = database_at_0010
    assert newest_first_indexes(url) == {}
    upgrade(url, "0011")
    assert newest_first_indexes(url) == {
        name: (table, columns, DESCENDING)
        for name, (table, columns) in NEWEST_FIRST_INDEXES.items()
    }
    downgrade(url, "0010")
    assert newest_first_indexes(url) == {}


def test_0011_keeps_every_row(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path / "admin.db", "0010")
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        insert(connection, "tenants", id=1, slug="acme")
        insert(connection, "collectors", id=1, tenant_id=1, name="web1", hostname="web1.x")
        insert(connection, "api_keys", id=1, key_id="k1", tenant_id=1, collector_id=1)
        insert(connection, "loadtest_runs", id=1, tenant_id=1, collector_id=1,
               document_sha256="0" * 64)  # fmt: skip
    upgrade(url, "0011")  # with foreign keys enforced, as the app's engine has them
    downgrade(url, "0010")
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        keys = connection.execute("SELECT id, collector_id FROM api_keys").fetchall()
        runs = connection.execute("SELECT id, collector_id FROM loadtest_runs").fetchall()
    assert (keys, runs) == ([(1, 1)], [(1, 1)])
