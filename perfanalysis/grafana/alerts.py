"""Grafana-managed alert rules for the InfluxDB path, generated from provisioning/thresholds.yaml.

The thresholds are the Prometheus rules' (``perfanalysis.alerting.thresholds``, the same parser
and the same merge of a tenant's overrides over the defaults): a Grafana rule per severity that
the scope sets (a warning and a critical rule where thresholds.yaml has both, none for a level set
to null or a rule with ``enabled: false``), each with that level's threshold and ``for``. The
provisioning files (a single-tenant deployment, ``to_file_rule``) get the defaults; each tenant's
org gets that tenant's settings through the provisioning API (``to_api_rule``), or the defaults
for a tenant thresholds.yaml does not list, as Prometheus' default.rules.yml judges it.

Each rule is a query, a reduce and a threshold (plus math where a ratio needs two
measurements: InfluxQL has no join); alerts are per host (and per mount point for filesystems). Every rule has
the labels ``severity`` and ``alert``, the name of the Prometheus rule it mirrors, which the
notification policy groups by so that a warning and a critical alert of one host arrive together.
CPU busy and the filesystems are the Prometheus rules' (``perfanalysis.grafana.definitions``): CPU
time neither idle nor iowait, and read-write filesystems without the types in
``perfanalysis.alerting.catalogue.FS_IGNORED``. What InfluxQL reads differently from PromQL:

* CPU busy: HostCpuBusy takes ``rate(...[5m])`` at each evaluation; InfluxDB has no samples'
  increase over a window, so the rule takes the mean of the per-second rates between the means of
  six whole minutes (aligned to the evaluation, the newest, incomplete one left out). That equals
  the busy share over 5 minutes, each moment weighted fully from 6 to 2 minutes before the
  evaluation and tapering to nothing from 6 to 7 and from 2 to 1 minutes before it: centred a
  minute and a half before HostCpuBusy's window. No rate spans a gap of more than two minutes
  (``influxql.rate_sum``): a paused VM's stalled counters would read it busy on resuming.
* Memory and filesystems: the newest sample of each series (``last()``) within the last 5
  minutes, where Prometheus reads its newest scrape; a host that stops pushing keeps its last
  values for those 5 minutes.
* Pushes: ExporterPushStalled counts from the exporter's last acknowledged push (its own metric);
  Grafana sees only samples in InfluxDB, so it fires when a host has no sample timestamped within
  the threshold (push_stalled_seconds): the host's clock, and samples a spool replays after an
  outage, count as they are timestamped.
* Grafana evaluates every minute (Prometheus every 15 s), so an alert fires up to a minute after
  its ``for`` has passed; and Grafana 11 cannot inhibit, so while the critical alert fires the
  warning keeps firing beside it, in the same notification (the policy groups by ``alert``).
"""

# ruff: noqa: S608 -- InfluxQL for alert rules, built from constants and validated numbers

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfanalysis.alerting.catalogue import RULES as CATALOGUE
from perfanalysis.alerting.catalogue import SEVERITIES, THRESHOLDS_FILE, Level
from perfanalysis.alerting.thresholds import Setting, Thresholds
from perfanalysis.grafana import definitions
from perfanalysis.grafana import influxql as iq
from perfanalysis.paths import ROOT

FOLDER_UID = "perfanalysis"
FOLDER_TITLE = "PerfAnalysis"
GROUP = "perfanalysis-hosts"
INTERVAL_SECONDS = 60
EXPRESSION = "__expr__"
HOST_DASHBOARD = "pa-host-influxdb"

RATE_WINDOW_SECONDS = 300  # HostCpuBusy's rate(...[5m])
RATE_STEP_SECONDS = 60  # the rates are taken between the means of whole minutes
# Six whole minutes: five rates between their means span RATE_WINDOW_SECONDS; the minute under
# way is left out (a partial interval's mean lies early in it, see perfanalysis.grafana.influxql).
CPU_SECONDS = RATE_WINDOW_SECONDS + 2 * RATE_STEP_SECONDS
LOOKBACK_SECONDS = 300  # memory and filesystems: the newest sample within 5 minutes
PUSH_HISTORY_SECONDS = 86400  # how long a silent host is still watched (see _push_stalled)

UID_PREFIX = "pa-"  # every rule sync writes; it removes those of its own it no longer wants
# The uids of the rules before they followed thresholds.yaml (one warning-only rule each):
# provisioning deletes them (deleteRules) and sync removes them from the tenants' orgs.
RETIRED_UIDS = ("pa-cpu-busy", "pa-memory-used", "pa-filesystem-used", "pa-push-silent")


def default_thresholds() -> Path:
    """provisioning/thresholds.yaml in the checkout, the file `perfanalysis alerting generate`
    reads by default."""
    return ROOT / THRESHOLDS_FILE


