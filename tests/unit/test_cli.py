import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from perfanalysis.cli import main
from tenants import db as database
from tenants.models import ApiKey


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perfanalysis.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_bad_flags_exit_2_naming_each_problem() -> None:
    result = run_cli("exporter", "--collector.nope", "--web.listen-address=x")
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert "flag --collector.nope: unknown flag" in result.stderr
    assert "flag --web.listen-address: invalid value 'x'" in result.stderr


def test_unknown_component_exits_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["nope"]) == 2
    assert "unknown component 'nope'" in capsys.readouterr().err


def test_help_lists_components(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--help"]) == 0
    assert "exporter" in capsys.readouterr().out


def test_exporter_help_exits_0() -> None:
    result = run_cli("exporter", "--help")
    assert result.returncode == 0
    assert "--web.listen-address" in result.stdout


def test_exporter_does_not_import_server_libraries() -> None:
    code = (
        "import sys, exporter.main, exporter.app;"
        "heavy = [m for m in ('flask', 'sqlalchemy', 'influxdb_client', 'gunicorn') if m in sys.modules];"
        "print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "[]"


# -- issue-key and rotate-key --output: the file is checked before a key exists


def _keys(app: Flask) -> list[ApiKey]:
    with app.app_context():
        return list(database.session().scalars(select(ApiKey).order_by(ApiKey.id)))


@pytest.fixture
def collector(runner: Any, make_tenant: Any) -> None:
    make_tenant("acme")
    result = runner("create-collector", "acme", "web1", "--hostname", "web1.acme.test")
    assert result.exit_code == 0, result.output


def _unwritable(tmp_path: Path) -> Path:
    """A path whose directory cannot be created, whoever runs the test (root included)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    return blocker / "keys" / "web1.key"


def test_issue_key_writes_the_key_to_a_private_file(
    app: Flask, runner: Any, collector: None, tmp_path: Path
) -> None:
    target = tmp_path / "keys" / "web1.key"
    target.parent.mkdir()  # a missing directory is refused: test_admin_cli_fixes
    result = runner("issue-key", "acme", "web1", "--output", str(target))
    assert result.exit_code == 0, result.output
    [key] = _keys(app)
    assert result.stdout == f"key id {key.key_id} written to {target}\n"
    assert target.read_text().startswith(f"pak_{key.key_id}_")
    assert target.stat().st_mode & 0o777 == 0o600


def test_issue_key_to_an_unwritable_file_issues_no_key(
    app: Flask, runner: Any, collector: None, tmp_path: Path
) -> None:
    target = _unwritable(tmp_path)
    result = runner("issue-key", "acme", "web1", "--output", str(target))
    assert result.exit_code == 1
    assert f"cannot write the key to {target}: Not a directory; no key was issued" in result.output
    assert _keys(app) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_key_that_cannot_be_written_after_it_was_issued_is_printed_instead(
    app: Flask, runner: Any, collector: None
) -> None:
    result = runner("issue-key", "acme", "web1", "--output", "/dev/full")  # every write: ENOSPC
    assert result.exit_code == 1
    [key] = _keys(app)
    assert result.stdout.startswith(f"pak_{key.key_id}_")
    assert (
        f"key {key.key_id} was issued but cannot be written to /dev/full: No space left on "
        "device; it is printed on standard output instead, shown once"
    ) in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_issue_key_into_a_read_only_directory_issues_no_key(
    app: Flask, runner: Any, collector: None, tmp_path: Path
) -> None:
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o500)
    result = runner("issue-key", "acme", "web1", "--output", str(read_only / "web1.key"))
    assert result.exit_code == 1
    assert "Permission denied; no key was issued" in result.output
    assert _keys(app) == []


def test_rotate_key_to_an_unwritable_file_leaves_the_old_key_as_it_was(
    app: Flask, runner: Any, collector: None, tmp_path: Path
) -> None:
    assert runner("issue-key", "acme", "web1").exit_code == 0
    [old] = _keys(app)
    result = runner("rotate-key", "acme", old.key_id, "--output", str(_unwritable(tmp_path)))
    assert result.exit_code == 1
    assert "no key was issued" in result.output
    [unchanged] = _keys(app)
    assert (unchanged.key_id, unchanged.expires_at) == (old.key_id, None)


def test_rotate_key_replaces_the_key_in_the_file_only_once_the_new_key_exists(
    app: Flask, runner: Any, collector: None, tmp_path: Path
) -> None:
    target = tmp_path / "web1.key"
    assert runner("issue-key", "acme", "web1", "--output", str(target)).exit_code == 0
    old_key = target.read_text()
    [old] = _keys(app)
    assert runner("rotate-key", "acme", "pa_nokey", "--output", str(target)).exit_code == 1
    assert target.read_text() == old_key, "a failed rotation must not empty the key file"
    result = runner("rotate-key", "acme", old.key_id, "--output", str(target))
    assert result.exit_code == 0, result.output
    _, new = _keys(app)
    assert target.read_text().startswith(f"pak_{new.key_id}_")


def test_issue_key_replaces_what_the_file_held(
    runner: Any, collector: None, tmp_path: Path
) -> None:
    target = tmp_path / "web1.key"
    target.write_text("an older, longer key that must not survive in part\n" * 20)
    assert runner("issue-key", "acme", "web1", "--output", str(target)).exit_code == 0
    [line] = target.read_text().splitlines()
    assert line.startswith("pak_")


def test_a_key_file_the_command_created_is_removed_when_no_key_was_issued(
    runner: Any, collector: None, tmp_path: Path
) -> None:
    target = tmp_path / "web9.key"
    assert runner("issue-key", "acme", "web9", "--output", str(target)).exit_code == 1
    assert not target.exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_key_that_cannot_be_written_after_it_was_issued_is_printed(
    app: Flask, runner: Any, collector: None
) -> None:
    result = runner("issue-key", "acme", "web1", "--output", "/dev/full")
    assert result.exit_code == 1
    [key] = _keys(app)
    assert result.stdout.startswith(f"pak_{key.key_id}_")
    assert (
        f"key {key.key_id} was issued but cannot be written to /dev/full: No space left on device"
        in result.stderr
    )
