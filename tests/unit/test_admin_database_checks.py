"""``admin serve`` and the admin app's /health on a mistyped or unmigrated database: serve
refuses (exit 2) a SQLite file that is not there and a database without this release's schema
(init-db always runs before it in Compose, Kubernetes and ``make up``); init-db still creates the
file; /health reports the schema with the command that migrates it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tenants.cli import run
from tenants.schema import SchemaCheck
from tests.conftest import TEST_SECRET
from tests.support.schema_states import HEAD, NEWER, OLDEST, sqlite_database

INIT_DB = "run perfanalysis admin init-db"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[Any, ...]]:
    """``admin serve`` up to gunicorn: what it would have served, instead of serving it."""
    import perfanalysis.serving

    for name in [n for n in os.environ if n.startswith("PERFANALYSIS_ADMIN_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path / "var"))
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(perfanalysis.serving, "serve", lambda *args, **_: calls.append(args))
    return calls


def admin(url: str, command: str) -> int:
    return run([f"--secret-key={TEST_SECRET}", f"--database-url={url}", command])


def test_serve_refuses_a_sqlite_file_that_is_not_there_and_init_db_creates_it(
    tmp_path: Path, served: list[tuple[Any, ...]], capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo.db"
    assert admin(f"sqlite:///{typo}", "serve") == 2
    assert capsys.readouterr().err == (
        f"perfanalysis admin serve: setting database-url: no SQLite database at {typo}: "
        "is the path right? (perfanalysis admin init-db creates it)\n"
    )
    assert not typo.exists()
    assert admin(f"sqlite:///{tmp_path}", "serve") == 2
    assert f"setting database-url: {tmp_path} is a directory" in capsys.readouterr().err
    assert served == []
    assert admin(f"sqlite:///{typo}", "init-db") == 0  # the one command that makes it
    assert admin(f"sqlite:///{typo}", "serve") == 0
    assert len(served) == 1


@pytest.mark.parametrize(
    ("revision", "problem"),
    [
        (None, f"no schema (no migration has run): {INIT_DB}"),
        (OLDEST, f"schema at revision {OLDEST}, this release needs {HEAD}: {INIT_DB}"),
    ],
)
def test_serve_refuses_a_database_without_this_releases_schema(
    tmp_path: Path,
    served: list[tuple[Any, ...]],
    capsys: pytest.CaptureFixture[str],
    revision: str | None,
    problem: str,
) -> None:
    url = sqlite_database(tmp_path / "admin.db", revision)
    assert admin(url, "serve") == 2
    assert capsys.readouterr().err == f"perfanalysis admin serve: database {url}: {problem}\n"
    assert served == []


def test_serve_refuses_a_file_that_is_not_a_database(
    tmp_path: Path, served: list[tuple[Any, ...]], capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite\n" * 100)
    assert admin(f"sqlite:///{junk}", "serve") == 2
    assert "setting database-url: cannot read" in capsys.readouterr().err
    assert served == []


@pytest.mark.parametrize("revision", [HEAD, NEWER])
def test_serve_starts_on_this_or_a_newer_releases_schema(
    tmp_path: Path, served: list[tuple[Any, ...]], revision: str
) -> None:
    assert admin(sqlite_database(tmp_path / "admin.db", revision), "serve") == 0
    assert len(served) == 1


def test_serve_starts_while_the_database_does_not_answer(
    served: list[tuple[Any, ...]], capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL may come up later: /health reports it meanwhile, as before."""
    assert admin("postgresql://u:secret@127.0.0.1:1/x", "serve") == 0
    err = capsys.readouterr().err
    assert "the database postgresql+psycopg://u:***@127.0.0.1:1/x does not answer" in err
    assert "secret" not in err
    assert len(served) == 1


def app_on(url: str, clock: list[float]) -> Flask:
    from tenants.app import create_app
    from tenants.settings import load

    app = create_app(load([f"--secret-key={TEST_SECRET}", f"--database-url={url}"], {}))
    app.extensions["pa_schema_check"] = SchemaCheck(
        app.extensions["pa_engine"], clock=lambda: clock[0]
    )
    return app


def test_health_is_503_without_the_schema_and_ok_once_migrated(tmp_path: Path) -> None:
    clock = [0.0]
    path = tmp_path / "admin.db"
    app = app_on(sqlite_database(path, None), clock)
    try:
        client = app.test_client()
        answer = client.get("/health")
        assert answer.status_code == 503
        assert answer.get_json() == {
            "status": "down",
            "database": f"no schema (no migration has run): {INIT_DB}",
        }
        sqlite_database(path, OLDEST)
        clock[0] += 5
        assert client.get("/health").get_json()["database"] == (
            f"schema at revision {OLDEST}, this release needs {HEAD}: {INIT_DB}"
        )
        sqlite_database(path, HEAD)
        assert client.get("/health").status_code == 503  # kept a few seconds: /health is cheap
        clock[0] += 5
        answer = client.get("/health")
        assert (answer.status_code, answer.get_json()) == (200, {"status": "ok", "database": "ok"})
    finally:
        app.extensions["pa_engine"].dispose()


def test_health_of_the_test_app_is_ok(client: Any) -> None:
    answer = client.get("/health")
    assert (answer.status_code, answer.get_json()) == (200, {"status": "ok", "database": "ok"})
