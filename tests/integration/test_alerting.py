"""The generated rules and routes in real Prometheus and Alertmanager, fed by our real exporter.

A test tenant whose CPU warning is 0.001% with ``for: 0s`` makes an alert that must fire at once; it
has to come out of Alertmanager at that tenant's webhook (served by the test) with the tenant's
labels. Receivers are pointed at that webhook so that nothing leaves the machine; timings
(group_wait) are shortened; everything else is the generator's output.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from perfanalysis.alerting import alertmanager, platform, rules
from perfanalysis.alerting.generate import THRESHOLDS
from perfanalysis.alerting.thresholds import Thresholds, parse
from perfanalysis.testing.servers import ServerRegistry, wait_until

pytestmark = pytest.mark.integration
TENANT = "alerttest"


class Webhook:
    """An HTTP server that records the JSON bodies Alertmanager posts, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def thresholds_with_test_tenant(webhook: Webhook) -> Thresholds:
    data = yaml.safe_load(THRESHOLDS.read_text())
    data["tenants"][TENANT] = {
        # 0.001%: always crossed (0 itself is refused, as a threshold that always holds)
        "cpu_busy_percent": {"warning": 0.001, "critical": None, "for": "0s"},
        "notify": {"webhooks": [f"{webhook.url}/{TENANT}"]},
    }
    return parse(data, "thresholds.yaml + test tenant")


def local_alertmanager_config(thresholds: Thresholds, webhook: Webhook) -> dict[str, Any]:
    """The generated configuration with every receiver posting to the test's webhook."""
    config = copy.deepcopy(alertmanager.config(thresholds))
    config["route"].update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        if receiver["name"] != alertmanager.NULL:
            receiver.pop("email_configs", None)
            receiver["webhook_configs"] = [{"url": f"{webhook.url}/{receiver['name']}"}]
    return config


def test_generated_rules_load_and_an_alert_reaches_the_tenants_receiver(
    servers: ServerRegistry, webhook: Webhook
) -> None:
    thresholds = thresholds_with_test_tenant(webhook)
    am = servers.alertmanager(local_alertmanager_config(thresholds, webhook))
    exporter = servers.exporter(["--collector.disable-defaults", "--collector.cpu"])
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am.address]}]}]},
        "scrape_configs": [{
            "job_name": "node",
            "static_configs": [{"targets": [exporter.address], "labels": {"tenant": TENANT}}],
        }],
    }  # fmt: skip
    files = {f"rules/{name}": text for name, text in rules.rule_files(thresholds).items()}
    # Alerts evaluated before Alertmanager is discovered are dropped, and resent only after the
    # resend delay (1m by default): the Watchdog fires at the very first evaluation.
    prometheus = servers.prometheus(config, files, extra_args=["--rules.alert.resend-delay=1s"])

    expected_groups = {s.group for s in rules.scopes(thresholds)} | {platform.GROUP}
    assert len(expected_groups) == len(thresholds.tenants) + 2

    def evaluated_groups() -> list[dict[str, Any]] | None:
        groups = prometheus.rules()
        done = all(r["health"] == "ok" for g in groups for r in g["rules"])
        return groups if done and {g["name"] for g in groups} == expected_groups else None

    groups = wait_until(evaluated_groups, 20, interval=0.2, what="every rule group evaluated")
    errors = [r["lastError"] for g in groups for r in g["rules"] if r.get("lastError")]
    assert errors == []

    def alert_in_alertmanager() -> list[dict[str, Any]]:
        return [a for a in am.alerts() if a["labels"].get("alertname") == "HostCpuBusy"]

    [alert] = wait_until(
        alert_in_alertmanager, 30, interval=0.2, what="HostCpuBusy in Alertmanager"
    )
    assert alert["labels"] == {
        "alertname": "HostCpuBusy", "severity": "warning", "tenant": TENANT,
        "instance": exporter.address, "job": "node",
    }  # fmt: skip
    assert alert["annotations"]["summary"].endswith(f"% busy on {exporter.address}")
    assert [r["name"] for r in alert["receivers"]] == [f"tenant-{TENANT}"]

    def notified() -> list[dict[str, Any]]:
        return [body for path, body in webhook.received if path == f"/tenant-{TENANT}"]

    body = wait_until(notified, 20, interval=0.2, what="the tenant's webhook notified")[0]
    assert body["receiver"] == f"tenant-{TENANT}"
    assert body["groupLabels"] == {
        "alertname": "HostCpuBusy", "tenant": TENANT, "instance": exporter.address,
    }  # fmt: skip
    assert {a["labels"]["tenant"] for a in body["alerts"]} == {TENANT}
    # The only target is the test tenant's: no other scope's rules judged it. The platform's
    # Watchdog fires always, and reaches its own receiver only.
    fired = prometheus.alerts()
    assert {a["labels"].get("tenant") for a in fired if a["labels"]["alertname"] != "Watchdog"} == {
        TENANT
    }
    [watchdog] = wait_until(
        lambda: [a for a in am.alerts() if a["labels"]["alertname"] == "Watchdog"],
        30, interval=0.2, what="the Watchdog in Alertmanager",
    )  # fmt: skip
    assert [r["name"] for r in watchdog["receivers"]] == [alertmanager.WATCHDOG]


