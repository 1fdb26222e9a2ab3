"""Alerting audit fixes in routing and validation:

* a ``notify`` that lists no receiver (null, ``{}``, ``webhooks: []``), a tenant's or the
  top-level one, is refused instead of muting with exit 0: muting is ``{mute: true}``, and a null
  default route is warned about at every run;
* storage-side ingest rejections reach the platform's default receiver as well as the tenant's;
  the Watchdog goes to its own heartbeat receiver, never with "resolved";
* Alertmanager inhibits a dark host's other alerts under TargetDown, and the exporters' push
  alerts under an ingest storage outage or ingest's own TargetDown;
* a tenant no Prometheus target carries is warned about; a key YAML reads as a boolean is named
  as written; a condition's ``for`` under 1m and thresholds that always hold are refused;
* the push path serves its own start time, which --web.disable-exporter-metrics keeps.

amtool is the oracle for routes (these tests skip when it cannot be installed); inhibition in a
real Alertmanager is in tests/integration/test_alerting.py.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.app import build_registry
from exporter.config import load as exporter_settings
from exporter.exposition import render
from exporter.push.service import build_pusher
from perfanalysis.alerting import alertmanager, catalogue, cli
from perfanalysis.alerting.generate import ALERTMANAGER_FILE, RULES_DIR, THRESHOLDS
from perfanalysis.alerting.promtests import expanding
from perfanalysis.alerting.thresholds import ThresholdsError, load, parse
from perfanalysis.testing.servers import amtool, promtool
from tests.support.tools import tool
from tests.unit.test_alerting_generate import out_flags

BASE: dict[str, Any] = yaml.safe_load(THRESHOLDS.read_text())


def changed(**top: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(top)
    return data


def with_tenants(**tenants: Any) -> dict[str, Any]:
    return changed(tenants={**copy.deepcopy(BASE["tenants"]), **tenants})


def errors(data: Any) -> list[str]:
    with pytest.raises(ThresholdsError) as caught:
        parse(data, "thresholds.yaml")
    return caught.value.errors


def run(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    """The command on a thresholds file written as ``text``: (exit status, stderr with the
    file's path shown as FILE)."""
    path = tmp_path / "thresholds.yaml"
    path.write_text(text)
    capsys.readouterr()
    status = cli.run(
        [
            "generate",
            "--thresholds",
            str(path),
            *out_flags(tmp_path / "p" / "prometheus" / "rules"),
            *extra,
        ]
    )
    return status, capsys.readouterr().err.replace(str(path), "FILE")


# -- 5. a notify that lists nothing mutes only when it says so


MUTE_HINT = "or write notify: {mute: true} to drop them on purpose"


@pytest.mark.parametrize(
    ("notify", "how"),
    [(None, "is empty (null)"), ({}, "is empty ({})"), ({"webhooks": []}, "lists no receiver"),
     ({"webhooks": [], "emails": []}, "lists no receiver"), ({"mute": False}, "lists no receiver")],
)  # fmt: skip
def test_a_tenant_notify_listing_nothing_is_refused(notify: Any, how: str) -> None:
    """Before: each routed acme's alerts to the null receiver, exit 0, not a word."""
    data = with_tenants(acme={"notify": notify})
    assert errors(data) == [
        f"thresholds.yaml: tenants.acme.notify: {how}: it would send the tenant's alerts to the "
        "null receiver, which drops them; list webhooks or emails, remove notify to send them to "
        f"the default receiver, {MUTE_HINT}"
    ]


def test_a_misspelt_receiver_key_leaves_a_notify_that_lists_nothing() -> None:
    assert errors(with_tenants(acme={"notify": {"webhook": ["http://h/"]}})) == [
        "thresholds.yaml: tenants.acme.notify.webhook: unknown key; expected one of: webhooks, "
        "emails, mute",
        "thresholds.yaml: tenants.acme.notify: lists no receiver: it would send the tenant's "
        "alerts to the null receiver, which drops them; list webhooks or emails, remove notify to "
        f"send them to the default receiver, {MUTE_HINT}",
    ]


@pytest.mark.parametrize("notify", [None, {}, {"webhooks": []}])
def test_an_empty_top_level_notify_is_refused(notify: Any) -> None:
    [error] = errors(changed(notify=notify))
    assert error.startswith("thresholds.yaml: notify: ")
    assert error.endswith(
        "it would send the alerts of the default route to the null receiver, which drops them; "
        f"list webhooks or emails, {MUTE_HINT}"
    )


def test_a_null_notify_in_the_file_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The audit's nullnotify.yaml: ``notify:`` with nothing under it, as one types it."""
    text = THRESHOLDS.read_text().replace(
        "      emails: [oncall@acme.example]\n",
        "      emails: [oncall@acme.example]\n  zeta:\n    notify:\n",
    )
    assert "  zeta:\n    notify:\n" in text
    status, err = run(tmp_path, text, capsys)
    assert status == 2
    assert err.startswith("FILE: tenants.zeta.notify: is empty (null): it would send")
    assert not (tmp_path / "p").exists()


def test_muting_is_explicit_and_routes_to_null(tmp_path: Path) -> None:
    data = with_tenants(quiet={"notify": {"mute": True}})
    thresholds = parse(data)
    assert thresholds.tenants["quiet"].notify is not None
    assert thresholds.tenants["quiet"].notify.mute
    assert alertmanager.expected_receiver(thresholds, "quiet") == "null"
    path = tmp_path / "alertmanager.yml"
    path.write_text(alertmanager.render(thresholds))
    result = tool(amtool, "config", "routes", "test", f"--config.file={path}",
                  "tenant=quiet", "alertname=HostCpuBusy")  # fmt: skip
    assert result.stdout.strip() == "null", result.stdout + result.stderr


@pytest.mark.parametrize(
    ("notify", "message"),
    [({"mute": True, "webhooks": ["http://h/"]}, "mute: true, but receivers are listed too: remove mute, or the receivers"),
     ({"mute": "yes"}, "mute: must be true or false, got str 'yes'")],
)  # fmt: skip
def test_mute_must_be_a_boolean_and_alone(notify: Any, message: str) -> None:
    key, _, what = message.partition(": ")
    assert errors(with_tenants(acme={"notify": notify})) == [
        f"thresholds.yaml: tenants.acme.notify.{key}: {what}"
    ]


@pytest.mark.parametrize(
    ("notify", "why"), [(None, "is not set"), ({"mute": True}, "is muted (mute: true)")]
)
def test_a_null_default_route_is_warned_about_at_every_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], notify: Any, why: str
) -> None:
    data = changed() if notify is None else changed(notify=notify)
    if notify is None:
        del data["notify"]
    warning = (
        f"FILE: notify: warning: {why}, so the default route goes to the null receiver: the "
        "alerts of unlisted tenants, of targets without a tenant and the platform's own (and of "
        "tenants demo, which have no notify) are dropped; list webhooks or emails there\n"
    )
    for extra in ((), ("--check",)):
        status, err = run(tmp_path, yaml.safe_dump(data), capsys, *extra)
        assert err.startswith(warning), err
        assert status == 0 if not extra else status in (0, 1)
    generated = yaml.safe_load((tmp_path / "p" / "alertmanager" / "alertmanager.yml").read_text())
    assert generated["route"]["receiver"] == "null"


