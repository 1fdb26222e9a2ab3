"""The ``make up`` stack's day two: an upgrade migrates the admin database after a backup and
says so, never under a running admin or ingest (``make up`` and ``make admin ARGS=init-db``
alike), a service left running on older code is named, a stopped stack keeps its moved
addresses, the stack's hints are commands it can run, Alertmanager is ready before Prometheus
starts, and ``make up`` installs the tools the backup docs use; with stand-ins for the services
where they are not the point."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from alembic import command
from sqlalchemy import create_engine

from perfanalysis import devstack
from perfanalysis.paths import ROOT
from perfanalysis.testing.servers import free_port
from tenants.schema import alembic_config, known_revisions
from tests.support.stand_in import STAND_IN

OLD_REVISION = "0007"


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var"
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(path))
    for variable in devstack.DEFAULT_ADDRESSES:
        monkeypatch.delenv(variable, raising=False)
    return path


def stand_in_services() -> list[devstack.Service]:
    return [
        dataclasses.replace(
            service,
            argv=[sys.executable, "-c", STAND_IN, str(urlsplit(service.ready_url).port)],
            ready_url=f"http://{urlsplit(service.ready_url).netloc}/",
            env=dict,
            prepare=None,
            after_ready=None,
        )
        for service in real_services()
    ]


real_services = devstack.services


@pytest.fixture
def stand_ins(var: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The stack made of stand-ins on free ports, without setup steps; the addresses. Their
    code is a constant: other work on the checkout meanwhile changes nothing."""
    monkeypatch.setattr(devstack, "services", stand_in_services)
    monkeypatch.setattr(devstack, "setup_steps", list)
    monkeypatch.setattr(devstack, "source_digest", lambda: "the-checkouts-code")
    monkeypatch.setattr(devstack, "checkout_commit", lambda: "0123456789ab")
    chosen = {variable: f"127.0.0.1:{free_port()}" for variable in devstack.DEFAULT_ADDRESSES}
    for variable, value in chosen.items():
        monkeypatch.setenv(variable, value)
    yield chosen
    for service in stand_in_services():
        devstack.stop(service, quiet=True)


