"""The demo data ``make up`` creates on its first run: an admin, a tenant, a collector, a key."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenants.access import Actor, system_actor
from tenants.accounts import create_user, get_user_by_email, set_membership
from tenants.audit import record
from tenants.collectors import register_collector
from tenants.crypto import hash_password
from tenants.keys import issue_key
from tenants.models import Collector, Tenant, User, utcnow
from tenants.schema import upgrade
from tenants.tenancy import create_tenant

ADMIN_EMAIL = "admin@perfanalysis.local"
TENANT = "demo"


@dataclass(frozen=True)
class Demo:
    admin_email: str
    tenant_slug: str
    collector_name: str
    key_id: str
    key_plaintext: str  # empty when a key already exists


def ensure_demo(
    app: Flask, db: Session, password: str, hostname: str, have_key: bool, new_password: bool
) -> Demo:
    """``new_password``: the admin's password file was missing, so ``password`` was just made."""
    upgrade(app.extensions["pa_engine"])
    actor = system_actor("make up")
    admin = get_user_by_email(db, ADMIN_EMAIL)
    if admin is None:
        create_user(db, actor, ADMIN_EMAIL, password, "Demo admin", platform_admin=True)
    elif new_password:
        _reset_password(db, actor, admin, password)
    tenant = db.scalar(select(Tenant).where(Tenant.slug == TENANT))
    if tenant is None:
        tenant = create_tenant(
            db, actor, TENANT, "Demo", app.extensions["pa_storage"], app.extensions["pa_vault"]
        )
        set_membership(db, actor, tenant, ADMIN_EMAIL, "admin")
    _load_test_examples(db, actor, tenant)
    name = hostname.split(".")[0].lower() or "localhost"
    collector = db.scalar(
        select(Collector).where(Collector.tenant_id == tenant.id, Collector.name == name)
    )
    if collector is None:
        collector = register_collector(db, actor, tenant, {"name": name, "hostname": hostname})
    if have_key:
        return Demo(ADMIN_EMAIL, TENANT, name, "", "")
    issued = issue_key(db, actor, tenant, collector, app.extensions["pa_hasher"], "make up")
    return Demo(ADMIN_EMAIL, TENANT, name, issued.key.key_id, issued.plaintext)


def _reset_password(db: Session, actor: Actor, user: User, password: str) -> None:
    """Give the demo admin the new password, so that the new file holds a working one.

    A local stack has no other way back in once the file is lost; ending the admin's sessions
    (the changed stamp) is what a password change does anyway.
    """
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    record(db, actor, "user.password_reset", None, "user", user.id)
    db.commit()


def _load_test_examples(db: Session, actor: Actor, tenant: Tenant) -> None:
    """The global price catalog and the original system's load tests; both idempotent."""
    from tenants.loadtests.examples import DEFAULT_DIR, load_examples
    from tenants.loadtests.prices import seed_prices

    seed_prices(db, actor, DEFAULT_DIR.parents[1] / "prices.yaml")
    load_examples(db, actor, tenant)
