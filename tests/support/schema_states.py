"""SQLite admin databases in the states a server must tell apart: no file, an empty file (no
schema), a schema at an older revision, at this release's, or at a newer release's."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from tenants.db import make_engine
from tenants.schema import alembic_config, known_revisions

HEAD = known_revisions()[0]
OLDEST = "0001"
NEWER = "9999_from_a_newer_release"


def sqlite_database(path: Path, revision: str | None) -> str:
    """A SQLite database at ``path`` migrated to ``revision`` (None: an empty file, NEWER: at
    head and stamped with a revision this release does not know); its URL."""
    url = f"sqlite:///{path}"
    path.touch()
    if revision is None:
        return url
    engine = make_engine(url)
    try:
        config = alembic_config(url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, HEAD if revision == NEWER else revision)
            if revision == NEWER:
                connection.execute(
                    text("UPDATE alembic_version SET version_num = :v"), {"v": NEWER}
                )
    finally:
        engine.dispose()
    return url
