"""``perfanalysis admin disable-tenant`` / ``enable-tenant``: the CLI siblings of the tenant
page's button and ``PATCH /api/v1/tenants/<slug> {"status": ...}``, audited as they are; a
tenant already so is said and nothing is recorded; an unknown slug is refused by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from tenants import db as database
from tenants.models import AuditEvent, Tenant

Runner = Callable[..., Result]


def tenant_state(app: Flask, slug: str) -> tuple[str, list[tuple[str, str]]]:
    """The tenant's status, and (action, actor) of its tenant.enable/disable events."""
    with app.app_context():
        db = database.session()
        tenant = db.scalar(select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        events = db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.in_(["tenant.enable", "tenant.disable"]))
            .order_by(AuditEvent.id)
        )
        return tenant.status, [(event.action, event.actor) for event in events]


def test_disable_and_enable_a_tenant_audited_once_per_change(
    app: Flask, runner: Runner, make_tenant: Any
) -> None:
    make_tenant("acme")

    disabled = runner("disable-tenant", "acme")
    assert disabled.exit_code == 0, disabled.output
    assert "disabled tenant acme: ingest refuses all of its collectors' keys (403)" in (
        disabled.output
    )
    assert tenant_state(app, "acme") == ("disabled", [("tenant.disable", "cli")])

    again = runner("disable-tenant", "acme")
    assert again.exit_code == 0, again.output
    assert again.output.strip() == "tenant acme is already disabled"
    assert tenant_state(app, "acme")[1] == [("tenant.disable", "cli")]

    enabled = runner("enable-tenant", "acme")
    assert enabled.exit_code == 0, enabled.output
    assert "enabled tenant acme" in enabled.output
    assert tenant_state(app, "acme") == (
        "active",
        [("tenant.disable", "cli"), ("tenant.enable", "cli")],
    )
    assert runner("enable-tenant", "acme").output.strip() == "tenant acme is already enabled"


@pytest.mark.parametrize("command", ["disable-tenant", "enable-tenant"])
def test_an_unknown_tenant_is_refused_by_its_slug(
    admin_run: Callable[..., tuple[int, str, str]], command: str
) -> None:
    status, out, err = admin_run(command, "nosuch")
    assert status == 1
    assert "no such tenant 'nosuch'" in err
    assert out == ""
