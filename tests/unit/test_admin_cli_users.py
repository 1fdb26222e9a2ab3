"""``perfanalysis admin`` for users: disable and enable them, grant and revoke platform admin,
set a password; the last active platform admin stays; every change is audited and felt by the
user's sessions and API tokens (at once in this process: forget_user; elsewhere within
key-cache-seconds).

Also the admin CLI's help (it needs no valid configuration, and says where the settings go) and
set-ingest-limits' echo of the stored rate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tenants import db as database
from tenants.access import Actor
from tenants.errors import Forbidden
from tenants.models import AuditEvent, User
from tests.conftest import (
    PASSWORD,
    FrozenClock,
    issue_test_token,
    login,
    table_snapshot,
)

Runner = Callable[..., Result]
AdminRun = Callable[..., tuple[int, str, str]]
ROOT, ANA = "root@example.test", "ana@acme.test"
NEW_PASSWORD = "a different passphrase"

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def people(make_user: Any, make_tenant: Any, principal_clock: FrozenClock) -> None:
    """A platform admin (root), a tenant analyst (ana); the principal cache's clock stands
    still, so a change is felt at once only if the command makes this process forget the user."""
    make_user(ROOT, platform_admin=True)
    make_tenant("acme", {ANA: "analyst"})


def user(app: Flask, email: str) -> tuple[bool, bool, Any, str]:
    """(is_active, is_platform_admin, password_changed_at, password_hash) of a user."""
    with app.app_context():
        found = database.session().scalar(select(User).where(User.email == email))
        assert found is not None
        return (
            found.is_active,
            found.is_platform_admin,
            found.password_changed_at,
            found.password_hash,
        )


def audited(app: Flask) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(action, actor, target id, details) of the user events, oldest first."""
    with app.app_context():
        events = database.session().scalars(
            select(AuditEvent)
            .where(AuditEvent.action.startswith("user.") & (AuditEvent.action != "user.create"))
            .order_by(AuditEvent.id)
        )
        return [(e.action, e.actor, e.target_id, dict(e.details)) for e in events]


def user_id(app: Flask, email: str) -> str:
    with app.app_context():
        return str(database.session().scalar(select(User.id).where(User.email == email)))


def api(client: FlaskClient, token: str, path: str = "/me") -> int:
    return client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"}).status_code


def signed_in(client: FlaskClient) -> bool:
    """Whether the client's session still opens a page that needs one."""
    return client.get("/account").status_code == 200


# --- disable-user / enable-user --------------------------------------------------------------


