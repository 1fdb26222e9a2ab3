"""A collector's host tag in the admin app: registered pinned unless said free (service, JSON
API, pages, CLI, the make-up demo), changed by tenant admins only and audited, learnt by ingest's
key lookup as a disabled collector is; existing collectors made free by migration 0010; and
every hostname the registration takes is a valid tag value.

Role and tenancy refusals of the change are in the route lists of test_admin_api.py and
test_admin_pages.py ("free host tag").
"""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from ingest.lineprotocol import tag_value_problem
from perfanalysis import devstack
from tenants import db as database
from tenants import validation
from tenants.access import system_actor, tenant_for
from tenants.collectors import register_collector, set_collector_host_tag
from tenants.db import make_engine
from tenants.errors import Invalid, NotFound
from tenants.keys import KeyVerifier, issue_key
from tenants.models import AuditEvent, Collector
from tenants.schema import alembic_config
from tests.conftest import Caller, csrf, issue_test_token, login
from tests.support.schema_states import sqlite_database
from tests.unit.test_migrations_data import insert, upgrade

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ADMIN, VIEWER = "boss@acme.test", "vic@acme.test"


@pytest.fixture
def acme(make_tenant: Any) -> None:
    make_tenant("acme", {ADMIN: "admin", VIEWER: "viewer"})
    make_tenant("other")


def stored(app: Flask, name: str) -> Collector:
    with app.app_context():
        found = database.session().scalar(select(Collector).where(Collector.name == name))
        assert found is not None
        return found


def audited(app: Flask, action: str) -> list[dict[str, Any]]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return [event.details for event in database.session().scalars(query)]


# ---- registration: pinned unless free ----------------------------------------------------------


def test_the_service_registers_pinned_unless_told_free(app: Flask, acme: None) -> None:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "acme")
        pinned = register_collector(db, system_actor(), tenant, {"name": "a", "hostname": "a.x"})
        free = register_collector(
            db, system_actor(), tenant, {"name": "b", "hostname": "b.x", "host_tag": "free"}
        )
        assert (pinned.host_tag, pinned.pinned_host) == ("pinned", "a.x")
        assert (free.host_tag, free.pinned_host) == ("free", None)
        for wrong in ("Pinned", "none", 1, ["free"]):
            with pytest.raises(Invalid, match="host_tag must be 'pinned' or 'free'") as refused:
                register_collector(db, system_actor(), tenant,
                                   {"name": "c", "hostname": "c.x", "host_tag": wrong})  # fmt: skip
            assert refused.value.field == "host_tag"
    assert [e["host_tag"] for e in audited(app, "collector.register")] == ["pinned", "free"]


def test_the_api_registers_pinned_by_default_and_refuses_another_value(
    app: Flask, client: FlaskClient, acme: None
) -> None:
    boss = Caller(client, issue_test_token(app, ADMIN))
    made = boss("POST", "/tenants/acme/collectors",
                {"name": "web1", "hostname": "web1.acme.test"})  # fmt: skip
    assert made.status_code == 201
    assert made.get_json()["host_tag"] == "pinned"
    free = boss("POST", "/tenants/acme/collectors",
                {"name": "snmp", "hostname": "poller.acme.test", "host_tag": "free"})  # fmt: skip
    assert free.get_json()["host_tag"] == "free"
    refused = boss("POST", "/tenants/acme/collectors",
                   {"name": "x", "hostname": "x", "host_tag": "loose"})  # fmt: skip
    assert refused.status_code == 400
    assert refused.get_json()["error"]["field"] == "host_tag"
    document = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert document["Collector"]["properties"]["host_tag"]["enum"] == ["pinned", "free"]
    assert document["CollectorCreate"]["properties"]["host_tag"]["default"] == "pinned"
    assert document["CollectorUpdate"]["minProperties"] == 1


def test_the_registration_form_registers_pinned_by_default_and_offers_free(
    app: Flask, acme: None
) -> None:
    browser = app.test_client()
    login(browser, ADMIN)
    page = browser.get("/tenants/acme").get_data(as_text=True)
    assert '<option value="pinned" selected>' in page
    for name, chosen in (("web1", None), ("snmp", "free")):
        fields = {"name": name, "hostname": f"{name}.acme.test", "csrf_token": csrf(browser)}
        if chosen:
            fields["host_tag"] = chosen
        assert browser.post("/tenants/acme/collectors", data=fields).status_code == 303
    assert stored(app, "web1").host_tag == "pinned"
    assert stored(app, "snmp").host_tag == "free"
    refused = browser.post("/tenants/acme/collectors", data={
        "name": "x", "hostname": "x.acme.test", "host_tag": "loose", "csrf_token": csrf(browser)})  # fmt: skip
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "host_tag must be &#39;pinned&#39; or &#39;free&#39;" in page
    assert '<option value="free">' in page
    assert '<option value="pinned" selected>' in page


