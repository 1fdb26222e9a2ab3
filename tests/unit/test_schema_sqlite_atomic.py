"""tenants.schema.upgrade on SQLite: a failed migration leaves the database as it was, the
app's connections enforce foreign keys afterwards whatever happened, and rows a migration
orphaned are named and not kept.

The migrations are a scratch Alembic directory (the project's env.py, revisions of its own) so
that one can fail at its second step on demand: while ``fail-at-step-two`` exists next to
``versions/``, that revision raises after its first step.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, table, text

from tenants import schema
from tenants.db import make_engine

PARENTS_AND_CHILDREN = """
    op.create_table("parents", sa.Column("id", sa.Integer, primary_key=True))
    op.create_table(
        "children",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer,
                  sa.ForeignKey("parents.id", ondelete="CASCADE"), nullable=False),
    )
"""
RECREATE_PARENTS_THEN_MAYBE_FAIL = """
    with op.batch_alter_table("parents", recreate="always") as batch:
        batch.add_column(sa.Column("name", sa.String(40)))
    if (Path(__file__).parent.parent / "fail-at-step-two").exists():
        raise RuntimeError("step 2 failed")
    op.create_table("extras", sa.Column("id", sa.Integer, primary_key=True))
"""
ORPHAN_THE_CHILDREN = """
    op.execute("DELETE FROM parents WHERE id = 1")
"""


def write_revision(directory: Path, revision: str, down: str | None, body: str) -> None:
    (directory / "versions" / f"{revision}.py").write_text(
        "from pathlib import Path\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = {revision!r}\ndown_revision = {down!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n"
    )


@pytest.fixture
def migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch migrations directory, used by ``schema.upgrade``, at revision s001."""
    directory = tmp_path / "migrations"
    (directory / "versions").mkdir(parents=True)
    shutil.copy(schema.MIGRATIONS / "env.py", directory / "env.py")
    write_revision(directory, "s001", None, PARENTS_AND_CHILDREN)
    monkeypatch.setattr(schema, "MIGRATIONS", directory)
    return directory


@pytest.fixture
def engine(tmp_path: Path, migrations: Path) -> Iterator[Engine]:
    """The app's engine (foreign keys on, pooled) on a database at s001 with a parent and its
    child."""
    app_engine = make_engine(f"sqlite:///{tmp_path / 'admin.db'}")
    schema.upgrade(app_engine)
    with app_engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO parents (id) VALUES (1)")
        connection.exec_driver_sql("INSERT INTO children (id, parent_id) VALUES (7, 1)")
    yield app_engine
    app_engine.dispose()


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every table's and index's SQL, the revision and every row."""
    with engine.connect() as connection:
        objects = connection.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master ORDER BY name"
        ).all()
        tables = [name for kind, name, _sql in objects if kind == "table"]
        rows = {
            t: connection.execute(select(text("*")).select_from(table(t))).all() for t in tables
        }
    return {"schema": objects, "rows": rows}


def foreign_keys_of_next_connection(engine: Engine) -> int:
    with engine.connect() as connection:
        enforced: int = connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
    return enforced


def test_a_migration_failing_at_its_second_step_leaves_the_database_as_it_was(
    engine: Engine, migrations: Path
) -> None:
    before = snapshot(engine)
    write_revision(migrations, "s002", "s001", RECREATE_PARENTS_THEN_MAYBE_FAIL)
    (migrations / "fail-at-step-two").touch()

    with pytest.raises(RuntimeError, match="step 2 failed"):
        schema.upgrade(engine)

    assert snapshot(engine) == before
    assert schema.current_revision(engine) == "s001"
    assert foreign_keys_of_next_connection(engine) == 1

    (migrations / "fail-at-step-two").unlink()
    schema.upgrade(engine)

    assert schema.current_revision(engine) == "s002"
    after = snapshot(engine)
    assert {"parents", "children", "extras"} <= set(after["rows"])
    assert after["rows"]["children"] == [(7, 1)]  # the recreated parent took no child along
    assert foreign_keys_of_next_connection(engine) == 1


def test_rows_orphaned_by_a_migration_are_named_and_the_migration_is_not_kept(
    engine: Engine, migrations: Path
) -> None:
    before = snapshot(engine)
    write_revision(migrations, "s002", "s001", ORPHAN_THE_CHILDREN)

    with pytest.raises(schema.ForeignKeyViolation) as raised:
        schema.upgrade(engine)

    assert "children row 7: parent_id references no row of parents" in str(raised.value)
    assert snapshot(engine) == before
    assert schema.current_revision(engine) == "s001"
    assert foreign_keys_of_next_connection(engine) == 1


@pytest.mark.parametrize("fails", [False, True], ids=["succeeds", "fails"])
def test_a_connection_whose_foreign_keys_did_not_come_back_is_not_handed_to_the_app(
    engine: Engine, migrations: Path, fails: bool
) -> None:
    """SQLite ignores ``PRAGMA foreign_keys=ON`` silently (inside a transaction, for one): the
    statement is swallowed here, so only a discarded connection keeps them on for the app."""
    write_revision(migrations, "s002", "s001", RECREATE_PARENTS_THEN_MAYBE_FAIL)
    if fails:
        (migrations / "fail-at-step-two").touch()
    swallowed = []

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def swallow_foreign_keys_on(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> tuple[str, Any]:
        if statement == "PRAGMA foreign_keys=ON":
            swallowed.append(statement)
            return "SELECT 1", parameters
        return statement, parameters

    if fails:
        with pytest.raises(RuntimeError, match="step 2 failed"):
            schema.upgrade(engine)
    else:
        schema.upgrade(engine)
    event.remove(engine, "before_cursor_execute", swallow_foreign_keys_on)

    assert swallowed == ["PRAGMA foreign_keys=ON"]
    assert foreign_keys_of_next_connection(engine) == 1


def test_a_database_already_at_the_newest_revision_is_not_judged(tmp_path: Path) -> None:
    """Orphaned rows a database already had (written with the sqlite3 shell, whose foreign keys
    are off) do not stop init-db, and so make up, when there is nothing to migrate."""
    import sqlite3

    from tests.support.schema_states import HEAD, sqlite_database

    path = tmp_path / "admin.db"
    url = sqlite_database(path, HEAD)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO api_keys (id, key_id, secret_hash, tenant_id, collector_id, name, "
            "created_at) VALUES (1, 'k', 'h', 999, 999, '', '2026-01-01 00:00:00')"
        )
    engine = make_engine(url)
    try:
        schema.upgrade(engine)  # nothing to migrate: no ForeignKeyViolation
        assert schema.current_revision(engine) == HEAD
    finally:
        engine.dispose()
