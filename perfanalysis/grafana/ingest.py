"""The Ingest and collectors dashboard (Prometheus): what ingest accepts and rejects, per tenant and
reason, and how each exporter's push keeps up (spool depth, time since the last accepted push).

Ingest's counters carry ``tenant`` (and ``reason``); the exporter's push gauges are scraped from
every host. Every selector carries the ``$job`` and ``$instance`` matchers the linter asks for.
"""

from __future__ import annotations

from perfanalysis.grafana.panels import Override, Spec, transformation
from perfanalysis.grafana.targets import Target, promql

SEL = 'job=~"$job", instance=~"$instance"'
TENANT = f'{SEL}, tenant=~"$tenant"'
ACCEPTED = f"rate(perfanalysis_ingest_points_accepted_total{{{TENANT}}}[$__rate_interval])"
REJECTED = f"rate(perfanalysis_ingest_points_rejected_total{{{TENANT}}}[$__rate_interval])"
QUEUED = f"perfanalysis_exporter_push_points_queued{{{SEL}}}"
SINCE_PUSH = f"time() - perfanalysis_exporter_push_last_success_timestamp_seconds{{{SEL}}}"
STALE_SECONDS = 300


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
        ("Collectors", [
            (Spec("Spool depth", "Points each exporter holds on disk, not yet acknowledged by "
                  "ingest; a growing spool means pushes fail or fall behind.", "short", width=12, min=0),
             [promql("A", QUEUED, "{{instance}}")]),
            (Spec("Time since last push", "Seconds since each exporter's last push that ingest "
                  "accepted.", "s", width=12, min=0),
             [promql("A", SINCE_PUSH, "{{instance}}")]),
            (Spec("Collectors by time since last push", "Every exporter, the longest silent first, "
                  "with its spool depth.", "s", kind="table", width=24, height=8, decimals=0,
                  sort_by="Since last push", overrides=[Override("name", "Spool depth", {"unit": "short"})],
                  transformations=[transformation("merge"), transformation(
                      "organize", excludeByName={"Time": True, "__name__": True}, indexByName={},
                      renameByName={"Value #A": "Since last push", "Value #B": "Spool depth"})]),
             [promql("A", SINCE_PUSH, "{{instance}}", instant=True),
              promql("B", QUEUED, "{{instance}}", instant=True)]),
        ]),
    ]  # fmt: skip
