"""Reading and planting tenant memberships straight in the admin database, for tests of the
member pages and API."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.models import Membership, Tenant, User


def memberships(app: Flask) -> dict[tuple[str, str], str]:
    """Every membership: (e-mail, tenant slug) -> role."""
    with app.app_context():
        rows = database.session().execute(
            select(User.email, Tenant.slug, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .join(Tenant, Tenant.id == Membership.tenant_id)
        )
        return {(email, slug): role for email, slug, role in rows}


def member_stored_as(app: Flask, slug: str, email: str, stored: str, role: str) -> int:
    """Make the user with ``email`` a member of ``slug`` whose address is stored as ``stored``
    (one the e-mail check now refuses, say, stored before the rule); their user id."""
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), slug)
        user = db.scalar(select(User).where(User.email == email))
        assert user is not None
        user.email = stored
        db.add(Membership(user_id=user.id, tenant_id=tenant.id, role=role))
        db.commit()
        return user.id
