"""Engine and sessions: one engine per process, one session per request (closed at teardown)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, String, create_engine, event
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from tenants.access import forget_roles

MAX_POOLED_PER_PROCESS = 8
SQLITE_LOWER = "pa_lower"


class lower(FunctionElement[str]):  # noqa: N801 (named as the SQL function it stands for)
    """``lower()`` that lower-cases every letter on every database: SQLite's own knows ASCII
    only (``Ä`` stays ``Ä``), so there it calls Python's ``str.lower``, registered on each
    connection; PostgreSQL's folds Unicode under a UTF-8 locale."""

    type = String()
    inherit_cache = True


@compiles(lower)
def _lower(element: lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(lower, "sqlite")
def _lower_sqlite(element: lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


def _python_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def make_engine(url: str, threads: int = 4, **kwargs: Any) -> Engine:
    """An engine for one process serving ``threads`` requests at a time."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()
            connection.create_function(SQLITE_LOWER, 1, _python_lower, deterministic=True)

        return engine
    # requests are mostly Python time, so a few connections serve many threads; two spare for a
    # request that briefly holds a second one (key usage flushed during an upload). At most 8
    # per process keeps workers x replicas within max_connections (100 by default).
    pool_size = min(threads, MAX_POOLED_PER_PROCESS - 2) + 2
    return create_engine(
        url, pool_pre_ping=True, pool_size=pool_size, max_overflow=0, pool_timeout=10, **kwargs
    )


def init_app(app: Flask) -> None:
    from tenants.schema import SchemaCheck

    settings = app.config["PA_SETTINGS"]
    engine = make_engine(settings["database_url"], settings.get("web_threads", 4))
    app.extensions["pa_engine"] = engine
    app.extensions["pa_schema_check"] = SchemaCheck(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    event.listen(sessions, "after_flush", forget_roles)
    app.extensions["pa_sessions"] = sessions
    app.teardown_appcontext(_close_session)


def session() -> Session:
    """The request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["pa_sessions"]()
    db: Session = g.db_session
    return db


def _close_session(_exc: BaseException | None) -> None:
    db = g.pop("db_session", None)
    if db is not None:
        db.close()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session outside Flask (CLI, key verifier): commit on success, roll back on error."""
    db = factory()
    try:
        yield db
        db.commit()
    except BaseException:
        db.rollback()
        raise
    finally:
        db.close()
