"""The Grafana alert rules and InfluxDB rate panels, run against real InfluxDB 1.6.7.

- "Collector stopped pushing" fires within minutes for each silent host, also when the tenant has
  one host or every host stops at once (it compared hosts with each other, and so never fired
  then); its warning and critical rules after push_stalled_seconds' thresholds.
- Every InfluxDB rate (dashboards and rules) reads a steady counter's true rate in every interval,
  the newest included: the newest interval used to be a partial one, where the rate between the
  means of two intervals is wrong (2 CPUs 10% busy read 32.5% on the "CPU busy" stat).
- The filesystem rule selects what the Prometheus rule selects: read-write filesystems, without
  the pseudo and in-memory types of perfanalysis.alerting.catalogue.FS_IGNORED.

The rules are evaluated as Grafana does: each query with its relative time range, then the
reduce, math and threshold expressions per label set (``evaluate``).
"""

from __future__ import annotations

import ast
import copy
import json
import math
import operator
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from perfanalysis.alerting.catalogue import FS_IGNORED
from perfanalysis.alerting.thresholds import load as load_thresholds
from perfanalysis.grafana import alerts, definitions, render
from perfanalysis.grafana import influxql as iq
from perfanalysis.grafana.lint import lint
from perfanalysis.grafana.macros import TimeRange, expand_influxql
from perfanalysis.grafana.queries import dashboard_variables, panel_queries
from perfanalysis.testing.servers import InfluxDB
from tests.integration.test_dashboards_values import panel_results

Labels = frozenset[tuple[str, str]]
STEP = 10  # seconds between samples: the exporter's default push interval
TAGS = "collector=c,tenant=t"  # what ingest adds to every point


def _rule(uid: str) -> alerts.Rule:
    """A rule of the committed thresholds.yaml's defaults, as provisioning/grafana has them."""
    defaults = load_thresholds(alerts.default_thresholds()).defaults
    return next(rule for rule in alerts.rules(defaults) if rule.uid == uid)


PUSH_LEVELS = ("pa-push-stalled-warning", "pa-push-stalled-critical")


def _silence_limit(uid: str) -> float:
    """The seconds without a sample after which the push rule ``uid`` fires (its window)."""
    defaults = load_thresholds(alerts.default_thresholds()).defaults["push_stalled_seconds"]
    return next(level.threshold for level in defaults.levels() if uid.endswith(level.severity))


def _line(measurement: str, tags: Mapping[str, str], value: float, at: float) -> str:
    keys = ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
    return f"{measurement},{keys},{TAGS} value={value!r} {round(at * 1e9)}"


# ---------------------------------------------------------------------------------------------
# Grafana's alert evaluation: queries, then reduce / math / threshold per label set


@dataclass
class Evaluation:
    no_data: bool
    values: dict[str, dict[Labels, float]]  # refId -> labels -> number (expressions)
    condition: dict[Labels, float]

    def firing(self) -> set[Labels]:
        return {labels for labels, value in self.condition.items() if value}

    def hosts(self, *keys: str) -> set[tuple[str, ...]]:
        keys = keys or ("host",)
        return {tuple(dict(labels)[k] for k in keys) for labels in self.firing()}


def _run(influxdb: InfluxDB, db: str, query: alerts.Query, now: float, interval: str) -> Any:
    end_ms = round(now * 1000)
    text = expand_influxql(
        query.text, TimeRange(end_ms - query.seconds * 1000, end_ms), max_data_points=43200,
        min_interval=interval,
    )  # fmt: skip
    assert not re.search(r"\$\w|\$\{", text), text
    result = influxdb.query(text, db=db, epoch="ms")["results"][0]
    return {
        frozenset(series.get("tags", {}).items()): [row[1] for row in series["values"]]
        for series in result.get("series", [])
    }


def _reduce(series: Mapping[Labels, list[float | None]], reducer: str) -> dict[Labels, float]:
    found = {}
    for labels, values in series.items():
        kept = [v for v in values if v is not None and not math.isnan(v)]  # mode dropNN
        found[labels] = (
            (kept[-1] if reducer == "last" else sum(kept) / len(kept)) if kept else math.nan
        )
    return found


_OPERATORS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Eq: lambda a, b: float(a == b), ast.NotEq: lambda a, b: float(a != b),
    ast.Gt: lambda a, b: float(a > b), ast.Lt: lambda a, b: float(a < b),
}  # fmt: skip


