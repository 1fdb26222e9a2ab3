"""``perfanalysis admin``: bad input and failures end in one line naming what is wrong and
where (exit 2 for bad input, 1 at run time), never a traceback, and nothing is half-stored.

ensure-demo (what ``make up`` runs) prepares its files before anything changes and leaves no
live key nobody holds; the development secret key and its directory are checked; a label key
given twice is refused on every entry point.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from perfanalysis.config import ConfigError
from perfanalysis.testing.servers import free_port
from tenants import db as database
from tenants.errors import Invalid
from tests.conftest import TEST_SECRET

Runner = Callable[..., Result]


def keys(app: Flask) -> list[tuple[str, bool]]:
    """(key id, revoked) of every collector key."""
    from tenants.models import ApiKey

    with app.app_context():
        rows = database.session().scalars(select(ApiKey).order_by(ApiKey.id))
        return [(key.key_id, key.revoked_at is not None) for key in rows]


def tenant_slugs(app: Flask) -> list[str]:
    from tenants.models import Tenant

    with app.app_context():
        return list(database.session().scalars(select(Tenant.slug).order_by(Tenant.slug)))


def one_line(err: str) -> str:
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return err


# --- ensure-demo: files first, no orphan key (finding 2) ---------------------------------------


@pytest.mark.usefixtures("fast_password_hashing")
def test_ensure_demo_with_an_unwritable_key_file_issues_no_key_however_often_it_is_run(
    app: Flask, runner: Runner, tmp_path: Path
) -> None:
    (tmp_path / "demo-collector.key").symlink_to("/nonexistent/dir/key")
    for _ in range(3):
        result = runner("ensure-demo", "--var-dir", str(tmp_path))
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)  # a ClickException, not a traceback
        assert (
            f"cannot write the key to {tmp_path / 'demo-collector.key'}: No such file or "
            "directory; no key was issued"
        ) in result.output
    assert keys(app) == []
    assert not (tmp_path / "admin-password").exists()  # stopped before anything changed


@pytest.mark.usefixtures("fast_password_hashing")
def test_ensure_demo_revokes_a_key_it_could_not_write_and_a_rerun_leaves_one_live_key(
    app: Flask, runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenants import cli

    write = cli._replace_contents

    def disk_full(descriptor: int, text: str) -> None:  # for the key, not the password
        if text.startswith("pak_"):
            raise OSError(errno.ENOSPC, "No space left on device")
        write(descriptor, text)

    key_file = tmp_path / "demo-collector.key"
    with monkeypatch.context() as patch:
        patch.setattr(cli, "_replace_contents", disk_full)
        failed = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert failed.exit_code == 1, failed.output
    [(key_id, revoked)] = keys(app)
    assert revoked
    assert (
        f"cannot write the demo collector key to {key_file}: No space left on device; key "
        f"{key_id} was revoked"
    ) in failed.output
    assert not key_file.exists()  # a file it made and could not fill is not left to pass for one

    again = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert again.exit_code == 0, again.output
    live = [key for key, revoked in keys(app) if not revoked]
    assert len(live) == 1
    assert key_file.read_text().startswith(f"pak_{live[0]}_")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


@pytest.mark.usefixtures("fast_password_hashing")
@pytest.mark.parametrize("name", ["admin-password", "demo-collector.key"])
def test_ensure_demo_refuses_a_directory_for_its_files_before_anything_changes(
    app: Flask, runner: Runner, tmp_path: Path, name: str
) -> None:
    (tmp_path / name).mkdir()
    result = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"{tmp_path / name}: Is a directory; nothing was changed" in result.output
    assert tenant_slugs(app) == []
    assert keys(app) == []


@pytest.mark.usefixtures("fast_password_hashing")
def test_ensure_demo_keeps_the_password_file_right_when_a_later_step_fails(
    app: Flask, runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password is changed and its file put in place before the tenant is made: InfluxDB
    down at that point leaves a working password file, and no key file."""
    from tenants.accounts import get_user_by_email
    from tenants.crypto import verify_password
    from tenants.demo import ADMIN_EMAIL
    from tenants.influx import StorageError

    class Down:
        ingest_user = ""

        def provision(self, database: str, read_user: str, *, adopt: bool = False) -> str:
            raise StorageError("SHOW DATABASES", "cannot reach http://127.0.0.1:1")

    monkeypatch.setitem(app.extensions, "pa_storage", Down())
    failed = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert isinstance(failed.exception, StorageError)  # `perfanalysis admin` prints one line
    password = (tmp_path / "admin-password").read_text().strip()
    with app.app_context():
        admin = get_user_by_email(database.session(), ADMIN_EMAIL)
        assert admin is not None
        assert verify_password(admin.password_hash, password)
    assert not (tmp_path / "demo-collector.key").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["admin-password"]  # no temporary file left
    assert tenant_slugs(app) == []


