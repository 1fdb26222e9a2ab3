"""indexes for the lists a page shows newest first: a tenant's keys, a collector's, a tenant's runs

The keys list (a tenant's, or one collector's) and the load-test list page by keyset, newest
first: ``ORDER BY created_at DESC, id DESC`` (keys) and ``started_at DESC, id DESC`` (runs) within
a tenant or a collector. With only the single-column tenant_id and collector_id indexes,
PostgreSQL read and sorted every key of the tenant (10,000 in a fleet) for each page of 50; an
index on the filter column followed by the sort columns, in the query's directions, hands the
rows over in order, so a page reads its 51 rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # CREATE INDEX on the tables as they are, never a batch rebuild (see 0010)
    op.create_index(
        "ix_api_keys_tenant_id_created_at_id",
        "api_keys",
        ["tenant_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_index(
        "ix_api_keys_collector_id_created_at_id",
        "api_keys",
        ["collector_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_index(
        "ix_loadtest_runs_tenant_id_started_at_id",
        "loadtest_runs",
        ["tenant_id", sa.text("started_at DESC"), sa.text("id DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_loadtest_runs_tenant_id_started_at_id", table_name="loadtest_runs")
    op.drop_index("ix_api_keys_collector_id_created_at_id", table_name="api_keys")
    op.drop_index("ix_api_keys_tenant_id_created_at_id", table_name="api_keys")
