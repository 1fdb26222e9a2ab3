"""ingest and a mistyped or unmigrated admin database: a SQLite file that is not there is
refused at start-up (SQLite would create an empty one), and /health reports a schema that is
missing or older than this release's, with the command that migrates it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from ingest.app import create_app
from ingest.settings import load
from perfanalysis.config import ConfigError
from tenants.schema import SchemaCheck
from tenants.tenancy import MAX_INGEST_BURST, MAX_INGEST_RATE
from tests.support.schema_states import HEAD, NEWER, OLDEST, sqlite_database

SECRET = "s" * 40
INIT_DB = "run perfanalysis admin init-db"


@pytest.fixture
def no_ingest_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("PERFANALYSIS_INGEST_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path / "var"))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """ingest.main.run up to gunicorn: what it would have served, instead of serving it."""
    import ingest.main

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ingest.main, "serve", calls.append)
    monkeypatch.setattr(ingest.main, "prepare_metrics_dir", lambda: (str(tmp_path), False))
    return calls


def test_a_sqlite_file_that_is_not_there_is_refused_and_not_created(
    tmp_path: Path,
    no_ingest_environment: None,
    served: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ingest.main import run

    typo = tmp_path / "typo.db"
    assert run([f"--secret-key={SECRET}", f"--database-url=sqlite:///{typo}"]) == 2
    err = capsys.readouterr().err
    assert "perfanalysis ingest: invalid configuration:" in err
    assert f"setting database-url: no SQLite database at {typo}" in err
    assert "perfanalysis admin init-db creates it" in err
    assert not typo.exists()
    assert run([f"--secret-key={SECRET}", f"--database-url=sqlite:///{tmp_path}"]) == 2
    assert f"setting database-url: {tmp_path} is a directory" in capsys.readouterr().err
    assert served == []


def test_an_unmigrated_database_does_not_stop_ingest_from_starting(
    tmp_path: Path, no_ingest_environment: None, served: list[dict[str, Any]]
) -> None:
    """Nothing orders ingest after init-db on Kubernetes: /health says it, start-up does not."""
    from ingest.main import run

    url = sqlite_database(tmp_path / "empty.db", None)
    assert run([f"--secret-key={SECRET}", f"--database-url={url}"]) == 0
    assert [settings["database_url"] for settings in served] == [url]


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    apps: list[Flask] = []

    def make(database_url: str, clock: list[float]) -> Flask:
        app = create_app(load([f"--secret-key={SECRET}", f"--database-url={database_url}"], {}))
        context = app.extensions["ingest"]
        monkeypatch.setattr(context.writer, "health", lambda: "ok")  # storage is not the point
        context.schema = SchemaCheck(context.engine, clock=lambda: clock[0])
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["ingest"].close()


def health(app: Flask) -> tuple[int, Any]:
    """Status and the findings by name (InfluxDB 2.x's name, message, checks and version aside)."""
    response = app.test_client().get("/health")
    body = response.get_json()
    return response.status_code, {k: body[k] for k in ("status", "storage", "database")}


def test_health_is_503_without_the_schema_and_ok_once_migrated(
    tmp_path: Path, make_app: Any
) -> None:
    clock = [0.0]
    path = tmp_path / "admin.db"
    app = make_app(sqlite_database(path, None), clock)
    assert health(app) == (
        503,
        {"status": "fail", "storage": "ok",
         "database": f"no schema (no migration has run): {INIT_DB}"},
    )  # fmt: skip
    sqlite_database(path, HEAD)  # init-db runs
    assert health(app)[0] == 503  # the answer is kept a few seconds: /health stays cheap
    clock[0] += 5
    assert health(app) == (200, {"status": "pass", "storage": "ok", "database": "ok"})


def test_health_is_503_on_an_older_schema(tmp_path: Path, make_app: Any) -> None:
    app = make_app(sqlite_database(tmp_path / "admin.db", OLDEST), [0.0])
    status, body = health(app)
    assert status == 503
    assert body["database"] == f"schema at revision {OLDEST}, this release needs {HEAD}: {INIT_DB}"


def test_health_takes_a_newer_releases_schema(
    tmp_path: Path, make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A rolling upgrade migrates before the new replicas start; the old ones keep serving."""
    app = make_app(sqlite_database(tmp_path / "admin.db", NEWER), [0.0])
    with caplog.at_level(logging.WARNING, logger="tenants.schema"):
        assert health(app) == (200, {"status": "pass", "storage": "ok", "database": "ok"})
    assert f"revision {NEWER}, newer than this release knows" in caplog.text


# ----------------------------------------------------------------------------------------------
# limits.rate and limits.burst: the admin app's range for a tenant's own


def limit_errors(*argv: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load([f"--secret-key={SECRET}", "--database-url=sqlite:///x.db", *argv], {})
    return caught.value.errors


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "-1", "1e10", "1e400"])
def test_a_rate_that_is_not_a_finite_number_in_range_is_refused(text: str) -> None:
    assert limit_errors(f"--limits.rate={text}") == [
        f"flag --limits.rate: invalid value {text!r}: must be from 0 (no limit) to "
        "1,000,000,000 points per second"
    ]


@pytest.mark.parametrize("text", ["0", "100000001"])
def test_a_burst_out_of_the_admin_apps_range_is_refused(text: str) -> None:
    assert limit_errors(f"--limits.burst={text}") == [
        f"flag --limits.burst: invalid value {text!r}: must be from 1 to 100,000,000 points"
    ]


def test_the_admin_apps_limits_are_accepted() -> None:
    base = [f"--secret-key={SECRET}", "--database-url=sqlite:///x.db"]
    values = load([*base, "--limits.rate=0", "--limits.burst=1"], {})
    assert (values["limits_rate"], values["limits_burst"]) == (0.0, 1)
    top = load(
        [*base, f"--limits.rate={MAX_INGEST_RATE:g}", f"--limits.burst={MAX_INGEST_BURST}"], {}
    )
    assert (top["limits_rate"], top["limits_burst"]) == (MAX_INGEST_RATE, MAX_INGEST_BURST)


def test_a_write_the_database_cannot_check_is_503_with_retry_after(
    tmp_path: Path, make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Not 500: a database restarting or not migrated yet is retried, as storage down is."""
    app = make_app(sqlite_database(tmp_path / "admin.db", None), [0.0])
    client = app.test_client()
    key = "pak_" + "a" * 13 + "_" + "b" * 43  # well-formed: only the database can refuse it
    with caplog.at_level(logging.WARNING, logger="ingest.writeapi"):
        for _ in range(2):
            response = client.post("/api/v2/write", data=b"cpu value=1",
                                   headers={"Authorization": f"Token {key}"})  # fmt: skip
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "5"
            message = response.get_json()["message"]
            assert "the admin database, which holds the collector keys, cannot be read" in message
    assert caplog.text.count("cannot check collector keys") == 1  # not once per request


def test_metrics_are_served_with_one_charset(tmp_path: Path, make_app: Any) -> None:
    """Prometheus refuses a Content-Type with a parameter given twice ("charset" was)."""
    app = make_app(sqlite_database(tmp_path / "admin.db", HEAD), [0.0])
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