def test_the_cli_registers_pinned_by_default_and_sets_the_host_tag(
    app: Flask, runner: Any, acme: None
) -> None:
    made = runner("create-collector", "acme", "web1", "--hostname", "web1.acme.test")
    assert made.exit_code == 0, made.output
    assert "host tag pinned" in made.output
    free = runner("create-collector", "acme", "snmp", "--hostname", "p.acme.test",
                  "--host-tag", "free")  # fmt: skip
    assert free.exit_code == 0, free.output
    assert (stored(app, "web1").host_tag, stored(app, "snmp").host_tag) == ("pinned", "free")
    wrong = runner("create-collector", "acme", "x", "--hostname", "x", "--host-tag", "loose")
    assert wrong.exit_code == 2
    assert "'loose' is not one of 'pinned', 'free'" in wrong.output
    changed = runner("set-host-tag", "acme", "snmp", "pinned")
    assert changed.exit_code == 0, changed.output
    assert "collector snmp in acme: host tag pinned (host=p.acme.test)" in changed.output
    assert stored(app, "snmp").host_tag == "pinned"
    assert runner("set-host-tag", "acme", "nope", "free").exit_code != 0
    assert runner("set-host-tag", "acme", "snmp", "loose").exit_code == 2
    assert audited(app, "collector.host_tag")[-1]["previous"] == "free"


def test_the_demo_collector_is_pinned_to_the_host_name_the_demo_exporter_sends(
    app: Flask, runner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ensure-demo registers socket.gethostname(); make up's exporter gives no --push.host, so
    it sends the same name (its default): pinned, the demo's points keep their host."""
    monkeypatch.setattr("tenants.demo._load_test_examples", lambda *args: None)  # not the subject
    made = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert made.exit_code == 0, made.output
    with app.app_context():
        demo = database.session().scalar(select(Collector))
        assert demo is not None
        assert (demo.hostname, demo.host_tag) == (socket.gethostname(), "pinned")
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path))
    [exporter] = [service for service in devstack.services() if service.name == "exporter"]
    assert not [arg for arg in exporter.argv if arg.startswith("--push.host")]


# ---- changing it ------------------------------------------------------------------------------


def test_a_change_is_audited_once_and_shown_on_the_collector_page(
    app: Flask, client: FlaskClient, acme: None
) -> None:
    boss = Caller(client, issue_test_token(app, ADMIN))
    made = boss("POST", "/tenants/acme/collectors", {"name": "web1", "hostname": "web1.acme.test"})
    path = f"/tenants/acme/collectors/{made.get_json()['id']}"
    freed = boss("PATCH", path, {"host_tag": "free"})
    assert freed.status_code == 200
    assert freed.get_json()["host_tag"] == "free"
    assert boss("PATCH", path, {"host_tag": "free"}).status_code == 200  # no change: no event
    both = boss("PATCH", path, {"host_tag": "pinned", "status": "disabled"})
    assert (both.get_json()["host_tag"], both.get_json()["status"]) == ("pinned", "disabled")
    refused = boss("PATCH", path, {})
    assert refused.status_code == 400
    assert boss("PATCH", path, {"host_tag": None}).status_code == 400
    token = boss.token_id
    assert audited(app, "collector.host_tag") == [
        {"name": "web1", "host_tag": "free", "previous": "pinned", "hostname": "web1.acme.test",
         "api_token": token},
        {"name": "web1", "host_tag": "pinned", "previous": "free", "hostname": "web1.acme.test",
         "api_token": token},
    ]  # fmt: skip

    browser = app.test_client()
    login(browser, ADMIN)
    page = browser.get(path).get_data(as_text=True)
    assert "pinned: its points are written with <code>host=web1.acme.test</code>" in page
    assert f'action="{path}/host-tag"' in page
    answer = browser.post(
        f"{path}/host-tag", data={"host_tag": "free", "csrf_token": csrf(browser)}
    )
    assert answer.status_code == 303
    page = browser.get(answer.location).get_data(as_text=True)
    assert "Collector web1 free: ingest keeps the host tag its points are sent with" in page
    assert "free: its points keep the host tag they are sent with" in page
    assert "Pin to web1.acme.test" in page
    refused = browser.post(
        f"{path}/host-tag", data={"host_tag": "loose", "csrf_token": csrf(browser)}
    )
    assert refused.status_code == 400
    assert 'id="field-host_tag-host_tag-error">host_tag must be' in refused.get_data(as_text=True)
    absent = browser.post(f"{path}/host-tag", data={"csrf_token": csrf(browser)})
    assert absent.status_code == 400
    assert "host_tag is required: &#39;pinned&#39; or &#39;free&#39;" in absent.get_data(
        as_text=True
    )
    assert stored(app, "web1").host_tag == "free"
    viewer = app.test_client()
    login(viewer, VIEWER)
    assert f'action="{path}/host-tag"' not in viewer.get(path).get_data(as_text=True)


