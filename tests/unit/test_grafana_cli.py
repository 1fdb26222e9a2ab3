"""``perfanalysis grafana``'s command line: usage, unknown commands, help of sync."""

from __future__ import annotations

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
    with pytest.raises(ConfigError, match="secret-key"):
        load([], environ)
