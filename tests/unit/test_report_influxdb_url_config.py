"""The YAML's influxdb.url goes through the check --influxdb.url does (settings.influxdb_base_url):
a URL naming one of InfluxDB's endpoints (/ping, /query, ...) was refused as a flag but taken from
the configuration file, where every query then 404'd under it; and it only had to start with
http://, so ``http://`` or a port of 99999 passed too. Its error names the file, the line and the
key, as every key's error of the file now does."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest
import yaml

from perfanalysis import strictyaml
from perfanalysis.config import ConfigError
from perfanalysis.report import settings as report_settings
from perfanalysis.report.cli import run
from perfanalysis.report.config import load_config
from perfanalysis.report.validate import Problems, ReportConfigError, key_lines

BASE = """\
tenant: acme
hosts: [web-01]
time: {last: 1h}
influxdb:
  username: reader
  url: URL
  password_env: PW
"""


def with_url(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "report.yaml"
    path.write_text(BASE.replace("URL", url))
    return path


def config_errors(path: Path) -> list[str]:
    with pytest.raises(ReportConfigError) as caught:
        load_config(path, {"PW": "secret"})
    return caught.value.errors


def flag_error(url: str) -> str:
    with pytest.raises(ConfigError) as caught:
        report_settings.load(["--config", "report.yaml", "--influxdb.url", url], {})
    (error,) = caught.value.errors
    return error


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://127.0.0.1:25186/ping", "http://127.0.0.1:25186"),
        ("http://h:8086/query?db=pa_acme", "http://h:8086"),
        ("https://p/influx/write", "https://p/influx"),
        ("http://h:8086/?db=x", "http://h:8086"),
    ],
)
def test_an_endpoint_url_in_the_file_is_refused_as_the_flag_is(
    tmp_path: Path, given: str, base: str
) -> None:
    path = with_url(tmp_path, given)
    (error,) = config_errors(path)
    prefix = f"{path}: line 6: influxdb.url: invalid value {given!r}: "
    assert error.startswith(prefix), error
    assert error.endswith(f"give {base}, to which the report adds /query")
    # one check, one wording: the flag's reason is the file's
    assert flag_error(given).endswith(error.removeprefix(prefix))


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("http://", "no host in the URL"),
        ("http://h:99999", "Port out of range 0-65535"),
        ("ftp://h:8086", "expected an http:// or https:// URL"),
        ("h:8086", "expected an http:// or https:// URL"),
    ],
)
def test_a_url_the_client_could_not_use_is_refused_too(
    tmp_path: Path, given: str, reason: str
) -> None:
    path = with_url(tmp_path, given)
    assert config_errors(path) == [
        f"{path}: line 6: influxdb.url: invalid value {given!r}: {reason}"
    ]


def test_a_base_url_is_taken_as_before(tmp_path: Path) -> None:
    for given, taken in (("http://influx:8086/", "http://influx:8086"), ("https://p/influx", "https://p/influx")):  # fmt: skip
        config = load_config(with_url(tmp_path, given), {"PW": "secret"})
        assert config.influxdb is not None
        assert config.influxdb.url == taken


def test_the_command_refuses_it_with_exit_2_before_reading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", "secret")
    path = with_url(tmp_path, "http://127.0.0.1:1/ping")
    err = io.StringIO()
    code = run(["--config", str(path), "--output", str(tmp_path / "r.html")], stderr=err)
    assert code == 2
    assert err.getvalue() == (
        "perfanalysis report: invalid configuration:\n"
        f"  {path}: line 6: influxdb.url: invalid value 'http://127.0.0.1:1/ping': not "
        "InfluxDB's base URL (its path ends in /ping, an InfluxDB endpoint): give "
        "http://127.0.0.1:1, to which the report adds /query\n"
    )
    assert not (tmp_path / "r.html").exists()


def lines_of(text: str) -> dict[str, int]:
    return key_lines(yaml.compose(textwrap.dedent(text), Loader=strictyaml.StrictSafeLoader))


def test_each_key_path_has_the_line_it_is_written_on() -> None:
    lines = lines_of(
        """\
        tenant: acme
        hosts:
          - web-01
          - web-02
        time: {last: 1h,
               step: 1m}
        devices:
          disk: {web-02: sdb}
        """
    )
    assert lines == {
        "tenant": 1,
        "hosts": 2,
        "hosts[0]": 3,
        "hosts[1]": 4,
        "time": 5,
        "time.last": 5,
        "time.step": 6,
        "devices": 7,
        "devices.disk": 8,
        "devices.disk.web-02": 8,
    }


def test_merged_keys_are_found_where_written_and_the_mappings_own_win() -> None:
    lines = lines_of(
        """\
        thresholds: &defaults
          cpu_busy_percent: 80
          memory_used_percent: 90
        other:
          <<: *defaults
          memory_used_percent: 95
        """
    )
    assert lines["other.cpu_busy_percent"] == 2  # from the anchor
    assert lines["other.memory_used_percent"] == 6  # its own
    assert "other.<<" not in lines


def test_a_missing_key_takes_the_line_of_the_nearest_key_above_it() -> None:
    problems = Problems("r.yaml", {"influxdb": 4, "influxdb.url": 6, "percentiles[1]": 9})
    problems.add("influxdb.username", "required key is missing")
    problems.add("percentiles[1]", "listed twice")
    problems.add("percentiles[2]", "no such item")
    problems.add("tenant", "required key is missing")
    problems.add("", "expected a mapping")
    assert problems.errors == [
        "r.yaml: line 4: influxdb.username: required key is missing",
        "r.yaml: line 9: percentiles[1]: listed twice",
        "r.yaml: percentiles[2]: no such item",
        "r.yaml: tenant: required key is missing",
        "r.yaml: (top level): expected a mapping",
    ]