@dataclass(frozen=True)
class Query:
    ref_id: str
    text: str
    seconds: int  # relative time range: from now - seconds to now


@dataclass(frozen=True)
class Rule:
    uid: str
    title: str
    key: str  # the rule's key in thresholds.yaml
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

    @property
    def alert(self) -> str:
        """The Prometheus rule this one mirrors (HostCpuBusy...): the ``alert`` label."""
        return CATALOGUE[self.key].alert


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


def _since(seconds: int, query: str) -> str:
    """``query`` reading from ``seconds`` before InfluxDB's now(), the clock its intervals are
    aligned to, whatever Grafana's clock says (its range, ``$timeFilter``, is a minute longer)."""
    return query.replace("$timeFilter", f"$timeFilter AND time >= now() - {seconds}s")


CPU_BUSY = _since(
    CPU_SECONDS,
    iq.alerting(definitions.cpu_busy(), interval=f"{RATE_STEP_SECONDS}s"),
)


def _newest(measurement: str, *conditions: str, by: tuple[str, ...] = ("host",)) -> str:
    """The newest sample per series of ``by`` within the rule's range (LOOKBACK_SECONDS)."""
    return iq.alerting(iq.latest(measurement, *conditions, by=by))


def _filesystem(measurement: str) -> str:
    """The Prometheus filesystem rules' types; only read-write ones alert (readonly == 0, below)."""
    return _newest(measurement, definitions.FILESYSTEMS, by=("host", "mountpoint"))


