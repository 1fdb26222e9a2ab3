"""Grafana's alert rules follow provisioning/thresholds.yaml, as the Prometheus rules do.

They were hard-coded (90% warning-only CPU, memory and filesystem rules, ``for`` of 15 or 30
minutes), so a tenant's overrides never reached Grafana and the two alerting paths disagreed. Now:

- parity: for every Grafana rule, in the provisioning files (the defaults) and in each tenant's org
  (its own merged settings, or the defaults), the severities, thresholds and ``for`` are those of
  the Prometheus rules generated from the same file; drift fails here;
- sync removes the rules of its own that the thresholds no longer ask for (and the uids of the
  hard-coded rules), keeps rules made by hand, and stays idempotent;
- a malformed thresholds file stops sync before any request to Grafana, with the parser's
  message naming the file and the key;
- Grafana's notifications repeat as Alertmanager's (critical ones repeated hourly before);
- on real InfluxDB, the CPU rule reads the busy share of the last five minutes (it read a
  quarter of an hour), and the push rule fires per level after push_stalled_seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfanalysis.alerting import alertmanager
from perfanalysis.alerting import rules as prometheus
from perfanalysis.alerting.catalogue import RULES as CATALOGUE
from perfanalysis.alerting.durations import parse_duration
from perfanalysis.alerting.thresholds import Setting, Thresholds, load
from perfanalysis.grafana import alerts, cli, provisioning
from perfanalysis.paths import ROOT
from perfanalysis.testing.servers import InfluxDB
from tests.unit import test_grafana_sync as sync_tests
from tests.unit.test_grafana_audit_fixes import STEP, _line, evaluate
from tests.unit.test_grafana_sync import FakeGrafana, Org, _run

# test_grafana_sync.py's fixtures: the fake Grafana, and the admin database with acme, globex and
# the disabled gone
grafana = sync_tests.grafana
tenant_db = sync_tests.tenant_db
_no_grafana_environment = sync_tests._no_grafana_environment

THRESHOLDS = ROOT / "provisioning" / "thresholds.yaml"
SYNC = "perfanalysis grafana sync"
# Grafana's rules by the start of their uid (the hard-coded ones' too), and the key they follow
GRAFANA_KEYS = {
    "pa-cpu-busy": "cpu_busy_percent",
    "pa-memory-used": "memory_used_percent",
    "pa-filesystem-used": "filesystem_used_percent",
    "pa-push": "push_stalled_seconds",
}
Levels = dict[str, set[tuple[str, float, int]]]  # key -> {(severity, threshold, for seconds)}


def _key(uid: str) -> str:
    return next(key for prefix, key in GRAFANA_KEYS.items() if uid.startswith(prefix))


def grafana_levels(rules: Iterable[Mapping[str, Any]]) -> Levels:
    """What Grafana rules (file or API format) fire on, read from the rules themselves: the
    threshold expression's limit, or for the push rule the window it counts samples in."""
    found: Levels = {}
    for rule in rules:
        key = _key(rule["uid"])
        models = {item["refId"]: item["model"] for item in rule["data"]}
        (condition,) = models[rule["condition"]]["conditions"]
        evaluator = condition["evaluator"]
        if key == "push_stalled_seconds":  # no sample in a window of the threshold's length
            assert evaluator == {"type": "lt", "params": [1]}, rule["uid"]
            (query,) = [m["query"] for m in models.values() if "query" in m]
            window = re.search(r"GROUP BY time\((\d+)(ms|s), now\(\)\)", query)
            assert window, query
            threshold = int(window[1]) / (1000 if window[2] == "ms" else 1)
        else:
            assert evaluator["type"] == "gt", rule["uid"]
            (threshold,) = evaluator["params"]
        level = (rule["labels"]["severity"], float(threshold), parse_duration(rule["for"]))
        found.setdefault(key, set()).add(level)
    return found