def test_the_committed_thresholds_warn_only_that_the_example_tenant_has_no_hosts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    assert cli.run(["generate", "--check"]) == 0
    [warning] = capsys.readouterr().err.splitlines()
    assert warning.startswith(f"{THRESHOLDS}: tenants.acme: warning: no Prometheus target")
    assert "targets/acme.yml lists no target" in warning


# -- 3. storage failures reach the platform too; the Watchdog its heartbeat


def routes(*labels: str, config: Path = ALERTMANAGER_FILE) -> str:
    result = tool(amtool, "config", "routes", "test", f"--config.file={config}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        # the audit's: it reached tenant-acme only
        (["tenant=acme", "alertname=IngestRejectingPoints", "reason=storage_unavailable"], "default,tenant-acme"),
        (["tenant=acme", "alertname=IngestRejectingPoints", "reason=storage_conflict", "severity=critical"], "default,tenant-acme"),
        (["tenant=acme", "alertname=IngestRejectingPoints", "reason=invalid_line"], "tenant-acme"),
        (["tenant=demo", "alertname=IngestRejectingPoints", "reason=storage_error"], "default"),
        (["tenant=acme", "alertname=HostCpuBusy", "instance=h:9100"], "tenant-acme"),
        (["alertname=Watchdog", "severity=none"], "watchdog"),
        (["alertname=PrometheusRuleEvaluationFailures", "instance=p:9090"], "default"),
        (["alertname=TargetDown", "job=ingest", "instance=i:8087"], "default"),
        (["alertname=IngestRateLimitNotShared", "job=ingest", "instance=i:8087", "severity=warning"], "default"),
    ],
)  # fmt: skip
def test_amtool_routes_platform_alerts_to_the_platform(labels: list[str], receivers: str) -> None:
    assert routes(*labels) == receivers


