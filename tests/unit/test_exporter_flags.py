"""node_exporter 1.5.0's flags that fleets use, and what each bad number says.

Each of these was refused, or refused with a misleading hint, where node_exporter runs.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import requests

from exporter.config import DEPRECATED_FLAGS, VERSION, build_spec, enabled_collectors, load
from exporter.logformat import JSONFormatter, LogfmtFormatter
from exporter.main import run
from exporter.model import MetricFamily
from exporter.registry import Registry
from exporter.server import ExporterServer
from perfanalysis.config import (
    ConfigError,
    Spec,
    VersionRequested,
    non_negative_int,
    positive_float,
    positive_int,
    timeout_seconds,
)


def errors_of(argv: list[str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(argv, {})
    return caught.value.errors


def loaded(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    notes: list[str] = []
    return load(argv, {}, notes), notes


# -- --web.max-requests=0


def test_max_requests_zero_means_no_limit() -> None:
    assert loaded(["--web.max-requests=0"])[0]["web_max_requests"] == 0
    assert errors_of(["--web.max-requests=-1"]) == [
        "flag --web.max-requests: invalid value '-1': must be zero or more"
    ]


class Blocking:
    name = "blocking"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def collect(self) -> list[MetricFamily]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(10), "test never released the blocking collector"
        return []


@contextmanager
def serve(registry: Registry, max_requests: int) -> Iterator[str]:
    server = ExporterServer(("127.0.0.1", 0), registry, "/metrics", max_requests)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_with_no_request_limit_a_second_scrape_waits_instead_of_a_503() -> None:
    blocking = Blocking()
    results: list[int] = []
    with serve(Registry([blocking]), max_requests=0) as url:
        first = threading.Thread(
            target=lambda: results.append(requests.get(url, timeout=10).status_code)
        )
        first.start()
        assert blocking.entered.wait(5)
        second = threading.Thread(
            target=lambda: results.append(requests.get(url, timeout=10).status_code)
        )
        second.start()
        blocking.release.set()
        first.join(10)
        second.join(10)
    assert results == [200, 200]


# -- --web.listen-address given several times


def test_listen_address_may_be_repeated_and_the_variable_holds_one() -> None:
    values, _ = loaded(["--web.listen-address=127.0.0.1:9100", "--web.listen-address=[::1]:9100"])
    assert values["web_listen_address"] == [("127.0.0.1", 9100), ("::1", 9100)]
    env = {"PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS": "127.0.0.1:9200"}
    assert load([], env)["web_listen_address"] == [("127.0.0.1", 9200)]
    assert load([], {})["web_listen_address"] == [("", 9100)]
    assert errors_of(["--web.listen-address=:1", "--web.listen-address=x"]) == [
        "flag --web.listen-address: invalid value 'x': expected HOST:PORT, for example :9100 "
        "or 127.0.0.1:9100"
    ]


# -- node_exporter 1.5.0's deprecated flag names


@pytest.mark.parametrize(("old", "new"), DEPRECATED_FLAGS.items())
def test_deprecated_names_set_the_exclude_flag_with_a_warning(old: str, new: str) -> None:
    values, notes = loaded([f"--{old}=^zzz$"])
    assert values[new.replace(".", "_").replace("-", "_")].pattern == r"^zzz\Z"
    assert notes == [f"flag --{old} is DEPRECATED, use --{new} (the same setting)"]
    assert new.endswith("-exclude")


def test_a_deprecated_name_and_its_new_name_together_are_refused() -> None:
    assert errors_of(
        ["--collector.diskstats.ignored-devices=^a", "--collector.diskstats.device-exclude=^b"]
    ) == [
        "flag --collector.diskstats.device-exclude: given twice "
        "('^a' as --collector.diskstats.ignored-devices and '^b')"
    ]
    assert errors_of(
        ["--collector.diskstats.ignored-devices=^a", "--collector.diskstats.device-include=^b"]
    ) == [
        "flags --collector.diskstats.device-include and --collector.diskstats.device-exclude: "
        "are mutually exclusive, give one"
    ]


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("collector.filesystem.ignored-mount-point", "collector.filesystem.mount-points-exclude"),
        ("collector.diskstats.device-ignore", "collector.diskstats.device-exclude"),
        ("collector.netdev.device-blacklist", "collector.netdev.device-exclude"),
        ("collector.netdev.device-whitelist", "collector.netdev.device-include"),
    ],
)
def test_a_hint_never_suggests_the_opposite_filter(typed: str, hint: str) -> None:
    assert errors_of([f"--{typed}=x"]) == [f"flag --{typed}: unknown flag (did you mean {hint}?)"]


# -- node_exporter's collectors this exporter lacks


def test_turning_off_a_collector_we_lack_is_a_no_op_with_a_warning() -> None:
    values, notes = loaded(["--no-collector.wifi", "--collector.systemd=false"])
    assert "wifi" not in enabled_collectors(values)
    assert notes == [
        "flag --no-collector.wifi: node_exporter's wifi collector is not implemented here, so "
        "turning it off changes nothing",
        "flag --collector.systemd: node_exporter's systemd collector is not implemented here, "
        "so turning it off changes nothing",
    ]


def test_turning_on_a_collector_we_lack_is_refused_saying_so() -> None:
    assert errors_of(["--collector.wifi", "--collector.systemd=true", "--no-collector.wifi=x"]) == [
        "flag --collector.wifi: node_exporter's wifi collector is not implemented here",
        "flag --collector.systemd: node_exporter's systemd collector is not implemented here",
        "flag --no-collector.wifi: takes no value",
    ]
    assert errors_of(["--collector.nosuch"])[0].startswith("flag --collector.nosuch: unknown flag")


# -- --log.format and --version


def test_log_format_is_logfmt_by_default_or_json() -> None:
    assert loaded([])[0]["log_format"] == "logfmt"
    assert loaded(["--log.format=json"])[0]["log_format"] == "json"
    assert errors_of(["--log.format=text"]) == [
        "flag --log.format: invalid value 'text': expected one of logfmt, json"
    ]


def record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("exporter.http", level, "/x/http.py", 42, message, (), None)


def test_logfmt_lines_have_node_exporter_s_keys_and_quoting() -> None:
    line = LogfmtFormatter().format(record('3 connections "open"'))
    ts, rest = line.split(" ", 1)
    assert ts.startswith("ts=")
    assert ts.endswith("Z")
    assert (
        rest == 'caller=http.py:42 level=warn logger=exporter.http msg="3 connections \\"open\\""'
    )
    assert LogfmtFormatter().format(record("done", logging.INFO)).endswith(" msg=done")


def test_json_lines_are_one_object_each() -> None:
    line = JSONFormatter().format(record("a\nb", logging.ERROR))
    assert "\n" not in line
    fields = json.loads(line)
    assert fields["level"] == "error"
    assert fields["msg"] == "a\nb"
    assert list(fields) == ["ts", "caller", "level", "logger", "msg"]


def test_version_prints_like_node_exporter_s_first_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(VersionRequested) as caught:
        load(["--web.max-requests=5", "--version"], {})
    assert caught.value.text == VERSION
    assert "--version\n      Show the version and exit." in build_spec().help_text()
    assert run(["--version"], {}) == 0
    assert capsys.readouterr().out.startswith("perfanalysis exporter, version ")


def test_warnings_are_logged_once_logging_is_set_up(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as holder:  # the exporter stops there, after logging its warnings
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        argv = [
            f"--web.listen-address=127.0.0.1:{holder.getsockname()[1]}",
            "--collector.disable-defaults",
            "--collector.loadavg",
            "--no-collector.wifi",
            "--collector.filesystem.ignored-fs-types=^tmpfs$",
        ]
        with caplog.at_level(logging.WARNING, logger="exporter"):
            assert run(argv, {}) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "--no-collector.wifi" in warnings[0]
    assert "--collector.filesystem.ignored-fs-types is DEPRECATED" in warnings[1]


# -- what a bad number says


NUMBER_CONVERTERS: dict[Callable[[str], object], str] = {
    positive_int: "expected a whole number",
    non_negative_int: "expected a whole number",
    positive_float: "expected a number",
    timeout_seconds: "expected a number",
}


def component_specs() -> list[Spec]:
    from perfanalysis.configdoc import SPECS

    return [build() for build in SPECS.values()]


@pytest.mark.parametrize("text", ["x", "1.5x", "", "1_000", "٣"])
def test_every_numeric_setting_of_every_component_says_what_it_expected(text: str) -> None:
    """The shared converters serve ingest, admin, report and grafana too: none shows Python's
    own text ("invalid literal for int() with base 10")."""
    checked = 0
    for spec in component_specs():
        for setting in spec.settings:
            expected = NUMBER_CONVERTERS.get(setting.convert)
            if expected is None:
                continue
            with pytest.raises(ValueError, match=expected) as caught:
                setting.convert(text)
            assert "literal" not in str(caught.value)
            assert "convert" not in str(caught.value)
            checked += 1
    assert checked >= 20


def test_every_numeric_duration_or_size_flag_of_the_exporter_names_itself_and_its_form() -> None:
    numeric = [
        s for s in build_spec().settings if s.metavar in ("N", "SECONDS", "DURATION", "SIZE")
    ]
    assert len(numeric) >= 9
    errors = errors_of([f"--{s.flag}=x" for s in numeric])
    assert len(errors) == len(numeric)
    for setting, error in zip(numeric, errors, strict=True):
        assert error.startswith(f"flag --{setting.flag}: invalid value 'x': expected "), error
    assert errors_of(["--web.max-requests=x"]) == [
        "flag --web.max-requests: invalid value 'x': expected a whole number, such as 40"
    ]
    assert errors_of(["--push.timeout=\u0663s", "--push.spool-max-bytes=\u0663MiB"]) == [
        "flag --push.spool-max-bytes: invalid value '\u0663MiB': expected a size such as 64MiB, "
        "512KiB or 1GB",
        "flag --push.timeout: invalid value '\u0663s': expected a duration such as 10s, 500ms, "
        "2m or 1h",
    ]  # an Arabic-Indic three: a digit to Python's \d, not to Go


@pytest.mark.parametrize("text", ["x", "1.5x", "1_000"])
def test_no_setting_of_any_component_answers_with_pythons_own_conversion_text(text: str) -> None:
    """Converters of a component's own (ingest's rate and burst, the load test's bounds) too."""
    from exporter.loadtest.settings import run_spec, upload_spec

    for spec in [*component_specs(), run_spec(), upload_spec()]:
        for setting in spec.settings:
            try:
                setting.convert(text)
            except ValueError as exc:
                message = str(exc)
                assert "literal" not in message, (setting.flag, message)
                assert "could not convert" not in message, (setting.flag, message)
