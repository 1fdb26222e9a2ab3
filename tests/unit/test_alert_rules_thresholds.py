"""The thresholds loader: merging tenants over defaults, and errors that name file, key and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfanalysis.alerting.durations import format_duration, parse_duration
from perfanalysis.alerting.generate import THRESHOLDS
from perfanalysis.alerting.thresholds import ThresholdsError, load, parse

BASE: dict[str, Any] = yaml.safe_load(THRESHOLDS.read_text())


def data(**changes: Any) -> dict[str, Any]:
    """The committed thresholds with top-level keys replaced."""
    result = copy.deepcopy(BASE)
    result.update(changes)
    return result


def with_tenant(slug: str, entry: Any) -> dict[str, Any]:
    return data(tenants={**BASE["tenants"], slug: entry})


def errors(value: Any) -> list[str]:
    with pytest.raises(ThresholdsError) as caught:
        parse(value, "thresholds.yaml")
    return caught.value.errors


def test_committed_file_loads_and_a_tenant_override_keeps_the_other_defaults() -> None:
    thresholds = load(THRESHOLDS)
    acme = thresholds.tenants["acme"].settings["cpu_busy_percent"]
    default = thresholds.defaults["cpu_busy_percent"]
    assert (acme.warning, acme.critical, acme.for_seconds) == (70, default.critical, 600)
    assert thresholds.tenants["demo"].settings == thresholds.defaults
    assert thresholds.tenants["demo"].notify is None


def test_unknown_rule_names_the_tenant_and_lists_the_known_rules() -> None:
    [message] = errors(with_tenant("acme", {"cpu_bussy_percent": {"warning": 70}}))
    assert message.startswith("thresholds.yaml: tenants.acme.cpu_bussy_percent: unknown rule")
    assert "cpu_busy_percent" in message


def test_warning_must_be_below_critical_and_says_where_each_came_from() -> None:
    [message] = errors(with_tenant("acme", {"cpu_busy_percent": {"warning": 96}}))
    assert message == (
        "thresholds.yaml: tenants.acme.cpu_busy_percent: warning (96) must be below critical "
        "(95, from defaults): percent of CPU time neither idle nor iowait"
    )
    equal = data(defaults={**BASE["defaults"], "memory_used_percent": {"warning": 90, "critical": 90, "for": "5m"}})  # fmt: skip
    assert errors(equal) == [
        "thresholds.yaml: defaults.memory_used_percent: warning (90) must be below critical "
        "(90): percent of MemTotal not available"
    ]


def test_hours_to_full_run_the_other_way() -> None:
    [message] = errors(with_tenant("acme", {"filesystem_predicted_full_hours": {"critical": 48}}))
    assert "warning (24, from defaults) must be above critical (48)" in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("for", "10 minutes", "'10 minutes' is not a duration such as 30s, 10m or 1h30m"),
        ("for", 600, "must be a duration such as 30s, 10m or 1h30m, got int 600"),
        ("for", "", "'' is not a duration"),
        ("warning", "seventy", "must be a number (percent of CPU time neither idle nor iowait), got str 'seventy'"),
        ("warning", True, "must be a number"),
        ("warning", 170, "must be above 0 and below 100"),
        ("warning", float("nan"), "must be above 0"),
        ("enabled", "no", "must be true or false, got str 'no'"),
        ("severity", "page", "unknown key; expected one of: warning, critical, for, enabled"),
    ],
)  # fmt: skip
def test_bad_fields_name_tenant_rule_and_field(field: str, value: Any, expected: str) -> None:
    [message] = errors(with_tenant("acme", {"cpu_busy_percent": {field: value}}))
    assert message.startswith(f"thresholds.yaml: tenants.acme.cpu_busy_percent.{field}: ")
    assert expected in message


def test_every_error_is_reported_at_once() -> None:
    broken = with_tenant(
        "acme", {"cpu_busy_percent": {"for": "soon"}, "memory_used_percent": {"warning": "x"}}
    )
    broken["defaults"]["disk_io_queue_length"] = {"warning": -2, "for": "15m"}
    broken["tenants"]["Bad_Slug"] = {}
    broken["colour"] = "blue"
    found = errors(broken)
    assert [m.split(": ")[1] for m in found] == [
        "(top).colour",
        "defaults.disk_io_queue_length.warning",
        "tenants.Bad_Slug",
        "tenants.acme.cpu_busy_percent.for",
        "tenants.acme.memory_used_percent.warning",
    ]


def test_defaults_must_cover_every_rule_with_a_for() -> None:
    defaults = {k: v for k, v in BASE["defaults"].items() if k != "spool_growing"}
    defaults["exporter_down"] = {"for": "5m"}
    assert errors(data(defaults=defaults)) == [
        "thresholds.yaml: defaults.spool_growing: missing; every rule needs a default",
        "thresholds.yaml: defaults.exporter_down: missing severity",
    ]


def test_a_null_level_removes_it_and_enabled_false_removes_the_rule() -> None:
    thresholds = parse(
        with_tenant("quiet", {"cpu_busy_percent": {"warning": None}, "disk_io_queue_length": {"enabled": False}})
    )  # fmt: skip
    settings = thresholds.tenants["quiet"].settings
    assert [lv.severity for lv in settings["cpu_busy_percent"].levels()] == ["critical"]
    assert settings["disk_io_queue_length"].levels() == []
    [message] = errors(with_tenant("quiet", {"disk_io_queue_length": {"warning": None}}))
    assert message.endswith("needs a warning or a critical threshold (or enabled: false)")


def test_receivers_are_checked_and_email_needs_smtp() -> None:
    notify = {"webhooks": ["ftp://x", "https://hooks.example/a"], "emails": ["nobody"]}
    assert errors(with_tenant("acme", {"notify": notify})) == [
        "thresholds.yaml: tenants.acme.notify.webhooks[0]: must be an http(s) URL with a host, "
        "got 'ftp://x'",
        "thresholds.yaml: tenants.acme.notify.emails[0]: is not an e-mail address: 'nobody'",
    ]
    no_smtp = data(smtp=None)
    assert errors(no_smtp) == [
        "thresholds.yaml: smtp: missing; needed to send e-mail (tenants.acme.notify.emails)"
    ]


def test_file_errors_carry_the_path(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text("defaults: [\n")
    with pytest.raises(ThresholdsError, match=rf"^{path}: not valid YAML"):
        load(path)
    with pytest.raises(ThresholdsError, match=rf"^{tmp_path}/missing.yaml: cannot read"):
        load(tmp_path / "missing.yaml")
    path.write_bytes(b"defaults: {}\n\xff\n")
    with pytest.raises(ThresholdsError, match=rf"^{path}: not UTF-8 text \(byte 13\)"):
        load(path)
    path.write_text(yaml.safe_dump(with_tenant("acme", {"cpu_busy_percent": {"warning": "x"}})))
    with pytest.raises(ThresholdsError, match=rf"^{path}: tenants.acme.cpu_busy_percent.warning: "):
        load(path)


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [("0s", 0, "0s"), ("90s", 90, "1m30s"), ("10m", 600, "10m"), ("60m", 3600, "1h"), ("1d2h", 93600, "1d2h"), ("7d", 604800, "1w")],
)  # fmt: skip
def test_durations_round_trip_canonically(text: str, seconds: int, canonical: str) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == canonical


@pytest.mark.parametrize("text", ["", "10", "1.5h", "10M", "m", "1h 30m", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_a_repeated_key_is_refused_naming_the_key_the_lines_and_the_file(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: a second ``demo:`` silently replaced the first
    tenant's overrides."""
    path = tmp_path / "thresholds.yaml"
    text = THRESHOLDS.read_text().replace(
        "tenants:\n  demo: {}\n",
        "tenants:\n  demo: {}\n  demo: {cpu_busy_percent: {warning: 70}}\n",
    )
    assert text != THRESHOLDS.read_text()
    path.write_text(text)
    first = text.splitlines().index("  demo: {}") + 1
    with pytest.raises(ThresholdsError) as caught:
        load(path)
    assert caught.value.errors == [
        f"{path}: line {first + 1}: found the key 'demo' a second time (first on line {first})"
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://a b/x", "has a character a host name cannot have (' ')"),
        ("http://127.0.0.1:99999/", "has a port that is not a number from 1 to 65535"),
        ("http://127.0.0.1:0/", "has a port that is not a number from 1 to 65535"),
        ("http://h:8a/", "has a port that is not a number from 1 to 65535"),
        ("http://h/a\tb", "must not contain a control character"),
        ("http://hooks|x/", "has a character a host name cannot have ('|')"),
        ("http://[::1/", "is not a URL (Invalid IPv6 URL)"),
        ("http://[zz]/", "is not a URL ("),
        ("http://u^x@h/", "has a character a URL's user:password part cannot have"),
        ("http://h/a%zz", "has a % in its path that does not start a %XX escape"),
        ("http://:80/", "must be an http(s) URL with a host"),
    ],
)  # fmt: skip
def test_webhooks_alertmanager_would_refuse_or_never_reach_are_refused(
    url: str, problem: str
) -> None:
    [message] = errors(data(notify={"webhooks": [url]}))
    assert message.startswith(f"thresholds.yaml: notify.webhooks[0]: {problem}")
    assert message.endswith(f", got {url!r}")


@pytest.mark.parametrize(
    "smarthost",
    ["127.0.0.1:99999", "127.0.0.1:0", "mail:25x", "mail", "[zz]:25", "a b:25", "m\x01:25"],
)
def test_smarthost_needs_a_host_and_a_port_from_1_to_65535(smarthost: str) -> None:
    smtp = {**BASE["smtp"], "smarthost": smarthost}
    assert errors(data(smtp=smtp)) == [
        "thresholds.yaml: smtp.smarthost: must be host:port (or [IPv6]:port), the port from 1 to "
        f"65535, got str {smarthost!r}"
    ]


@pytest.mark.parametrize("smarthost", ["mail.example:587", "[::1]:25", "127.0.0.1:65535"])
def test_smarthost_accepts_names_ipv4_and_bracketed_ipv6(smarthost: str) -> None:
    assert parse(data(smtp={**BASE["smtp"], "smarthost": smarthost})).smtp is not None