def _influx_duration(seconds: float) -> str:
    """An InfluxQL duration literal (whole numbers only): ``300s``, or ``90500ms``."""
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def _spoken(seconds: float) -> str:
    for size, unit in ((3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


def _pushes(seconds: float) -> str:
    """Samples per host in windows of ``seconds`` ending at the evaluation (so the newest one is
    never a partial window) over the last day: fill(0) writes 0 for a host that has samples in the
    day but none in the window, also when no host pushes. ``time < now()`` keeps a Grafana clock
    ahead of InfluxDB's from adding an empty window after now."""
    return (
        'SELECT count("value") FROM "node_time_seconds" WHERE $timeFilter AND time < now() '
        f'GROUP BY time({_influx_duration(seconds)}, now()), "host" fill(0)'
    )


def _tune(key: str) -> str:
    return f"if this is expected, tune {key} in {THRESHOLDS_FILE}."


def _title(name: str, level: Level) -> str:
    return f"{name} ({level.severity})"


def _uid(key: str, severity: str) -> str:
    return f"{UID_PREFIX}{UID_STEMS[key]}-{severity}"


def _cpu(level: Level) -> Rule:
    key = "cpu_busy_percent"
    return Rule(
        _uid(key, level.severity), _title("CPU busy", level), key,
        (Query("A", CPU_BUSY, CPU_SECONDS + RATE_STEP_SECONDS),),
        (_reduce("B", "A", "mean"), _above("C", "B", _number(level))),
        level.for_text, level.severity,
        "CPU {{ humanize $values.B.Value }}% busy on {{ $labels.host }}",
        f"CPU on {{{{ $labels.host }}}} has been more than {level.limit}% busy for {level.for_text} "
        "(CPU time neither idle nor iowait, as the Prometheus rule HostCpuBusy counts it: a CPU "
        "waiting for a disk is idle), over 5 minutes that end a minute and a half before each "
        "evaluation (InfluxDB's minute means). Find what uses it (top, pidstat 5) and check recent "
        "deploys and load tests; add capacity if the load is real; " + _tune(key),
        "CPU time by mode",
    )  # fmt: skip


def _memory(level: Level) -> Rule:
    key = "memory_used_percent"
    return Rule(
        _uid(key, level.severity), _title("Memory used", level), key,
        (Query("A", _newest("node_memory_MemAvailable_bytes"), LOOKBACK_SECONDS),
         Query("B", _newest("node_memory_MemTotal_bytes"), LOOKBACK_SECONDS)),
        (_reduce("C", "A"), _reduce("D", "B"), _math("E", "100 - 100 * $C / $D"),
         _above("F", "E", _number(level))),
        level.for_text, level.severity,
        "Memory {{ humanize $values.E.Value }}% used on {{ $labels.host }}",
        f"Memory on {{{{ $labels.host }}}} has been more than {level.limit}% used (MemAvailable) "
        f"for {level.for_text}, as the Prometheus rule HostMemoryUsed counts it. The OOM killer "
        "comes next: find the largest processes (ps aux --sort=-rss), look for leaks or a grown "
        "cache of a service; " + _tune(key),
        "Memory and swap used",
    )  # fmt: skip


def _filesystem_used(level: Level) -> Rule:
    key = "filesystem_used_percent"
    return Rule(
        _uid(key, level.severity), _title("Filesystem used", level), key,
        (Query("A", _filesystem("node_filesystem_avail_bytes"), LOOKBACK_SECONDS),
         Query("B", _filesystem("node_filesystem_size_bytes"), LOOKBACK_SECONDS),
         Query("C", _filesystem("node_filesystem_readonly"), LOOKBACK_SECONDS)),
        (_reduce("D", "A"), _reduce("E", "B"), _reduce("F", "C"),
         _math("G", "(100 - 100 * $D / $E) * ($F == 0)"), _above("H", "G", _number(level))),
        level.for_text, level.severity,
        "{{ $labels.mountpoint }} on {{ $labels.host }} is {{ humanize $values.G.Value }}% full",
        f"A read-write filesystem has been more than {level.limit}% full for {level.for_text}. As "
        "in the Prometheus rule HostFilesystemAlmostFull, read-only filesystems and pseudo and "
        "in-memory types are left out. Find what grew (du -xh --max-depth=2), rotate or delete "
        "logs and old artefacts, or grow the volume; " + _tune(key),
        "Filesystem fill",
    )  # fmt: skip


def _push_stalled(level: Level) -> Rule:
    key = "push_stalled_seconds"
    seconds = _number(level)
    spoken = _spoken(seconds)
    return Rule(
        _uid(key, level.severity), _title("Collector stopped pushing", level), key,
        (Query("A", _pushes(seconds), PUSH_HISTORY_SECONDS),),
        (_reduce("B", "A"), _below("C", "B", 1)),
        level.for_text, level.severity,
        f"{{{{ $labels.host }}}} has pushed no sample for {spoken}",
        f"No sample of the host (node_time_seconds) is timestamped in the last {spoken}: its "
        "collector stopped, the host is down or unreachable, or ingest or InfluxDB refuses its "
        "pushes; when every host stops at once, each one fires. Timestamps are the host's clock, "
        "and after an outage the rule fires until the exporter's spool has sent the points of the "
        "last minutes (the Prometheus rule ExporterPushStalled, on the same threshold, counts "
        "from the last acknowledged push instead). A host is watched for a day after its last "
        "sample, then drops out of the query and its alert resolves; if no host of the tenant "
        "pushed in the last day, the rule has no data and fires once for the tenant; " + _tune(key),
        "CPU busy", no_data="Alerting",
    )  # fmt: skip


def _number(level: Level) -> float:
    assert level.threshold is not None, "a condition rule has no Grafana counterpart"
    return level.threshold


# thresholds.yaml's rules that Grafana evaluates on InfluxDB, with the stem of their uids
BUILDERS: dict[str, Callable[[Level], Rule]] = {
    "cpu_busy_percent": _cpu,
    "memory_used_percent": _memory,
    "filesystem_used_percent": _filesystem_used,
    "push_stalled_seconds": _push_stalled,
}
UID_STEMS = {
    "cpu_busy_percent": "cpu-busy",
    "memory_used_percent": "memory-used",
    "filesystem_used_percent": "filesystem-used",
    "push_stalled_seconds": "push-stalled",
}
# Every uid a rule of BUILDERS can have, and the retired ones: the rules sync manages.
OWNED_UIDS = frozenset(
    {_uid(key, severity) for key in BUILDERS for severity in SEVERITIES} | set(RETIRED_UIDS)
)


def settings_for(thresholds: Thresholds, tenant: str | None = None) -> Mapping[str, Setting]:
    """The settings a tenant's hosts are judged by: its own (the defaults merged with its
    overrides by the parser), or the defaults for a tenant thresholds.yaml does not list."""
    entry = thresholds.tenants.get(tenant) if tenant is not None else None
    return entry.settings if entry is not None else thresholds.defaults


def scope_name(thresholds: Thresholds, tenant: str | None = None) -> str:
    """Where in the thresholds file ``settings_for`` takes a tenant's settings from."""
    return (
        f"tenants.{tenant}" if tenant is not None and tenant in thresholds.tenants else "defaults"
    )


def rules(settings: Mapping[str, Setting]) -> tuple[Rule, ...]:
    """One rule per level (warning, critical) that each rule of BUILDERS has in ``settings``."""
    return tuple(
        build(level) for key, build in BUILDERS.items() for level in settings[key].levels()
    )


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
    labels = {"severity": rule.severity, "alert": rule.alert, **rule.labels}
    return {"uid": rule.uid, "title": rule.title, "condition": rule.condition,
            "data": _data(rule, datasource_uid), "noDataState": rule.no_data,
            "execErrState": "Error", "for": rule.duration,
            "labels": labels, "annotations": annotations, "isPaused": False}  # fmt: skip


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
