"""IngestRateLimitNotShared in a real Prometheus, on the gauge as ingest's own code sets it.

Two ingest "installs" are scraped as two jobs: one without a redis-url (no gauge at all, as
under ``make up``), one whose Redis refuses connections (its gauge 1 from the start, then 0 at
its first write). Each serves what ``IngestMetrics.exposition`` gives, with the limiter from
``ingest.ratelimit.make_limiter`` setting the gauge. The rule must match the second and never
the first. In the generated Alertmanager, that replica's TargetDown mutes the alert.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ingest.metrics import IngestMetrics
from ingest.ratelimit import Limit, RateLimiter, make_limiter
from perfanalysis.alerting import platform, rules
from perfanalysis.alerting.generate import THRESHOLDS
from perfanalysis.alerting.thresholds import load
from perfanalysis.testing.servers import ServerRegistry, wait_until
from tests.integration.test_alerting import Webhook, states_under

pytestmark = pytest.mark.integration
ALERT = platform.RATE_LIMIT_NOT_SHARED.alert


class MetricsTarget:
    """An HTTP server answering every GET with one ``IngestMetrics``' exposition."""

    def __init__(self, metrics: IngestMetrics) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = metrics.exposition()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def ingest(redis_url: str) -> tuple[IngestMetrics, RateLimiter]:
    metrics = IngestMetrics()
    settings = {"redis_url": redis_url, "limits_redis_prefix": "perfanalysis:test:"}
    return metrics, make_limiter(settings, metrics.rate_limit_shared.set)


@pytest.fixture
def targets() -> Iterator[list[MetricsTarget]]:
    started: list[MetricsTarget] = []
    yield started
    for target in started:
        target.close()


@pytest.fixture
def receivers() -> Iterator[Webhook]:
    """Where the generated Alertmanager's receivers post (test_alerting's Webhook)."""
    hook = Webhook()
    yield hook
    hook.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_only_an_ingest_whose_redis_stopped_answering_matches(
    servers: ServerRegistry, targets: list[MetricsTarget]
) -> None:
    alone, alone_limiter = ingest("")
    shared, shared_limiter = ingest(f"redis://127.0.0.1:{closed_port()}/0")
    targets += [MetricsTarget(alone), MetricsTarget(shared)]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "ingest", "static_configs": [{"targets": [targets[0].address]}]},
            {"job_name": "ingest-with-redis", "static_configs": [{"targets": [targets[1].address]}]},
        ],
    }  # fmt: skip
    rule_files = rules.rule_files(load(THRESHOLDS))
    prometheus = servers.prometheus(
        config, {f"rules/{platform.FILE_NAME}": rule_files[platform.FILE_NAME]}
    )
    gauge = platform.RATE_LIMIT_SHARED

    def scraped(job: str, value: float) -> bool:
        return bool(prometheus.query(f'{gauge}{{job="{job}"}} == {value:g}'))

    wait_until(lambda: prometheus.query('up{job="ingest"} == 1'), 30, interval=0.2,
               what="the ingest without Redis")  # fmt: skip
    wait_until(lambda: scraped("ingest-with-redis", 1), 30, interval=0.2, what="the shared limits")
    alone_limiter.acquire("acme", 1, Limit(10.0, 10))
    shared_limiter.acquire("acme", 1, Limit(10.0, 10))  # Redis refuses: per process from now

    def pending() -> list[dict[str, Any]]:
        return [a for a in prometheus.alerts() if a["labels"]["alertname"] == ALERT]

    [alert] = wait_until(pending, 30, interval=0.2, what=f"{ALERT} pending")
    assert alert["state"] == "pending"  # for: 10m
    assert alert["labels"] == {
        "alertname": ALERT,
        "instance": targets[1].address,
        "job": "ingest-with-redis",
        "severity": "warning",
    }
    # the ingest without Redis was scraped all along, and exports no such series
    assert prometheus.query('up{job="ingest"} == 1')
    assert {r["metric"]["job"] for r in prometheus.query(f"count by (job) ({gauge})")} == {
        "ingest-with-redis"
    }
    [group] = prometheus.rules()
    [rule] = [r for r in group["rules"] if r["name"] == ALERT]
    assert rule["health"] == "ok"
    assert [a["labels"]["job"] for a in rule["alerts"]] == ["ingest-with-redis"]


def test_ingest_down_inhibits_its_own_fallback_alert_only(
    servers: ServerRegistry, receivers: Webhook
) -> None:
    """The alert carries ingest's target labels and no tenant, so TargetDown for that replica
    (equal tenant and instance) mutes it, and nothing else does; it goes to the default route."""
    posted = [
        {"alertname": "TargetDown", "job": "ingest", "instance": "ingest-1:8087",
         "severity": "critical"},
        {"alertname": ALERT, "job": "ingest", "instance": "ingest-1:8087", "severity": "warning"},
        {"alertname": ALERT, "job": "ingest", "instance": "ingest-2:8087", "severity": "warning"},
    ]  # fmt: skip
    expected = {
        ("TargetDown", "", "ingest-1:8087"): "active",
        (ALERT, "", "ingest-1:8087"): "suppressed",
        (ALERT, "", "ingest-2:8087"): "active",
    }
    assert states_under(servers, receivers, posted, expected) == expected