def _math(expression: str, numbers: Mapping[str, dict[Labels, float]]) -> dict[Labels, float]:
    """Grafana's math over numbers, joined by labels (equal, or one set within the other)."""
    tree = ast.parse(re.sub(r"\$(\w+)", r"\1", expression), mode="eval").body
    names = sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})
    joined: list[tuple[Labels, dict[str, float]]] = [(labels, {names[0]: value})
                                                     for labels, value in numbers[names[0]].items()]  # fmt: skip
    for name in names[1:]:
        joined = [(labels | other, {**row, name: value}) for labels, row in joined
                  for other, value in numbers[name].items() if labels <= other or other <= labels]  # fmt: skip

    def value(node: ast.expr, row: Mapping[str, float]) -> float:
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return row[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand, row)
        if isinstance(node, ast.BinOp):
            return _OPERATORS[type(node.op)](value(node.left, row), value(node.right, row))
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            return _OPERATORS[type(node.ops[0])](
                value(node.left, row), value(node.comparators[0], row)
            )
        raise ValueError(f"unsupported in {expression!r}: {ast.dump(node)}")

    return {labels: value(tree, row) for labels, row in joined}


def evaluate(
    rule: alerts.Rule, influxdb: InfluxDB, db: str, now: float | None = None, interval: str = "20s"
) -> Evaluation:
    now = time.time() if now is None else now
    series = {q.ref_id: _run(influxdb, db, q, now, interval) for q in rule.queries}
    if any(not found for found in series.values()):
        return Evaluation(True, {}, {})
    numbers: dict[str, dict[Labels, float]] = {}
    for model in rule.expressions:
        ref, source = model["refId"], model["expression"]
        if model["type"] == "reduce":
            numbers[ref] = _reduce(series[source], model["reducer"])
        elif model["type"] == "math":
            numbers[ref] = _math(source, numbers)
        else:
            (condition,) = model["conditions"]
            kind, (limit,) = condition["evaluator"]["type"], condition["evaluator"]["params"]
            compare = {"gt": operator.gt, "lt": operator.lt}[kind]
            numbers[ref] = {
                labels: float(compare(v, limit)) for labels, v in numbers[source].items()
            }
    return Evaluation(False, numbers, numbers[rule.condition])


# ---------------------------------------------------------------------------------------------
# F4: "Collector stopped pushing"


def _pushes(hosts: Mapping[str, float], now: float, since: float = 3 * 3600) -> str:
    """node_time_seconds of each host every STEP seconds from ``since`` ago until it fell silent
    (``hosts``: seconds of silence before ``now``; 0 = still pushing)."""
    lines = []
    for host, silent in hosts.items():
        at = now - since
        while at <= now - silent:
            lines.append(_line("node_time_seconds", {"host": host}, at, at))
            at += STEP
    return "\n".join(lines)


PUSH_SCENARIOS = {  # seconds each host has been silent (the defaults: 5 min warning, 30 critical)
    "one host, silent for 2 h": {"web1": 7200},
    "two hosts, one silent for 2 h": {"web1": 0, "web2": 7200},
    "every host silent for 2 h (ingest outage)": {"web1": 7200, "web2": 7200},
    "silent for 11 min, 4 min, pushing": {"web1": 660, "web2": 240, "web3": 0},
    "every host silent for 20 min": {"web1": 1200, "web2": 1200, "web3": 1200},
}


@pytest.mark.integration
@pytest.mark.parametrize("uid", PUSH_LEVELS)
@pytest.mark.parametrize("scenario", PUSH_SCENARIOS)
def test_push_silent_fires_for_each_silent_host(
    shared_influxdb: InfluxDB, scenario: str, uid: str
) -> None:
    hosts = PUSH_SCENARIOS[scenario]
    silent = {host for host, seconds in hosts.items() if seconds > _silence_limit(uid)}
    db = shared_influxdb.unique_database("push")
    shared_influxdb.write(db, _pushes(hosts, time.time() - 0.5))
    result = evaluate(_rule(uid), shared_influxdb, db)
    assert not result.no_data
    assert {h for (h,) in result.hosts()} == silent
    assert set(result.condition) == {frozenset({("host", h)}) for h in hosts}  # one instance each


@pytest.mark.integration
def test_push_silent_fires_without_data_when_nobody_pushed_for_a_day(
    shared_influxdb: InfluxDB,
) -> None:
    db = shared_influxdb.unique_database("push")
    shared_influxdb.write(db, _pushes({"web1": 25 * 3600}, time.time(), since=26 * 3600))
    for uid in PUSH_LEVELS:
        rule = _rule(uid)
        assert evaluate(rule, shared_influxdb, db).no_data
        assert rule.no_data == "Alerting"