def test_the_watchdog_posts_to_its_heartbeat_every_minute_or_two_and_never_resolves(
    tmp_path: Path,
) -> None:
    heartbeat = "https://hc-ping.example/0f3c"
    config = alertmanager.config(parse(changed(watchdog={"webhooks": [heartbeat]})))
    [watchdog] = [r for r in config["receivers"] if r["name"] == "watchdog"]
    assert watchdog["webhook_configs"] == [{"url": heartbeat, "send_resolved": False}]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    assert routes("alertname=Watchdog", "severity=none", config=path) == "watchdog"
    first = config["route"]["routes"][0]
    assert first["matchers"] == ['alertname="Watchdog"']
    assert "continue" not in first
    assert (first["group_interval"], first["repeat_interval"]) == ("1m", "1m")


def test_without_a_watchdog_heartbeat_the_receiver_is_inert_and_a_warning_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = changed()
    del data["watchdog"]
    status, err = run(tmp_path, yaml.safe_dump(data), capsys)
    assert status == 0
    assert err.startswith(
        "FILE: watchdog: warning: not set: the Watchdog alert, always firing, goes to a receiver "
        "without an integration, so nothing notices when Prometheus or Alertmanager stops"
    )
    config = tmp_path / "p" / "alertmanager" / "alertmanager.yml"
    assert {"name": "watchdog"} in yaml.safe_load(config.read_text())["receivers"]
    assert tool(amtool, "check-config", config).returncode == 0
    assert routes("alertname=Watchdog", config=config) == "watchdog"
    data["watchdog"] = {"mute": True}  # as the committed file, for make up: no warning
    assert run(tmp_path, yaml.safe_dump(data), capsys)[1] == ""
    for empty, how in ((None, "is empty (null)"), ({"webhooks": []}, "lists no receiver")):
        data["watchdog"] = empty
        assert errors(data) == [
            f"thresholds.yaml: watchdog: {how}: list the webhooks of an external heartbeat, or "
            "write watchdog: {mute: true} to go without one"
        ]
    data["watchdog"] = {"emails": ["a@b.example"]}
    [error, _] = errors(data)
    assert error.startswith(
        "thresholds.yaml: watchdog.emails: unknown key; expected one of: webhooks, mute"
    )


def test_without_a_default_receiver_no_storage_route_duplicates_the_tenants() -> None:
    data = changed(notify={"mute": True})
    config = alertmanager.config(parse(data))
    assert all(r["receiver"] != "default" for r in config["route"]["routes"])


# -- 2. inhibition: which labels must be equal


def test_the_inhibit_rules_mute_a_dark_host_and_push_alerts_under_an_ingest_outage() -> None:
    rules = alertmanager.config(parse(BASE))["inhibit_rules"]
    assert rules[1:] == [
        {"source_matchers": ['alertname="TargetDown"'],
         "target_matchers": ['alertname!="TargetDown"', 'alertname!="Watchdog"'],
         "equal": ["tenant", "instance"]},
        # IngestRejectingPoints carries the tenant it counts; ingest's target has no tenant label
        {"source_matchers": ['alertname="IngestRejectingPoints"',
                             'reason=~"storage_(unavailable|refused|error)"'],
         "target_matchers": ['alertname=~"ExporterPushStalled|ExporterSpoolGrowing"'],
         "equal": ["tenant"]},
        {"source_matchers": ['alertname="TargetDown"', 'job="ingest"'],
         "target_matchers": ['alertname=~"ExporterPushStalled|ExporterSpoolGrowing"']},
    ]  # fmt: skip
    rejecting = (RULES_DIR / "default.rules.yml").read_text()
    assert "sum by (tenant, reason) (rate(perfanalysis_ingest_points_rejected_total" in rejecting
    prometheus = yaml.safe_load((RULES_DIR.parent / "prometheus.yml").read_text())
    [ingest] = [job for job in prometheus["scrape_configs"] if job["job_name"] == "ingest"]
    assert all("labels" not in static for static in ingest["static_configs"])


