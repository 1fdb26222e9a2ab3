"""per-tenant ingest limits

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.add_column(sa.Column("ingest_rate", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("ingest_burst", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("ingest_burst")
        batch_op.drop_column("ingest_rate")
