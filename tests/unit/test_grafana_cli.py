"""``perfanalysis grafana``'s command line: usage, unknown commands, help of sync."""

from __future__ import annotations

import os

import pytest

from perfanalysis.grafana.cli import run


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([]) == 2
    assert run(["--help"]) == 0
    assert "generate" in capsys.readouterr().out


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_sync_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sync", "--help"]) == 0
    out = capsys.readouterr().out
    for name in (
        "URL",
        "USER",
        "PASSWORD",
        "TOKEN",
        "INFLUXDB_URL",
        "ALERT_WEBHOOK_URL",
        "DATABASE_URL",
        "SECRET_KEY",
        "TENANTS",
    ):
        assert f"PERFANALYSIS_GRAFANA_{name}" in out


def test_check_passes_on_the_committed_files() -> None:
    assert run(["check"]) == 0


def test_database_and_secret_default_to_the_admin_apps() -> None:
    from perfanalysis.grafana.settings import load

    base = {"PERFANALYSIS_GRAFANA_URL": "http://grafana:3000", "PERFANALYSIS_GRAFANA_TOKEN": "t",
            "PERFANALYSIS_GRAFANA_INFLUXDB_URL": "http://influxdb:8086"}  # fmt: skip
    secret = "s" * 40
    values = load(
        [],
        {**base, "DATABASE_URL": "postgres://u@db/admin", "PERFANALYSIS_ADMIN_SECRET_KEY": secret},
    )
    assert values["database_url"] == "postgresql+psycopg://u@db/admin"
    assert values["secret_key"] == secret
    assert values["tenants"] == []


def test_a_missing_secret_key_is_reported() -> None:
    from perfanalysis.config import ConfigError
    from perfanalysis.grafana.settings import load

    environ = {"PERFANALYSIS_GRAFANA_URL": "http://grafana:3000", "PERFANALYSIS_GRAFANA_TOKEN": "t",
               "PERFANALYSIS_GRAFANA_INFLUXDB_URL": "http://influxdb:8086"}  # fmt: skip
    with pytest.raises(ConfigError, match="secret-key") as refused:
        load([], environ)
    said = "\n".join(refused.value.errors)
    assert "or run with --dev" in said  # sync's own --dev (PERFANALYSIS_GRAFANA_DEV)
    assert "PERFANALYSIS_ADMIN_DEV" not in said


@pytest.mark.parametrize("command", ["generate", "check"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_generate_and_check_print_their_help(
    command: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([command, flag]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"usage: perfanalysis grafana {command}\n")
    assert captured.err == ""


def test_generate_takes_no_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["generate", "--out=x"]) == 2
    assert capsys.readouterr().err.startswith(
        "perfanalysis grafana generate: takes no arguments, got '--out=x'"
    )


SYNC_ENVIRON = {
    "PERFANALYSIS_GRAFANA_URL": "http://grafana:3000",
    "PERFANALYSIS_GRAFANA_INFLUXDB_URL": "http://influxdb:8086",
    "PERFANALYSIS_GRAFANA_DATABASE_URL": "sqlite:////nonexistent/admin.db",
    "PERFANALYSIS_GRAFANA_SECRET_KEY": "s" * 40,
}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://relay/alerts/{tenat}", "unknown placeholder {tenat}: {tenant} is the only one"),
        ("http://relay/{tenant}/{slug}/{org}/{slug}",
         "unknown placeholders {slug}, {org}: {tenant} is the only one"),
        ("http://relay/alerts/{tenant", "a brace that is not part of {tenant}"),
        ("http://relay/alerts/tenant}", "a brace that is not part of {tenant}"),
        ("http://{tenant}:99999/", "Port out of range 0-65535"),
    ],
)  # fmt: skip
def test_an_alert_webhook_placeholder_other_than_tenant_is_refused(url: str, problem: str) -> None:
    from perfanalysis.config import ConfigError
    from perfanalysis.grafana.settings import load

    environ = {**SYNC_ENVIRON, "PERFANALYSIS_GRAFANA_TOKEN": "t"}
    with pytest.raises(ConfigError) as caught:
        load([f"--alert-webhook-url={url}"], environ)
    assert caught.value.errors == [f"flag --alert-webhook-url: invalid value {url!r}: {problem}"]


def test_tenant_is_the_placeholder_anywhere_in_the_url() -> None:
    from perfanalysis.grafana.settings import load

    environ = {**SYNC_ENVIRON, "PERFANALYSIS_GRAFANA_TOKEN": "t"}
    url = "https://{tenant}.hooks.example/grafana?team={tenant}"
    assert load([f"--alert-webhook-url={url}/"], environ)["alert_webhook_url"] == url


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"PERFANALYSIS_GRAFANA_USER": "admin", "PERFANALYSIS_GRAFANA_PASSWORD": "pw"},
         "--user and --password"),
        ({"PERFANALYSIS_GRAFANA_USER": "admin"}, "--user"),
        ({"PERFANALYSIS_GRAFANA_PASSWORD": "pw"}, "--password"),
    ],
)  # fmt: skip
def test_a_token_with_a_user_or_password_is_refused(
    given: dict[str, str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Which credential would be used was not said anywhere: one must be chosen."""
    for name in [n for n in os.environ if n.startswith("PERFANALYSIS_")]:
        monkeypatch.delenv(name)
    for name, value in {**SYNC_ENVIRON, **given}.items():
        monkeypatch.setenv(name, value)
    assert run(["sync", "--token=t"]) == 2
    assert capsys.readouterr().err.splitlines()[1:] == [
        f"  - credentials: --token and {named} are both given (flag or PERFANALYSIS_GRAFANA_ "
        "variable); give either --token or --user and --password"
    ]
