"""price rows say whether their machine type is burstable; runs keep that flag with their price

A burstable type (AWS t2/t3/t3a/t4g, Azure B-series, GCP shared-core, OCI's E2.1.Micro) runs
above its baseline CPU only on credits or at an extra charge, so a load test measures its burst
speed: the comparison leaves such runs unranked. Stored catalog rows (global and tenants') of
those families are marked; stored runs get the flag of the price they carry, from the priced
type's family (a run without a price keeps NULL). The families are listed here as of this
revision, not imported, so that the migration does the same whatever the code does later.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 18:00:00
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BURSTABLE = {
    "aws": re.compile(r"t(1|2|3|3a|4g)\..+"),
    "azure": re.compile(r"standard_b[0-9].*"),
    "gcp": re.compile(r"(e2-(micro|small|medium)|f1-micro|g1-small)"),
    "oci": re.compile(r"vm\.standard\.e2\.1\.micro"),
}

prices = sa.table(
    "price_entries",
    sa.column("id", sa.Integer),
    sa.column("provider", sa.String),
    sa.column("instance_type", sa.String),
    sa.column("burstable", sa.Boolean),
)
runs = sa.table(
    "loadtest_runs",
    sa.column("id", sa.Integer),
    sa.column("price_provider", sa.String),
    sa.column("price_instance_type", sa.String),
    sa.column("price_usd_per_hour", sa.Numeric),
    sa.column("price_burstable", sa.Boolean),
)


def _burstable(provider: str | None, instance_type: str | None) -> bool:
    pattern = BURSTABLE.get((provider or "").lower())
    return bool(pattern and instance_type and pattern.fullmatch(instance_type.lower()))


def upgrade() -> None:
    with op.batch_alter_table("price_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("burstable", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("loadtest_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price_burstable", sa.Boolean(), nullable=True))
    connection = op.get_bind()
    query = sa.select(prices.c.id, prices.c.provider, prices.c.instance_type)
    for row_id, provider, instance_type in connection.execute(query).all():
        if _burstable(provider, instance_type):
            connection.execute(prices.update().where(prices.c.id == row_id).values(burstable=True))
    query = sa.select(runs.c.id, runs.c.price_provider, runs.c.price_instance_type).where(
        runs.c.price_usd_per_hour.is_not(None)
    )
    for run_id, provider, instance_type in connection.execute(query).all():
        connection.execute(runs.update().where(runs.c.id == run_id)
                           .values(price_burstable=_burstable(provider, instance_type)))  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("loadtest_runs", schema=None) as batch_op:
        batch_op.drop_column("price_burstable")
    with op.batch_alter_table("price_entries", schema=None) as batch_op:
        batch_op.drop_column("burstable")