# -- 6. slugs no target carries, keys YAML reads as booleans, conditions and thresholds


def prometheus_dir(tmp_path: Path) -> Path:
    """A Prometheus configuration as provisioning/prometheus has it: demo as a static target of
    prometheus.yml, acme in targets/acme.yml, beta as a label inside targets/misc.yml."""
    directory = tmp_path / "p" / "prometheus"
    (directory / "targets").mkdir(parents=True)
    (directory / "prometheus.yml").write_text((RULES_DIR.parent / "prometheus.yml").read_text())
    (directory / "targets" / "acme.yml").write_text("[]\n")
    (directory / "targets" / "misc.yml").write_text(
        yaml.safe_dump([{"targets": ["b:9100"], "labels": {"tenant": "beta"}}])
    )
    return directory


def test_a_tenant_no_target_carries_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The audit's typo: acmee instead of acme silently left acme on the defaults."""
    directory = prometheus_dir(tmp_path)
    data = changed(tenants={"acmee": {"cpu_busy_percent": {"warning": 70}}, "demo": {}, "beta": {}})
    status, err = run(tmp_path, yaml.safe_dump(data), capsys)
    assert status == 0
    assert err == (
        'FILE: tenants.acmee: warning: no Prometheus target carries tenant="acmee" (there is no '
        f"{directory}/targets/acmee.yml, and no target in {directory}/prometheus.yml is labelled "
        "so), so these thresholds judge no host; if the slug is misspelt, the tenant's hosts get "
        "the defaults. List its hosts in that file, or ignore this if another Prometheus scrapes "
        "them\n"
    )
    assert (directory / "rules" / "tenant-acmee.rules.yml").exists()  # a warning, not an error


def test_without_a_prometheus_configuration_beside_the_rules_nothing_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = run(tmp_path, yaml.safe_dump(changed(tenants={"acmee": {}})), capsys)
    assert (status, err) == (0, "")


YAML_KEYS = THRESHOLDS.read_text() + '  on: {}\n  "no": {}\n  No: {}\n  ~: {}\n  123: {}\n'


