"""A throwaway PostgreSQL database, for the test suite and the admin benchmark."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def throwaway_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new database named ``<prefix>_<random>`` on the server ``server_url`` points at.

    Yields its SQLAlchemy URL; the database is dropped afterwards, open connections or not.
    """
    from sqlalchemy import create_engine, text

    from tenants.settings import database_url

    url = database_url(server_url)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{url.rpartition('/')[0]}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