def states_after_inhibition(
    servers: ServerRegistry,
    webhook: Webhook,
    posted: list[dict[str, Any]],
    key: str,
    expected: dict[tuple[str, str], str],
) -> dict[tuple[str, str], str]:
    """Post the alerts to the generated Alertmanager: (labels[key], severity) → state."""
    thresholds = parse(yaml.safe_load(THRESHOLDS.read_text()), str(THRESHOLDS))
    am = servers.alertmanager(local_alertmanager_config(thresholds, webhook))
    am.request("POST", "/api/v2/alerts", json=posted)

    def states() -> dict[tuple[str, str], str]:
        return {
            (a["labels"][key], a["labels"]["severity"]): a["status"]["state"] for a in am.alerts()
        }

    # The inhibitor learns of the critical alert asynchronously: poll, then show the difference.
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: states() == expected, 10, interval=0.1, what="the inhibition")
    return states()


def test_a_critical_alert_inhibits_the_warning_on_the_same_instance_only(
    servers: ServerRegistry, webhook: Webhook
) -> None:
    def alert(severity: str, instance: str) -> dict[str, Any]:
        labels = {"alertname": "HostCpuBusy", "tenant": "acme", "severity": severity}
        return {"labels": {**labels, "instance": instance, "job": "node"}}

    posted = [alert("critical", "a:9100"), alert("warning", "a:9100"), alert("warning", "b:9100")]
    expected = {
        ("a:9100", "critical"): "active",
        ("a:9100", "warning"): "suppressed",
        ("b:9100", "warning"): "active",
    }
    assert states_after_inhibition(servers, webhook, posted, "instance", expected) == expected


def test_a_critical_ingest_rejection_inhibits_the_warning_for_the_same_reason_only(
    servers: ServerRegistry, webhook: Webhook
) -> None:
    """IngestRejectingPoints has no instance label: storage failing must not hide bad data."""

    def alert(severity: str, reason: str) -> dict[str, Any]:
        labels = {"alertname": "IngestRejectingPoints", "tenant": "acme", "severity": severity}
        return {"labels": {**labels, "reason": reason}}

    posted = [
        alert("critical", "storage_error"),
        alert("warning", "storage_error"),
        alert("warning", "invalid"),
    ]
    expected = {
        ("storage_error", "critical"): "active",
        ("storage_error", "warning"): "suppressed",
        ("invalid", "warning"): "active",
    }
    assert states_after_inhibition(servers, webhook, posted, "reason", expected) == expected


Key = tuple[str, str, str]  # alertname, tenant, instance ("" when absent)


def states_under(
    servers: ServerRegistry,
    webhook: Webhook,
    posted: list[dict[str, str]],
    expected: dict[Key, str],
) -> dict[Key, str]:
    """Post the alerts (label sets) to the generated Alertmanager: their states once the
    inhibitor has seen them (it learns of sources asynchronously: poll, then show the difference)."""
    thresholds = parse(yaml.safe_load(THRESHOLDS.read_text()), str(THRESHOLDS))
    am = servers.alertmanager(local_alertmanager_config(thresholds, webhook))
    am.request("POST", "/api/v2/alerts", json=[{"labels": labels} for labels in posted])

    def states() -> dict[Key, str]:
        return {
            (a["labels"]["alertname"], a["labels"].get("tenant", ""),
             a["labels"].get("instance", "")): a["status"]["state"]
            for a in am.alerts()
        }  # fmt: skip

    with contextlib.suppress(TimeoutError):
        wait_until(lambda: states() == expected, 10, interval=0.1, what="the inhibition")
    return states()


