"""Fixes after a review of the tenants changes: the load-test and price JSON API refuses a repeated
key as the rest of the API does; an accept racing a direct add of the same member keeps that
member's role instead of failing; only the bidirectional overrides, embeddings and isolates are
refused in names, and a role change goes by user id, so a stored address is not checked again;
``--label "a=1,b=2"`` is refused rather than stored as one label."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.accounts import get_user_by_email
from tenants.invitations import find_valid, invite
from tenants.models import AuditEvent, Collector, Invitation, Membership
from tests.conftest import TEST_SECRET, csrf, issue_test_token, login, table_snapshot
from tests.support.members import member_stored_as

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ADMIN, KNOWN = "boss@a.test", "known@x.test"
PRICE = {"provider": "aws", "region": "us-east-1", "instance_type": "m5.large", "vcpus": 2,
         "memory_gib": 8, "usd_per_hour": 0.1, "source": "list", "as_of": "2024-01-01"}  # fmt: skip


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> None:
    make_tenant("a", {ADMIN: "admin"})
    make_user(KNOWN)


def sender(app: Flask) -> Callable[[str, str, str], Any]:
    headers = {"Authorization": f"Bearer {issue_test_token(app, ADMIN)}",
               "Content-Type": "application/json"}  # fmt: skip
    client = app.test_client()

    def send(method: str, path: str, raw: str) -> Any:
        return client.open(f"/api/v1{path}", method=method, data=raw, headers=headers)

    return send


# --- finding 1: a repeated JSON key on the price and load-test API --------------------------------


def test_a_repeated_key_in_a_price_or_a_load_tests_price_is_refused_and_nothing_stored(
    app: Flask, world: None
) -> None:
    send = sender(app)
    created = send("POST", "/tenants/a/prices", json.dumps(PRICE))
    assert created.status_code == 201, created.get_json()
    price_id = created.get_json()["id"]
    twice = json.dumps(PRICE)[:-1] + ', "usd_per_hour": 999}'
    before = table_snapshot(app, frozenset({"last_used_at"}))
    for method, path, raw in [
        ("POST", "/tenants/a/prices", twice),
        ("PATCH", f"/tenants/a/prices/{price_id}", '{"usd_per_hour": 0.2, "usd_per_hour": 999}'),
        ("POST", "/tenants/a/loadtests/1/price", '{"price_id": null, "price_id": 1}'),
    ]:
        refused = send(method, path, raw)
        assert refused.status_code == 400, (path, refused.get_json())
        assert "given twice" in refused.get_json()["error"]["message"], path
    assert table_snapshot(app, frozenset({"last_used_at"})) == before


# --- finding 2: an accept racing a direct add -----------------------------------------------------


def test_an_accept_racing_a_direct_add_keeps_the_added_role_and_uses_the_link(
    app: Flask, world: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenants import invitations

    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "a")
        hasher = app.extensions["pa_hasher"]
        token = invite(db, system_actor(), tenant, KNOWN, "viewer", hasher).plaintext
        found = find_valid(db, hasher, token)
        user = get_user_by_email(db, KNOWN)
        assert found is not None
        assert user is not None
        real_scalar = Session.scalar
        added = []

        def scalar(self: Session, statement: Any, *args: Any, **kwargs: Any) -> Any:
            result = real_scalar(self, statement, *args, **kwargs)
            if result is None and not added and "memberships" in str(statement):
                # the direct add lands between the accept's lookup and its insert
                self.execute(insert(Membership).values(user_id=user.id, tenant_id=tenant.id,
                                                       role="analyst"))  # fmt: skip
                added.append(True)
            return result

        monkeypatch.setattr(Session, "scalar", scalar)
        membership = invitations.accept(db, found, user)
        monkeypatch.undo()
        assert added
        assert membership.role == "analyst"
    with app.app_context():
        db = database.session()
        roles = db.scalars(select(Membership.role).where(Membership.user_id == user.id)).all()
        assert roles == ["analyst"]
        invitation = db.scalar(select(Invitation))
        assert invitation is not None
        assert invitation.state() == "accepted"
        event = db.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.accept"))
        assert event is not None
        assert (event.details["role"], event.details["joined"]) == ("analyst", False)


# --- findings 3 and 4: the format-character rule and a role change --------------------------------


@pytest.mark.parametrize("stored", ["kno\u00adwn@x.test", "kno\u202ewn@x.test"])
def test_a_member_whose_stored_address_has_a_format_character_can_change_role(
    app: Flask, world: None, stored: str
) -> None:
    user_id = member_stored_as(app, "a", KNOWN, stored, "viewer")  # e.g. stored before the rule
    client: FlaskClient = app.test_client()
    login(client, ADMIN)
    changed = client.post(
        f"/tenants/a/members/{user_id}/role", data={"role": "analyst", "csrf_token": csrf(client)}
    )
    assert changed.status_code == 303, changed.get_data(as_text=True)
    with app.app_context():
        role = database.session().scalar(
            select(Membership.role).where(Membership.user_id == user_id)
        )
        assert role == "analyst"


def test_a_role_change_for_someone_not_a_member_is_404(app: Flask, world: None) -> None:
    with app.app_context():
        user = get_user_by_email(database.session(), KNOWN)
        assert user is not None
        user_id = user.id
    client = app.test_client()
    login(client, ADMIN)
    refused = client.post(
        f"/tenants/a/members/{user_id}/role", data={"role": "admin", "csrf_token": csrf(client)}
    )
    assert refused.status_code == 404


def test_an_address_with_a_soft_hyphen_or_a_mark_is_an_address() -> None:
    from tenants import validation

    for address in ("kno\u00adwn@x.test", "a\u200eb@x.test", "a\u200fb@x.test"):
        assert validation.email(address) == address


# --- finding 5: --label "a=1,b=2" ----------------------------------------------------------------


def labels_of(app: Flask, name: str) -> dict[str, str] | None:
    with app.app_context():
        return database.session().scalar(select(Collector.labels).where(Collector.name == name))


def test_a_label_holding_a_second_key_is_refused_saying_to_repeat_the_option(
    app: Flask, world: None, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenants.cli import run

    for value in ("env=prod,team=web", "env=prod, team = web"):
        capsys.readouterr()
        status = run([f"--database-url={database_url}", f"--secret-key={TEST_SECRET}",
                      "create-collector", "a", "w1", "--hostname", "w1.example",
                      "--label", value])  # fmt: skip
        error = capsys.readouterr().err
        assert status == 2, error
        assert error == (
            f"perfanalysis admin: labels: {value!r} looks like more than one key=value: repeat "
            "--label for each label (a value may hold commas, but not ',key=')\n"
        )
        assert labels_of(app, "w1") is None


def test_a_label_value_with_plain_commas_and_repeated_labels_are_kept(
    app: Flask, world: None, runner: Callable[..., Any]
) -> None:
    result = runner("create-collector", "a", "w1", "--hostname", "w1.example",
                    "--label", "note=a, b,c", "--label", "team=web")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert labels_of(app, "w1") == {"note": "a, b,c", "team": "web"}