def parser_levels(settings: Mapping[str, Setting]) -> Levels:
    """What the parser's merged settings give each rule Grafana evaluates."""
    found: Levels = {}
    for key in GRAFANA_KEYS.values():
        for level in settings[key].levels():
            assert level.threshold is not None
            found.setdefault(key, set()).add((level.severity, level.threshold, level.for_seconds))
    return found


def prometheus_levels(thresholds: Thresholds, tenant: str | None) -> Levels:
    """What the generated Prometheus rules of the tenant's scope (the default file for a tenant
    not listed) fire on: severity, the last ``> N`` of the expression, and ``for``."""
    listed = tenant if tenant in thresholds.tenants else None
    (scope,) = [s for s in prometheus.scopes(thresholds) if s.tenant == listed]
    by_alert = {CATALOGUE[key].alert: key for key in GRAFANA_KEYS.values()}
    found: Levels = {}
    for rule in prometheus.alert_rules(scope):
        key = by_alert.get(rule["alert"])
        if key is None:
            continue
        limits = re.findall(r">\s*(-?[0-9.]+(?:e[+-]?[0-9]+)?)", rule["expr"])
        level = (
            rule["labels"]["severity"],
            float(limits[-1]),
            parse_duration(rule.get("for", "0s")),
        )
        found.setdefault(key, set()).add(level)
    return found


