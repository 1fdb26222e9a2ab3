"""Push settings (flags and PERFANALYSIS_EXPORTER_PUSH_* variables) and what push costs at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import byte_size, default_spool_dir, duration, load
from perfanalysis.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def key(tmp_path: Path) -> str:
    path = tmp_path / "key"
    path.write_text("pak_a.b\n")
    return str(path)


def errors_of(argv: list[str], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(argv, environ or {})
    return caught.value.errors


def test_push_is_off_by_default_with_documented_defaults() -> None:
    values = load([], {})
    assert values["push_url"] is None
    assert values["push_key_file"] is None
    assert values["push_interval"] == 10.0
    assert values["push_batch_size"] == 5000
    assert values["push_spool_dir"] is None
    assert values["push_spool_max_bytes"] == 64 << 20
    assert values["push_timeout"] == 10.0
    assert values["push_max_backoff"] == 60.0
    assert values["push_host"] is None


def test_flags_and_environment(key: str, tmp_path: Path) -> None:
    env = {
        "PERFANALYSIS_EXPORTER_PUSH_URL": "https://ingest.example:8443/",
        "PERFANALYSIS_EXPORTER_PUSH_KEY_FILE": key,
        "PERFANALYSIS_EXPORTER_PUSH_INTERVAL": "1500ms",
    }
    values = load(
        [
            "--push.spool-dir", str(tmp_path / "spool"),
            "--push.spool-max-bytes=1GiB",
            "--push.batch-size=1000",
            "--push.timeout=2.5",
            "--push.max-backoff=5m",
            "--push.host=web-1",
        ],
        env,
    )  # fmt: skip
    assert values["push_url"] == "https://ingest.example:8443"
    assert values["push_key_file"] == key
    assert values["push_interval"] == 1.5
    assert values["push_spool_dir"] == str(tmp_path / "spool")
    assert values["push_spool_max_bytes"] == 1 << 30
    assert values["push_batch_size"] == 1000
    assert values["push_timeout"] == 2.5
    assert values["push_max_backoff"] == 300.0
    assert values["push_host"] == "web-1"


def test_url_and_key_file_go_together(key: str) -> None:
    assert errors_of(["--push.url=http://127.0.0.1:8081"]) == [
        "flag --push.url needs --push.key-file: ingest accepts only keyed writes"
    ]
    assert errors_of([f"--push.key-file={key}"]) == [
        "flag --push.key-file is given without --push.url: where should the exporter push?"
    ]


def test_every_push_problem_is_reported_at_once(tmp_path: Path) -> None:
    errors = errors_of(
        [
            "--push.url=ftp://ingest",
            f"--push.key-file={tmp_path / 'missing'}",
            "--push.interval=0s",
            "--push.batch-size=0",
            "--push.spool-max-bytes=1KiB",
            "--push.timeout=soon",
            "--push.host=",
        ]
    )
    assert errors == [
        "flag --push.url: invalid value 'ftp://ingest': the scheme must be http or https, not 'ftp'",
        f"flag --push.key-file: invalid value '{tmp_path / 'missing'}': no such file",
        "flag --push.interval: invalid value '0s': must be greater than zero",
        "flag --push.batch-size: invalid value '0': must be greater than zero",
        "flag --push.spool-max-bytes: invalid value '1KiB': must be at least 64KiB",
        "flag --push.timeout: invalid value 'soon': expected a duration such as 10s, 500ms, 2m or 1h",
        "flag --push.host: invalid value '': must be a non-empty single line",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("250ms", 0.25), ("2m", 120.0), ("1h", 3600.0), ("3", 3.0), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize(
    "flag_value",
    ["push.host=\\", "push.host=web\\", "push.interval=99999999999h", "push.interval=25h",
     "push.timeout=99999999999h", "push.max-backoff=300000000000s"],
)  # fmt: skip
def test_values_the_push_path_cannot_use_are_flag_errors(key: str, flag_value: str) -> None:
    """Not a traceback at start (a host tag that escapes to nothing) nor a pusher thread killed
    by an OverflowError in its timers later."""
    flag, value = flag_value.split("=", 1)
    problem = "must not end with a backslash" if flag == "push.host" else "must be at most 24h"
    [error] = errors_of(
        ["--push.url=http://127.0.0.1:1", f"--push.key-file={key}", f"--{flag_value}"]
    )
    assert error.startswith(f"flag --{flag}: invalid value {value!r}: {problem}")


def test_the_longest_push_durations_accepted_are_a_day(key: str, tmp_path: Path) -> None:
    values = load(
        [
            "--push.url=http://127.0.0.1:1",
            f"--push.key-file={key}",
            "--push.interval=24h",
            "--push.timeout=1440m",
            "--push.max-backoff=86400",
            "--push.host=C:\\dir",  # a backslash inside the value is carried as it is
        ],
        {},
    )
    assert values["push_interval"] == values["push_timeout"] == values["push_max_backoff"] == 86400
    assert values["push_host"] == "C:\\dir"


def test_a_bad_host_tag_stops_the_exporter_with_a_message(
    key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from exporter.main import run

    argv = [
        "--web.listen-address=127.0.0.1:0",
        "--collector.disable-defaults",
        "--collector.loadavg",
        "--push.url=http://127.0.0.1:1",
        f"--push.key-file={key}",
        f"--push.spool-dir={tmp_path / 'spool'}",
        "--push.host=\\",
    ]
    assert run(argv, {}) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err
    assert "flag --push.host: invalid value" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "size"),
    [("64MiB", 64 << 20), ("512KiB", 512 << 10), ("1GB", 10**9), ("4096", 4096), ("10 MB", 10**7)],
)
def test_sizes(text: str, size: int) -> None:
    assert byte_size(text) == size


def test_default_spool_dir() -> None:
    assert default_spool_dir({"STATE_DIRECTORY": "/var/lib/pa:/other"}) == "/var/lib/pa/spool"
    if os.geteuid() == 0:
        assert default_spool_dir({}) == "/var/lib/perfanalysis/spool"
    else:
        assert default_spool_dir({"XDG_STATE_HOME": "/st"}) == "/st/perfanalysis/spool"


def modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=True,
    )
    return set(result.stdout.split())


def test_an_exporter_without_push_loads_none_of_it() -> None:
    loaded = modules_after(
        "from exporter.main import run\n"
        "from exporter.app import build_registry\n"
        "from exporter.config import load\n"
        "build_registry(load([], {}))"
    )
    assert not {m for m in loaded if m.startswith("exporter.push")}


def test_the_push_path_loads_no_ssl_http_client_or_email(key: str) -> None:
    """What keeps the exporter light: ssl is imported for an https URL only."""
    loaded = modules_after(
        "from exporter.config import load\n"
        "from exporter.push import service\n"
        f"load(['--push.url=http://127.0.0.1:1', '--push.key-file={key}'], {{}})"
    )
    assert "exporter.push.pusher" in loaded
    assert not loaded & {"ssl", "http.client", "email", "email.parser", "requests", "urllib3"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b"\n  \n", "is empty"),
        (b"\xff\xfe", "cannot read the key file"),
        (b"pak_one\npak_two\n", "must hold one key"),
    ],
)
def test_a_bad_key_file_is_a_configuration_error_exit_2(
    tmp_path: Path, content: bytes, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """As ``loadtest upload --key-file``: reported with the other settings, exit 2 (was 1)."""
    from exporter.main import run

    path = tmp_path / "key"
    path.write_bytes(content)
    argv = ["--push.url=http://127.0.0.1:1", f"--push.key-file={path}"]
    (error,) = errors_of(argv)
    assert error.startswith("flag --push.key-file: ")
    assert problem in error
    assert str(path) in error
    assert run(argv, {}) == 2
    assert problem in capsys.readouterr().err