@pytest.mark.usefixtures("people")
def test_a_disabled_user_cannot_log_in_and_their_session_and_token_are_refused_at_once(
    app: Flask, runner: Runner, principal_clock: FrozenClock
) -> None:
    token = issue_test_token(app, ANA)
    browser = app.test_client()
    login(browser, ANA)
    caller = app.test_client()
    assert (signed_in(browser), api(caller, token)) == (True, 200)  # both now cached

    result = runner("disable-user", ANA)
    assert result.exit_code == 0, result.output
    assert f"disabled user {ANA}" in result.output
    assert user(app, ANA)[:2] == (False, False)
    assert (signed_in(browser), api(caller, token)) == (False, 401)  # the clock stood still
    assert audited(app) == [("user.disable", "cli", user_id(app, ANA), {"email": ANA})]
    with pytest.raises(AssertionError):
        login(app.test_client(), ANA)

    again = runner("disable-user", ANA)
    assert again.exit_code == 0, again.output
    assert f"user {ANA} is already disabled" in again.output
    assert len(audited(app)) == 1  # nothing changed, nothing recorded

    enabled = runner("enable-user", ANA)
    assert enabled.exit_code == 0, enabled.output
    assert f"enabled user {ANA}" in enabled.output
    assert user(app, ANA)[0] is True
    assert api(caller, token) == 200  # at once: the token cached refused was forgotten
    assert not signed_in(browser)  # disabling ended the session for good
    login(app.test_client(), ANA)
    assert [event[0] for event in audited(app)] == ["user.disable", "user.enable"]
    assert "is already enabled" in runner("enable-user", ANA).output


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    "command", ["disable-user", "enable-user", "grant-platform-admin", "revoke-platform-admin",
                "set-password"],
)  # fmt: skip
def test_a_user_command_names_an_unknown_address_and_changes_nothing(
    app: Flask, admin_run: AdminRun, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERFANALYSIS_NEW_PASSWORD", NEW_PASSWORD)
    before = table_snapshot(app)
    assert admin_run(command, "ghost@example.test") == (
        1, "", "perfanalysis admin: no user with e-mail ghost@example.test\n"
    )  # fmt: skip
    assert table_snapshot(app) == before


# --- grant-platform-admin / revoke-platform-admin -------------------------------------------


@pytest.mark.usefixtures("people")
def test_platform_admin_is_granted_and_revoked_with_effect_on_the_users_token_at_once(
    app: Flask, client: FlaskClient, runner: Runner
) -> None:
    token = issue_test_token(app, ANA)
    assert api(client, token, "/users") == 403  # cached as a plain user

    granted = runner("grant-platform-admin", ANA)
    assert granted.exit_code == 0, granted.output
    assert f"{ANA} is now a platform admin" in granted.output
    assert api(client, token, "/users") == 200
    assert "already a platform admin" in runner("grant-platform-admin", ANA).output

    revoked = runner("revoke-platform-admin", ANA)
    assert revoked.exit_code == 0, revoked.output
    assert f"{ANA} is no longer a platform admin" in revoked.output
    assert api(client, token, "/users") == 403
    assert f"{ANA} is not a platform admin" in runner("revoke-platform-admin", ANA).output
    assert user(app, ANA)[:2] == (True, False)
    ana = user_id(app, ANA)
    assert audited(app) == [
        ("user.platform_admin.grant", "cli", ana, {"email": ANA}),
        ("user.platform_admin.revoke", "cli", ana, {"email": ANA}),
    ]


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("command", "change"),
    [("disable-user", "disable"), ("revoke-platform-admin", "revoke platform admin from")],
)
def test_the_last_active_platform_admin_is_neither_disabled_nor_demoted(
    app: Flask, admin_run: AdminRun, runner: Runner, command: str, change: str
) -> None:
    refusal = (
        f"perfanalysis admin: cannot {change} {ROOT}: they are the last active platform admin; "
        "make another user platform admin first\n"
    )
    before = table_snapshot(app)
    assert admin_run(command, ROOT) == (1, "", refusal)
    assert table_snapshot(app) == before

    # a second platform admin who is disabled does not count
    assert runner("grant-platform-admin", ANA).exit_code == 0
    assert runner("disable-user", ANA).exit_code == 0
    assert admin_run(command, ROOT) == (1, "", refusal)
    assert user(app, ROOT)[:2] == (True, True)

    # an active one does: then either may go, and the one left may not
    assert runner("enable-user", ANA).exit_code == 0
    status, _, err = admin_run(command, ROOT)
    assert (status, err) == (0, "")
    assert admin_run(command, ANA)[::2] == (1, refusal.replace(ROOT, ANA))


@pytest.mark.usefixtures("people")
def test_a_disabled_platform_admin_is_no_last_admin_and_may_be_demoted(
    app: Flask, runner: Runner
) -> None:
    assert runner("disable-user", ANA).exit_code == 0  # no admin: nothing to count
    granted = runner("grant-platform-admin", ANA)
    assert f"{ANA} is now a platform admin (disabled: enable-user lets them log in)" in (
        granted.output
    )
    with app.app_context():  # a database left without an active platform admin
        db = database.session()
        db.execute(update(User).where(User.email == ROOT).values(is_active=False))
        db.commit()
    revoked = runner("revoke-platform-admin", ANA)
    assert revoked.exit_code == 0, revoked.output
    assert user(app, ANA)[:2] == (False, False)
    assert runner("enable-user", ROOT).exit_code == 0  # the way back
    assert user(app, ROOT)[:2] == (True, True)


