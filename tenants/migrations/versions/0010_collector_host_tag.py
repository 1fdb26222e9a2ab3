"""collectors' host tag: pinned (ingest forces host=<hostname>) or free (the client's is kept)

A collector registered from this release on is pinned unless registered free: its key can no
longer write points as another host of the tenant. Collectors stored before are made free, which
is what ingest did for every collector until now, so an upgrade changes no stored series; an
admin pins them one by one (docs/operations.md, "A collector's host tag"). The column's
server default then becomes pinned, so a row inserted without it is pinned as well.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collectors") as batch_op:
        batch_op.add_column(
            sa.Column("host_tag", sa.String(length=8), server_default="free", nullable=False)
        )
    with op.batch_alter_table("collectors") as batch_op:
        batch_op.alter_column(
            "host_tag",
            existing_type=sa.String(length=8),
            existing_nullable=False,
            server_default="pinned",
        )


def downgrade() -> None:
    with op.batch_alter_table("collectors") as batch_op:
        batch_op.drop_column("host_tag")
