"""Shared fixtures: real servers (perfanalysis.testing) and the admin app (Flask's app/client/runner).

The admin database is PostgreSQL when DATABASE_URL is set (CI sets it): one throwaway database
per test session, emptied between tests. Otherwise a SQLite file per session.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from perfanalysis.testing.postgres import throwaway_database

pytest_plugins = ["perfanalysis.testing.pytest_plugin"]

TEST_SECRET = "test-secret-key-" + "x" * 32
PASSWORD = "correct horse battery staple"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test has its own node ID, or the suite refuses to run.

    pytest-xdist schedules tests by node ID: two tests sharing one would leave all but one
    silently unrun. schemathesis' parametrize() (one item per API operation) gives its items
    only the function's node ID under pytest 9.2; they get their operation back as parameters.
    """
    for item in items:
        if "[" in item.name and "[" not in item.nodeid:
            operation = item.name.split("[", 1)[1].removesuffix("]")
            item._id = item._id.with_params(operation)
    counts = Counter(item.nodeid for item in items)
    shared = sorted(nodeid for nodeid, count in counts.items() if count > 1)
    if shared:
        raise pytest.UsageError("tests share a node ID: " + ", ".join(shared))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = os.environ.get("DATABASE_URL")
    if server:
        with throwaway_database(server, "pa_test") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('admin-db') / 'admin.db'}"


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    from tenants.db import make_engine
    from tenants.schema import upgrade

    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    from tenants.models import Base

    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def admin_settings(database_url: str) -> dict[str, Any]:
    from tenants.settings import load

    return load([], {"PERFANALYSIS_ADMIN_DATABASE_URL": database_url,
                     "PERFANALYSIS_ADMIN_SECRET_KEY": TEST_SECRET})  # fmt: skip


@pytest.fixture
def app(admin_settings: dict[str, Any], migrated_engine: Engine) -> Iterator[Flask]:
    from tenants.app import create_app

    empty_tables(migrated_engine)
    application = create_app(admin_settings)
    application.config["TESTING"] = True
    yield application
    application.extensions["pa_engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Callable[..., Result]:
    """Invoke ``perfanalysis admin COMMAND ...`` against the test app."""
    from tenants.cli import admin

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            admin,
            list(args),
            obj={"app": app, "settings": app.config["PA_SETTINGS"]},
            input=input,
            env=env,
        )

    return invoke


@pytest.fixture
def admin_run(
    app: Flask, database_url: str, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """``perfanalysis admin SETTINGS... ARGS...`` as the console runs it: (status, out, err)."""
    from tenants.cli import run

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = run([f"--database-url={database_url}", f"--secret-key={TEST_SECRET}", *args])
        out, err = capsys.readouterr()
        return status, out, err

    return invoke


@pytest.fixture
def make_user(app: Flask) -> Callable[..., Any]:
    from tenants import db as database
    from tenants.access import system_actor
    from tenants.accounts import create_user

    def make(email: str, platform_admin: bool = False, password: str = PASSWORD) -> Any:
        with app.app_context():
            return create_user(
                database.session(), system_actor(), email, password, "", platform_admin
            )

    return make


@pytest.fixture
def make_tenant(app: Flask) -> Callable[..., Any]:
    """make_tenant(slug, members={email: role}) -> Tenant, creating missing users."""
    from tenants import db as database
    from tenants.access import system_actor
    from tenants.accounts import create_user, get_user_by_email, set_membership
    from tenants.tenancy import create_tenant

    def make(slug: str, members: dict[str, str] | None = None) -> Any:
        with app.app_context():
            db = database.session()
            tenant = create_tenant(
                db,
                system_actor(),
                slug,
                slug.title(),
                app.extensions["pa_storage"],
                app.extensions["pa_vault"],
            )
            for email, role in (members or {}).items():
                if get_user_by_email(db, email) is None:
                    create_user(db, system_actor(), email, PASSWORD)
                set_membership(db, system_actor(), tenant, email, role)
            return tenant

    return make


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    """Log the test client in through the real login form (CSRF token included)."""
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def csrf(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        token: str = session["csrf"]
    return token


# --- shared by the admin tests ---------------------------------------------------------------


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A collector key file as an operator installs it (mode 0600), for the push client."""
    path = tmp_path / "collector.key"
    path.write_text("pak_id1.secret1\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with test-sized costs: the same hash format, a millisecond instead of 150.

    For tests that log in or create users often; the real cost is tested in test_admin_core.
    """
    from argon2 import PasswordHasher

    from tenants import crypto

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(crypto, "_hasher", fast)
    monkeypatch.setattr("tenants.accounts.hash_password", fast.hash)


class FrozenClock:
    """A monotonic clock that stands still unless a test moves ``now``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def principal_clock(app: Flask) -> FrozenClock:
    """The app's PrincipalCache (tokens, session users) on a clock the test moves."""
    clock = FrozenClock()
    app.extensions["pa_principals"].clock = clock
    return clock


def table_snapshot(
    app: Flask, skip_columns: frozenset[str] = frozenset()
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, without ``skip_columns``: a refused request changes none."""
    from tenants.models import Base

    with app.extensions["pa_engine"].connect() as connection:
        tables = {}
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(table.select().order_by(*table.primary_key)).mappings()
            tables[table.name] = [
                tuple(value for name, value in row.items() if name not in skip_columns)
                for row in rows
            ]
        return tables


@dataclass
class Caller:
    """Requests to /api/v1 with one user's API token."""

    client: FlaskClient
    token: str

    @property
    def token_id(self) -> str:
        return self.token.split("_")[1]

    def __call__(self, method: str, path: str, body: Any = None) -> TestResponse:
        extra: dict[str, Any] = {} if body is None else {"json": body}
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.client.open(f"/api/v1{path}", method=method, headers=headers, **extra)


def issue_test_token(app: Flask, email: str, name: str = "tests") -> str:
    """A personal API token for the user with ``email``, issued through the service."""
    from tenants import db as database
    from tenants.accounts import get_user_by_email, issue_token

    with app.app_context():
        db = database.session()
        user = get_user_by_email(db, email)
        assert user is not None
        return issue_token(db, user, app.extensions["pa_hasher"], name)[1]
