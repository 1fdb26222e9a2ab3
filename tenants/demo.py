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
from tenants.keys import get_key, issue_key, revoke_key
from tenants.models import HOST_TAG_PINNED, Collector, Tenant, User, utcnow
from tenants.schema import upgrade
from tenants.tenancy import create_tenant

ADMIN_EMAIL = "admin@perfanalysis.local"
TENANT = "demo"
ACTOR = system_actor("make up")


@dataclass(frozen=True)
class Demo:
    admin_email: str
    tenant_slug: str
    collector_name: str
    key_id: str
    key_plaintext: str  # empty when a key already exists


def ensure_admin(app: Flask, db: Session, password: str, new_password: bool) -> None:
    """The schema and the platform admin; ``new_password``: the admin's password file was
    missing, so ``password`` was just made and an existing admin is given it."""
    upgrade(app.extensions["pa_engine"])
    admin = get_user_by_email(db, ADMIN_EMAIL)
    if admin is None:
        create_user(db, ACTOR, ADMIN_EMAIL, password, "Demo admin", platform_admin=True)
    elif new_password:
        _reset_password(db, ACTOR, admin, password)


def ensure_demo(app: Flask, db: Session, hostname: str, have_key: bool) -> Demo:
    """The demo tenant (the admin its admin), its load tests, this host's collector and, unless
    ``have_key``, a new key for it; run after ensure_admin.

    A new demo tenant adopts a demo database that holds data: on a local stack that is this
    stack's own, left by an admin database removed or restored since (var/ keeps both).
    """
    tenant = db.scalar(select(Tenant).where(Tenant.slug == TENANT))
    if tenant is None:
        tenant = create_tenant(
            db,
            ACTOR,
            TENANT,
            "Demo",
            app.extensions["pa_storage"],
            app.extensions["pa_vault"],
            adopt_database=True,
        )
        set_membership(db, ACTOR, tenant, ADMIN_EMAIL, "admin")
    _load_test_examples(db, ACTOR, tenant)
    name = hostname.split(".")[0].lower() or "localhost"
    collector = db.scalar(
        select(Collector).where(Collector.tenant_id == tenant.id, Collector.name == name)
    )
    if collector is None:
        # pinned to the name the demo exporter sends as its host tag (socket.gethostname(), its
        # --push.host default): the points keep their host, and the key can write as no other
        fields = {"name": name, "hostname": hostname, "host_tag": HOST_TAG_PINNED}
        collector = register_collector(db, ACTOR, tenant, fields)
    if have_key:
        return Demo(ADMIN_EMAIL, TENANT, name, "", "")
    issued = issue_key(db, ACTOR, tenant, collector, app.extensions["pa_hasher"], "make up")
    return Demo(ADMIN_EMAIL, TENANT, name, issued.key.key_id, issued.plaintext)


def withdraw_key(db: Session, key_id: str) -> None:
    """Revoke a demo key whose plaintext could not be kept, so that none is left live unseen."""
    tenant = db.scalar(select(Tenant).where(Tenant.slug == TENANT))
    assert tenant is not None
    revoke_key(db, ACTOR, tenant, get_key(db, ACTOR, tenant, key_id))


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
