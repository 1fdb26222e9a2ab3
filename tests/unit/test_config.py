import re
from pathlib import Path

import pytest

from exporter.config import build_spec, enabled_collectors, load
from perfanalysis.config import (
    ConfigError,
    HelpRequested,
    http_url,
    listen_address,
    optional_http_url,
    positive_float,
    readable_file,
    timeout_seconds,
)


def errors_of(argv: list[str], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(argv, environ or {})
    return caught.value.errors


def test_defaults_enable_every_collector_on_port_9100() -> None:
    values = load([], {})
    assert values["web_listen_address"] == [("", 9100)]
    assert values["path_procfs"] == "/proc"
    assert enabled_collectors(values) == [
        "conntrack", "cpu", "cpufreq", "diskstats", "filefd", "filesystem", "loadavg",
        "meminfo", "netclass", "netdev", "pressure", "stat", "time", "timex", "uname", "vmstat",
        "textfile",  # last: a .prom file never replaces a series of the exporter's own
    ]  # fmt: skip


def test_flag_beats_environment_which_beats_default() -> None:
    env = {
        "PERFANALYSIS_EXPORTER_PATH_PROCFS": "/host/proc",
        "PERFANALYSIS_EXPORTER_PATH_SYSFS": "/host/sys",
    }
    values = load(["--path.procfs", "/other/proc"], env)
    assert values["path_procfs"] == "/other/proc"
    assert values["path_sysfs"] == "/host/sys"
    assert values["path_rootfs"] == "/"


def test_collector_toggles_and_disable_defaults() -> None:
    values = load(
        ["--collector.disable-defaults", "--collector.cpu", "--collector.meminfo=true"], {}
    )
    assert enabled_collectors(values) == ["cpu", "meminfo"]
    values = load(
        ["--no-collector.filesystem"], {"PERFANALYSIS_EXPORTER_COLLECTOR_PRESSURE": "false"}
    )
    assert "filesystem" not in enabled_collectors(values)
    assert "pressure" not in enabled_collectors(values)
    assert "cpu" in enabled_collectors(values)


def test_every_error_is_reported_at_once_with_its_source() -> None:
    errors = errors_of(
        [
            "--collector.cpuu",
            "--web.listen-address=nonsense",
            "--collector.vmstat.fields=(",
            "--collector.filesystem.mount-timeout=-1",
            "--web.max-requests",
        ],
        {"PERFANALYSIS_EXPORTER_COLLECTOR_CPU": "maybe", "PERFANALYSIS_EXPORTER_BOGUS": "1"},
    )
    assert len(errors) == 7, errors
    joined = "\n".join(errors)
    assert "flag --collector.cpuu: unknown flag (did you mean collector.cpu?)" in joined
    assert "flag --web.listen-address: invalid value 'nonsense'" in joined
    assert (
        "flag --collector.vmstat.fields: invalid value '(': not a valid regular expression"
        in joined
    )
    assert (
        "flag --collector.filesystem.mount-timeout: invalid value '-1': must be greater than zero"
        in joined
    )
    assert "flag --web.max-requests: needs a value" in joined
    assert (
        "environment variable PERFANALYSIS_EXPORTER_COLLECTOR_CPU: invalid value 'maybe'" in joined
    )
    assert "environment variable PERFANALYSIS_EXPORTER_BOGUS: not a known setting" in joined


def test_include_and_exclude_together_are_refused() -> None:
    errors = errors_of(
        ["--collector.netdev.device-include=^eth", "--collector.netdev.device-exclude=^lo$"]
    )
    assert errors == [
        "flags --collector.netdev.device-include and --collector.netdev.device-exclude: "
        "are mutually exclusive, give one"
    ]


def test_no_collector_at_all_is_refused() -> None:
    assert errors_of(["--collector.disable-defaults"]) == [
        "no collector is enabled: enable one with --collector.NAME"
    ]


def test_boolean_flags_refuse_values_on_negation_and_negating_non_booleans() -> None:
    errors = errors_of(["--no-collector.cpu=false", "--no-path.procfs"])
    assert errors == [
        "flag --no-collector.cpu: takes no value",
        "flag --no-path.procfs: --path.procfs is not a boolean flag",
    ]


def test_positional_arguments_are_refused() -> None:
    assert errors_of(["extra"]) == ["argument 'extra': unexpected positional argument"]


def test_help_lists_every_flag_with_its_environment_variable() -> None:
    with pytest.raises(HelpRequested) as caught:
        load(["--help"], {})
    text = caught.value.text
    for setting in build_spec().settings:
        assert f"{setting.flag}" in text
        assert setting.env_name("PERFANALYSIS_EXPORTER_") in text


def test_help_shows_a_regex_default_as_its_pattern_text() -> None:
    with pytest.raises(HelpRequested) as caught:
        load(["--help"], {})
    text = caught.value.text
    assert "(default: '^(oom_kill|pgpg|pswp|pg.*fault).*')" in text
    assert "re.compile" not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [(":9100", ("", 9100)), ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:9100", ("::1", 9100))],
)
def test_listen_address_forms(text: str, expected: tuple[str, int]) -> None:
    assert listen_address(text) == expected


@pytest.mark.parametrize("text", ["9100", "host:http", "host:70000"])
def test_listen_address_errors(text: str) -> None:
    with pytest.raises(ValueError, match=re.compile(r"HOST:PORT|not a number|out of range")):
        listen_address(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("0", "must be greater than zero"), ("-1", "must be greater than zero"),
     ("nan", "must be greater than zero"), ("inf", "must be finite"), ("-inf", "greater than zero")],
)  # fmt: skip
def test_positive_float_refuses_zero_negatives_and_non_finite_values(
    text: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        positive_float(text)
    assert positive_float("1e300") == 1e300


def test_timeout_seconds_refuses_more_than_a_day() -> None:
    assert timeout_seconds("86400") == 86400
    assert timeout_seconds("0.5") == 0.5
    for text in ("86400.5", "1e12", "inf"):
        with pytest.raises(ValueError, match="must be"):
            timeout_seconds(text)


def test_an_infinite_or_absurd_mount_timeout_is_a_flag_error() -> None:
    assert errors_of(["--collector.filesystem.mount-timeout=inf"]) == [
        "flag --collector.filesystem.mount-timeout: invalid value 'inf': must be finite"
    ]
    assert errors_of(["--collector.filesystem.mount-timeout=1e12"]) == [
        "flag --collector.filesystem.mount-timeout: invalid value '1e12': must be at most 86400 "
        "seconds (a day)"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ftp://host", "expected an http:// or https:// URL"),
        ("http://", "no host in the URL"),
        ("http://[::1:3000", "Invalid IPv6 URL"),
        ("http://host:99999", "Port out of range"),
        ("http://host:port", "Port could not be cast"),
    ],
)
def test_http_urls_are_checked_as_the_clients_will_read_them(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        http_url(text)
    assert http_url("https://[::1]:8086/base/") == "https://[::1]:8086/base"
    assert optional_http_url("") == ""
    with pytest.raises(ValueError, match="expected an http"):
        http_url("")


# ----------------------------------------------------------------------------------------------
# A flag given twice (node_exporter's kingpin refuses it; no setting takes a list)


def test_a_flag_given_twice_is_refused_with_both_values() -> None:
    errors = errors_of(["--web.telemetry-path=/a", "--web.telemetry-path", "/b"])
    assert errors == ["flag --web.telemetry-path: given twice ('/a' and '/b')"]
    assert errors_of(["--path.procfs=/a", "--path.procfs=/b", "--path.procfs=/a"]) == [
        "flag --path.procfs: given 3 times ('/a', '/b' and '/a')"
    ]


def test_a_boolean_flag_given_twice_or_with_its_negation_is_refused() -> None:
    assert errors_of(["--collector.cpu", "--no-collector.cpu"]) == [
        "flag --collector.cpu: given twice (--collector.cpu and --no-collector.cpu)"
    ]
    assert errors_of(["--collector.cpu=true", "--collector.cpu"]) == [
        "flag --collector.cpu: given twice (--collector.cpu=true and --collector.cpu)"
    ]


def test_a_repeated_secret_is_not_shown_and_its_values_are_not_checked_again() -> None:
    from ingest.settings import load as load_ingest

    with pytest.raises(ConfigError) as caught:
        load_ingest(["--secret-key=first-secret", "--secret-key", "second-secret"], {})
    assert "flag --secret-key: given twice (<hidden> and <hidden>)" in caught.value.errors
    assert "first-secret" not in str(caught.value)
    assert "second-secret" not in str(caught.value)


def test_a_flag_and_its_environment_variable_are_not_a_repeat() -> None:
    env = {"PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS": ":9200"}
    assert load(["--web.listen-address=:9300"], env)["web_listen_address"] == [("", 9300)]


# ----------------------------------------------------------------------------------------------
# readable_file


def test_readable_file_says_what_the_path_is_instead(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert readable_file(str(tmp_path / "file")) == str(tmp_path / "file")
    with pytest.raises(ValueError, match=r"^is a directory, not a file$"):
        readable_file(str(tmp_path))
    with pytest.raises(ValueError, match=r"^no such file$"):
        readable_file(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"^not a regular file$"):
        readable_file("/dev/null")
    assert errors_of(["--push.url=http://x", f"--push.key-file={tmp_path}"]) == [
        f"flag --push.key-file: invalid value '{tmp_path}': is a directory, not a file"
    ]


def test_the_connection_cap_defaults_to_64_and_must_be_positive() -> None:
    assert load([], {})["web_max_connections"] == 64
    assert load(["--web.max-connections=500"], {})["web_max_connections"] == 500
    assert errors_of(["--web.max-connections=0"]) == [
        "flag --web.max-connections: invalid value '0': must be greater than zero"
    ]
