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
  heartbeat is what notices a path that is down for good. The drops of a Prometheus' first
  ``STARTUP_GRACE`` do not alert (its first alerts can go before it knows any Alertmanager).
* PrometheusRuleEvaluationFailures: a rule Prometheus cannot evaluate is an alert that can never
  fire (the prometheus mixin's PrometheusRuleFailures).
* IngestRateLimitNotShared: an ingest replica limits tenants' write rates per process because
  Redis does not answer, so a tenant gets up to workers x replicas times its limit.
  ``perfanalysis_ingest_rate_limit_shared`` is 0 then, 1 while Redis answers, and not exported
  by an ingest without a redis-url (the ``make up`` stack), where it would mean nothing. So the
  gauge at 0 for the rule's ``for`` is the whole condition: a redis-url wrong from the start
  alerts as an outage does, however long it lasts, and taking Redis out of ingest's
  configuration ends the alert with the series.

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

# A Prometheus that has just started may drop its first alerts: the rules evaluate before its
# notifier has found any Alertmanager (its discovery hands over the static targets up to 5s
# late), so a batch is dropped with no send attempted (sent and errors 0), whichever of the two
# started first; seen in 2 of 5 restarts of the make up stack. Nothing is lost: Prometheus sends
# firing alerts again every minute (--rules.alert.resend-delay). So the drops counted by the end
# of this time after a start do not alert; any drop after it does, and an Alertmanager still
# unreachable then is a real failure (PrometheusNotificationsFailing too, after 5m).
STARTUP_GRACE = 180  # seconds
DROPPED = "prometheus_notifications_dropped_total"
DROPPED_WINDOW = "15m"
# the counter's highest value while the process was in its first STARTUP_GRACE, within the
# window: every drop up to it was one of those
DROPPED_AT_STARTUP = (
    f"max_over_time(({DROPPED} and on (job, instance) "
    f"(time() - process_start_time_seconds < {STARTUP_GRACE}))[{DROPPED_WINDOW}:15s])"
)

# every drop of the window was made by the running process (the window's increase, which
# extrapolates a little, is no more than its counter): drops of a process before a restart are
# not excused by the new one's startup, nor by another startup's within the window
DROPPED_ALL_THIS_PROCESS = f"(increase({DROPPED}[{DROPPED_WINDOW}]) < {DROPPED} * 1.05 + 1)"

NOTIFICATIONS_DROPPED = PlatformRule(
    alert="PrometheusNotificationsDropped",
    expr=(
        f"increase({DROPPED}[{DROPPED_WINDOW}]) > 0 unless on (job, instance) "
        f"({DROPPED} <= on (job, instance) {DROPPED_AT_STARTUP} and on (job, instance) "
        f"{DROPPED_ALL_THIS_PROCESS})"
    ),
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
        "answers, and --alertmanager.notification-queue-capacity if the queue fills. Drops in ",
        f"the first {format_duration(STARTUP_GRACE)} after Prometheus starts do not count (its ",
        "first alerts may go before it has found Alertmanager; they are sent again a minute ",
        "later).",
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
# Longer than a Redis restart or failover, which ingest notices within its 30s back-off.
RATE_LIMIT_FOR = 600  # seconds

RATE_LIMIT_NOT_SHARED = PlatformRule(
    alert="IngestRateLimitNotShared",
    expr=f"{last(RATE_LIMIT_SHARED)} == 0",
    for_seconds=RATE_LIMIT_FOR,
    severity="warning",
    summary=text("Ingest ", INSTANCE, " rate-limits tenants per process: Redis does not answer"),
    description=text(
        "Ingest on ",
        INSTANCE,
        " has limited tenants' write rates on its own, per process, for ",
        f"{format_duration(RATE_LIMIT_FOR)}: Redis does not answer it within 100 ms, so each ",
        "worker and replica admits a tenant's whole limit (up to workers x replicas times). ",
        "Writes go on at their usual speed. Check Redis (redis-cli ping), the network to it, ",
        "and ingest's redis-url and its password; ingest's log says when it switched (Redis ",
        "unreachable for rate limits) and back (Redis answers again). Without a redis-url ",
        "ingest exports no such gauge: taking Redis out of its configuration ends the alert.",
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
