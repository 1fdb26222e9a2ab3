"""Grafana-managed alert rules for the InfluxDB path, as data.

The same rules go to a single-tenant deployment as a provisioning file (``to_file_rule``) and to
each tenant's org through the provisioning API (``to_api_rule``). Each rule is a query, a reduce
and a threshold (plus math where InfluxQL cannot divide one measurement by another); alerts are
per host (and per mount point for filesystems). Thresholds follow node-mixin's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfanalysis.grafana import host as host_panels
from perfanalysis.grafana import influxql as iq

FOLDER_UID = "perfanalysis"
FOLDER_TITLE = "PerfAnalysis"
GROUP = "perfanalysis-hosts"
INTERVAL_SECONDS = 60
EXPRESSION = "__expr__"
HOST_DASHBOARD = "pa-host-influxdb"


@dataclass(frozen=True)
class Query:
    ref_id: str
    text: str
    seconds: int  # relative time range: from now - seconds to now


@dataclass(frozen=True)
class Rule:
    uid: str
    title: str
    queries: tuple[Query, ...]
    expressions: tuple[dict[str, Any], ...]  # reduce/math/threshold models, the last decides
    duration: str
    severity: str
    summary: str
    description: str
    panel_title: str
    no_data: str = "NoData"
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def condition(self) -> str:
        return str(self.expressions[-1]["refId"])


def _reduce(ref: str, source: str, reducer: str = "last") -> dict[str, Any]:
    return {"refId": ref, "type": "reduce", "expression": source, "reducer": reducer,
            "settings": {"mode": "dropNN"}}  # fmt: skip


def _math(ref: str, expression: str) -> dict[str, Any]:
    return {"refId": ref, "type": "math", "expression": expression}


def _above(ref: str, source: str, value: float) -> dict[str, Any]:
    return {"refId": ref, "type": "threshold", "expression": source,
            "conditions": [{"evaluator": {"type": "gt", "params": [value]}}]}  # fmt: skip


def _no_host(query: str) -> str:
    """Alert queries see every host: the dashboard's $host filter does not exist there."""
    return query.replace(f"{iq.HOST} AND ", "")


CPU_BUSY = 90.0
MEMORY_USED = 90.0
FILESYSTEM_USED = 90.0
PUSH_SILENCE_SECONDS = 600

RULES: tuple[Rule, ...] = (
    Rule(
        "pa-cpu-busy", "CPU busy",
        (Query("A", _no_host(iq.rate_over("node_cpu_seconds_total", iq.HOST_MODE_IDLE, per=("host", "cpu"),
                                          select='100 - 100 * mean("r")')), 900),),
        (_reduce("B", "A", "mean"), _above("C", "B", CPU_BUSY)),
        "15m", "warning", "CPU busy above {{ humanize $values.B.Value }}% on {{ $labels.host }}",
        f"Mean CPU busy over 15 minutes has been above {CPU_BUSY:g}% for 15 minutes.", "CPU busy by mode",
    ),
    Rule(
        "pa-memory-used", "Memory used",
        (Query("A", _no_host(iq.gauge("node_memory_MemAvailable_bytes")), 600),
         Query("B", _no_host(iq.gauge("node_memory_MemTotal_bytes")), 600)),
        (_reduce("C", "A"), _reduce("D", "B"), _math("E", "100 - 100 * $C / $D"), _above("F", "E", MEMORY_USED)),
        "15m", "warning", "Memory {{ humanize $values.E.Value }}% used on {{ $labels.host }}",
        f"Less than {100 - MEMORY_USED:g}% of memory has been available for 15 minutes.", "Memory and swap used",
    ),
    Rule(
        "pa-filesystem-used", "Filesystem used",
        (Query("A", _no_host(iq.gauge("node_filesystem_avail_bytes", host_panels.FILESYSTEM, by=("host", "mountpoint"))), 600),
         Query("B", _no_host(iq.gauge("node_filesystem_size_bytes", host_panels.FILESYSTEM, by=("host", "mountpoint"))), 600)),
        (_reduce("C", "A"), _reduce("D", "B"), _math("E", "100 - 100 * $C / $D"), _above("F", "E", FILESYSTEM_USED)),
        "30m", "warning", "{{ $labels.mountpoint }} on {{ $labels.host }} is {{ humanize $values.E.Value }}% full",
        f"A filesystem has been more than {FILESYSTEM_USED:g}% full for 30 minutes.", "Filesystem fill",
    ),
    Rule(
        "pa-push-silent", "Collector stopped pushing",
        (Query("A", 'SELECT last("value") FROM "node_time_seconds" WHERE $timeFilter GROUP BY "host"', 86400),
         Query("B", 'SELECT last("value") FROM "node_time_seconds" WHERE $timeFilter', 86400)),
        (_reduce("C", "A"), _reduce("D", "B"), _math("E", "$D - $C"), _above("F", "E", PUSH_SILENCE_SECONDS)),
        "5m", "critical", "{{ $labels.host }} last pushed {{ humanizeDuration $values.E.Value }} before the newest host",
        "The host's newest sample is more than 10 minutes older than the newest sample of any host "
        "of the tenant in the last day (host clocks). If no host pushes at all, the rule has no data "
        "and fires as well.", "CPU busy", no_data="Alerting",
    ),
)  # fmt: skip