def alert(name: str, tenant: str, instance: str, **labels: str) -> dict[str, str]:
    host = {"tenant": tenant} if tenant else {}
    return {"alertname": name, **host, "instance": instance, "severity": "critical", **labels}


def test_target_down_inhibits_that_hosts_other_alerts_only(
    servers: ServerRegistry, webhook: Webhook
) -> None:
    """A host gone dark: its alerts (kept firing by keep_firing_for) are muted while TargetDown
    says why, so neither a flood nor a "resolved" for each reaches anyone. The same instance
    name in another tenant, another host, and TargetDown itself stay active."""
    posted = [
        alert("TargetDown", "acme", "h1:9100", job="node"),
        alert("HostMemoryUsed", "acme", "h1:9100", job="node"),
        alert("ExporterPushStalled", "acme", "h1:9100", job="node"),
        alert("HostMemoryUsed", "acme", "h2:9100", job="node"),
        alert("HostMemoryUsed", "zeta", "h1:9100", job="node"),
        {"alertname": "Watchdog", "severity": "none"},
    ]
    expected = {
        ("TargetDown", "acme", "h1:9100"): "active",
        ("HostMemoryUsed", "acme", "h1:9100"): "suppressed",
        ("ExporterPushStalled", "acme", "h1:9100"): "suppressed",
        ("HostMemoryUsed", "acme", "h2:9100"): "active",
        ("HostMemoryUsed", "zeta", "h1:9100"): "active",
        ("Watchdog", "", ""): "active",
    }
    assert states_under(servers, webhook, posted, expected) == expected


def test_an_ingest_storage_outage_inhibits_that_tenants_push_alerts_on_every_host(
    servers: ServerRegistry, webhook: Webhook
) -> None:
    """InfluxDB down for acme: one IngestRejectingPoints (tenant acme, no instance) instead of
    a page per host. Dropped points still page; zeta's storage_conflict (points refused for their
    content, never retried) stalls nothing and mutes nothing."""
    posted = [
        alert("IngestRejectingPoints", "acme", "", reason="storage_unavailable"),
        alert("ExporterPushStalled", "acme", "h1:9100", job="node"),
        alert("ExporterSpoolGrowing", "acme", "h2:9100", job="node"),
        alert("ExporterDroppingPoints", "acme", "h1:9100", job="node", reason="spool_full"),
        alert("IngestRejectingPoints", "zeta", "", reason="storage_conflict"),
        alert("ExporterPushStalled", "zeta", "h3:9100", job="node"),
    ]
    expected = {
        ("IngestRejectingPoints", "acme", ""): "active",
        ("ExporterPushStalled", "acme", "h1:9100"): "suppressed",
        ("ExporterSpoolGrowing", "acme", "h2:9100"): "suppressed",
        ("ExporterDroppingPoints", "acme", "h1:9100"): "active",
        ("IngestRejectingPoints", "zeta", ""): "active",
        ("ExporterPushStalled", "zeta", "h3:9100"): "active",
    }
    assert states_under(servers, webhook, posted, expected) == expected


def test_ingest_down_inhibits_every_tenants_push_alerts(
    servers: ServerRegistry, webhook: Webhook
) -> None:
    """Ingest's target carries no tenant: its TargetDown mutes the push alerts of all tenants,
    and nothing else of theirs."""
    posted = [
        alert("TargetDown", "", "ingest:8087", job="ingest"),
        alert("ExporterPushStalled", "acme", "h1:9100", job="node"),
        alert("ExporterSpoolGrowing", "zeta", "h3:9100", job="node"),
        alert("ExporterPushStalled", "", "bare:9100", job="node"),
        alert("HostCpuBusy", "acme", "h1:9100", job="node"),
    ]
    expected = {
        ("TargetDown", "", "ingest:8087"): "active",
        ("ExporterPushStalled", "acme", "h1:9100"): "suppressed",
        ("ExporterSpoolGrowing", "zeta", "h3:9100"): "suppressed",
        ("ExporterPushStalled", "", "bare:9100"): "suppressed",
        ("HostCpuBusy", "acme", "h1:9100"): "active",
    }
    assert states_under(servers, webhook, posted, expected) == expected