def admin(var: Path, *args: str) -> str:
    """``perfanalysis admin --dev ARGS`` on the stack's database, no InfluxDB; its output."""
    env = devstack.child_environment({})
    env.pop("PERFANALYSIS_ADMIN_INFLUXDB_URL", None)
    completed = subprocess.run(
        [*devstack.CLI, "admin", "--dev", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed.stdout


def move_schema(database: Path, revision: str) -> None:
    """The database's schema moved to ``revision``, as an older release left it (foreign keys
    unenforced, as alembic's own engine has them)."""
    url = f"sqlite:///{database}"
    config = alembic_config(url)
    with create_engine(url).begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def query(database: Path, sql: str) -> object:
    """The first column of the first row ``sql`` gives, the connection closed after."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return connection.execute(sql).fetchone()[0]


def revision_of(database: Path) -> str:
    return str(query(database, "SELECT version_num FROM alembic_version"))


def count(database: Path, table: str) -> int:
    return int(str(query(database, f"SELECT count(*) FROM {table}")))  # noqa: S608


@pytest.fixture
def older_database(var: Path) -> Path:
    """var/admin.db with a tenant, a collector and its key, moved back to OLD_REVISION."""
    var.mkdir(mode=0o700)
    admin(var, "init-db")
    admin(var, "create-tenant", "acme", "Acme")
    admin(var, "create-collector", "acme", "web-1", "--hostname", "web-1.acme.test")
    admin(var, "issue-key", "acme", "web-1", "--output", str(var / "web-1.key"))
    database = var / "admin.db"
    move_schema(database, OLD_REVISION)
    return database


# --- 1. the admin database is migrated after a backup, and said ----------------------------------


def test_up_migrates_an_older_admin_database_after_a_private_backup_and_says_so(
    older_database: Path, var: Path
) -> None:
    head = known_revisions()[0]
    keys = count(older_database, "api_keys")

    said = devstack.migrate_admin_database(devstack.services())

    assert said is not None
    assert f"migrated from revision {OLD_REVISION} to {head}" in said
    assert revision_of(older_database) == head
    [backup] = (var / "backups").iterdir()
    assert str(backup) in said
    assert backup.name.endswith(f"-revision-{OLD_REVISION}.db")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE((var / "backups").stat().st_mode) == 0o700
    assert revision_of(backup) == OLD_REVISION
    assert query(backup, "PRAGMA integrity_check") == "ok"
    # the batch migrations recreate tables: no row referencing them may go (keys did, in 0010)
    assert count(older_database, "api_keys") == keys == count(backup, "api_keys") == 1

    # at the newest revision: nothing to do
    assert devstack.migrate_admin_database(devstack.services()) is None
    assert len(list((var / "backups").iterdir())) == 1


def test_up_refuses_a_database_newer_than_the_checkout_and_starts_nothing(
    stand_ins: dict[str, str], var: Path
) -> None:
    var.mkdir(mode=0o700)
    database = var / "admin.db"
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('9999')")

    with pytest.raises(SystemExit) as refused:
        devstack.main(["up"])

    message = str(refused.value.code)
    assert f"{database} is at schema revision 9999, which this checkout does not know" in message
    assert "make up started nothing" in message
    assert all(devstack.running_pid(s) is None for s in stand_in_services())
    assert revision_of(database) == "9999"
    assert not (var / "backups").exists()


def running_pids() -> dict[str, int | None]:
    return {service.name: devstack.running_pid(service) for service in stand_in_services()}


def test_up_does_not_migrate_under_a_running_admin_and_ingest_and_says_how(
    older_database: Path,
    stand_ins: dict[str, str],
    var: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A migration that drops or renames a column would break the admin app and ingest left
    running on the old code, and they could write through it: up refuses, changing nothing."""
    head = known_revisions()[0]
    assert devstack.main(["up"]) == 0  # the first migration: nothing of the stack ran
    assert revision_of(older_database) == head
    move_schema(older_database, OLD_REVISION)  # a checkout that brings a migration, say
    pids = running_pids()
    capsys.readouterr()

    with pytest.raises(SystemExit) as refused:
        devstack.main(["up"])

    assert refused.value.code == 2
    said = capsys.readouterr().err
    assert (
        f"admin database: {older_database} is at schema revision {OLD_REVISION} and the "
        f"checkout's is {head}, but admin (pid {pids['admin']}) and ingest (pid "
        f"{pids['ingest']}) run on it: not migrated under them"
    ) in said
    assert "Restart the stack with 'make down && make up', which migrates it" in said
    assert said.rstrip().endswith("make up started nothing")
    assert revision_of(older_database) == OLD_REVISION
    assert len(list((var / "backups").iterdir())) == 1  # the first migration's alone
    assert running_pids() == pids  # nothing stopped, nothing started

    assert devstack.main(["down"]) == 0
    capsys.readouterr()
    assert devstack.main(["up"]) == 0
    assert f"admin database: migrated from revision {OLD_REVISION} to {head}" in (
        capsys.readouterr().out
    )
    assert revision_of(older_database) == head
    assert len(list((var / "backups").iterdir())) == 2


def test_only_the_services_that_open_the_admin_database_hold_its_migration_back(
    older_database: Path,
    stand_ins: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    head = known_revisions()[0]
    assert devstack.main(["up"]) == 0
    move_schema(older_database, OLD_REVISION)
    by_name = {service.name: service for service in stand_in_services()}
    devstack.stop(by_name["ingest"])
    capsys.readouterr()

    with pytest.raises(SystemExit) as refused:
        devstack.main(["up"])

    assert refused.value.code == 2
    said = capsys.readouterr().err
    assert f"but admin (pid {devstack.running_pid(by_name['admin'])}) runs on it" in said
    assert "ingest (pid" not in said
    assert devstack.running_pid(by_name["ingest"]) is None  # up started nothing
    assert revision_of(older_database) == OLD_REVISION

    devstack.stop(by_name["admin"])
    others = {name: pid for name, pid in running_pids().items() if name not in ("admin", "ingest")}
    assert None not in others.values()
    assert devstack.main(["up"]) == 0  # InfluxDB, the exporter, the sink... do not open it
    assert revision_of(older_database) == head
    assert all(running_pids()[name] == pid for name, pid in others.items())
    assert None not in running_pids().values()


def test_a_file_that_is_no_sqlite_database_is_named(var: Path) -> None:
    var.mkdir(mode=0o700)
    (var / "admin.db").write_text("not a database, but long enough to be read as a header " * 20)

    with pytest.raises(SystemExit) as refused:
        devstack.migrate_admin_database(devstack.services())

    assert f"{var / 'admin.db'}: cannot read the admin database's schema revision" in str(
        refused.value.code
    )


# --- 1. make admin ARGS=init-db migrates as up does -----------------------------------------------


def with_influxdb_passwords(var: Path) -> None:
    """The files make up writes first, without which make admin refuses to run."""
    var.mkdir(mode=0o700, exist_ok=True)
    devstack.influx_password()
    devstack.influx_ingest_password()


def test_make_admin_init_db_migrates_an_older_database_after_a_backup_and_says_so(
    older_database: Path, var: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = known_revisions()[0]
    with_influxdb_passwords(var)

    assert devstack.main(["admin", "init-db"]) == 0

    [backup] = (var / "backups").iterdir()
    assert (
        f"admin database: migrated from revision {OLD_REVISION} to {head}; as it was before: "
        f"{backup}"
    ) in capsys.readouterr().out
    assert revision_of(older_database) == head
    assert revision_of(backup) == OLD_REVISION
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE((var / "backups").stat().st_mode) == 0o700
    assert count(older_database, "api_keys") == count(backup, "api_keys") == 1


def test_make_admin_init_db_does_not_migrate_under_a_running_admin_and_ingest_and_says_how(
    older_database: Path,
    stand_ins: dict[str, str],
    var: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    head = known_revisions()[0]
    assert devstack.main(["up"]) == 0  # the first migration: nothing of the stack ran
    move_schema(older_database, OLD_REVISION)
    pids = running_pids()
    capsys.readouterr()

    assert devstack.main(["admin", "init-db"]) == 2

    said = capsys.readouterr().err
    assert (
        f"admin database: {older_database} is at schema revision {OLD_REVISION} and the "
        f"checkout's is {head}, but admin (pid {pids['admin']}) and ingest (pid "
        f"{pids['ingest']}) run on it: not migrated under them"
    ) in said
    assert (
        "Stop the stack with 'make down', then run 'make admin ARGS=init-db' again, which "
        "migrates it after a backup, or 'make up', which does so too"
    ) in said
    assert said.rstrip().endswith("make admin ARGS=init-db changed nothing")
    assert revision_of(older_database) == OLD_REVISION
    assert len(list((var / "backups").iterdir())) == 1  # the first migration's alone
    assert running_pids() == pids

    assert devstack.main(["down"]) == 0
    capsys.readouterr()
    assert devstack.main(["admin", "init-db"]) == 0
    assert f"admin database: migrated from revision {OLD_REVISION} to {head}" in (
        capsys.readouterr().out
    )
    assert revision_of(older_database) == head
    assert len(list((var / "backups").iterdir())) == 2
    assert all(pid is None for pid in running_pids().values())  # init-db starts nothing


def test_make_admin_init_db_and_make_up_do_not_run_at_once(
    older_database: Path, stand_ins: dict[str, str], var: Path
) -> None:
    """init-db holds the stack's lock while it migrates: a make up could otherwise start admin
    and ingest between its check that none runs and its migration."""
    with_influxdb_passwords(var)
    with devstack.exclusive("up"), pytest.raises(SystemExit) as refused:
        devstack.main(["admin", "init-db"])
    message = str(refused.value.code)
    assert "another 'make up', 'make down' or 'make reload' is running" in message
    assert f"(pid {os.getpid()}: make up); this 'make admin ARGS=init-db' migrated nothing" in (
        message
    )
    assert revision_of(older_database) == OLD_REVISION
    assert not (var / "backups").exists()

    with devstack.exclusive(devstack.INIT_DB), pytest.raises(SystemExit) as refused:
        devstack.main(["up"])
    message = str(refused.value.code)
    assert (
        "a 'make admin ARGS=init-db' migrating the admin database is running on "
        f"{var} (pid {os.getpid()}: make admin ARGS=init-db); this 'make up' started nothing"
    ) in message
    assert all(pid is None for pid in running_pids().values())


@pytest.mark.parametrize("database", ["missing", "at the newest revision"])
def test_make_admin_init_db_with_no_migration_due_runs_init_db_as_it_is(
    var: Path, monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    """A fresh stack's init-db creates the database: nothing to back up, nothing to refuse."""
    with_influxdb_passwords(var)
    if database != "missing":
        admin(var, "init-db")
    ran: list[list[str]] = []

    def capture(command: list[str], env: dict[str, str], check: bool) -> Any:
        ran.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(devstack.subprocess, "run", capture)
    monkeypatch.setattr(devstack, "exclusive", lambda command: pytest.fail("took the lock"))

    assert devstack.run_admin(["init-db"]) == 0

    assert ran == [[*devstack.CLI, "admin", "--dev", "init-db"]]
    assert not (var / "backups").exists()


# --- 1. a service kept running on older code is named ---------------------------------------------


def test_the_source_digest_follows_the_code_and_not_the_caches(tmp_path: Path) -> None:
    package = tmp_path / devstack.CODE_DIRECTORIES[0]
    (package / "__pycache__").mkdir(parents=True)
    (package / "module.py").write_text("A = 1\n")
    first = devstack.source_digest(tmp_path)

    (package / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"cache")
    assert devstack.source_digest(tmp_path) == first
    (package / "module.py").write_text("A = 2\n")
    changed = devstack.source_digest(tmp_path)
    assert changed != first
    (package / "new.py").write_text("")
    assert devstack.source_digest(tmp_path) not in (first, changed)


def test_up_and_status_name_services_left_running_on_older_code(
    stand_ins: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The stand-ins run the project's Python, as admin, ingest, the exporter and the sink do."""
    assert devstack.main(["up"]) == 0
    assert "older code" not in capsys.readouterr().out
    assert devstack.main(["status"]) == 0
    assert "older code" not in capsys.readouterr().out

    monkeypatch.setattr(devstack, "source_digest", lambda: "code-after-the-pull")
    monkeypatch.setattr(devstack, "checkout_commit", lambda: "ba9876543210")
    assert devstack.main(["up"]) == 0
    shown = capsys.readouterr().out
    for service in stand_in_services():
        assert (
            f"{service.name}: already running (pid {devstack.running_pid(service)}), on older "
            "code than the checkout's: started "
        ) in shown
    assert "at commit 0123456789ab; the checkout is at ba9876543210" in shown
    names = ", ".join(service.name for service in stand_in_services())
    assert f"OLDER CODE: {names} kept running" in shown
    assert "'make down && make up'" in shown

    assert devstack.main(["status"]) == 0  # still healthy: older code is no failure
    status = capsys.readouterr().out
    assert status.count("older code: started ") == len(stand_in_services())

    assert devstack.main(["down"]) == 0
    assert not list((devstack.var_dir() / "run").glob("*.code"))
    assert devstack.main(["up"]) == 0
    assert "older code" not in capsys.readouterr().out


def test_a_service_started_before_code_was_recorded_is_named_too(
    stand_ins: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert devstack.main(["up"]) == 0
    devstack.code_file("admin").unlink()
    capsys.readouterr()

    assert devstack.main(["up"]) == 0
    shown = capsys.readouterr().out
    assert "admin: already running" in shown
    assert "it was started before make up recorded the code each service runs" in shown
    assert "OLDER CODE: admin kept running" in shown


def test_a_system_program_upgraded_under_its_service_is_named(
    var: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "bin" / "influxd"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}{os.environ['PATH']}")
    service = devstack.Service("influxdb", ["influxd"], "http://127.0.0.1:1/", {})
    (var / "run").mkdir(parents=True)
    devstack.record_code(service, devstack.code_stamp(service))
    assert devstack.code_drift(service) is None

    program.write_text("#!/bin/sh\n# the package's next version\n")

    assert f"{program} was upgraded since it started" in str(devstack.code_drift(service))


# --- 9. a stopped stack keeps its moved addresses -------------------------------------------------


def test_a_stopped_stacks_admin_and_next_up_use_the_recorded_addresses_and_up_says_so(
    stand_ins: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert devstack.main(["up"]) == 0
    assert devstack.main(["down"]) == 0
    for variable in devstack.DEFAULT_ADDRESSES:
        monkeypatch.delenv(variable)
    capsys.readouterr()

    influxdb = stand_ins["PERFANALYSIS_DEV_INFLUXDB_ADDRESS"]
    assert devstack.admin_env()["PERFANALYSIS_ADMIN_INFLUXDB_URL"] == f"http://{influxdb}"
    assert devstack.main(["up"]) == 0
    shown = capsys.readouterr().out
    assert f"addresses kept from {devstack.addresses_file()}" in shown
    assert f"influxdb {influxdb}" in shown
    assert f"admin {stand_ins['PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS']}" in shown
    assert devstack.main(["status"]) == 0
    assert influxdb in capsys.readouterr().out


def test_a_hand_edited_addresses_file_is_read_for_its_known_string_entries(var: Path) -> None:
    var.mkdir()
    (var / "addresses.json").write_text(
        '{"PERFANALYSIS_DEV_INFLUXDB_ADDRESS": 8086, "UNKNOWN": "x",'
        ' "PERFANALYSIS_DEV_PROMETHEUS_ADDRESS": "127.0.0.1:19090"}'
    )
    assert devstack.recorded_addresses() == {
        "PERFANALYSIS_DEV_PROMETHEUS_ADDRESS": "127.0.0.1:19090"
    }
    assert devstack.address("PERFANALYSIS_DEV_INFLUXDB_ADDRESS") == "127.0.0.1:8086"


# --- 4. and 2. the stack's hints are commands it can run, a restore named -------------------------


def test_the_admin_clis_hints_are_shown_in_the_stacks_make_admin_form() -> None:
    from tenants.cli import OUTCOMES, _grants_summary, database_problem
    from tenants.schema import schema_problem

    grant_lines = f"demo (pa_demo): {OUTCOMES['missing']}\n{_grants_summary(['missing'])}\n"
    shown = devstack.stack_hints(grant_lines)
    assert "demo (pa_demo): no InfluxDB database: restoring a backup? restore it now" in shown
    assert devstack.INFLUXDB_RESTORE_DOC in shown
    assert "then make admin ARGS=grant-ingest-writes" in shown
    assert "else create it empty: make admin ARGS='provision-storage demo'" in shown
    assert "1 tenant without a database: restore or create it as said above" in shown
    two = devstack.stack_hints(_grants_summary(["missing", "missing"]))
    assert two.endswith("2 tenants without a database: restore or create it as said above")

    for hint in (
        schema_problem("0001"),
        schema_problem(None),
        database_problem("sqlite:///x.db", Exception("no such table: users")),
        # ingest's log, for every deployment, on a write to a missing database
        "storage answered 404: ...; else create it with perfanalysis admin provision-storage demo",
    ):
        shown = devstack.stack_hints(str(hint))
        assert "perfanalysis admin" not in shown
        assert "make admin ARGS=" in shown
    assert devstack.stack_hints(schema_problem("0001") or "").endswith(
        "run make admin ARGS=init-db"
    )


def test_up_shows_the_setup_steps_hints_in_the_stacks_form(
    stand_ins: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tenants.cli import OUTCOMES

    line = f"demo (pa_demo): {OUTCOMES['missing']}"
    step = [sys.executable, "-c", f"print({line!r})"]
    monkeypatch.setattr(devstack, "setup_steps", lambda: [(step, {})])

    assert devstack.main(["up"]) == 0

    shown = capsys.readouterr().out
    assert "run admin provision-storage" not in shown
    assert "restoring a backup? restore it now" in shown
    assert "make admin ARGS='provision-storage demo'" in shown


def test_the_restore_the_hints_name_is_in_the_operations_guide() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    heading = devstack.INFLUXDB_RESTORE_DOC.split("'")[1].replace("make up", "`make up`")
    assert f"### {heading}\n" in guide


# --- 5. Alertmanager is ready before Prometheus starts --------------------------------------------


def test_alertmanager_starts_before_prometheus_and_stops_after_it(var: Path) -> None:
    names = [service.name for service in devstack.services()]
    assert names.index("alertsink") < names.index("alertmanager") < names.index("prometheus")


def test_up_waits_for_alertmanager_to_be_ready_before_starting_prometheus(
    stand_ins: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ready_when_prometheus_started = []
    start = devstack.start

    def recording_start(service: devstack.Service) -> bool:
        if service.name == "prometheus":
            alertmanager = next(s for s in stand_in_services() if s.name == "alertmanager")
            ready_when_prometheus_started.append(devstack.healthy(alertmanager))
        return start(service)

    monkeypatch.setattr(devstack, "start", recording_start)
    assert devstack.main(["up"]) == 0
    assert ready_when_prometheus_started == [True]


# --- 6. and 3. what make up installs; what git ignores --------------------------------------------


def test_make_up_installs_the_clis_the_backup_docs_use(tmp_path: Path) -> None:
    inherited = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    plan = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "up", f"VENV={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    [packages] = [line for line in plan if "install-debian-packages.sh influxdb" in line]
    assert {"sqlite3", "influxdb-client"} <= set(packages.split())


def test_git_ignores_the_backups_and_keys_the_docs_write_into_the_checkout() -> None:
    paths = ["backups/admin-20250101T000000Z.dump", "web-1.key", "acme/web-1.key"]
    completed = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "--no-index", *paths],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.stdout.split() == paths


# --- the docs: what the audit found wrong --------------------------------------------------------

OPERATIONS = ROOT / "docs" / "operations.md"
README = ROOT / "README.md"


def test_the_backup_commands_keep_their_files_private() -> None:
    guide = OPERATIONS.read_text()
    assert "mkdir -p backups\n" not in guide  # 0755 under a usual umask; the dumps 0644
    assert guide.count("mkdir -p backups && chmod 700 backups\n") == 2  # pg_dump's, influxd's
    assert (
        "(umask 077 && sqlite3 var/admin.db \".backup 'var/backups/admin-$(date -u "
        "+%Y%m%dT%H%M%SZ).db'\")"
    ) in guide
    assert '(umask 077 && mkdir -p var/backups && influxd backup -portable -host "$rpc"' in guide


def test_the_make_up_stacks_influxdb_restore_is_documented_with_its_trap() -> None:
    guide = OPERATIONS.read_text()
    section = guide.split("### InfluxDB: the `make up` stack\n")[1].split("\n### ")[0]
    steps = [
        "\nmake down\n",
        "\nmv var/influxdb var/influxdb.before-restore",
        "\nmake up ",
        '\ninfluxd restore -portable -host "$rpc" var/backups/influxdb-',
        "\nmake admin ARGS=grant-ingest-writes",
        "\nmake admin ARGS='provision-storage --all'",
    ]
    positions = [section.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "database may already exist" in section
    assert "PERFANALYSIS_DEV_INFLUXDB_RPC_ADDRESS" in section


def test_the_guide_says_what_make_up_migrates_and_how_to_stop_the_stack() -> None:
    guide = OPERATIONS.read_text()
    assert "Only `admin init-db` creates or migrates the admin database. " not in guide
    assert "`make up` stack, which runs it after a backup in `var/backups/`" in guide
    assert "(`make down`, or the services)" not in guide
    assert "there is no target that stops one service" in guide


def test_failing_make_targets_are_not_said_to_exit_1() -> None:
    readme, guide = README.read_text(), OPERATIONS.read_text()
    assert "nothing and exits 1 at once" not in readme
    assert "or exits 1 with the error the server logged" not in readme
    assert "a file one of them refuses exits 1" not in guide
    assert "exit 1 if refused" not in (ROOT / "Makefile").read_text()


def test_disabling_a_tenant_is_documented_for_the_pages_the_api_and_the_cli() -> None:
    guide = OPERATIONS.read_text()
    assert '`PATCH /api/v1/tenants/acme` with `{"status": "disabled"}`' in guide
    assert "`admin disable-tenant acme` and `admin enable-tenant acme`" in guide
    assert "(`tenant.disable`, `tenant.enable`)" in guide


def test_the_readme_documents_the_upgrade_and_the_kept_addresses() -> None:
    readme = README.read_text()
    assert "Upgrading the stack (after a `git pull`, say): `make down && make up`." in readme
    assert "on older code than the checkout's" in readme
    assert "`var/backups/admin-<time>-revision-<old>.db`" in readme
    assert "remove that file to return to the defaults" in readme
    assert "the next `make up` takes the variables' addresses, or the defaults" not in readme


def test_the_docs_say_make_up_migrates_only_with_admin_and_ingest_stopped() -> None:
    readme = " ".join(README.read_text().split())
    assert "It never migrates under a running admin or ingest" in readme
    assert "so that the upgrade is `make down && make up`, which migrates before" in readme
    guide = " ".join(OPERATIONS.read_text().split())
    assert "never while the stack's admin or ingest runs" in guide
    assert "but keeps no backup" not in guide
    assert "`make admin ARGS=init-db` migrates it the same way" in guide
    assert "`make admin ARGS=init-db` migrates the same way" in readme
    architecture = " ".join((ROOT / "docs" / "architecture.md").read_text().split())
    assert "never under a running admin or ingest" in architecture


def test_make_admin_gives_influxdbs_passwords_only_to_the_stacks_own_influxdb(
    var: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stopped, the stack's recorded InfluxDB address may be another program's by now: a
    create-tenant would have sent it the InfluxDB admin password."""
    var.mkdir(mode=0o700)
    for name in ("influxdb-admin-password", "influxdb-ingest-password"):
        (var / name).write_text("secret-" + name + "\n")
    seen: list[dict[str, str]] = []

    def capture(command: list[str], env: dict[str, str], check: bool) -> Any:
        seen.append(env)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(devstack.subprocess, "run", capture)
    assert devstack.run_admin(["list-tenants"]) == 0
    [env] = seen
    assert "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD" not in env
    assert "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_PASSWORD" not in env
    assert "InfluxDB is not running" in capsys.readouterr().err

    monkeypatch.setattr(devstack, "_owner_runs", lambda variable: True)
    assert devstack.run_admin(["list-tenants"]) == 0
    assert seen[1]["PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD"] == devstack.influx_password()
