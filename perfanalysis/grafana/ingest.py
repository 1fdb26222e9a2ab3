"""The Ingest and collectors dashboard (Prometheus): what ingest accepts and rejects, per tenant and
reason; how its requests are answered and how its storage writes go; and how each exporter's push
keeps up (spool depth, time since the last accepted push).

Ingest's point counters carry ``tenant`` (and ``reason``); its request and storage metrics are
per instance only. The exporter's push gauges are scraped from every host. Every selector
carries the ``$job`` and ``$instance`` matchers the linter asks for.
"""

from __future__ import annotations

from perfanalysis.grafana.panels import Override, Spec, transformation
from perfanalysis.grafana.targets import Target, promql

SEL = 'job=~"$job", instance=~"$instance"'
TENANT = f'{SEL}, tenant=~"$tenant"'
ACCEPTED = f"rate(perfanalysis_ingest_points_accepted_total{{{TENANT}}}[$__rate_interval])"
REJECTED = f"rate(perfanalysis_ingest_points_rejected_total{{{TENANT}}}[$__rate_interval])"
QUEUED = f"perfanalysis_exporter_push_points_queued{{{SEL}}}"
# 0 until the first acknowledged push: such an exporter has no "since" (not 56 years since 1970)
SINCE_PUSH = f"time() - (perfanalysis_exporter_push_last_success_timestamp_seconds{{{SEL}}} > 0)"
NEVER = "never"
REQUESTS = "perfanalysis_ingest_requests_total"
STORAGE = "perfanalysis_ingest_storage_write_seconds"
GROUP = "perfanalysis_ingest_storage_group_requests"
STALE_SECONDS = 300


def _rate(metric: str) -> str:
    return f"rate({metric}{{{SEL}}}[$__rate_interval])"


def _storage_quantile(quantile: float) -> str:
    return f"histogram_quantile({quantile}, sum by (le) ({_rate(STORAGE + '_bucket')}))"


def _stat(title: str, description: str, unit: str) -> Spec:
    return Spec(title, description, unit, "stat", width=6, height=4, decimals=1)


def panels() -> list[tuple[str, list[tuple[Spec, list[Target]]]]]:
    return [
        ("Ingest", [
            (_stat("Points accepted", "Points per second ingest stored for the selected tenants.", "cps"),
             [promql("A", f"sum({ACCEPTED})", "accepted")]),
            (_stat("Points rejected", "Points per second ingest refused, for any reason.", "cps"),
             [promql("A", f"sum({REJECTED})", "rejected")]),
            (_stat("Rejected share", "Rejected points as a share of all points offered.", "percentunit"),
             [promql("A", f"sum({REJECTED}) / (sum({ACCEPTED}) + sum({REJECTED}))", "rejected share")]),
            (_stat("Collectors pushing", f"Exporters whose last accepted push is under {STALE_SECONDS // 60} "
                   "minutes old.", "short"),
             [promql("A", f"count(({SINCE_PUSH}) < {STALE_SECONDS})", "pushing")]),
            (Spec("Points per second by tenant", "Points ingest accepted and stored, per tenant.",
                  "cps", width=12, stacked=True, min=0),
             [promql("A", f"sum by (tenant) ({ACCEPTED})", "{{tenant}}")]),
            (Spec("Rejections by reason", "Points ingest refused per second, by tenant and reason "
                  "(bad data, bad key, too large, over limit, storage down).", "cps", width=12,
                  stacked=True, min=0),
             [promql("A", f"sum by (tenant, reason) ({REJECTED})", "{{tenant}} {{reason}}")]),
        ]),
        ("Requests and storage", [
            (Spec("Requests by status", "Requests per second by API (v1 /write, v2 /api/v2/write, "
                  "query: /query's CREATE DATABASE, sent by InfluxDB 1.x clients before writing) and "
                  "HTTP status: 204 stored, 4xx refused, 503 storage unavailable.",
                  "reqps", width=6, stacked=True, min=0),
             [promql("A", f"sum by (api, code) ({_rate(REQUESTS)})", "{{api}} {{code}}")]),
            (Spec("Storage write latency", "Time for storage to accept a write (p50 and p99), "
                  "including the wait for a free lane.", "s", width=6, min=0),
             [promql("A", _storage_quantile(0.5), "p50"), promql("B", _storage_quantile(0.99), "p99")]),
            (Spec("Storage writes by outcome", "Storage writes per second: ok, unavailable (answered "
                  "503), conflict (422) or error (500).", "ops", width=6, stacked=True, min=0),
             [promql("A", f"sum by (outcome) ({_rate(STORAGE + '_count')})", "{{outcome}}")]),
            (Spec("Requests per storage write", "Write requests that left as one storage write "
                  "(group commit): 1 while storage keeps up, more when requests queue for a lane.",
                  "short", width=6, min=0, decimals=2),
             [promql("A", f"sum({_rate(GROUP + '_sum')}) / sum({_rate(GROUP + '_count')})",
                     "requests per write")]),
        ]),
        ("Collectors", [
            (Spec("Spool depth", "Points each exporter holds on disk, not yet acknowledged by "
                  "ingest; a growing spool means pushes fail or fall behind.", "short", width=12, min=0),
             [promql("A", QUEUED, "{{instance}}")]),
            (Spec("Time since last push", "Seconds since each exporter's last push that ingest "
                  "accepted; an exporter that never had one has no line.", "s", width=12, min=0),
             [promql("A", SINCE_PUSH, "{{instance}}")]),
            (Spec("Collectors by time since last push", "Every exporter, the longest silent first, "
                  f'with its spool depth; "{NEVER}" for one that has not had a push accepted yet.', "s",
                  kind="table", width=24, height=8, decimals=0, sort_by="Since last push",
                  overrides=[Override("name", "Spool depth", {"unit": "short"}),
                             Override("name", "Since last push", {"noValue": NEVER})],
                  transformations=[transformation("merge"), transformation(
                      "organize", excludeByName={"Time": True, "__name__": True}, indexByName={},
                      renameByName={"Value #A": "Since last push", "Value #B": "Spool depth"})]),
             [promql("A", SINCE_PUSH, "{{instance}}", instant=True),
              promql("B", QUEUED, "{{instance}}", instant=True)]),
        ]),
    ]  # fmt: skip
