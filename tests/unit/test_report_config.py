"""The report's YAML configuration: defaults, and every mistake named by file and key path."""

from __future__ import annotations

import io
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from perfanalysis.report import influxql
from perfanalysis.report.build import report_grid, requested_range
from perfanalysis.report.cli import run
from perfanalysis.report.config import DEFAULT_EXCLUDED_FSTYPES, load_config
from perfanalysis.report.validate import ReportConfigError

MINIMAL = """
tenant: acme
hosts: [web-01, web-02]
time: {last: 24h}
"""


def write(tmp_path: Path, text: str, name: str = "report.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ReportConfigError) as caught:
        load_config(path, environ or {})
    return caught.value.errors


def test_a_minimal_configuration_gets_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), {})
    assert config.tenant == "acme"
    assert config.hosts == ("web-01", "web-02")
    assert config.time.last == 86400
    assert config.time.step is None  # auto
    assert config.time.max_points == 2500
    assert config.time.timezone == "UTC"
    assert config.percentiles == (95.0, 97.5, 99.0)
    assert config.thresholds.cpu_busy_percent == 80
    assert config.thresholds.memory_used_percent == 90
    assert config.thresholds.filesystem_full_within == 7 * 86400
    assert config.disk.for_host("web-01") is None  # auto: the busiest
    assert config.mountpoints.for_host("web-02") is None
    assert config.exclude_fstypes == DEFAULT_EXCLUDED_FSTYPES
    assert config.influxdb is None
    assert config.heading == "Performance report: acme"


def test_the_example_configuration_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "provisioning" / "examples" / "report.yaml"
    config = load_config(example, {"PERFANALYSIS_REPORT_INFLUXDB_PASSWORD": "secret"})
    assert config.hosts