@pytest.mark.integration
def test_push_silent_ignores_a_grafana_clock_ahead_of_influxdb(shared_influxdb: InfluxDB) -> None:
    """The range ends after InfluxDB's now(): no empty window after now may count as silence."""
    db = shared_influxdb.unique_database("push")
    shared_influxdb.write(db, _pushes({"web1": 0}, time.time() - 0.5))
    for uid in PUSH_LEVELS:
        result = evaluate(_rule(uid), shared_influxdb, db, now=time.time() + 90)
        assert result.firing() == set()


def test_push_silent_annotation_says_what_the_rule_does() -> None:
    for uid in PUSH_LEVELS:
        rule = _rule(uid)
        assert "newest" not in rule.description
        assert "fires as well" not in rule.description
        assert "every host stops at once" in rule.description
        assert "no data" in rule.description


# ---------------------------------------------------------------------------------------------
# F5: rates over complete intervals only

RATE = 0.9  # per second, of every counter below (idle CPU: 2 CPUs 10% busy)
BUSY = 100 - 100 * RATE


def _steady_counters(measurements: Iterable[str], start: float, end: float, phase: float) -> str:
    """Counters rising RATE per second (gauges: node_filesystem_avail_bytes falling as fast),
    sampled every STEP seconds at ``phase`` into each step, with the labels the panels filter on."""
    lines = []
    for measurement in sorted(measurements):
        if measurement.startswith("node_cpu"):
            series = [
                {"host": "web1", "cpu": str(c), "mode": m} for c in (0, 1) for m in ("idle", "user")
            ]
        elif measurement.startswith("node_disk"):
            series = [{"host": "web1", "device": "sda"}]
        elif measurement.startswith("node_network"):
            series = [{"host": "web1", "device": "eth0"}]
        elif measurement.startswith("node_filesystem"):
            series = [{"host": "web1", "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}]
        else:
            series = [{"host": "web1"}]
        sign = -1 if measurement == "node_filesystem_avail_bytes" else 1
        at = math.floor(start / STEP) * STEP + phase
        while at <= end:
            for tags in series:
                lines.append(_line(measurement, tags, 1e9 + sign * RATE * at, at))
            at += STEP
    return "\n".join(lines)


def _steady_cpu(start: float, end: float, phase: float) -> str:
    """2 CPUs RATE idle and 1 - RATE user, sampled every STEP seconds at ``phase`` into each."""
    lines = []
    at = math.floor(start / STEP) * STEP + phase
    while at <= end:
        for cpu in ("0", "1"):
            for mode, rate in (("idle", RATE), ("user", 1 - RATE)):
                tags = {"host": "web1", "cpu": cpu, "mode": mode}
                lines.append(_line("node_cpu_seconds_total", tags, 1e9 + rate * at, at))
        at += STEP
    return "\n".join(lines)


def _true_value(query: str) -> float:
    """What the outer SELECT makes of the steady rates: every aggregate of rates is RATE (the
    falling gauge's -RATE); the CPU seconds summed per host are RATE times the series summed
    (2 CPUs, idle and user)."""
    sums = {
        definitions.cpu_seconds(definitions.IDLE_TIME): 2 * RATE,
        definitions.cpu_seconds(): 4 * RATE,
    }
    if query in sums:
        return sums[query]
    rate = -RATE if '"node_filesystem_avail_bytes"' in query else RATE
    select = query[len("SELECT ") : query.index(" FROM ")]
    select = re.sub(r' AS "\w+"', "", select)
    select = re.sub(r'(mean|sum|max)\("\w+"\)', repr(rate), select)
    return float(eval(select, {"__builtins__": {}}))  # noqa: S307 -- arithmetic on literals only


def _rate_queries() -> list[tuple[str, str]]:
    found = []
    for name in ("host-influxdb.json", "fleet.json"):
        dashboard = json.loads((render.default_dir() / name).read_text())
        for query in panel_queries(dashboard):
            if query.language == "influxql" and "derivative(" in query.text:
                found.append((name, f"{query.panel_title} {query.ref_id}"))
    return found


def _dashboard_query(name: str, label: str) -> tuple[str, Any]:
    dashboard = json.loads((render.default_dir() / name).read_text())
    query = next(q for q in panel_queries(dashboard) if f"{q.panel_title} {q.ref_id}" == label)
    chosen = {"host": ["web1"], "device": ["sda"], "interface": ["eth0"]}
    present = {v["name"] for v in dashboard["templating"]["list"]}
    return query.text, dashboard_variables(
        dashboard, {k: v for k, v in chosen.items() if k in present}
    )


# The newest sample ``to`` minus this many seconds before the range's end (``to``): pushes arrive
# every STEP seconds, so a dashboard refreshed at any moment sees 0 to STEP seconds since the last.
SINCE_LAST = (0.0, 0.5, 5.0, 9.5)
END = 1_700_000_000 // 20 * 20  # a 20 s boundary: the newest sample alone in its epoch interval


@pytest.fixture(scope="module")
def steady(shared_influxdb: InfluxDB) -> dict[tuple[float, float], str]:
    """A database per (sample phase, seconds since the last sample) with two hours of steady
    counters for every measurement a rate query reads."""
    measurements = set()
    for name, label in _rate_queries():
        text, _ = _dashboard_query(name, label)
        measurements |= set(re.findall(r'FROM "(\w+)"', text))
    databases = {}
    for phase in (0.0, 3.0):
        db = shared_influxdb.unique_database("steady")
        shared_influxdb.write(db, _steady_counters(measurements, END - 7200, END + phase, phase))
        for since in SINCE_LAST:
            databases[(phase, since)] = db
    return databases


@pytest.mark.integration
def test_cpu_busy_stat_reads_a_steady_10_percent_as_10(shared_influxdb: InfluxDB) -> None:
    """partial_bucket.py of the audit: 2 CPUs exactly 10% busy, the last push alone in its
    interval, the dashboard 5 s after it. The stat (lastNotNull) showed 32.5%. The stat divides
    two hidden targets (Grafana's math, as test_dashboards_values evaluates it)."""
    dashboard = json.loads((render.default_dir() / "host-influxdb.json").read_text())
    stat = next(p for p in dashboard["panels"] if p["title"] == "CPU busy")
    assert stat["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]
    [drawn] = [t["refId"] for t in stat["targets"] if not t.get("hide")]
    variables = dashboard_variables(dashboard, {"host": ["web1"]})
    for phase in (0.0, 3.0):
        db = shared_influxdb.unique_database("busy")
        shared_influxdb.write(db, _steady_cpu(END - 7200, END + phase, phase))
        for since in SINCE_LAST:
            end_ms = round((END + phase + since) * 1000)

            def run(query: str, end_ms: int = end_ms, db: str = db) -> Any:
                text = expand_influxql(query, TimeRange(end_ms - 3_600_000, end_ms), variables,
                                       min_interval="20s")  # fmt: skip
                return shared_influxdb.query(text, db=db, epoch="ms")

            [series] = panel_results(stat, run)[drawn]
            values = [v for _, v in series.points if v is not None]
            assert values[-1] == pytest.approx(BUSY, abs=1e-6), (phase, since, values[-3:])


@pytest.mark.integration
@pytest.mark.parametrize(("name", "label"), _rate_queries(), ids=lambda v: str(v))
def test_every_influxdb_rate_is_right_up_to_its_newest_interval(
    shared_influxdb: InfluxDB, steady: dict[tuple[float, float], str], name: str, label: str
) -> None:
    text, variables = _dashboard_query(name, label)
    expected = _true_value(text)
    for (phase, since), db in steady.items():
        end_ms = round((END + phase + since) * 1000)
        # one hour is 180 intervals of 20 s: the oldest interval is complete as well
        expanded = expand_influxql(text, TimeRange(end_ms - 3_600_000, end_ms), variables,
                                   min_interval="20s")  # fmt: skip
        answer = shared_influxdb.query(expanded, db=db)["results"][0]
        values = [value for series in answer["series"] for row in series["values"]
                  for value in row[1:] if value is not None]  # fmt: skip
        assert values, expanded
        assert values == pytest.approx([expected] * len(values), rel=1e-9), (phase, since, expanded)


def _write_at_now(
    influxdb: InfluxDB, db: str, lines: Callable[[float], list[str]], minutes: int
) -> None:
    now = time.time() - 0.5
    at = now - minutes * 60
    points = []
    while at <= now:
        points += lines(at)
        at += STEP
    influxdb.write(db, "\n".join(points))


@pytest.mark.integration
@pytest.mark.parametrize("interval", ["20s", "1m"])
def test_cpu_rule_reads_the_true_busy_share(shared_influxdb: InfluxDB, interval: str) -> None:
    db = shared_influxdb.unique_database("cpu")
    busy = {"calm": 10.0, "hot": 95.0}
    _write_at_now(shared_influxdb, db, lambda at: [
        _line("node_cpu_seconds_total", {"host": host, "cpu": str(c), "mode": "idle"}, (1 - share / 100) * at, at)
        for host, share in busy.items() for c in (0, 1)], minutes=30)  # fmt: skip
    result = evaluate(_rule("pa-cpu-busy-warning"), shared_influxdb, db, interval=interval)
    means = {dict(labels)["host"]: value for labels, value in result.values["B"].items()}
    assert means == pytest.approx(busy, abs=1e-6)
    assert result.hosts() == {("hot",)}


def test_rate_queries_end_at_a_complete_interval() -> None:
    """The rules fix their interval (a minute) rather than leave $__interval to Grafana."""
    step = f"{alerts.RATE_STEP_SECONDS}s"
    for rule in alerts.rules(load_thresholds(alerts.default_thresholds()).defaults):
        for query in rule.queries:
            assert "${" not in query.text, "Grafana expands ${__to} in dashboards only"
            if "derivative(" in query.text:
                assert "$__interval" not in query.text
                assert f"time < now() - {step}" in query.text
                assert query.text.count(f"GROUP BY time({step}, now())") == query.text.count(
                    "GROUP BY time("
                )
    assert _rate_queries()  # the dashboards' are linted, and run on InfluxDB above


def test_lint_catches_a_rate_over_a_partial_interval() -> None:
    dashboard = json.loads((render.default_dir() / "host-influxdb.json").read_text())
    assert lint(dashboard) == []
    broken = copy.deepcopy(dashboard)
    target = next(p for p in broken["panels"] if p["title"] == "Network traffic")["targets"][0]
    target["query"] = (target["query"].replace(f" AND {iq.COMPLETE}", "")
                       .replace(iq.BUCKETS, "time($__interval)"))  # fmt: skip
    assert any("complete interval" in problem for problem in lint(broken))


# ---------------------------------------------------------------------------------------------
# F8: the filesystem rule selects what the Prometheus rule selects

FSTYPES = [*FS_IGNORED.split("|"), "ext4", "xfs", "btrfs", "nfs4", "fuse.sshfs", "vfat", "zfs"]


def test_filesystem_rule_leaves_out_the_prometheus_rules_types() -> None:
    """The same list (imported, not copied), read the same way: PromQL anchors its regexes."""
    assert definitions.FS_IGNORED is FS_IGNORED
    match = re.search(
        r'"fstype" !~ /(.*)/ AND', _rule("pa-filesystem-used-warning").queries[0].text
    )
    assert match
    influx = re.compile(match.group(1))
    for fstype in FSTYPES:
        assert bool(influx.search(fstype)) == bool(re.fullmatch(FS_IGNORED, fstype)), fstype
    for query in _rule("pa-filesystem-used-warning").queries:
        assert match.group(0) in query.text


def test_influx_regex_undoes_promql_string_escapes() -> None:
    assert definitions.influx_regex("fuse\\\\..*|a/b") == "fuse\\..*|a\\/b"


MOUNTS = [  # mountpoint, fstype, read-only, percent used
    ("/", "ext4", 0, 95.0),
    ("/data", "xfs", 0, 50.0),
    ("/mnt/ro", "ext4", 1, 95.0),  # remounted read-only: the Prometheus rule ignores it
    ("/media/cdrom", "iso9660", 0, 100.0),
    ("/run", "tmpfs", 0, 95.0),
    ("/var/lib/lxcfs", "fuse.lxcfs", 0, 95.0),
    ("/sysroot", "rootfs", 0, 95.0),
]


@pytest.mark.integration
def test_filesystem_rule_fires_for_full_read_write_filesystems_only(
    shared_influxdb: InfluxDB,
) -> None:
    db = shared_influxdb.unique_database("fs")
    size = 100e9

    def lines(at: float) -> list[str]:
        found = []
        for mountpoint, fstype, readonly, used in MOUNTS:
            tags = {
                "host": "web1",
                "device": f"dev-{fstype}",
                "fstype": fstype,
                "mountpoint": mountpoint,
            }
            found += [_line("node_filesystem_size_bytes", tags, size, at),
                      _line("node_filesystem_avail_bytes", tags, size * (1 - used / 100), at),
                      _line("node_filesystem_readonly", tags, float(readonly), at)]  # fmt: skip
        return found

    _write_at_now(shared_influxdb, db, lines, minutes=15)
    result = evaluate(_rule("pa-filesystem-used-warning"), shared_influxdb, db)
    assert result.hosts("host", "mountpoint") == {("web1", "/")}
    used = {dict(labels)["mountpoint"]: v for labels, v in result.values["G"].items()}
    assert used["/"] == pytest.approx(95.0)
