"""Schema migrations with Alembic: ``upgrade`` brings a database to the newest revision.

Also how the servers tell a usable admin database from a mistyped or unmigrated one: SQLite
creates a missing file on first use, so a typo in the URL would give an empty database that
answers ``SELECT 1`` and fails every real query. ``sqlite_file_problem`` refuses such a URL at
start-up, and ``SchemaCheck`` makes /health (admin and ingest) report a schema that is missing or
older than this release's newest migration.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from tenants.ttlcache import TtlCache

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
INIT_DB = "perfanalysis admin init-db"
SCHEMA_CHECK_SECONDS = 5.0  # /health reads the revision at most this often per process
CONNECT_TIMEOUT_SECONDS = 10

log = logging.getLogger(__name__)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Migrate to the newest revision, all of it or nothing: a failed migration leaves the
    database as it was (tables, rows, revision) on PostgreSQL and on SQLite alike."""
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        if connection.dialect.name != "sqlite":
            with connection.begin():
                command.upgrade(config, "head")
            return
        with (
            _sqlite_foreign_keys_off(connection),
            _sqlite_transactional_ddl(connection),
            connection.begin(),
        ):
            before = _revision_of(connection)
            command.upgrade(config, "head")
            if _revision_of(connection) != before:  # a database left as it was is not judged
                _check_foreign_keys(connection)


class ForeignKeyViolation(RuntimeError):
    """After the migrations, rows reference rows that do not exist; nothing was migrated."""


MAX_VIOLATIONS_NAMED = 10


@contextlib.contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """On SQLite, foreign keys unenforced while the migrations run, then as they were.

    A batch migration recreates a table (a copy, DROP, rename): with foreign keys enforced, as
    the app's engine has them, the DROP deletes every row that references the table ON DELETE
    CASCADE (0010's recreated collectors took every API key with them). SQLite ignores the
    pragma inside a transaction, so it is set, and committed, before one. Should it not be back
    afterwards (SQLite ignores it silently), the connection is invalidated: the pool must not
    hand the app a connection that enforces no foreign key."""
    enforced = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        _restore_foreign_keys(connection, enforced)


def _restore_foreign_keys(connection: Connection, enforced: bool) -> None:
    try:
        if connection.in_transaction():
            connection.rollback()
        connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")
        restored = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar()) == enforced
        connection.commit()
    except SQLAlchemyError:
        log.exception("could not set PRAGMA foreign_keys back after the migrations")
        restored = False
    if not restored:
        log.warning("PRAGMA foreign_keys did not go back to %s after the migrations: the "
                    "connection is discarded", "ON" if enforced else "OFF")  # fmt: skip
        connection.invalidate()


@contextlib.contextmanager
def _sqlite_transactional_ddl(connection: Connection) -> Iterator[None]:
    """SQLAlchemy's recipe for transactions that cover DDL on pysqlite, for this connection.

    Python's sqlite3 begins a transaction only before INSERT, UPDATE or DELETE, so a
    migration's CREATE, DROP and ALTER were committed as they ran, and a migration that failed
    half-way left its half behind (a batch migration's ``_alembic_tmp_`` table) while
    alembic_version stayed, which the next run tripped over. Here the driver's own
    transaction handling is off (autocommit) and SQLAlchemy's begin emits ``BEGIN IMMEDIATE``,
    so everything from there to the commit or rollback is one SQLite transaction. IMMEDIATE
    takes the write lock up front: a deferred one could meet a concurrent writer's commit
    between its first read and first write, which SQLite answers "database is locked" at once.
    The pool sets the isolation level back when the connection returns to it."""
    connection.execution_options(isolation_level="AUTOCOMMIT")

    def begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(connection, "begin", begin_immediate)
    try:
        yield
    finally:
        event.remove(connection, "begin", begin_immediate)


