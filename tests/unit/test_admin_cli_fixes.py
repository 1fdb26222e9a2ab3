"""``perfanalysis admin``, an auditor's findings: a re-issued demo key retires the ones before it,
a mistyped command is named, --output makes no directories, the grants summary says what is
already granted, and create-user without a password says why it stops.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from tenants import db as database

Runner = Callable[..., Result]

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def keys(app: Flask) -> dict[str, bool]:
    """Key id -> revoked, of every collector key."""
    from tenants.models import ApiKey

    with app.app_context():
        rows = database.session().scalars(select(ApiKey).order_by(ApiKey.id))
        return {key.key_id: key.revoked_at is not None for key in rows}


def key_id_in(key_file: Path) -> str:
    return key_file.read_text().split("_")[1]


# --- 1: a re-issued demo key revokes the demo collector's earlier ones --------------------------


def test_ensure_demo_revokes_the_earlier_key_when_an_emptied_key_file_gets_a_new_one(
    app: Flask, runner: Runner, tmp_path: Path
) -> None:
    from tenants.models import AuditEvent

    key_file = tmp_path / "demo-collector.key"
    assert runner("ensure-demo", "--var-dir", str(tmp_path)).exit_code == 0
    old = key_id_in(key_file)
    key_file.write_text("")

    again = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert again.exit_code == 0, again.output
    new = key_id_in(key_file)
    assert keys(app) == {old: True, new: False}
    assert f"key id {new} written to {key_file}; earlier key {old} revoked" in again.output
    with app.app_context():
        revocations = database.session().scalars(
            select(AuditEvent).where(AuditEvent.action == "key.revoke")
        )
        assert [(e.actor, e.target_id) for e in revocations] == [("make up", old)]


def test_ensure_demo_writes_the_new_key_before_revoking_the_old_so_a_failure_keeps_one_working(
    app: Flask, runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from tenants import keys as key_module

    def database_gone(*args: Any) -> list[str]:
        raise OperationalError("UPDATE api_keys", {}, Exception("database is locked"))

    key_file = tmp_path / "demo-collector.key"
    assert runner("ensure-demo", "--var-dir", str(tmp_path)).exit_code == 0
    old = key_id_in(key_file)
    key_file.write_text("")
    monkeypatch.setattr(key_module, "revoke_keys", database_gone)

    failed = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert failed.exit_code == 1, failed.output
    new = key_id_in(key_file)
    assert keys(app) == {old: False, new: False}  # the exporter's new key works
    assert f"key {new} was written to {key_file}, but the demo collector's earlier keys " in (
        failed.output
    )
    assert f"perfanalysis admin revoke-key demo {old}" in failed.output


# --- 2: a mistyped command is named, not answered with the whole help --------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [(["frobnicate"], "No such command 'frobnicate'."),
     (["--dev", "issue-kye", "acme", "web-1"], "No such command 'issue-kye'. (Did you mean one of: 'issue-key', 'issue-token'?)"),
     (["--database-url", "sqlite:///x.db", "frobnicate", "--help"], "No such command 'frobnicate'.")],
)  # fmt: skip
def test_a_mistyped_command_is_named_on_standard_error_with_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    from tenants.cli import run

    assert run(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("Usage: perfanalysis admin [settings] COMMAND [args]\n")
    assert err.endswith(f"Error: {named}\n")
    assert err.count("\n") <= 4


def test_the_installed_command_names_a_mistyped_one(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "perfanalysis.cli", "admin", "frobnicate"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Error: No such command 'frobnicate'." in done.stderr


@pytest.mark.parametrize(
    ("args", "status"), [([], 0), (["--help"], 0), (["--help", "frobnicate"], 0), (["--dev"], 2)]
)
def test_no_command_still_shows_the_help(
    capsys: pytest.CaptureFixture[str], args: list[str], status: int
) -> None:
    from tenants.cli import run

    assert run(args) == status
    assert capsys.readouterr().out.startswith("Usage: perfanalysis admin [settings] COMMAND")


# --- 3: --output writes into a directory that exists, or issues nothing ------------------------


@pytest.fixture
def web_1(runner: Runner, make_tenant: Any) -> None:
    make_tenant("acme")
    assert runner("create-collector", "acme", "web-1", "--hostname", "web-1.test").exit_code == 0


@pytest.mark.usefixtures("web_1")
@pytest.mark.parametrize(
    "command",
    [
        ["issue-key", "acme", "web-1"],
        ["issue-token", "--email", "ops@example.test", "--name", "ci"],
    ],
)
def test_output_into_a_missing_directory_is_refused_and_nothing_is_issued(
    app: Flask, runner: Runner, make_user: Any, tmp_path: Path, command: list[str]
) -> None:
    from tenants.models import ApiToken

    make_user("ops@example.test")
    missing = tmp_path / "no" / "such"
    result = runner(*command, "--output", str(missing / "secret"))
    assert result.exit_code == 1, result.output
    what = command[0].removeprefix("issue-")
    assert result.output == (
        f"Error: cannot write the {what} to {missing / 'secret'}: directory {missing} does not "
        f"exist; no {what} was issued\n"
    )
    assert not (tmp_path / "no").exists()
    assert keys(app) == {}
    with app.app_context():
        assert database.session().scalars(select(ApiToken)).all() == []


def test_ensure_demo_makes_its_own_state_directory(
    app: Flask, runner: Runner, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    result = runner("ensure-demo", "--var-dir", str(var))
    assert result.exit_code == 0, result.output
    assert keys(app) == {key_id_in(var / "demo-collector.key"): False}
    assert (var / "admin-password").is_file()
    assert var.stat().st_mode & 0o777 == 0o700


# --- 4: the grants summary says what was already granted ---------------------------------------


class Granting:
    """InfluxDB as grant-ingest-writes sees it: an outcome for each tenant database."""

    ingest_user = "ingest"

    def __init__(self, outcomes: dict[str, str]) -> None:
        self.outcomes = outcomes

    def grant_ingest_writes(
        self, databases: list[str], report: Callable[[str, str], None]
    ) -> dict[str, str]:
        for name in databases:
            report(name, self.outcomes[name])
        return {name: self.outcomes[name] for name in databases}


@pytest.mark.parametrize(
    ("outcomes", "summary"),
    [(["unchanged"] * 3, "ingest user: WRITE already on all 3 tenant databases"),
     (["unchanged"], "ingest user: WRITE already on the one tenant database"),
     (["granted", "unchanged", "unchanged"],
      "ingest user: WRITE granted on 1, already on 2 of 3 tenant databases"),
     (["granted", "granted"], "ingest user: WRITE granted on all 2 tenant databases"),
     (["unchanged", "missing"],
      "ingest user: WRITE already on the one tenant database; 1 tenant without a database: "
      "run admin provision-storage for it"),
     ([], "ingest user: no tenant database to grant WRITE on")],
)  # fmt: skip
def test_the_grants_summary_says_which_were_granted_and_which_already_were(
    app: Flask, runner: Runner, make_tenant: Any, outcomes: list[str], summary: str
) -> None:
    slugs = [f"t{i}" for i in range(len(outcomes))]
    for slug in slugs:
        make_tenant(slug)
    storage = Granting(
        {f"pa_{slug}": outcome for slug, outcome in zip(slugs, outcomes, strict=True)}
    )
    app.extensions["pa_storage"] = storage
    result = runner("grant-ingest-writes")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == summary


# --- 5: create-user with no password to read says so ------------------------------------------


def test_create_user_with_standard_input_at_its_end_says_why_it_stops(
    admin_run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``create-user ... </dev/null`` with no terminal, where getpass reads standard input."""

    def no_terminal(prompt: str = "") -> str:
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    monkeypatch.delenv("PERFANALYSIS_NEW_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr("getpass.getpass", no_terminal)
    status, _, err = admin_run("create-user", "ops@example.com")
    assert status == 1
    assert err == (
        "Error: no password given: standard input is not a terminal and holds none; set "
        "PERFANALYSIS_NEW_PASSWORD or give the password on two lines of standard input\n"
    )


# --- the demo tenant adopts its own database left by an earlier admin database -----------------


def test_ensure_demo_adopts_a_demo_database_that_holds_data(
    app: Flask, runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As InfluxDB answers when pa_demo is left from an admin database removed since: the demo
    tenant takes it over instead of stopping make up (a tenant created by hand still may not)."""
    from tenants.errors import DatabaseInUse
    from tenants.models import Tenant

    storage = app.extensions["pa_storage"]
    provision = storage.provision
    asked: list[bool] = []

    def holds_data(database: str, read_user: str, *, adopt: bool = False) -> str:
        asked.append(adopt)
        if not adopt:
            raise DatabaseInUse(database, "node_load1")
        return provision(database, read_user, adopt=adopt)

    monkeypatch.setattr(storage, "provision", holds_data)
    made = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert made.exit_code == 0, made.output
    assert asked == [True]
    with app.app_context():
        assert database.session().scalar(select(Tenant.slug).where(Tenant.slug == "demo")) == "demo"
    refused = runner("create-tenant", "other", "Other")
    assert refused.exit_code != 0
    assert "already has a database pa_other holding data" in f"{refused.exception}{refused.output}"
