"""The admin database's migrations create exactly what the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from tenants.models import Base


def test_the_migrations_create_every_model_exactly(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_tenants_have_nullable_ingest_limits(migrated_engine: Engine) -> None:
    columns = {c["name"]: c for c in inspect(migrated_engine).get_columns("tenants")}
    assert columns["ingest_rate"]["nullable"]
    assert columns["ingest_burst"]["nullable"]