@pytest.mark.usefixtures("fast_password_hashing")
def test_ensure_demo_takes_an_empty_key_file_for_a_missing_one(
    app: Flask, runner: Runner, tmp_path: Path
) -> None:
    key_file = tmp_path / "demo-collector.key"
    key_file.write_text("")
    result = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    [(key_id, _)] = keys(app)
    assert key_file.read_text().startswith(f"pak_{key_id}_")


# --- the runner: storage and database failures in one line (finding 3) ------------------------


@pytest.fixture
def admin_cli(
    app: Flask, database_url: str, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """admin_cli(*args, database_url=...) -> (exit status, standard error) of `perfanalysis
    admin` with the test database and secret unless told otherwise."""
    from tenants.cli import run

    def invoke(*args: str, url: str = database_url) -> tuple[int, str]:
        capsys.readouterr()
        status = run([f"--database-url={url}", f"--secret-key={TEST_SECRET}", *args])
        return status, capsys.readouterr().err

    return invoke


def test_influxdb_unreachable_is_one_line_naming_it_and_stores_no_tenant(
    app: Flask, admin_cli: Callable[..., tuple[int, str]]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    status, err = admin_cli(f"--influxdb.url={url}", "create-tenant", "beta", "Beta")
    assert status == 1
    assert f"cannot reach {url}" in one_line(err)
    assert tenant_slugs(app) == []


def test_a_refusing_influxdb_is_named_by_its_url(
    app: Flask, admin_cli: Callable[..., tuple[int, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenants.influx import InfluxStorage, StorageError

    def refuse(self: InfluxStorage, database: str, read_user: str) -> str:
        raise StorageError("CREATE DATABASE", "HTTP 403: forbidden", 403)

    monkeypatch.setattr(InfluxStorage, "provision", refuse)
    url = f"http://127.0.0.1:{free_port()}"
    status, err = admin_cli(f"--influxdb.url={url}", "create-tenant", "beta", "Beta")
    assert status == 1
    assert one_line(err) == (
        f"perfanalysis admin: InfluxDB: CREATE DATABASE failed: HTTP 403: forbidden "
        f"(influxdb.url {url})\n"
    )
    assert tenant_slugs(app) == []


def test_a_reserved_read_user_name_is_bad_input_and_stores_nothing(
    app: Flask, admin_cli: Callable[..., tuple[int, str]]
) -> None:
    status, err = admin_cli(
        f"--influxdb.url=http://127.0.0.1:{free_port()}", "--influxdb.admin-user=pa_beta_read",
        "--influxdb.admin-password=x", "create-tenant", "beta", "Beta",
    )  # fmt: skip
    assert status == 2
    assert (
        "cannot provision the storage of tenant beta: the read user must not be the InfluxDB "
        "admin user 'pa_beta_read'"
    ) in one_line(err)
    assert tenant_slugs(app) == []


def test_a_database_never_migrated_says_to_run_init_db(
    admin_cli: Callable[..., tuple[int, str]], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    status, err = admin_cli("create-tenant", "acme", "Acme", url=url)
    assert status == 1
    assert one_line(err) == (
        f"perfanalysis admin: admin database {url}: no such table: tenants; "
        "run: perfanalysis admin init-db\n"
    )


def test_an_unreachable_database_is_named_without_its_password(
    admin_cli: Callable[..., tuple[int, str]],
) -> None:
    port = free_port()
    status, err = admin_cli("init-db", url=f"postgresql://pa:s3cret-pw@127.0.0.1:{port}/x")
    assert status == 1
    assert f"admin database postgresql+psycopg://pa:***@127.0.0.1:{port}/x: " in one_line(err)
    assert "s3cret-pw" not in err


def test_a_directory_for_a_sqlite_database_is_one_line(
    admin_cli: Callable[..., tuple[int, str]], tmp_path: Path
) -> None:
    status, err = admin_cli("init-db", url=f"sqlite:///{tmp_path}")
    assert status == 1
    assert f"admin database sqlite:///{tmp_path}: unable to open database file" in one_line(err)


# --- exit 2 for a value refused; the missing tenant named (finding 14) ------------------------


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [(["create-tenant", "Bad Slug", "x"], 2, "slug must be 1-40 lowercase letters"),
     (["create-collector", "acme", "w1", "--hostname", "w1", "--vcpus", "-3"], 2,
      "vcpus must be between 1 and 4,096"),
     (["create-collector", "nope", "w1", "--hostname", "w1"], 1, "no such tenant 'nope'"),
     (["issue-key", "nope", "w1"], 1, "no such tenant 'nope'"),
     (["set-ingest-limits", "acme", "--rate", "lots"], 2, "ingest_rate must be a number"),
     (["create-tenant", "acme", "Again"], 1, "a tenant with slug 'acme' already exists")],
)  # fmt: skip
def test_a_refused_value_exits_2_and_a_missing_tenant_is_named(
    make_tenant: Any, admin_cli: Callable[..., tuple[int, str]], args: list[str], status: int,
    message: str,
) -> None:  # fmt: skip
    make_tenant("acme")
    got, err = admin_cli(*args)
    assert got == status
    assert message in one_line(err)


# --- labels: a key given twice is refused everywhere (finding 12) ------------------------------


def test_a_label_given_twice_on_the_command_line_is_refused_naming_it(
    app: Flask, make_tenant: Any, runner: Runner, admin_cli: Callable[..., tuple[int, str]]
) -> None:
    make_tenant("acme")
    args = ["create-collector", "acme", "w6", "--hostname", "w6", "--label", "a=1"]
    status, err = admin_cli(*args, "--label", "a=2")
    assert status == 2
    assert one_line(err) == "perfanalysis admin: labels: label a is given twice ('1' and '2')\n"
    kept = runner(*args, "--label", "team=db,web")  # a value may hold a comma
    assert kept.exit_code == 0, kept.output
    from tenants.models import Collector

    with app.app_context():
        [collector] = database.session().scalars(select(Collector))
        assert collector.labels == {"a": "1", "team": "db,web"}


def test_the_forms_labels_refuse_a_key_given_twice_as_the_command_line_does() -> None:
    from tenants.validation import labels

    with pytest.raises(Invalid) as refused:
        labels("env=prod, a=1, a=2")
    assert refused.value.message == "labels: label a is given twice ('1' and '2')"
    assert refused.value.field == "labels"
    with pytest.raises(Invalid, match="label a is given twice"):
        labels(["a=1", "a=2"])
    assert labels("env=prod, team=db") == {"env": "prod", "team": "db"}


def test_a_json_object_naming_a_key_twice_can_be_refused() -> None:
    """For the API's JSON body, which json.loads would otherwise keep the last of."""
    from tenants.validation import unique_keys

    with pytest.raises(Invalid, match="the key 'a' is given twice"):
        json.loads('{"labels": {"a": "1", "a": "2"}}', object_pairs_hook=unique_keys)
    assert json.loads('{"a": {"a": 1}}', object_pairs_hook=unique_keys) == {"a": {"a": 1}}


# --- the development state directory and secret key (finding 15) ------------------------------


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    var = tmp_path / "var"
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(var))
    return var


def dev_settings() -> dict[str, Any]:
    from tenants.settings import load

    return load(["--dev"], {})


def refusal() -> str:
    with pytest.raises(ConfigError) as refused:
        dev_settings()
    [error] = refused.value.errors
    assert "PERFANALYSIS_VAR_DIR" in error
    return error


def test_an_empty_var_dir_is_refused_rather_than_taken_for_the_current_directory(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenants.cli import run

    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", "")
    assert refusal().startswith("PERFANALYSIS_VAR_DIR: is empty")
    assert run(["--dev", f"--database-url=sqlite:///{state.parent / 'a.db'}", "init-db"]) == 2
    assert "PERFANALYSIS_VAR_DIR: is empty" in capsys.readouterr().err
    assert not (state.parent / "dev-secret-key").exists()


def test_a_var_dir_that_is_a_file_is_named(state: Path) -> None:
    state.write_text("")
    assert refusal() == (
        f"PERFANALYSIS_VAR_DIR ({state}): cannot keep the development secret key in "
        f"{state / 'dev-secret-key'}: Not a directory"
    )


def test_a_secret_key_path_that_is_a_directory_is_named(state: Path) -> None:
    (state / "dev-secret-key").mkdir(parents=True)
    assert refusal().endswith(f"{state / 'dev-secret-key'}: Is a directory")


@pytest.mark.parametrize(("text", "said"), [("", "is empty"), ("short\n", "has 5 characters")])
def test_an_empty_or_short_development_secret_key_is_refused(
    state: Path, text: str, said: str
) -> None:
    state.mkdir()
    (state / "dev-secret-key").write_text(text)
    error = refusal()
    assert f"the development secret key in {state / 'dev-secret-key'} {said}" in error
    assert "remove the file to have a new key made" in error
    assert (state / "dev-secret-key").read_text() == text  # refused, never replaced


def test_the_development_secret_key_is_made_whole_or_not_at_all(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", failing_fsync)
        assert refusal().endswith("No space left on device")
    assert list(state.iterdir()) == []  # neither an empty key file nor a temporary one

    first = dev_settings()["secret_key"]
    path = state / "dev-secret-key"
    assert len(first) >= 32
    assert path.read_text() == first + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dev_settings()["secret_key"] == first
    assert [p.name for p in state.iterdir()] == ["dev-secret-key"]


@pytest.mark.usefixtures("fast_password_hashing")
def test_ensure_demo_replaces_a_key_the_database_no_longer_knows_and_keeps_a_live_one(
    app: Flask, runner: Runner, tmp_path: Path
) -> None:
    """After the admin database was restored from before the key (or the key was revoked), make
    up would otherwise keep handing the exporter a key that ingest refuses."""
    key_file = tmp_path / "demo-collector.key"
    first = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert first.exit_code == 0, first.output
    kept = key_file.read_text()
    again = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert again.exit_code == 0, again.output
    assert key_file.read_text() == kept
    assert len(keys(app)) == 1

    key_file.write_text("pak_" + "a" * 13 + "_" + "b" * 43 + "\n")  # from another database
    replaced = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert replaced.exit_code == 0, replaced.output
    assert "no longer works (invalid collector key): a new one replaces it" in replaced.output
    [(_, revoked), (live, _)] = keys(app)
    assert revoked  # nobody holds it now
    assert key_file.read_text().startswith(f"pak_{live}_")


def test_an_option_given_twice_is_refused_and_nothing_is_made(app: Flask, runner: Runner) -> None:
    result = runner("create-tenant", "acme", "Acme")
    assert result.exit_code == 0, result.output
    twice = runner("create-collector", "acme", "web-1", "--hostname", "a.test", "--hostname=b.test")
    assert twice.exit_code == 2
    assert "--hostname is given twice: give it once" in twice.output
    labels = runner("create-collector", "acme", "web-1", "--hostname", "--hostname",
                    "--label", "env=prod", "--label", "team=web")  # fmt: skip
    assert "must be a DNS hostname" in str(labels.exception)  # "--hostname" was its value
    once = runner("create-collector", "acme", "web-1", "--hostname", "b.test")
    assert once.exit_code == 0, once.output  # the name was not taken by the refused ones
