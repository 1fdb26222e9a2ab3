"""Engine and sessions: one engine per process, one session per request (closed at teardown)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

        return engine
    # gunicorn sync workers serve one request at a time: a small pool per process keeps many
    # workers and replicas within PostgreSQL's max_connections (100 by default)
    return create_engine(url, pool_pre_ping=True, pool_size=3, max_overflow=4, **kwargs)


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["PA_SETTINGS"]["database_url"])
    app.extensions["pa_engine"] = engine
    app.extensions["pa_sessions"] = sessionmaker(engine, expire_on_commit=False)
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
