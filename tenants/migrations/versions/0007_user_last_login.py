"""users' last login, for the Users page and API (who has not logged in for months)

Filled for existing users from the audit log's successful logins.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 23:40:00
"""

import sqlalchemy as sa
from alembic import op

import tenants.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("last_login_at", tenants.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE users SET last_login_at = (SELECT MAX(event.at) FROM audit_events AS event"
        " WHERE event.action = 'login.success' AND event.actor_user_id = users.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("last_login_at")