def _check_foreign_keys(connection: Connection) -> None:
    """Raise ForeignKeyViolation, naming table, row and column, if any row references a row
    that does not exist (nothing enforced that while the migrations ran)."""
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if not violations:
        return
    quote_name = connection.dialect.identifier_preparer.quote_identifier
    named = []
    for table, rowid, parent, key_id in violations[:MAX_VIOLATIONS_NAMED]:
        keys = connection.exec_driver_sql(f"PRAGMA foreign_key_list({quote_name(table)})").all()
        columns = ", ".join(str(key[3]) for key in keys if key[0] == key_id) or "?"
        row = f"row {rowid}" if rowid is not None else "a row (WITHOUT ROWID table)"
        named.append(f"{table} {row}: {columns} references no row of {parent}")
    more = len(violations) - len(named)
    raise ForeignKeyViolation(
        f"{len(violations)} foreign key violation(s) after the migrations, so none was kept "
        f"(the database is as it was): {'; '.join(named)}"
        + (f"; and {more} more" if more else "")
        + " (PRAGMA foreign_key_check lists them all; fix or delete those rows, then rerun)"
    )


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _revision_of(connection)


def _revision_of(connection: Connection) -> str | None:
    if "alembic_version" not in inspect(connection).get_table_names():
        return None
    revision: str | None = connection.exec_driver_sql(
        "SELECT version_num FROM alembic_version"
    ).scalar()
    return revision


@functools.cache
def known_revisions() -> tuple[str, frozenset[str]]:
    """This release's newest revision, and every revision its migrations know."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None, "no migrations"
    return head, frozenset(r.revision for r in script.walk_revisions())


def schema_problem(revision: str | None) -> str | None:
    """What is wrong with a database at ``revision`` for this release; None when it will do.

    A revision this release does not know was made by a newer release's migrations: during a
    rolling upgrade those run before the new servers start, while this release's still serve, so
    it is not a failure (migrations add, and a release works on its successor's schema).
    """
    head, known = known_revisions()
    if revision == head or (revision is not None and revision not in known):
        return None
    if revision is None:
        return f"no schema (no migration has run): run {INIT_DB}"
    return f"schema at revision {revision}, this release needs {head}: run {INIT_DB}"


def sqlite_file_problem(url: str) -> str | None:
    """For a SQLite URL: what is wrong with the file it names (missing, a directory), or None;
    for any URL, that it cannot be read.

    Only ``init-db`` may create the database; a server handed a missing file would create an
    empty one and answer every request 500.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # a port that is not a number, a broken IPv6 host
        return f"not a database URL SQLAlchemy can read: {exc}"
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return None
    if path.startswith("file:") or parsed.query.get("uri"):
        return None  # a SQLite URI: its mode says whether the file may be created
    if os.path.isdir(path):
        return f"{path} is a directory, not a SQLite database"
    if not os.path.exists(path):
        return f"no SQLite database at {path}: is the path right? ({INIT_DB} creates it)"
    return None


def checking_engine(url: str) -> Engine:
    """A short-lived engine that reads without creating anything: a SQLite file is opened
    read-write only if it exists, and a PostgreSQL server that does not answer fails in
    CONNECT_TIMEOUT_SECONDS instead of the system's TCP timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        target = f"file:{quote(os.path.abspath(parsed.database or ''))}?mode=rw"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(target, uri=True)

        return create_engine("sqlite://", creator=connect, poolclass=NullPool)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        )
    return create_engine(url, poolclass=NullPool)


class SchemaCheck:
    """/health's schema check: the database's revision against this release's, read at most
    every ``ttl`` seconds (a load balancer may ask often; a migration is felt within ``ttl``).
    A failure to read it is raised every time, never cached."""

    def __init__(
        self,
        engine: Engine,
        ttl: float = SCHEMA_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self._cache: TtlCache[str, str | None] = TtlCache(ttl, clock)
        self._newer_logged = False

    def problem(self) -> str | None:
        """None when the schema will do; else what is wrong and the command that fixes it."""
        return self._cache.get("schema", self._read)

    def _read(self, _key: str) -> str | None:
        revision = current_revision(self.engine)
        if revision is not None and revision not in known_revisions()[1] and not self._newer_logged:
            self._newer_logged = True
            log.warning("the admin database is at revision %s, newer than this release knows "
                        "(%s): a newer release migrated it", revision, known_revisions()[0])  # fmt: skip
        return schema_problem(revision)