def test_a_full_configuration(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("s3cret\n")
    config = load_config(
        write(
            tmp_path,
            """
        title: Weekly report
        tenant: acme-prod
        hosts: [db-01, db-02]
        time:
          start: 2025-01-01T00:00:00Z
          end: "2025-01-08T00:00:00+01:00"
          step: 5m
          timezone: Europe/Paris
        devices:
          disk: {db-01: nvme0n1}
          network: eth1
          mountpoints: [/, /var/lib/postgresql]
          exclude_fstypes: []
        percentiles: [99, 90]
        thresholds: {percentile: 90, cpu_busy_percent: 70, network_errors_per_second: null, filesystem_full_within: 3d}
        influxdb: {url: "http://influx:8086/", username: reader, password_file: password}
    """,
        ),
        {},
    )
    assert config.time.start == datetime(2025, 1, 1, tzinfo=UTC)
    assert config.time.end == datetime(2025, 1, 7, 23, tzinfo=UTC)
    assert config.time.step == 300
    assert config.disk.for_host("db-01") == "nvme0n1"
    assert config.disk.for_host("db-02") is None
    assert config.network.for_host("db-02") == "eth1"
    assert config.mountpoints.for_host("db-01") == ("/", "/var/lib/postgresql")
    assert config.exclude_fstypes == ()
    assert config.percentiles == (90.0, 99.0)
    assert config.thresholds.percentile == 90
    assert config.thresholds.cpu_busy_percent == 70
    assert config.thresholds.network_errors_per_second is None
    assert config.thresholds.filesystem_full_within == 3 * 86400
    assert config.influxdb is not None
    assert (config.influxdb.url, config.influxdb.username, config.influxdb.password) == (
        "http://influx:8086",
        "reader",
        "s3cret",
    )


def test_durations_are_written_as_prometheus_writes_them(tmp_path: Path) -> None:
    text = MINIMAL.replace("{last: 24h}", "{last: 1d12h, step: 1m30s}")
    config = load_config(write(tmp_path, text), {})
    assert (config.time.last, config.time.step) == (36 * 3600, 90)
    for wrong in ("30m1h", "1h 30m", "0h0m", "1.5h"):
        errors = errors_of(tmp_path, MINIMAL.replace("last: 24h", f"last: {wrong}"))
        assert errors == [
            f"{tmp_path / 'report.yaml'}: line 4: time.last: {wrong!r} is not a duration: expected a "
            "positive integer and a unit (s, m, h, d or w), or several as in 1h30m, e.g. 30s, "
            "24h or 7d"
        ], errors


def test_unknown_keys_are_named_with_their_path_and_a_suggestion(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        """
        tenant: acme
        hosts: [web-01]
        time: {lats: 24h}
        devices: {disks: sda}
        colour: blue
    """,
    )
    path = str(tmp_path / "report.yaml")
    assert (
        f"{path}: line 4: time.lats: unknown key (did you mean 'last'?); allowed: last, start, end, step, max_points, timezone"
        in errors
    )
    assert any(
        e.startswith(f"{path}: line 5: devices.disks: unknown key (did you mean 'disk'?)")
        for e in errors
    )
    assert any(e.startswith(f"{path}: line 6: colour: unknown key") for e in errors)
    assert (
        f"{path}: line 4: time: give last (e.g. last: 24h) or both start and end; start and end missing"
        in errors
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        """
        tenant: Acme Corp
        hosts: web-01
        time: {last: 24 hours, step: 0s}
        percentiles: [95, 100, 95, fifty]
        thresholds: {cpu_busy_percent: -5, memory_used_percent: high, percentile: 90}
    """,
    )
    text = "\n".join(errors)
    assert "tenant: expected a tenant slug" in text
    assert "hosts: expected a list of host names, e.g. [web-01]" in text
    assert "time.last: '24 hours' is not a duration" in text
    assert "time.step: '0s' is not a duration" in text
    assert "percentiles[1]: must be above 0 and below 100" in text
    assert "percentiles[2]: 95 is listed twice" in text
    assert "percentiles[3]: expected a number, got text" in text
    assert (
        "thresholds.cpu_busy_percent: must be at least 0 and at most 100 (percent of CPU time "
        "busy), got -5" in text
    )
    assert "thresholds.memory_used_percent: expected a number, got text" in text
    assert "thresholds.percentile: 90 is not among percentiles (95)" in text
    assert len(errors) == 10


def test_time_range_mistakes(tmp_path: Path) -> None:
    base = "tenant: acme\nhosts: [a]\n"
    assert errors_of(tmp_path, base + "time: {last: 1d, start: 2025-01-01T00:00:00Z}")[0].endswith(
        "time: give either last or start and end, not both"
    )
    naive = errors_of(
        tmp_path, base + "time: {start: '2025-01-02T00:00:00', end: '2025-01-03T00:00:00Z'}"
    )
    assert naive[0].endswith(
        "time.start: 2025-01-02T00:00:00 has no time zone: add Z or an offset such as +02:00"
    )
    backwards = errors_of(
        tmp_path, base + "time: {start: 2025-01-02T00:00:00Z, end: 2025-01-01T00:00:00Z}"
    )
    assert backwards[0].endswith("time.end: must be after time.start (2025-01-02T00:00:00+00:00)")
    fine = errors_of(tmp_path, base + "time: {last: 30d, step: 1s}")
    assert fine[0].endswith(
        "time.step: 2,592,000 steps in the range; at most 200,000: choose a longer step"
    )
    zone = errors_of(tmp_path, base + "time: {last: 1d, timezone: Mars/Olympus}")
    assert "time.timezone: unknown time zone 'Mars/Olympus'" in zone[0]


def test_a_repeated_key_is_refused_naming_the_file_the_key_and_both_lines(
    tmp_path: Path,
) -> None:
    """PyYAML kept the last of two equal keys: the report was built for the second tenant."""
    path = tmp_path / "report.yaml"
    errors = errors_of(tmp_path, "tenant: acme\nhosts: [a]\ntime: {last: 1h}\ntenant: other\n")
    assert errors == [
        f"{path}: line 4, column 1: not valid YAML: found the key 'tenant' a second time "
        "(first on line 1)"
    ]
    nested = errors_of(tmp_path, "tenant: acme\nhosts: [a]\ntime:\n  last: 1h\n  last: 2h\n")
    assert "line 5, column 3: not valid YAML: found the key 'last' a second time" in nested[0]
    err = io.StringIO()
    write(tmp_path, "tenant: acme\nhosts: [a]\ntime: {last: 1h}\ntenant: other\n")
    assert run(["--config", str(path)], stderr=err) == 2
    assert "found the key 'tenant' a second time (first on line 1)" in err.getvalue()


def test_thresholds_are_finite_and_percents_at_most_100(tmp_path: Path) -> None:
    """NaN never compares true, so a .nan limit silently switched its recommendation off."""
    errors = errors_of(
        tmp_path,
        """
        tenant: acme
        hosts: [a]
        time: {last: 1h}
        thresholds:
          cpu_busy_percent: 500
          memory_used_percent: .nan
          disk_busy_percent: .inf
          filesystem_used_percent: 100.5
          data_missing_percent: -1
          network_errors_per_second: .inf
          filesystem_full_within: 99999w
    """,
    )
    path = tmp_path / "report.yaml"
    assert errors == [
        f"{path}: line 6: thresholds.cpu_busy_percent: must be at least 0 and at most 100 "
        "(percent of CPU time busy), got 500",
        f"{path}: line 7: thresholds.memory_used_percent: must be at least 0 and at most 100 "
        "(percent of memory used), got nan",
        f"{path}: line 8: thresholds.disk_busy_percent: must be at least 0 and at most 100 "
        "(percent of time the disk was busy), got inf",
        f"{path}: line 9: thresholds.filesystem_used_percent: must be at least 0 and at most 100 "
        "(percent of the filesystem used), got 100.5",
        f"{path}: line 10: thresholds.data_missing_percent: must be at least 0 and at most 100 "
        "(percent of steps without data), got -1",
        f"{path}: line 11: thresholds.network_errors_per_second: must be at least 0 (errors per second), "
        "got inf",
        f"{path}: line 12: thresholds.filesystem_full_within: 99999w is too long: at most 3653d (ten years)",
    ]
    edges = load_config(
        write(
            tmp_path,
            "tenant: acme\nhosts: [a]\ntime: {last: 1h}\nthresholds: {cpu_busy_percent: 0, "
            "memory_used_percent: 100, network_errors_per_second: 1000, data_missing_percent: null}\n",
        ),
        {},
    )
    assert edges.thresholds.cpu_busy_percent == 0
    assert edges.thresholds.memory_used_percent == 100
    assert edges.thresholds.network_errors_per_second == 1000
    assert edges.thresholds.data_missing_percent is None


def test_the_time_range_stays_within_what_influxdb_stores(tmp_path: Path) -> None:
    """A range past int64 nanoseconds was queried anyway and ended in a traceback."""
    base = "tenant: acme\nhosts: [a]\n"
    path = tmp_path / "report.yaml"
    limits = "1677-09-21T00:12:44Z to 2262-04-11T23:47:16Z (nanoseconds since 1970 in 64 bits)"
    assert errors_of(tmp_path, base + "time: {last: 99999999d}") == [
        f"{path}: line 3: time.last: 99999999d is too long: at most 3653d (ten years)"
    ]
    assert errors_of(tmp_path, base + "time: {last: 1h, step: 522w}") == [
        f"{path}: line 3: time.step: 522w is too long: at most 3653d (ten years)"
    ]
    assert errors_of(
        tmp_path, base + "time: {start: 0001-01-01T00:00:00Z, end: 9999-12-31T23:59:59Z}"
    ) == [
        f"{path}: line 3: time.start: 0001-01-01T00:00:00Z is outside what InfluxDB stores: {limits}",
        f"{path}: line 3: time.end: 9999-12-31T23:59:59Z is outside what InfluxDB stores: {limits}",
    ]
    assert errors_of(
        tmp_path, base + "time: {start: 1677-09-21T00:12:43Z, end: 2262-04-11T23:47:17Z}"
    ) == [
        f"{path}: line 3: time.start: 1677-09-21T00:12:43Z is outside what InfluxDB stores: {limits}",
        f"{path}: line 3: time.end: 2262-04-11T23:47:17Z is outside what InfluxDB stores: {limits}",
    ]
    before_year_one = errors_of(
        tmp_path, base + "time: {start: '0001-01-01T00:00:00+01:00', end: 2025-01-01T00:00:00Z}"
    )
    assert before_year_one == [
        f"{path}: line 3: time.start: 0001-01-01T00:00:00+01:00 is out of range in UTC"
    ]
    widest = load_config(
        write(tmp_path, base + "time: {start: 1677-09-21T00:12:44Z, end: 2262-04-11T23:47:16Z}"),
        {},
    )
    assert widest.time.start is not None
    ten_years = load_config(write(tmp_path, base + "time: {last: 3653d}"), {})
    assert ten_years.time.last == 3653 * 86400


def test_the_widest_range_is_queried_with_times_influxdb_can_parse(tmp_path: Path) -> None:
    """The grid is widened to whole steps, past the range's ends: the queries stop at InfluxDB's
    limits (a time beyond int64 nanoseconds is a parse error there)."""
    config = load_config(
        write(
            tmp_path,
            "tenant: acme\nhosts: [a]\n"
            "time: {start: 1677-09-21T00:12:44Z, end: 2262-04-11T23:47:16Z}\n",
        ),
        {},
    )
    start, end = requested_range(config.time, 0.0)
    grid = report_grid(config.time, start, end, [60.0])
    assert grid.start < start  # widened past both limits
    assert grid.end > end
    pieces = [
        (grid.time_of(first), grid.time_of(first + count)) for first, count in grid.chunks(100)
    ]
    for low, high in pieces:
        match = re.fullmatch(r"time >= (-?\d+) AND time < (-?\d+)", influxql.time_range(low, high))
        assert match is not None
        assert -(2**63) + 2 <= int(match[1]) < int(match[2]) <= 2**63 - 1
    assert influxql.time_range(*pieces[0]).startswith("time >= -9223372036854775806 ")
    assert influxql.time_range(*pieces[-1]).endswith(" time < 9223372036854775807")
    assert datetime.fromtimestamp(grid.start, UTC).year == 1677
    assert datetime.fromtimestamp(grid.end, UTC).year == 2262


def test_device_choices_must_name_the_reports_hosts(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        """
        tenant: acme
        hosts: [web-01]
        time: {last: 1h}
        devices: {disk: {web-02: sda}, network: 5, mountpoints: [var]}
    """,
    )
    text = "\n".join(errors)
    assert "devices.disk.web-02: not one of the report's hosts (web-01)" in text
    assert "devices.network: expected non-empty text, got a number" in text
    assert "devices.mountpoints: 'var' is not a mountpoint: expected an absolute path" in text


def test_influxdb_passwords_come_from_the_environment_or_a_file_never_inline(
    tmp_path: Path,
) -> None:
    base = "tenant: acme\nhosts: [a]\ntime: {last: 1h}\n"
    inline = errors_of(tmp_path, base + "influxdb: {username: r, password: hunter2}")
    assert any("influxdb.password: unknown key (did you mean 'password_env'?)" in e for e in inline)
    assert any("give exactly one of password_env" in e for e in inline)
    unset = errors_of(tmp_path, base + "influxdb: {username: r, password_env: READ_PASSWORD}")
    assert unset[0].endswith(
        "influxdb.password_env: environment variable READ_PASSWORD is not set or empty"
    )
    config = load_config(
        write(tmp_path, base + "influxdb: {username: r, password_env: READ_PASSWORD}"),
        {"READ_PASSWORD": "pw"},
    )
    assert config.influxdb is not None
    assert config.influxdb.password == "pw"
    missing = errors_of(tmp_path, base + "influxdb: {username: r, password_file: nope.txt}")
    assert f"influxdb.password_file: cannot read {tmp_path / 'nope.txt'}" in missing[0]
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    latin1 = errors_of(tmp_path, base + "influxdb: {username: r, password_file: latin1.txt}")
    assert f"influxdb.password_file: {tmp_path / 'latin1.txt'} is not UTF-8 text" in latin1[0]


def test_yaml_syntax_errors_and_missing_files(tmp_path: Path) -> None:
    broken = errors_of(tmp_path, "tenant: acme\nhosts: [a\ntime: {last: 1h}\n")
    assert broken[0].startswith(f"{tmp_path / 'report.yaml'}: line ")
    assert "not valid YAML" in broken[0]
    with pytest.raises(ReportConfigError) as caught:
        load_config(tmp_path / "absent.yaml", {})
    assert caught.value.errors == [
        f"{tmp_path / 'absent.yaml'}: cannot read the file: No such file or directory"
    ]
    assert errors_of(tmp_path, "- just\n- a list\n")[0].endswith(
        "(top level): expected a mapping, got a list"
    )


def test_the_command_exits_2_with_every_problem_on_stderr(tmp_path: Path) -> None:
    path = write(tmp_path, "tenant: acme\nhosts: []\ntime: {last: 1h, step: 5x}\n")
    err = io.StringIO()
    assert run(["--config", str(path)], stderr=err) == 2
    message = err.getvalue()
    assert message.startswith("perfanalysis report: invalid configuration:")
    assert f"{path}: line 2: hosts: expected a non-empty list of names, got a list" in message
    assert f"{path}: line 3: time.step: '5x' is not a duration" in message


def test_the_command_refuses_bad_flags(tmp_path: Path) -> None:
    err = io.StringIO()
    assert run(["--config", str(write(tmp_path, MINIMAL)), "--influxdb.urll", "x"], stderr=err) == 2
    assert "flag --influxdb.urll: unknown flag (did you mean influxdb.url?)" in err.getvalue()
    err = io.StringIO()
    assert run([], stderr=err) == 2
    assert "flag --config: required" in err.getvalue()


@pytest.mark.parametrize(
    ("timeout", "problem"),
    [
        ("inf", "must be finite"),
        ("1e12", "must be at most 86400 seconds"),
        ("0", "must be greater than zero"),
    ],
)
def test_an_unusable_query_timeout_is_a_flag_error(
    tmp_path: Path, timeout: str, problem: str
) -> None:
    err = io.StringIO()
    argv = ["--config", str(write(tmp_path, MINIMAL)), "--influxdb.timeout", timeout]
    assert run(argv, stderr=err) == 2
    assert f"flag --influxdb.timeout: invalid value {timeout!r}: {problem}" in err.getvalue()