def test_the_service_refuses_another_tenants_collector_and_a_hostname_no_tag_can_hold(
    app: Flask, acme: None
) -> None:
    with app.app_context():
        db = database.session()
        acme_tenant = tenant_for(db, system_actor(), "acme")
        other = tenant_for(db, system_actor(), "other")
        theirs = register_collector(db, system_actor(), other, {"name": "o", "hostname": "o.x"})
        with pytest.raises(NotFound):
            set_collector_host_tag(db, system_actor(), acme_tenant, theirs, "free")
        legacy = Collector(tenant_id=acme_tenant.id, name="legacy", hostname="bad host\\",
                           host_tag="free")  # fmt: skip
        db.add(legacy)
        db.commit()
        with pytest.raises(Invalid, match="hostname 'bad host\\\\\\\\' cannot be the host tag"):
            set_collector_host_tag(db, system_actor(), acme_tenant, legacy, "pinned")
        db.rollback()
        assert db.get(Collector, legacy.id).host_tag == "free"  # type: ignore[union-attr]
        assert db.get(Collector, theirs.id).host_tag == "pinned"  # type: ignore[union-attr]


def test_ingests_key_lookup_learns_the_host_tag_as_it_learns_a_disabled_collector(
    app: Flask, acme: None
) -> None:
    now = [0.0]
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "acme")
        web1 = register_collector(db, system_actor(), tenant, {"name": "web1", "hostname": "w.x"})
        issued = issue_key(db, system_actor(), tenant, web1, app.extensions["pa_hasher"])
        verifier = KeyVerifier(app.extensions["pa_sessions"], app.extensions["pa_hasher"],
                               ttl=2.0, clock=lambda: now[0])  # fmt: skip
        assert verifier.verify(issued.plaintext).pinned_host == "w.x"
        set_collector_host_tag(db, system_actor(), tenant, web1, "free")
        now[0] += 1.9
        assert verifier.verify(issued.plaintext).pinned_host == "w.x"  # cached: the window
        now[0] += 0.2
        assert verifier.verify(issued.plaintext).pinned_host is None


# ---- the upgrade, and hostnames as tag values -------------------------------------------------


def test_the_migration_makes_existing_collectors_free_and_new_rows_pinned(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path / "admin.db", "0009")
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        insert(connection, "tenants", id=1, slug="acme")
        insert(connection, "collectors", id=1, tenant_id=1, name="old", hostname="old.x")
        insert(connection, "api_keys", id=1, key_id="k1", tenant_id=1, collector_id=1)
    upgrade(url, "0010")  # with foreign keys enforced, as the app's engine has them
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        insert(connection, "collectors", id=2, tenant_id=1, name="new", hostname="new.x")
        rows = connection.execute("SELECT name, host_tag FROM collectors ORDER BY id").fetchall()
        keys = connection.execute("SELECT collector_id FROM api_keys").fetchall()
    assert rows == [("old", "free"), ("new", "pinned")]
    assert keys == [(1,)]  # a rebuilt collectors table took every key with it (ON DELETE CASCADE)
    engine = make_engine(url)
    try:
        config = alembic_config(url)
        with engine.begin() as migrating:
            config.attributes["connection"] = migrating
            command.downgrade(config, "0009")
    finally:
        engine.dispose()
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(collectors)")}
        keys = connection.execute("SELECT collector_id FROM api_keys").fetchall()
    assert "host_tag" not in columns
    assert keys == [(1,)]


@given(st.from_regex(validation.HOSTNAME, fullmatch=True))
def test_every_hostname_registration_takes_is_a_valid_tag_value(candidate: str) -> None:
    try:
        hostname = validation.hostname(candidate)
    except Invalid:
        return
    assert tag_value_problem(hostname) is None
    assert hostname == hostname.strip()


@pytest.mark.parametrize("candidate", ["web\\", "web 1", "web\n1", "web,1", "web=1", "", "-web"])
def test_hostnames_a_tag_cannot_carry_as_they_are_are_refused(candidate: str) -> None:
    with pytest.raises(Invalid):
        validation.hostname(candidate)
