import subprocess
import sys

from perfanalysis.cli import main


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