def _file_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((provisioning.default_dir() / "alerting/rules.yaml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _org(fake: FakeGrafana, name: str) -> Org:
    return next(o for o in fake.orgs.values() if o.name == name)


# ---------------------------------------------------------------------------------------------
# parity with the Prometheus rules


def test_the_provisioned_rules_are_the_prometheus_default_rules() -> None:
    thresholds = load(THRESHOLDS)
    found = grafana_levels(_file_rules())
    assert found == prometheus_levels(thresholds, None)
    assert found == parser_levels(thresholds.defaults)
    assert set(found) == set(GRAFANA_KEYS.values())  # every Grafana rule is checked


def test_each_tenant_org_gets_its_own_thresholds(
    grafana: tuple[FakeGrafana, str], tenant_db: Any, database_url: str
) -> None:
    """acme has overrides in the committed thresholds.yaml; globex is not listed: defaults."""
    fake, url = grafana
    assert _run(url, database_url) == 0
    thresholds = load(THRESHOLDS)
    acme = grafana_levels(_org(fake, "acme").rules.values())
    assert acme == prometheus_levels(thresholds, "acme")
    assert acme == parser_levels(thresholds.tenants["acme"].settings)
    assert acme != parser_levels(thresholds.defaults), "acme's overrides must show"
    globex = grafana_levels(_org(fake, "globex").rules.values())
    assert globex == prometheus_levels(thresholds, "globex")
    assert globex == parser_levels(thresholds.defaults)


def _thresholds_file(tmp_path: Path, tenants: dict[str, Any], name: str = "t.yaml") -> Path:
    """The committed thresholds.yaml with other tenants."""
    data = yaml.safe_load(THRESHOLDS.read_text())
    data["tenants"] = tenants
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


OVERRIDES = {
    "acme": {
        "cpu_busy_percent": {"warning": 60, "critical": 70.5, "for": "5m"},
        "memory_used_percent": {"critical": None},  # warning only
        "filesystem_used_percent": {"enabled": False},
        "push_stalled_seconds": {"warning": 90.5, "for": "1m"},
    },
    "globex": {"memory_used_percent": {"warning": 50, "for": "1h30m"}},
}


def test_overrides_nulls_and_disabled_rules_reach_grafana_and_go_again(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    path = _thresholds_file(tmp_path, OVERRIDES)
    assert _run(url, database_url, f"--thresholds={path}") == 0
    thresholds = load(path)
    for slug in ("acme", "globex"):
        found = grafana_levels(_org(fake, slug).rules.values())
        assert found == prometheus_levels(thresholds, slug), slug
        assert found == parser_levels(thresholds.tenants[slug].settings), slug
    acme = grafana_levels(_org(fake, "acme").rules.values())
    assert acme["cpu_busy_percent"] == {("warning", 60, 300), ("critical", 70.5, 300)}
    assert acme["memory_used_percent"] == {("warning", 85, 600)}
    assert "filesystem_used_percent" not in acme
    assert acme["push_stalled_seconds"] == {("warning", 90.5, 60), ("critical", 1800, 60)}
    out = capsys.readouterr().out
    assert f"acme: alert thresholds from {path} (tenants.acme)" in out

    # back to the committed file: the levels acme had turned off come back, and a second run
    # after that changes nothing
    assert _run(url, database_url) == 0
    committed = load(THRESHOLDS)
    acme = grafana_levels(_org(fake, "acme").rules.values())
    assert acme == parser_levels(committed.tenants["acme"].settings)
    capsys.readouterr()
    assert _run(url, database_url) == 0
    assert "0 change(s)" in capsys.readouterr().out

    # and turning levels off removes their rules
    off = {
        "acme": {"push_stalled_seconds": {"enabled": False}, "cpu_busy_percent": {"warning": None}}
    }
    assert _run(url, database_url, f"--thresholds={_thresholds_file(tmp_path, off)}") == 0
    out = capsys.readouterr().out
    for uid in ("pa-push-stalled-warning", "pa-push-stalled-critical", "pa-cpu-busy-warning"):
        assert uid not in _org(fake, "acme").rules
        assert f"acme: alert rule {uid} removed (not in the tenant's thresholds)" in out
    assert "pa-cpu-busy-critical" in _org(fake, "acme").rules
    assert "pa-push-stalled-warning" in _org(fake, "globex").rules  # globex is not listed


def test_a_tenant_with_every_rule_disabled_keeps_no_rule_and_no_group(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert _run(url, database_url, "--tenants=acme") == 0
    quiet = {"acme": {key: {"enabled": False} for key in GRAFANA_KEYS.values()}}
    path = _thresholds_file(tmp_path, quiet)
    capsys.readouterr()
    assert _run(url, database_url, "--tenants=acme", f"--thresholds={path}") == 0
    out = capsys.readouterr().out
    assert _org(fake, "acme").rules == {}
    assert "acme: rule group perfanalysis-hosts: no rules (every level disabled)" in out
    writes = len(fake.writes())
    assert _run(url, database_url, "--tenants=acme", f"--thresholds={path}") == 0
    assert "0 change(s)" in capsys.readouterr().out
    assert len(fake.writes()) == writes


def test_sync_removes_the_rules_of_earlier_syncs_and_keeps_hand_made_ones(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert _run(url, database_url, "--tenants=acme") == 0
    org = _org(fake, "acme")
    template = next(iter(org.rules.values()))
    for uid in ("pa-cpu-busy", "pa-push-silent", "hand-made"):  # the first two: hard-coded rules
        org.rules[uid] = {**copy.deepcopy(template), "uid": uid, "title": uid}
        org.provenance[uid] = ""
    capsys.readouterr()
    assert _run(url, database_url, "--tenants=acme") == 0
    out = capsys.readouterr().out
    assert "pa-cpu-busy" not in org.rules
    assert "pa-push-silent" not in org.rules
    assert "hand-made" in org.rules
    assert "acme: alert rule pa-cpu-busy removed" in out
    assert "hand-made" not in out


def test_the_provisioning_file_deletes_the_rules_it_no_longer_has() -> None:
    """File provisioning never deletes a rule that left the file: deleteRules must list it."""
    data = yaml.safe_load((provisioning.default_dir() / "alerting/rules.yaml").read_text())
    deleted = {(entry["orgId"], entry["uid"]) for entry in data["deleteRules"]}
    kept = {rule["uid"] for rule in _file_rules()}
    assert {(1, uid) for uid in alerts.RETIRED_UIDS} <= deleted
    assert not kept & {uid for _, uid in deleted}
    committed = load(THRESHOLDS)
    settings = dict(committed.defaults)
    settings["memory_used_percent"] = Setting(enabled=False, for_seconds=600)
    file = provisioning.alert_rules(dataclasses.replace(committed, defaults=settings))
    uids = {entry["uid"] for entry in file["deleteRules"]}
    assert {"pa-memory-used-warning", "pa-memory-used-critical"} <= uids


# ---------------------------------------------------------------------------------------------
# a bad thresholds file


BAD = "defaults:\n  cpu_busy_percent: {warning: 80, critical: 95, for: 10m}\n"


def test_a_malformed_thresholds_file_stops_sync_before_any_request(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = grafana
    path = _thresholds_file(tmp_path, {"acme": {"cpu_busy_percent": {"warning": 120}}})
    assert _run(url, database_url, f"--thresholds={path}") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{SYNC}: invalid thresholds file (nothing was sent to Grafana):\n")
    assert f"  - {path}: tenants.acme.cpu_busy_percent.warning: must be " in err
    assert fake.requests == []
    # from the variable as well, and every problem at once
    broken = tmp_path / "broken.yaml"
    broken.write_text(BAD)
    monkeypatch.setenv("PERFANALYSIS_GRAFANA_THRESHOLDS", str(broken))
    assert _run(url, database_url) == 2
    err = capsys.readouterr().err
    assert f"{broken}: defaults.memory_used_percent: missing" in err
    assert f"{broken}: defaults.push_stalled_seconds: missing" in err
    assert fake.requests == []


def test_a_missing_thresholds_file_is_a_setting_error(
    grafana: tuple[FakeGrafana, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = grafana
    missing = tmp_path / "nope.yaml"
    assert cli.run(["sync", f"--url={url}", f"--thresholds={missing}"]) == 2
    err = capsys.readouterr().err
    assert f"flag --thresholds: invalid value '{missing}': no such file" in err
    assert fake.requests == []


def test_the_setting_defaults_to_the_checkouts_file_and_prune_ignores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from perfanalysis.grafana import settings

    env = {"PERFANALYSIS_GRAFANA_URL": "http://g", "PERFANALYSIS_GRAFANA_TOKEN": "t",
           "PERFANALYSIS_GRAFANA_INFLUXDB_URL": "http://i",
           "PERFANALYSIS_GRAFANA_DATABASE_URL": "sqlite:///x.db",
           "PERFANALYSIS_GRAFANA_SECRET_KEY": "k" * 40}  # fmt: skip
    assert settings.load([], env)["thresholds"] == str(THRESHOLDS)
    env["PERFANALYSIS_GRAFANA_THRESHOLDS"] = "/nonexistent.yaml"  # set for sync in Compose
    assert "thresholds" not in settings.load_prune([], env)


@pytest.mark.parametrize("command", ["generate", "check"])
def test_generate_and_check_refuse_a_malformed_thresholds_file(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = tmp_path / "thresholds.yaml"
    broken.write_text(BAD)
    monkeypatch.setattr(alerts, "default_thresholds", lambda: broken)
    monkeypatch.setattr(provisioning, "default_dir", lambda: tmp_path / "provisioning")
    assert cli.run([command]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"perfanalysis grafana {command}: invalid thresholds file")
    assert f"{broken}: defaults.memory_used_percent: missing" in err
    assert not (tmp_path / "provisioning").exists()


# ---------------------------------------------------------------------------------------------
# notifications


def test_notifications_are_grouped_and_repeated_as_alertmanagers() -> None:
    route = alertmanager.config(load(THRESHOLDS))["route"]
    # Alertmanager times the alerts Grafana mirrors by its top route alone (a route of its own
    # timings may only match another alert by name, as the platform's heartbeat)
    mirrored = {CATALOGUE[key].alert for key in GRAFANA_KEYS.values()}
    for child in route["routes"]:
        if {"group_wait", "group_interval", "repeat_interval"} & set(child):
            names = set(re.findall(r'alertname="(\w+)"', " ".join(child.get("matchers", []))))
            assert names, child
            assert not names & mirrored, child
    committed = yaml.safe_load(
        (provisioning.default_dir() / "alerting/notifications.yaml").read_text()
    )
    (policy,) = committed["policies"]
    for tree in (provisioning.policy_tree(provisioning.CONTACT_POINT), policy):
        for key in ("group_wait", "group_interval", "repeat_interval"):
            assert tree[key] == route[key], key
        assert not tree.get("routes"), "no route may repeat some alerts more often"
        # alertname -> alert (the Prometheus name both severities share), instance -> host
        assert tree["group_by"] == ["alert", "tenant", "host"]
        assert route["group_by"] == ["alertname", "tenant", "instance"]
    for rule in _file_rules():
        assert rule["labels"]["alert"] == CATALOGUE[_key(rule["uid"])].alert


def test_sync_replaces_the_hourly_critical_route_of_earlier_syncs(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    webhook = "--alert-webhook-url=http://relay:9000/alerts/{tenant}"
    assert _run(url, database_url, webhook) == 0
    org = _org(fake, "acme")
    org.policy = {"receiver": provisioning.CONTACT_POINT, "group_by": ["alertname", "host"],
                  "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
                  "routes": [{"receiver": provisioning.CONTACT_POINT, "repeat_interval": "1h",
                              "object_matchers": [["severity", "=", "critical"]]}]}  # fmt: skip
    capsys.readouterr()
    assert _run(url, database_url, webhook) == 0
    assert "acme: notification policy updated" in capsys.readouterr().out
    assert not org.policy.get("routes")
    assert org.policy["repeat_interval"] == "4h"
    assert _run(url, database_url, webhook) == 0
    assert "0 change(s)" in capsys.readouterr().out  # Grafana leaves out empty routes


# ---------------------------------------------------------------------------------------------
# the rules on real InfluxDB


def _rule(uid: str, settings: Mapping[str, Setting] | None = None) -> alerts.Rule:
    chosen = load(THRESHOLDS).defaults if settings is None else settings
    return next(rule for rule in alerts.rules(chosen) if rule.uid == uid)


def _cpu_history(busy: Mapping[str, list[tuple[float, float]]], now: float) -> str:
    """Two CPUs per host, idle at ``1 - share`` per second, the share changing at the given
    seconds before ``now`` (``[(since, share), ...]``, oldest first), a sample every STEP."""
    lines = []
    for host, phases in busy.items():
        counter, at = 0.0, now - phases[0][0]
        while at <= now:
            share = next(s for since, s in reversed(phases) if at >= now - since)
            for cpu in ("0", "1"):
                tags = {"host": host, "cpu": cpu, "mode": "idle"}
                lines.append(_line("node_cpu_seconds_total", tags, counter, at))
            counter += (1 - share / 100) * STEP
            at += STEP
    return "\n".join(lines)


@pytest.mark.integration
def test_the_cpu_rule_reads_the_last_five_minutes(shared_influxdb: InfluxDB) -> None:
    """Prometheus' rate(...[5m]): a host that calmed down 8 minutes ago reads calm, one that got
    busy 8 minutes ago reads busy (the hard-coded rule averaged a quarter of an hour: ~52%)."""
    db = shared_influxdb.unique_database("cpu5m")
    now = time.time() - 0.5
    shared_influxdb.write(db, _cpu_history({
        "calmed": [(1800, 97.0), (480, 10.0)],
        "heated": [(1800, 10.0), (480, 97.0)],
    }, now))  # fmt: skip
    for uid in ("pa-cpu-busy-warning", "pa-cpu-busy-critical"):  # 80 and 95 by default
        result = evaluate(_rule(uid), shared_influxdb, db)
        read = {dict(labels)["host"]: value for labels, value in result.values["B"].items()}
        assert read == pytest.approx({"calmed": 10.0, "heated": 97.0}, abs=1e-6)
        assert result.hosts() == {("heated",)}


@pytest.mark.integration
def test_the_cpu_rule_takes_no_rate_across_a_gap(shared_influxdb: InfluxDB) -> None:
    """A VM paused for five minutes (no samples, its counters stalled) and running again 90 s:
    the one rate spanning the pause divided a minute's idle time by five, and read a host 50%
    busy as 90%, which paged; now the rule has no rate for it, as HostCpuBusy has none."""
    db = shared_influxdb.unique_database("cpu-gap")
    now = time.time() - 0.5
    lines, counter, at = [], 0.0, now - 1800
    while at <= now:
        if not now - 390 < at < now - 90:  # paused from 6.5 to 1.5 minutes ago
            for cpu in ("0", "1"):
                tags = {"host": "resumed", "cpu": cpu, "mode": "idle"}
                lines.append(_line("node_cpu_seconds_total", tags, counter, at))
            counter += 0.5 * STEP
        at += STEP
    shared_influxdb.write(db, "\n".join(lines))
    result = evaluate(_rule("pa-cpu-busy-warning"), shared_influxdb, db)
    assert all(value != pytest.approx(90, abs=5) for value in result.values.get("B", {}).values())
    assert result.hosts() == set()


@pytest.mark.integration
def test_a_tenants_cpu_threshold_decides(shared_influxdb: InfluxDB) -> None:
    db = shared_influxdb.unique_database("cpu-tenant")
    shared_influxdb.write(db, _cpu_history({"web": [(1800, 75.0)]}, time.time() - 0.5))
    acme = load(THRESHOLDS).tenants["acme"].settings  # warning 70
    assert evaluate(_rule("pa-cpu-busy-warning", acme), shared_influxdb, db).hosts() == {("web",)}
    assert evaluate(_rule("pa-cpu-busy-warning"), shared_influxdb, db).hosts() == set()


@pytest.mark.integration
def test_memory_and_filesystem_rules_read_the_newest_sample(shared_influxdb: InfluxDB) -> None:
    """As a PromQL instant selector: the newest sample, not a mean over the range."""
    db = shared_influxdb.unique_database("newest")
    now = time.time() - 0.5
    lines, at = [], now - 600
    while at <= now:
        used = 90.0 if at > now - 30 else 10.0  # filled up in the last 30 seconds
        mount = {"host": "web", "device": "sda1", "fstype": "ext4", "mountpoint": "/"}
        lines += [_line("node_memory_MemTotal_bytes", {"host": "web"}, 1000.0, at),
                  _line("node_memory_MemAvailable_bytes", {"host": "web"}, 10 * (100 - used), at),
                  _line("node_filesystem_size_bytes", mount, 1000.0, at),
                  _line("node_filesystem_avail_bytes", mount, 10 * (100 - used), at),
                  _line("node_filesystem_readonly", mount, 0.0, at)]  # fmt: skip
        at += STEP
    shared_influxdb.write(db, "\n".join(lines))
    memory = evaluate(_rule("pa-memory-used-warning"), shared_influxdb, db)
    assert list(memory.values["E"].values()) == pytest.approx([90.0])
    assert memory.hosts() == {("web",)}
    filesystem = evaluate(_rule("pa-filesystem-used-warning"), shared_influxdb, db)
    assert list(filesystem.values["G"].values()) == pytest.approx([90.0])
    assert filesystem.hosts("host", "mountpoint") == {("web", "/")}


@pytest.mark.integration
def test_a_fractional_push_threshold_counts_its_own_window(shared_influxdb: InfluxDB) -> None:
    settings = dict(load(THRESHOLDS).defaults)
    settings["push_stalled_seconds"] = Setting(
        enabled=True, for_seconds=60, warning=90.5, critical=None
    )
    rule = _rule("pa-push-stalled-warning", settings)
    assert "GROUP BY time(90500ms, now())" in rule.queries[0].text
    db = shared_influxdb.unique_database("push-frac")
    now = time.time() - 0.5
    lines = []
    for host, silent in (("quiet", 120), ("busy", 0)):
        at = now - 3600
        while at <= now - silent:
            lines.append(_line("node_time_seconds", {"host": host}, at, at))
            at += STEP
    shared_influxdb.write(db, "\n".join(lines))
    assert evaluate(rule, shared_influxdb, db).hosts() == {("quiet",)}