@pytest.mark.usefixtures("people")
def test_only_a_platform_admin_changes_users_through_the_services(app: Flask) -> None:
    from tenants.accounts import get_user_by_email, set_active, set_password, set_platform_admin

    with app.app_context():
        db = database.session()
        ana = get_user_by_email(db, ANA)
        assert ana is not None
        actor = Actor(ana, ANA, "")
        for change in (
            lambda: set_active(db, actor, ana, False),
            lambda: set_platform_admin(db, actor, ana, True),
            lambda: set_password(db, actor, ana, NEW_PASSWORD),
        ):
            with pytest.raises(Forbidden):
                change()
    assert user(app, ANA)[:2] == (True, False)


# --- set-password ----------------------------------------------------------------------------


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize("source", ["stdin", "file", "dash", "environment"])
def test_set_password_ends_the_users_sessions_and_keeps_their_tokens(
    app: Flask, runner: Runner, tmp_path: Path, source: str
) -> None:
    token = issue_test_token(app, ANA)
    browser = app.test_client()
    login(browser, ANA)
    assert signed_in(browser)
    stamp = user(app, ANA)[2]
    password_file = tmp_path / "password"
    password_file.write_text(NEW_PASSWORD + "\n")
    args, given = {
        "stdin": ([], {"input": NEW_PASSWORD + "\n"}),
        "file": (["--password-file", str(password_file)], {}),
        "dash": (["--password-file", "-"], {"input": NEW_PASSWORD}),
        "environment": ([], {"env": {"PERFANALYSIS_NEW_PASSWORD": NEW_PASSWORD}}),
    }[source]
    result = runner("set-password", ANA, *args, **given)
    assert result.exit_code == 0, result.output
    assert f"set a new password for {ANA}" in result.output
    assert NEW_PASSWORD not in result.output
    assert user(app, ANA)[2] > stamp
    assert not signed_in(browser)  # at once: the clock stood still
    assert api(app.test_client(), token) == 200
    with pytest.raises(AssertionError):
        login(app.test_client(), ANA, PASSWORD)
    login(app.test_client(), ANA, NEW_PASSWORD)
    assert audited(app) == [("user.password_reset", "cli", user_id(app, ANA), {"email": ANA})]


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("contents", "status", "message"),
    [(b"short\n", 2, "perfanalysis admin: password must be at least 12 characters"),
     (b"\n", 2, "perfanalysis admin: password must be at least 12 characters"),
     (b"a long passphrase\nand another line\n", 2,
      "Error: {file} holds more than one line: give the password alone"),
     (b"\xff" * 20, 2, "Error: the password in {file} is not UTF-8 text"),
     (b"x" * 5000, 2, "Error: {file} holds more than 4096 bytes, not a password"),
     (None, 1, "Error: cannot read the password from {file}: No such file or directory; "
               "nothing was changed")],
)  # fmt: skip
def test_set_password_refuses_a_bad_password_file_and_changes_nothing(
    app: Flask,
    admin_run: AdminRun,
    tmp_path: Path,
    contents: bytes | None,
    status: int,
    message: str,
) -> None:
    password_file = tmp_path / "password"
    if contents is not None:
        password_file.write_bytes(contents)
    before = table_snapshot(app)
    assert admin_run("set-password", ANA, "--password-file", str(password_file)) == (
        status, "", message.format(file=password_file) + "\n"
    )  # fmt: skip
    assert table_snapshot(app) == before


@pytest.mark.usefixtures("people")
def test_set_password_takes_no_password_on_the_command_line(
    app: Flask, admin_run: AdminRun
) -> None:
    before = table_snapshot(app)
    status, _, err = admin_run("set-password", ANA, NEW_PASSWORD)
    assert status == 2
    assert f"Got unexpected extra argument ({NEW_PASSWORD})" in err
    assert table_snapshot(app) == before


# --- help without a configuration ------------------------------------------------------------


