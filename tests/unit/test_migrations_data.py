"""The migrations that fill in data for rows stored before them: 0006 gives load-test runs their
100% level's CV as repeatability (as the admin app now derives it on upload, in place of an older
client's mean of every level's CV); 0007 gives users their last login from the audit log."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command

from tenants.db import make_engine
from tenants.schema import alembic_config
from tests.support.schema_states import sqlite_database

OLD_MEAN = 2.4


def insert(connection: sqlite3.Connection, table: str, **values: Any) -> None:
    """A row with ``values`` and a filler for every other required column."""
    filler = {"INTEGER": 1, "BIGINT": 1, "FLOAT": 1.0, "BOOLEAN": 1, "JSON": "[]"}
    for _, name, kind, notnull, default, primary in connection.execute(
        f"PRAGMA table_info({table})"
    ):
        if notnull and default is None and not primary and name not in values:
            values[name] = filler.get(kind.upper().split("(")[0], "x")
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    statement = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 (names from PRAGMA)
    connection.execute(statement, list(values.values()))


def upgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        config = alembic_config(url)
        with engine.begin() as migrating:
            config.attributes["connection"] = migrating
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def run_with_full_level(
    connection: sqlite3.Connection, run_id: int, cv: float | None, accepted: bool
) -> None:
    insert(connection, "loadtest_runs", id=run_id, document_sha256=f"{run_id:064d}",
           repeatability_cv_percent=OLD_MEAN)  # fmt: skip
    for busy in (50, 100):
        insert(connection, "loadtest_levels", run_id=run_id, target_busy_percent=busy,
               cv_percent=cv if busy == 100 else 9.9, accepted=accepted)  # fmt: skip


def test_stored_runs_get_their_full_load_levels_cv(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path / "admin.db", "0005")
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        run_with_full_level(connection, 1, 3.1, True)
        run_with_full_level(connection, 2, 3.1, False)  # disturbed: no repeatability
        run_with_full_level(connection, 3, None, True)  # one repeat: no CV
    upgrade(url, "0006")
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        stored = dict(
            connection.execute("SELECT id, repeatability_cv_percent FROM loadtest_runs").fetchall()
        )
    assert stored == {1: 3.1, 2: None, 3: None}


def test_users_get_their_last_successful_login_from_the_audit_log(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path / "admin.db", "0006")
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        for user_id in (1, 2, 3):
            insert(connection, "users", id=user_id, email=f"u{user_id}@example.test")
        events = [(1, "login.success", "2026-11-01 10:00:00"),
                  (1, "login.success", "2026-11-20 09:30:00"),
                  (1, "login.failure", "2026-11-22 08:00:00"),  # not a login
                  (2, "user.disable", "2026-11-21 08:00:00"),  # not a login
                  (3, "login.failure", "2026-11-21 08:00:00")]  # fmt: skip
        for actor, action, at in events:
            insert(connection, "audit_events", actor_user_id=actor, action=action, at=at)
    upgrade(url, "0007")
    with sqlite3.connect(tmp_path / "admin.db") as connection:
        stored = dict(connection.execute("SELECT id, last_login_at FROM users").fetchall())
    assert stored == {1: "2026-11-20 09:30:00", 2: None, 3: None}