def _query_model(query: Query, datasource_uid: str) -> dict[str, Any]:
    return {"refId": query.ref_id, "datasource": {"type": "influxdb", "uid": datasource_uid},
            "query": query.text, "rawQuery": True, "resultFormat": "time_series",
            "intervalMs": 60000, "maxDataPoints": 43200}  # fmt: skip


def _data(rule: Rule, datasource_uid: str) -> list[dict[str, Any]]:
    data = [{"refId": q.ref_id, "relativeTimeRange": {"from": q.seconds, "to": 0},
             "datasourceUid": datasource_uid, "model": _query_model(q, datasource_uid)}
            for q in rule.queries]  # fmt: skip
    for model in rule.expressions:
        data.append({"refId": model["refId"], "relativeTimeRange": {"from": 0, "to": 0},
                     "datasourceUid": EXPRESSION,
                     "model": {**model, "datasource": {"type": EXPRESSION, "uid": EXPRESSION}}})  # fmt: skip
    return data


def _common(rule: Rule, datasource_uid: str, panel_ids: dict[str, int]) -> dict[str, Any]:
    annotations = {"summary": rule.summary, "description": rule.description}
    return {"uid": rule.uid, "title": rule.title, "condition": rule.condition,
            "data": _data(rule, datasource_uid), "noDataState": rule.no_data,
            "execErrState": "Error", "for": rule.duration,
            "labels": {"severity": rule.severity, **rule.labels}, "annotations": annotations,
            "isPaused": False}  # fmt: skip


def to_file_rule(rule: Rule, datasource_uid: str, panel_ids: dict[str, int]) -> dict[str, Any]:
    """A rule as the file-provisioning format writes it (inside ``groups[].rules``)."""
    body = _common(rule, datasource_uid, panel_ids)
    return {**body, "dashboardUid": HOST_DASHBOARD, "panelId": panel_ids[rule.panel_title]}


def to_api_rule(
    rule: Rule,
    datasource_uid: str,
    panel_ids: dict[str, int],
    org_id: int,
    extra_labels: dict[str, str],
) -> dict[str, Any]:
    """A ProvisionedAlertRule for ``/api/v1/provisioning/alert-rules``."""
    body = _common(rule, datasource_uid, panel_ids)
    body["labels"] = {**body["labels"], **extra_labels}
    body["annotations"] = {**body["annotations"], "__dashboardUid__": HOST_DASHBOARD,
                           "__panelId__": str(panel_ids[rule.panel_title])}  # fmt: skip
    return {**body, "orgID": org_id, "folderUID": FOLDER_UID, "ruleGroup": GROUP}


def host_panel_ids() -> dict[str, int]:
    """Panel ids of the InfluxDB Host dashboard by title, for the rules' dashboard links."""
    from perfanalysis.grafana.dashboards import host_influxdb
    from perfanalysis.grafana.render import as_dict

    return {p["title"]: p["id"] for p in as_dict(host_influxdb())["panels"]}