@pytest.fixture
def no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No secret key, no development mode, and a variable that is not a setting: loading the
    settings would fail. The state directory is empty, and must stay so."""
    for name in ("PERFANALYSIS_ADMIN_SECRET_KEY", "PERFANALYSIS_ADMIN_DATABASE_URL",
                 "DATABASE_URL", "PERFANALYSIS_ADMIN_DEV"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PERFANALYSIS_ADMIN_NOT_A_SETTING", "1")
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path))


@pytest.mark.usefixtures("no_configuration")
@pytest.mark.parametrize("args", [["--help"], ["-h"], [], ["--dev", "--help"], ["-h", "serve"]])
def test_admin_help_shows_where_settings_and_command_go_and_lists_both(
    capsys: pytest.CaptureFixture[str], args: list[str], tmp_path: Path
) -> None:
    from tenants.cli import admin, run

    assert run(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: perfanalysis admin [settings] COMMAND [args]\n")
    assert "perfanalysis admin serve [flags]" not in out
    for command in admin.commands:
        assert f"\n  {command} " in out
    assert "\n  --web.listen-address=HOST:PORT\n" in out
    assert "[env PERFANALYSIS_ADMIN_SECRET_KEY]" in out
    assert list(tmp_path.iterdir()) == []  # no development key, no database made


@pytest.mark.usefixtures("no_configuration")
@pytest.mark.parametrize("command", ["create-tenant", "set-password", "issue-token", "serve"])
def test_a_commands_help_needs_no_configuration(
    capsys: pytest.CaptureFixture[str], command: str, tmp_path: Path
) -> None:
    from tenants.cli import run

    assert run([command, "--help"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"Usage: perfanalysis admin [settings] {command} ")
    assert err == ""
    listed = "\n  --web.listen-address=HOST:PORT\n" in out
    assert listed == (command == "serve")  # the others point to the list
    assert listed or "'perfanalysis admin --help' lists them" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("no_configuration")
def test_a_command_still_refuses_the_configuration_when_it_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tenants.cli import run

    assert run(["init-db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("perfanalysis admin: invalid configuration:\n")
    assert "environment variable PERFANALYSIS_ADMIN_NOT_A_SETTING: not a known setting" in err


@pytest.mark.usefixtures("no_configuration")
@pytest.mark.parametrize(
    ("args", "shown"),
    [(["serve", "--web.listen-address=127.0.0.1:1"], "--web.listen-address=... serve"),
     (["init-db", "--dev"], "--dev init-db"),
     (["init-db", "--no-session.secure-cookie"], "--no-session.secure-cookie init-db")],
)  # fmt: skip
def test_a_setting_after_the_command_is_named_as_one(
    capsys: pytest.CaptureFixture[str], args: list[str], shown: str
) -> None:
    from tenants.cli import run

    assert run(args) == 2
    option = args[1].partition("=")[0]
    assert capsys.readouterr() == (
        "",
        f"perfanalysis admin: {option} is a setting: give it before the command "
        f"(perfanalysis admin {shown} ...)\n",
    )


# --- set-ingest-limits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst", "shown"),
    [("1234567.5", "100000", "rate 1,234,567.5 points/s, burst 100,000 points"),
     ("0.25", "1", "rate 0.25 points/s, burst 1 points"),
     ("0", "5000", "rate no limit, burst 5,000 points"),
     ("2e6", "5000", "rate 2,000,000 points/s, burst 5,000 points")],
)  # fmt: skip
def test_set_ingest_limits_echoes_the_stored_rate_unrounded(
    make_tenant: Any, runner: Runner, rate: str, burst: str, shown: str
) -> None:
    make_tenant("beta")
    result = runner("set-ingest-limits", "beta", "--rate", rate, "--burst", burst)
    assert result.exit_code == 0, result.output
    assert result.output == f"beta: ingest {shown}\n"
    assert runner("set-ingest-limits", "beta", "--default").output == (
        "beta: ingest rate default, burst default\n"
    )
