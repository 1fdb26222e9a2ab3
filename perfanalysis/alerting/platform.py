"""The platform's own rules, the same for every install and tuned by no tenant: ``platform.rules.yml``.

* Watchdog fires always (``vector(1)``). Alertmanager routes it, alone, to the ``watchdog``
  receiver (``watchdog`` in thresholds.yaml), which should post to an external heartbeat, a dead
  man's switch such as Healthchecks.io or Dead Man's Snitch, that pages someone when the posts
  stop: then Prometheus is down or cannot evaluate its rules or reach Alertmanager, or
  Alertmanager cannot deliver, and no other alert can say so. Its severity is ``none``.
* PrometheusNotificationsFailing and PrometheusNotificationsDropped: Prometheus failing to send,
  or dropping, alerts on their way to Alertmanager (the prometheus mixin's
  PrometheusErrorSendingAlertsToSomeAlertmanager and PrometheusNotificationQueueRunningFull, on
  the counters themselves). Sent through the failing path, they may not arrive: the Watchdog's
  heartbeat is what notices a path that is down for good.
* PrometheusRuleEvaluationFailures: a rule Prometheus cannot evaluate is an alert that can never
  fire (the prometheus mixin's PrometheusRuleFailures).
* IngestRateLimitNotShared: an ingest replica limits tenants' write rates per process because
  Redis does not answer, so a tenant gets up to workers x replicas times its limit.
  ``perfanalysis_ingest_rate_limit_shared`` is 0 then, but also all the time in an ingest run
  without Redis (no redis-url: the ``make up`` stack), where it means nothing; with a redis-url
  it starts at 1. So the rule wants the gauge at 0 while a replica of the same scrape job had it
  at 1 within ``SHARED_LOOKBACK``, as HostFilesystemTurnedReadOnly compares with the past day: an
  ingest without Redis never alerts, and a replica (re)started during the outage, which never
  shared, alerts with the others. What this cannot tell from no Redis: a job none of whose
  replicas reached Redis in that day (a wrong redis-url from the start; ingest's log says it),
  and an outage longer than that day, whose alert then resolves.

Their series are Prometheus' own (its ``prometheus`` scrape job) and ingest's (its ``ingest``
job), which carry no tenant: their alerts go to the default receiver, and ingest's TargetDown
inhibits IngestRateLimitNotShared on the same instance. Their promtool tests are written by hand
(provisioning/prometheus/tests/platform.test.yml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perfanalysis.alerting.catalogue import last
from perfanalysis.alerting.durations import format_duration
from perfanalysis.alerting.templates import INSTANCE, NUMBER, Label, Text, text

FILE_NAME = "platform.rules.yml"
GROUP = "perfanalysis-platform"
WATCHDOG = "Watchdog"


@dataclass(frozen=True)
class PlatformRule:
    alert: str
    expr: str
    for_seconds: int
    severity: str
    summary: Text
    description: Text


WATCHDOG_RULE = PlatformRule(
    alert=WATCHDOG,
    expr="vector(1)",
    for_seconds=0,
    severity="none",
    summary=text("Alerting pipeline heartbeat (always firing)"),
    description=text(
        "This alert always fires, so that its notifications, sent to the watchdog receiver every ",
        "minute or two, show that Prometheus evaluates its rules and that Alertmanager delivers. ",
        "Point the watchdog receiver (watchdog in provisioning/thresholds.yaml) at an external ",
        "heartbeat that pages when they stop; never silence or inhibit it.",
    ),
)

NOTIFICATIONS_FAILING = PlatformRule(
    alert="PrometheusNotificationsFailing",
    expr="rate(prometheus_notifications_errors_total[5m]) > 0",
    for_seconds=300,
    severity="critical",
    summary=text(
        "Prometheus ", INSTANCE, " fails to send alerts to Alertmanager ", Label("alertmanager")
    ),
    description=text(
        "Prometheus on ",
        INSTANCE,
        " has failed to send ",
        NUMBER,
        " alerts a second to Alertmanager ",
        Label("alertmanager"),
        " for 5m: alerts may reach nobody (this one too: watch the Watchdog's heartbeat). Check ",
        "that Alertmanager runs and answers at that address, and Prometheus' log (Error sending ",
        "alert).",
    ),
)

NOTIFICATIONS_DROPPED = PlatformRule(
    alert="PrometheusNotificationsDropped",
    expr="increase(prometheus_notifications_dropped_total[15m]) > 0",
    for_seconds=0,
    severity="critical",
    summary=text("Prometheus ", INSTANCE, " dropped ", NUMBER, " alerts in 15m"),
    description=text(
        "Prometheus on ",
        INSTANCE,
        " has dropped ",
        NUMBER,
        " alerts in the last 15 minutes (they failed to send, or its notification queue was ",
        "full): those notifications are lost. Check Prometheus' log, that Alertmanager runs and ",
        "answers, and --alertmanager.notification-queue-capacity if the queue fills.",
    ),
)

RULE_FAILURES = PlatformRule(
    alert="PrometheusRuleEvaluationFailures",
    expr="increase(prometheus_rule_evaluation_failures_total[5m]) > 0",
    for_seconds=600,
    severity="critical",
    summary=text(
        "Prometheus ", INSTANCE, " fails to evaluate rules of group ", Label("rule_group")
    ),
    description=text(
        "Prometheus on ",
        INSTANCE,
        " has failed ",
        NUMBER,
        " rule evaluations in the last 5 minutes, for 10m, in group ",
        Label("rule_group"),
        ": an alert that cannot be evaluated can never fire. Its error is on Prometheus' ",
        "/rules page and in its log; regenerate the rules (perfanalysis alerting generate) ",
        "or fix the hand-written ones, then reload Prometheus.",
    ),
)

RATE_LIMIT_SHARED = "perfanalysis_ingest_rate_limit_shared"
# How far back a replica of the job must have shared its limits through Redis: the day that
# HostFilesystemTurnedReadOnly also looks back, within a default retention of 15 days.
SHARED_LOOKBACK = "1d"
# Longer than a Redis restart or failover, which ingest notices within its 30s back-off.
RATE_LIMIT_FOR = 600  # seconds

RATE_LIMIT_NOT_SHARED = PlatformRule(
    alert="IngestRateLimitNotShared",
    expr=(
        f"{last(RATE_LIMIT_SHARED)} == 0 and on (job) "
        f"max by (job) (max_over_time({RATE_LIMIT_SHARED}[{SHARED_LOOKBACK}])) == 1"
    ),
    for_seconds=RATE_LIMIT_FOR,
    severity="warning",
    summary=text("Ingest ", INSTANCE, " rate-limits tenants per process: Redis does not answer"),
    description=text(
        "Ingest on ",
        INSTANCE,
        " has limited tenants' write rates on its own, per process, for ",
        f"{format_duration(RATE_LIMIT_FOR)}, while replicas ",
        "of job ",
        Label("job"),
        " shared them through Redis within the last day: Redis does not answer it within ",
        "100 ms, so each worker and replica admits a tenant's whole limit (up to workers x ",
        "replicas times). Writes go on at their usual speed. Check Redis (redis-cli ping), the ",
        "network to it, and ingest's redis-url and its password; ",
        "ingest's log says when it switched (Redis unreachable for rate limits) and back ",
        "(Redis answers again). If Redis was taken out of ingest's configuration on purpose, ",
        "the alert resolves a day later.",
    ),
)

PLATFORM_RULES = (
    WATCHDOG_RULE,
    NOTIFICATIONS_FAILING,
    NOTIFICATIONS_DROPPED,
    RULE_FAILURES,
    RATE_LIMIT_NOT_SHARED,
)


def rule_file() -> dict[str, Any]:
    rules = []
    for rule in PLATFORM_RULES:
        entry: dict[str, Any] = {"alert": rule.alert, "expr": rule.expr}
        if rule.for_seconds:
            entry["for"] = format_duration(rule.for_seconds)
        entry["labels"] = {"severity": rule.severity}
        entry["annotations"] = {"summary": rule.summary.go(), "description": rule.description.go()}
        rules.append(entry)
    return {"groups": [{"name": GROUP, "rules": rules}]}
