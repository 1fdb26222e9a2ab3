"""Bad input at start-up refused, saying what and where, and no data lost on the way:

- PROMETHEUS_MULTIPROC_DIR: ingest removes only prometheus_client's own files there (it removed
  every *.db file, the SQLite admin database too), and refuses, exit 2, a path that is not a
  writable directory or a directory holding the admin database or other *.db files;
- --redis-url (admin and ingest): checked whole at start, as redis-py reads it (a bad port
  killed every gunicorn worker with a traceback);
- --web.listen-address: a port of ASCII digits only (":٨٠٨٠" listened on 8080).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ingest.main
from ingest.main import MULTIPROC_ENV, prepare_metrics_dir, run
from perfanalysis.config import ConfigError, listen_address

SECRET = "s" * 40
METRICS_FILES = (
    "counter_101.db",
    "histogram_101.db",
    "summary_101.db",
    "gauge_all_101.db",
    "gauge_livemin_102.db",
    "gauge_livemostrecent_7.db",
)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith(("PERFANALYSIS_", "PROMETHEUS_"))]:
        monkeypatch.delenv(name)
    for name in ("DATABASE_URL", "REDIS_URL", "prometheus_multiproc_dir"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path / "var"))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """ingest.main.run up to gunicorn, the metrics directory prepared as it would be."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ingest.main, "serve", calls.append)
    return calls


def admin_database(path: Path) -> str:
    """A SQLite file with a row in it; its URL."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE kept (value TEXT)")
    connection.execute("INSERT INTO kept VALUES ('precious')")
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def rows(path: Path) -> list[tuple[str]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return connection.execute("SELECT value FROM kept").fetchall()
    finally:
        connection.close()


# ----------------------------------------------------------------------------------------------
# PROMETHEUS_MULTIPROC_DIR


def test_only_prometheus_client_files_are_removed_from_the_metrics_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    for name in METRICS_FILES:
        (directory / name).write_bytes(b"\0" * 8)
    kept = ("other.db", "counter_.db", "counter_12x.db", "gauge_weird_1.db", "counter_1.db-wal")
    for name in kept:
        (directory / name).write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))

    assert prepare_metrics_dir() == (str(directory), False)
    assert sorted(path.name for path in directory.iterdir()) == sorted(kept)


def test_the_admin_database_in_the_metrics_directory_is_refused_and_kept(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_environment: None,
    served: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The auditor's case: PERFANALYSIS_INGEST_DATABASE_URL=sqlite:////tmp/x/admin.db with
    PROMETHEUS_MULTIPROC_DIR=/tmp/x deleted the admin database."""
    directory = tmp_path / "x"
    directory.mkdir()
    url = admin_database(directory / "admin.db")
    (directory / "counter_5.db").write_bytes(b"\0" * 8)
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    monkeypatch.setenv("PERFANALYSIS_INGEST_DATABASE_URL", url)

    assert run([f"--secret-key={SECRET}"]) == 2
    err = capsys.readouterr().err
    assert "perfanalysis ingest: invalid configuration:" in err
    assert (
        f"{MULTIPROC_ENV} ({directory}): holds the admin database {directory / 'admin.db'}" in err
    )
    assert "Traceback" not in err
    assert rows(directory / "admin.db") == [("precious",)]
    assert (directory / "counter_5.db").exists()  # refused before anything was removed
    assert served == []