def test_a_key_yaml_reads_as_a_boolean_is_named_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ``tenants.True: tenant slug must be ...``; a quoted "no" is a slug like any other,
    and so is 123 (an integer key, written the same)."""
    path = tmp_path / "thresholds.yaml"
    path.write_text(YAML_KEYS)
    with pytest.raises(ThresholdsError) as caught:
        load(path)
    assert caught.value.errors == [
        f"{path}: tenants.on: YAML reads this key as a boolean, not as text: quote it ('on':) to "
        "mean the name",
        f"{path}: tenants.No: YAML reads this key as a boolean, not as text: quote it ('No':) to "
        "mean the name",
        f"{path}: tenants.~: YAML reads this key as null, not as text: quote it ('~':) to mean "
        "the name",
    ]
    status, err = run(tmp_path, YAML_KEYS, capsys)
    assert status == 2
    assert "tenants.True" not in err
    assert "FILE: tenants.on: YAML reads" in err


def test_boolean_keys_in_data_already_loaded_are_refused_too() -> None:
    data = with_tenants(**{"acme": {"cpu_busy_percent": {"warning": 70}}})
    data["tenants"][True] = {}
    assert errors(data) == [
        "thresholds.yaml: tenants.true: YAML reads this key as a boolean, not as text: quote it "
        "('true':) to mean the name"
    ]


@pytest.mark.parametrize("key", ["exporter_down", "filesystem_device_error",
                                 "filesystem_turned_read_only", "alertmanager_notifications_failing"])  # fmt: skip
def test_a_condition_rule_needs_a_for_of_a_minute(key: str) -> None:
    """Before: exporter_down with for: 0s paged on one failed scrape."""
    data = changed(defaults={**BASE["defaults"], key: {"severity": "critical", "for": "0s"}})
    assert errors(data) == [
        f"thresholds.yaml: defaults.{key}.for: must be at least 1m (a condition rule with a "
        "shorter for fires on a single failed scrape or evaluation), got '0s'"
    ]
    assert errors(with_tenants(acme={key: {"for": "59s"}}))[0].startswith(
        f"thresholds.yaml: tenants.acme.{key}.for: must be at least 1m"
    )
    minute = parse(with_tenants(acme={key: {"for": "1m"}})).tenants["acme"].settings[key]
    assert minute.for_seconds == 60


@pytest.mark.parametrize(
    ("key", "why"),
    [("cpu_busy_percent", "every host is busy a little"),
     ("memory_used_percent", "every host uses some memory"),
     ("filesystem_used_percent", "a filesystem holds something")],
)  # fmt: skip
def test_a_usage_threshold_of_zero_which_always_holds_is_refused(key: str, why: str) -> None:
    [error] = errors(with_tenants(acme={key: {"warning": 0}}))
    unit = catalogue.RULES[key].unit
    assert error == (
        f"thresholds.yaml: tenants.acme.{key}.warning: must be above 0 and below 100 ({unit}; "
        f"{why}: a rule at 0 would fire on all of them), got 0"
    )


def test_zero_stays_valid_where_it_means_any() -> None:
    """Any error, rejected point, dropped point or skipped sample is worth an alert: 0 is a real
    threshold there."""
    data = with_tenants(acme={
        "network_errors_per_second": {"warning": 0}, "ingest_rejecting": {"warning": 0},
        "exporter_dropping_points": {"warning": 0}, "spool_growing": {"warning": 0},
        "exporter_skipping_samples": {"warning": 0},
    })  # fmt: skip
    assert parse(data).tenants["acme"].settings["ingest_rejecting"].warning == 0


# -- 1. the push path's own start time


@pytest.fixture
def push_values(tmp_path: Path) -> Callable[..., dict[str, object]]:
    key = tmp_path / "key"
    key.write_text("pak_x.y\n")
    key.chmod(0o600)

    def values(*flags: str) -> dict[str, object]:
        return exporter_settings(
            ["--push.url=http://127.0.0.1:9", f"--push.key-file={key}",
             f"--push.spool-dir={tmp_path / 'spool'}", "--collector.disable-defaults",
             "--collector.loadavg", *flags],
            {},
        )  # fmt: skip

    return values


def test_the_push_path_serves_its_start_time_without_process_metrics(
    push_values: Callable[..., dict[str, object]],
) -> None:
    """--web.disable-exporter-metrics removes process_start_time_seconds, the rule's only start
    time before: an exporter whose pushes never succeeded then never alerted."""
    values = push_values("--web.disable-exporter-metrics")
    before = time.time()
    registry = build_registry(values)
    pusher = build_pusher(values, registry)
    try:
        text = render(registry.scrape().families).decode()
    finally:
        pusher.stop(1.0)
    assert "\nprocess_" not in text
    [line] = [x for x in text.splitlines() if x.startswith(catalogue.PUSH_STARTED + " ")]
    assert before - 1 <= float(line.split()[1]) <= time.time()
    assert f"# TYPE {catalogue.PUSH_STARTED} gauge" in text
    assert "perfanalysis_exporter_push_last_success_timestamp_seconds 0" in text


def test_without_push_the_exporter_serves_no_push_start_time() -> None:
    registry = build_registry(
        exporter_settings(["--collector.disable-defaults", "--collector.loadavg"], {})
    )
    assert catalogue.PUSH_STARTED not in render(registry.scrape().families).decode()


# -- the generator's promtool notation


def test_expanding_writes_as_many_missing_samples_as_there_are(tmp_path: Path) -> None:
    """``_xn`` is n missing samples (``a+bxn`` is n + 1 values): two None were written ``_x1``,
    so every series that starts late in the generated tests started a minute early."""
    values: list[float | None] = [None, None, 1.0, 1.0]
    assert expanding(values) == "_x2 1x1"
    rules = tmp_path / "r.yml"
    rules.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"alert": "Up", "expr": "x > 0"}]}]})
    )
    test = tmp_path / "t.yml"
    test.write_text(yaml.safe_dump({
        "rule_files": [str(rules)], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": [{"series": "x", "values": expanding(values)}],
                   "alert_rule_test": [{"eval_time": "1m", "alertname": "Up", "exp_alerts": []},
                                       {"eval_time": "2m", "alertname": "Up", "exp_alerts": [{"exp_labels": {}}]}]}],
    }))  # fmt: skip
    result = tool(promtool, "test", "rules", test)
    assert result.returncode == 0, result.stdout + result.stderr
