"""Grafana-managed alert rules for the InfluxDB path, as data.

The same rules go to a single-tenant deployment as a provisioning file (``to_file_rule``) and to
each tenant's org through the provisioning API (``to_api_rule``). Each rule is a query, a reduce
and a threshold (plus math where InfluxQL cannot divide one measurement by another); alerts are
per host (and per mount point for filesystems). Thresholds follow node-mixin's defaults; CPU busy
and the filesystems are the Prometheus rules' (``perfanalysis.grafana.definitions``): CPU time
neither idle nor iowait, and read-write filesystems without the types in
``perfanalysis.alerting.catalogue.FS_IGNORED``.
"""

# ruff: noqa: S608 -- InfluxQL for alert rules, built from constants; no input reaches it

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfanalysis.grafana import definitions
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
    return _threshold(ref, source, "gt", value)


def _below(ref: str, source: str, value: float) -> dict[str, Any]:
    return _threshold(ref, source, "lt", value)


def _threshold(ref: str, source: str, kind: str, value: float) -> dict[str, Any]:
    return {"refId": ref, "type": "threshold", "expression": source,
            "conditions": [{"evaluator": {"type": kind, "params": [value]}}]}  # fmt: skip


CPU_BUSY = 90.0
MEMORY_USED = 90.0
FILESYSTEM_USED = 90.0
PUSH_SILENCE_SECONDS = 600


def _filesystem(measurement: str) -> str:
    """The Prometheus filesystem rules' types; only read-write ones alert (readonly == 0, below)."""
    return iq.alerting(iq.gauge(measurement, definitions.FILESYSTEMS, by=("host", "mountpoint")))


# Samples per host in the last PUSH_SILENCE_SECONDS, in windows ending at the evaluation (so the
# newest one is never a partial window) over the last day: fill(0) writes 0 for a host that has
# samples in the day but none in the window, also when no host pushes. `time < now()` keeps a
# Grafana clock ahead of InfluxDB's from adding an empty window after now.
PUSHES = (
    'SELECT count("value") FROM "node_time_seconds" WHERE $timeFilter AND time < now() '
    f'GROUP BY time({PUSH_SILENCE_SECONDS}s, now()), "host" fill(0)'
)

RULES: tuple[Rule, ...] = (
    Rule(
        "pa-cpu-busy", "CPU busy",
        (Query("A", iq.alerting(definitions.cpu_busy()), 900),),
        (_reduce("B", "A", "mean"), _above("C", "B", CPU_BUSY)),
        "15m", "warning", "CPU busy above {{ humanize $values.B.Value }}% on {{ $labels.host }}",
        f"Mean CPU busy over 15 minutes has been above {CPU_BUSY:g}% for 15 minutes (CPU time neither idle "
        "nor iowait, as the Prometheus rule HostCpuBusy counts it: a CPU waiting for a disk is idle).",
        "CPU time by mode",
    ),
    Rule(
        "pa-memory-used", "Memory used",
        (Query("A", iq.alerting(iq.gauge("node_memory_MemAvailable_bytes")), 600),
         Query("B", iq.alerting(iq.gauge("node_memory_MemTotal_bytes")), 600)),
        (_reduce("C", "A"), _reduce("D", "B"), _math("E", "100 - 100 * $C / $D"), _above("F", "E", MEMORY_USED)),
        "15m", "warning", "Memory {{ humanize $values.E.Value }}% used on {{ $labels.host }}",
        f"Less than {100 - MEMORY_USED:g}% of memory has been available for 15 minutes.", "Memory and swap used",
    ),
    Rule(
        "pa-filesystem-used", "Filesystem used",
        (Query("A", _filesystem("node_filesystem_avail_bytes"), 600),
         Query("B", _filesystem("node_filesystem_size_bytes"), 600),
         Query("C", _filesystem("node_filesystem_readonly"), 600)),
        (_reduce("D", "A"), _reduce("E", "B"), _reduce("F", "C"),
         _math("G", "(100 - 100 * $D / $E) * ($F == 0)"), _above("H", "G", FILESYSTEM_USED)),
        "30m", "warning", "{{ $labels.mountpoint }} on {{ $labels.host }} is {{ humanize $values.G.Value }}% full",
        f"A read-write filesystem has been more than {FILESYSTEM_USED:g}% full for 30 minutes. As in the "
        "Prometheus rule, read-only filesystems and pseudo and in-memory types are left out.", "Filesystem fill",
    ),
    Rule(
        "pa-push-silent", "Collector stopped pushing",
        (Query("A", PUSHES, 86400),),
        (_reduce("B", "A"), _below("C", "B", 1)),
        "1m", "critical", f"{{{{ $labels.host }}}} has pushed no sample for {PUSH_SILENCE_SECONDS // 60} minutes",
        f"No sample of the host (node_time_seconds) is timestamped in the last {PUSH_SILENCE_SECONDS // 60} "
        "minutes: its collector stopped, the host is down or unreachable, or ingest or InfluxDB "
        "refuses its pushes; when every host stops at once, each one fires. Timestamps are the host's "
        "clock. A host is watched for a day after its last sample, then drops out of the query and its "
        "alert resolves; if no host of the tenant pushed in the last day, the rule has no data and "
        "fires once for the tenant.", "CPU busy", no_data="Alerting",
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
