import re
from pathlib import Path

import pytest

from perfanalysis.configdoc import README, render_readme

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_readme_configuration_tables_match_the_parser() -> None:
    text = README.read_text()
    assert render_readme(text) == text, "README is stale: run python -m perfanalysis.configdoc"


def test_the_tenant_restore_copies_points_through_the_retention_policy_tenants_have() -> None:
    from tenants.influx import RETENTION_POLICY

    text = OPERATIONS.read_text()
    named = re.findall(r'"pa_acme(?:_restored)?"\."([^"]+)"\.', text)
    assert named, "the tenant restore's SELECT ... INTO is gone from docs/operations.md"
    assert set(named) == {RETENTION_POLICY}
    assert "autogen" not in text


def test_the_make_up_sqlite_restore_runs_init_db_with_settings_that_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tenants.settings import load

    section = (
        OPERATIONS.read_text().split("### The admin database: SQLite", 1)[1].split("\n##", 1)[0]
    )
    command = re.search(r"`(?:\.venv/bin/)?perfanalysis admin ((?:--\S+ )*)init-db`", section)
    assert command, "the SQLite restore no longer runs init-db"
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path))
    load(command.group(1).split(), {})  # ConfigError without --dev: no secret key


def test_compose_key_commands_take_the_key_from_standard_output() -> None:
    """The container's filesystem is read-only and removed with --rm: --output would fail
    there, and a TTY would mix the messages into the key file."""
    commands = [
        line
        for line in OPERATIONS.read_text().splitlines()
        if "docker compose run" in line and re.search(r"\b(issue|rotate)-key\b", line)
    ]
    assert len(commands) >= 2
    for line in commands:
        assert "--output" not in line, line
        assert re.search(
            r"umask 077 && docker compose run --rm -T admin-init admin .* > \S+\)", line
        ), line