def test_the_admin_database_is_found_through_a_relative_path_or_a_file_uri(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_environment: None,
    served: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    admin_database(directory / "admin.sqlite")  # not a *.db name: refused all the same
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    for url in (
        "sqlite:///shared/admin.sqlite",
        f"sqlite:///file:{directory}/admin.sqlite?uri=true",
    ):
        assert run([f"--secret-key={SECRET}", f"--database-url={url}"]) == 2
        assert "holds the admin database" in capsys.readouterr().err
    assert rows(directory / "admin.sqlite") == [("precious",)]
    assert served == []


def test_other_db_files_in_the_metrics_directory_are_refused_and_kept(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_environment: None,
    served: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """prometheus_client reads every *.db file there: another one would fail /metrics."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "notes.db").write_text("someone's")
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    url = admin_database(tmp_path / "admin.db")

    assert run([f"--secret-key={SECRET}", f"--database-url={url}"]) == 2
    err = capsys.readouterr().err
    assert f"{MULTIPROC_ENV} ({directory}): holds notes.db, not prometheus_client's" in err
    assert (directory / "notes.db").read_text() == "someone's"
    assert served == []


def test_a_metrics_directory_of_its_own_is_cleared_of_metrics_files_and_served(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_environment: None,
    served: list[dict[str, Any]],
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    for name in METRICS_FILES:
        (directory / name).write_bytes(b"\0" * 8)
    (directory / "README").write_text("kept")
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    url = admin_database(tmp_path / "admin.db")

    assert run([f"--secret-key={SECRET}", f"--database-url={url}"]) == 0
    assert len(served) == 1
    assert [path.name for path in directory.iterdir()] == ["README"]
    missing = tmp_path / "made" / "here"
    monkeypatch.setenv(MULTIPROC_ENV, str(missing))
    assert run([f"--secret-key={SECRET}", f"--database-url={url}"]) == 0
    assert missing.is_dir()


@pytest.mark.parametrize("under_a_file", [False, True])
def test_a_metrics_path_that_is_not_a_directory_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_environment: None,
    served: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    under_a_file: bool,
) -> None:
    regular = tmp_path / "regular"
    regular.write_text("a file")
    given = regular / "metrics" if under_a_file else regular
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    url = admin_database(tmp_path / "admin.db")

    assert run([f"--secret-key={SECRET}", f"--database-url={url}"]) == 2
    err = capsys.readouterr().err
    assert f"{MULTIPROC_ENV} ({given}): " in err
    assert "Not a directory" in err or "not a directory" in err
    assert regular.read_text() == "a file"
    assert served == []


def test_a_metrics_directory_this_user_cannot_write_in_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_environment: None,
    served: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    checked = os.access
    monkeypatch.setattr(  # as for another user's 0755 directory (root may write anywhere)
        os,
        "access",
        lambda path, mode, **kw: False if Path(path) == directory else checked(path, mode, **kw),
    )
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    url = admin_database(tmp_path / "admin.db")

    assert run([f"--secret-key={SECRET}", f"--database-url={url}"]) == 2
    assert f"{MULTIPROC_ENV} ({directory}): not writable by this user" in capsys.readouterr().err
    assert served == []


def test_the_ingest_command_refuses_a_metrics_path_that_is_a_file_without_a_traceback(
    tmp_path: Path,
) -> None:
    regular = tmp_path / "regular"
    regular.write_text("a file")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PERFANALYSIS_", "PROMETHEUS_"))
        and key not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        PERFANALYSIS_VAR_DIR=str(tmp_path / "var"),
        PERFANALYSIS_INGEST_SECRET_KEY=SECRET,
        PERFANALYSIS_INGEST_DATABASE_URL=admin_database(tmp_path / "admin.db"),
        PROMETHEUS_MULTIPROC_DIR=str(regular),
    )
    done = subprocess.run(
        [sys.executable, "-m", "ingest.main"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert f"{MULTIPROC_ENV} ({regular}): not a directory" in done.stderr
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------------------------
# --redis-url, admin and ingest

BAD_REDIS_URLS = [
    ("redis://:99999", "port '99999' is not a number from 1 to 65535"),
    ("redis://h:abc", "port 'abc' is not a number from 1 to 65535"),
    ("redis://h:0/0", "port '0' is not a number from 1 to 65535"),  # redis-py: 6379
    ("redis://h:/0", "port '' is not a number"),
    ("redis://h:+80", "port '+80' is not a number"),
    ("redis://h:٨٠", "port '٨٠' is not a number"),
    ("redis://:6379/0", "no host in the URL"),
    ("redis://h:6379/abc", "the path '/abc' is not a database number"),  # redis-py: db 0
    ("redis://h:6379/1/2", "the path '/1/2' is not a database number"),  # redis-py: db 12
    ("redis://h:6379/٣", "the path '/٣' is not a database number"),
    ("redis://h:6379?db=x", "db='x' in the query is not a database number"),
    ("redis://h:6379?db=-1", "db='-1' in the query is not a database number"),
    ("redis://h:6379/0?frobnicate=1", "unknown query parameter 'frobnicate'"),
    ("redis://h:6379/0?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
    ("rediss://h:6380/0?ssl_cert_reqs=sometimes", "Invalid SSL Certificate Requirements"),
    ("redis://:pa#ss@h:6379/0", "write a # in a password as %23"),
    ("redis://:pa/ss@h:6379/0", "write a / in a password as %2F"),
    ("redis://h:6379/0\n", "must not hold whitespace or control characters"),
    ("redis://[::1:6379/0", "not a URL"),
    ("unix://var/run/redis.sock", "names a socket by its absolute path"),
    ("unix://", "no socket path"),
    ("http://h:6379", "expected a redis://HOST[:PORT][/DB]"),
    ("redis:h", "expected a redis://HOST[:PORT][/DB]"),
]
GOOD_REDIS_URLS = [
    "redis://h",
    "redis://h:6379",
    "redis://h:6379/",
    "redis://h:6379/15",
    "redis://:pass%2Fword@redis:6379/0",
    "redis://user:pw@[::1]:6379/0?socket_timeout=2",
    "rediss://h:6380/1?ssl_cert_reqs=none",
    "unix:///run/redis/redis.sock",
    "unix:///run/redis/redis.sock?db=3",
]


def admin_load(argv: list[str], environ: dict[str, str]) -> dict[str, Any]:
    from tenants.settings import load

    return load(argv, {"PERFANALYSIS_ADMIN_SECRET_KEY": SECRET, **environ})


def ingest_load(argv: list[str], environ: dict[str, str]) -> dict[str, Any]:
    from ingest.settings import load

    return load(argv, {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET, **environ})


LOADERS = {
    "admin": (admin_load, "PERFANALYSIS_ADMIN_"),
    "ingest": (ingest_load, "PERFANALYSIS_INGEST_"),
}


@pytest.mark.parametrize("component", sorted(LOADERS))
@pytest.mark.parametrize(("url", "problem"), BAD_REDIS_URLS)
def test_a_bad_redis_url_is_refused_naming_the_flag_and_the_problem(
    clean_environment: None, component: str, url: str, problem: str
) -> None:
    load, prefix = LOADERS[component]
    with pytest.raises(ConfigError) as caught:
        load([f"--redis-url={url}"], {})
    [error] = caught.value.errors
    assert error.startswith(f"flag --redis-url: invalid value {url!r}: ")
    assert problem in error
    with pytest.raises(ConfigError) as caught:
        load([], {f"{prefix}REDIS_URL": url})
    [error] = caught.value.errors
    assert error.startswith(f"environment variable {prefix}REDIS_URL: ")
    assert problem in error


@pytest.mark.parametrize("component", sorted(LOADERS))
@pytest.mark.parametrize(
    "url",
    ["redis://:hunter2@cache:99999/0", "redis://app:hunter2@cache/0#x", "rediss://u:hunter2@"],
)
def test_a_refused_redis_url_is_shown_without_its_password(
    clean_environment: None, component: str, url: str
) -> None:
    load, prefix = LOADERS[component]
    for argv, environ in (([f"--redis-url={url}"], {}), ([], {f"{prefix}REDIS_URL": url})):
        with pytest.raises(ConfigError) as caught:
            load(argv, environ)
        [error] = caught.value.errors
        assert "hunter2" not in error
        assert ":***@" in error


@pytest.mark.parametrize("component", sorted(LOADERS))
@pytest.mark.parametrize("url", GOOD_REDIS_URLS)
def test_a_good_redis_url_is_kept_as_written_and_redis_py_takes_it(
    clean_environment: None, component: str, url: str
) -> None:
    import redis

    load, _ = LOADERS[component]
    assert load([f"--redis-url={url}"], {})["redis_url"] == url
    assert load([], {"REDIS_URL": url})["redis_url"] == url
    pool = redis.ConnectionPool.from_url(url)
    pool.make_connection()  # what a worker does first (without connecting)
    pool.disconnect()
    assert load([], {})["redis_url"] == ""


def test_ingest_refuses_a_redis_port_out_of_range_instead_of_starting_workers_that_die(
    tmp_path: Path,
    clean_environment: None,
    served: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest.main, "prepare_metrics_dir", lambda: (str(tmp_path), False))
    url = admin_database(tmp_path / "admin.db")
    assert (
        run([f"--secret-key={SECRET}", f"--database-url={url}", "--redis-url=redis://:99999"]) == 2
    )
    err = capsys.readouterr().err
    assert "flag --redis-url: invalid value 'redis://:99999': port '99999'" in err
    assert served == []


def test_admin_commands_refuse_a_bad_redis_url(
    tmp_path: Path, clean_environment: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenants.cli import run as admin

    url = f"sqlite:///{tmp_path / 'admin.db'}"
    for command in ("init-db", "serve"):
        code = admin(
            [
                f"--secret-key={SECRET}",
                f"--database-url={url}",
                "--redis-url=redis://h:abc",
                command,
            ]
        )
        assert code == 2
        assert (
            "flag --redis-url: invalid value 'redis://h:abc': port 'abc'" in capsys.readouterr().err
        )
    assert not (tmp_path / "admin.db").exists()


# ----------------------------------------------------------------------------------------------
# --web.listen-address


@pytest.mark.parametrize("port", ["٨٠٨٠", "+80", " 80", "80 ", "8_0", "-0", "\uff18\uff10", ""])
def test_a_listen_port_not_written_in_ascii_digits_is_refused(port: str) -> None:
    with pytest.raises(ValueError, match="is not a number \\(digits 0-9 only\\)"):
        listen_address(f"127.0.0.1:{port}")


def test_listen_ports_in_ascii_digits_from_0_to_65535_are_accepted() -> None:
    assert listen_address(":0") == ("", 0)  # any free port, as before
    assert listen_address(":0080") == ("", 80)
    assert listen_address("[::1]:65535") == ("::1", 65535)
    for port in ("65536", "99999999999", "9" * 5000):
        with pytest.raises(ValueError, match="out of range 0-65535"):
            listen_address(f":{port}")


@pytest.mark.parametrize("component", ["admin", "ingest", "exporter"])
def test_each_server_names_the_listen_address_flag_for_a_port_in_other_digits(
    clean_environment: None, component: str
) -> None:
    from exporter.config import load as exporter_load

    load = {"admin": admin_load, "ingest": ingest_load}.get(
        component, lambda argv, env: exporter_load(argv, env)
    )
    with pytest.raises(ConfigError) as caught:
        load(["--web.listen-address=:٨٠٨٠"], {})
    assert caught.value.errors == [
        "flag --web.listen-address: invalid value ':٨٠٨٠': port '٨٠٨٠' is not a number "
        "(digits 0-9 only)"
    ]
