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
    # A column added with its default and an UPDATE, never a table rebuild: on SQLite a batch
    # alter_column copies the table and drops the old one, which, where foreign keys are
    # enforced, deletes every API key and unlinks every load-test run (ON DELETE CASCADE/SET
    # NULL). tenants/schema.py also runs migrations with them off, for any other path.
    op.add_column(
        "collectors",
        sa.Column("host_tag", sa.String(length=8), server_default="pinned", nullable=False),
    )
    op.execute("UPDATE collectors SET host_tag = 'free'")


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place (no rebuild, for the same reason)
    op.drop_column("collectors", "host_tag")
