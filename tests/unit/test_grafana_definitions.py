"""Every dashboard and Grafana rule means by "CPU busy" and by "the filesystems" what the
Prometheus rules mean (perfanalysis.alerting.catalogue): CPU time neither idle nor iowait, and every
filesystem type but FS_IGNORED.

- A host 87.5% in iowait and 6.25% in user time is 6.25% busy on every CPU busy panel, column and
  rule: the InfluxQL ones on real InfluxDB 1.6.7, the Prometheus dashboard's with promtool, beside
  HostCpuBusy's own expression on the same series. It read 93.75%, above the 90% of the CPU
  rules, so Grafana's rule fired where Prometheus' did not.
- The filesystem panels show the types the alert rules count, read-only filesystems included
  (the fill alerts skip those; HostFilesystemTurnedReadOnly covers them). They kept a list of
  their own that hid every FUSE filesystem (sshfs included) and showed iso9660 and rootfs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfanalysis.alerting import catalogue
from perfanalysis.alerting.thresholds import load as load_thresholds
from perfanalysis.grafana import alerts, definitions, render
from perfanalysis.grafana import influxql as iq
from perfanalysis.grafana.macros import ALL, TimeRange, expand_influxql, expand_promql
from perfanalysis.grafana.queries import PanelQuery, dashboard_variables, panel_queries
from perfanalysis.testing.servers import InfluxDB, ServerUnavailable, promtool
from tests.integration.test_dashboards_values import panel_results
from tests.unit.test_grafana_audit_fixes import STEP, evaluate

CPU = "node_cpu_seconds_total"
DASHBOARDS = ("host-influxdb.json", "host-prometheus.json", "fleet.json")
BUSY_FIGURES = {("host-influxdb.json", "CPU busy", "C"), ("host-prometheus.json", "CPU busy", "A"),
                ("fleet.json", "Hosts", "A"), ("fleet.json", "Top 10 by CPU busy", "A"),
                ("fleet.json", "CPU busy per host", "A")}  # fmt: skip
INFLUXQL_BUSY = (definitions.cpu_seconds(definitions.IDLE_TIME), definitions.cpu_seconds(),
                 definitions.cpu_busy(),
                 definitions.cpu_busy("cpu_busy", over_time=False))  # fmt: skip
# Seconds per second of each CPU in each mode, and the busy percent every figure must read
# (all exact in binary, as promtool compares exactly)
CPU_MODES = {
    "db-01": {"user": 0.0625, "iowait": 0.875, "idle": 0.0625},  # waits for its disk
    "web-01": {"user": 0.9375, "iowait": 0.0, "idle": 0.0625},  # computes
}
BUSY = {"db-01": 6.25, "web-01": 93.75}  # with iowait counted as busy, db-01 read 93.75
CPUS = ("0", "1")
MOUNTS = [  # mountpoint, fstype, read-only, percent used (exact in binary)
    ("/", "ext4", 0, 75.0),
    ("/data", "xfs", 0, 50.0),
    ("/mnt/ro", "ext4", 1, 87.5),  # shown: only the fill alerts skip read-only filesystems
    ("/mnt/backup", "fuse.sshfs", 0, 50.0),  # hidden by the dashboards' own list before
    ("/media/cdrom", "iso9660", 0, 100.0),  # shown by the dashboards' own list before
    ("/sysroot", "rootfs", 0, 50.0),  # likewise
    ("/run", "tmpfs", 0, 12.5),
    ("/var/lib/lxcfs", "fuse.lxcfs", 0, 0.0),
]
SHOWN = {"/", "/data", "/mnt/ro", "/mnt/backup"}


def _dashboard(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((render.default_dir() / name).read_text())
    return data


def _queries(name: str) -> Iterator[PanelQuery]:
    return (q for q in panel_queries(_dashboard(name)) if q.language != "expression")


def _query(name: str, title: str, ref: str = "A") -> PanelQuery:
    return next(q for q in _queries(name) if (q.panel_title, q.ref_id) == (title, ref))


def _rule(uid: str) -> alerts.Rule:
    defaults = load_thresholds(alerts.default_thresholds()).defaults
    return next(rule for rule in alerts.rules(defaults) if rule.uid == uid)


# ---------------------------------------------------------------------------------------------
# the queries as written


def test_every_cpu_busy_figure_counts_iowait_as_idle_time() -> None:
    """Every query of the CPU counters is a CPU count, the mode breakdown, or CPU busy written
    from the shared definition: no panel can bring its own."""
    busy = set()
    for name in DASHBOARDS:
        for query in _queries(name):
            if f'"{CPU}"' not in query.text and f"{CPU}{{" not in query.text:
                continue
            if "count" in query.text or query.panel_title == "CPU time by mode":
                continue
            if query.language == "influxql":
                assert query.text in INFLUXQL_BUSY, query
            else:
                assert definitions.PROM_IDLE_TIME in query.text, query
            if not query.hidden:
                busy.add((name, query.panel_title, query.ref_id))
                continue
            # the idle and all CPU seconds of the panel's math: CPU busy is what it draws
            [figure] = [q for q in panel_queries(_dashboard(name))
                        if q.panel_id == query.panel_id and q.language == "expression"]  # fmt: skip
            assert figure.text == definitions.CPU_BUSY
            busy.add((name, query.panel_title, figure.ref_id))
    assert busy == BUSY_FIGURES
    [rule_query] = _rule("pa-cpu-busy-warning").queries
    bound = f" AND time >= now() - {alerts.CPU_SECONDS}s"  # on InfluxDB's clock (alerts._since)
    assert rule_query.text.replace(bound, "") == iq.alerting(
        definitions.cpu_busy(), interval=f"{alerts.RATE_STEP_SECONDS}s"
    )
    assert definitions.IDLE_TIME == '"mode" =~ /^(idle|iowait)$/'
    assert catalogue.BUSY == 'mode!~"idle|iowait"'  # the Prometheus rule's matcher, unchanged


def test_cpu_busy_panels_and_the_rule_say_iowait_is_not_busy() -> None:
    for name, title, _ in BUSY_FIGURES:
        [panel] = [
            p for p in _dashboard(name)["panels"] if p["title"] == title and p["type"] != "row"
        ]
        assert "neither idle nor iowait" in panel["description"], (name, title)
    [by_mode] = [p for p in _dashboard("host-influxdb.json")["panels"]
                 if p.get("title") == "CPU time by mode"]  # fmt: skip
    assert "iowait is drawn but is not busy time" in by_mode["description"]
    assert "neither idle nor iowait" in _rule("pa-cpu-busy-warning").description


def test_no_dashboard_keeps_a_filesystem_list_of_its_own() -> None:
    """Every query that selects by fstype does so with the alert rules' FS_IGNORED (imported)."""
    assert definitions.FS_IGNORED is catalogue.FS_IGNORED
    selecting = []
    for name in DASHBOARDS:
        for query in _queries(name):
            if "fstype" not in query.text:
                continue
            shared = (definitions.FILESYSTEMS if query.language == "influxql"
                      else definitions.PROM_FILESYSTEMS)  # fmt: skip
            assert "fstype" not in query.text.replace(shared, ""), (name, query)
            selecting.append((name, query.panel_title, query.ref_id))
    rule = [q.text for q in _rule("pa-filesystem-used-warning").queries]
    assert all(definitions.FILESYSTEMS in text for text in rule)
    assert sorted(selecting) == [
        ("host-influxdb.json", "Filesystem fill", "A"),
        ("host-influxdb.json", "Filesystem fill", "B"),
        ("host-influxdb.json", "Filesystem fill trend", "A"),
        ("host-prometheus.json", "Filesystem fill", "C"),
        ("host-prometheus.json", "Filesystem fill trend", "A"),
    ]


def test_the_influxql_selection_reads_fs_ignored_as_promql_does() -> None:
    """PromQL anchors a regex, InfluxQL does not: /^(...)$/ must leave out exactly the same."""
    match = re.fullmatch(r'"fstype" !~ /(.*)/', definitions.FILESYSTEMS)
    assert match
    influx = re.compile(match.group(1))
    for _, fstype, _, _ in MOUNTS:
        hidden = bool(re.fullmatch(catalogue.FS_IGNORED, fstype))
        assert bool(influx.search(fstype)) == hidden, fstype
        assert hidden == (fstype not in {"ext4", "xfs", "fuse.sshfs"}), fstype


def test_fill_panels_keep_read_only_filesystems() -> None:
    for name in ("host-influxdb.json", "host-prometheus.json"):
        for query in _queries(name):
            if query.panel_title.startswith("Filesystem fill"):
                assert "readonly" not in query.text, query
    [panel] = [p for p in _dashboard("host-influxdb.json")["panels"]
               if p.get("title") == "Filesystem fill"]  # fmt: skip
    assert "read-only filesystems are shown" in panel["description"]


# ---------------------------------------------------------------------------------------------
# the Prometheus dashboard, with promtool


def _promql(title: str, ref: str) -> str:
    dashboard = _dashboard("host-prometheus.json")
    chosen = dashboard_variables(dashboard, {"job": ALL, "instance": ALL})
    time_range = TimeRange.last("1h", 1_700_000_000_000)
    query = _query("host-prometheus.json", title, ref)
    # scrapes every minute: $__rate_interval is 4m, every window holds whole minutes
    return expand_promql(query.text, time_range, chosen, scrape_interval="1m").expr


def _series(host: str, metric: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    tags = ", ".join(f'{k}="{v}"' for k, v in {"job": "node", "instance": f"{host}:9100",
                                                 **labels}.items())  # fmt: skip
    return {"series": f"{metric}{{{tags}}}", "values": values}


def _promtool_test(tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    series = [_series(host, CPU, {"cpu": cpu, "mode": mode}, f"0+{rate * 60:g}x20")
              for host, modes in CPU_MODES.items() for cpu in CPUS for mode, rate in modes.items()]  # fmt: skip
    size = 1024.0
    for mountpoint, fstype, readonly, used in MOUNTS:
        labels = {"device": f"dev-{fstype}", "fstype": fstype, "mountpoint": mountpoint}
        series += [_series("db", "node_filesystem_size_bytes", labels, f"{size:g}x20"),
                   _series("db", "node_filesystem_avail_bytes", labels, f"{size * (1 - used / 100):g}x20"),
                   _series("db", "node_filesystem_readonly", labels, f"{readonly}x20")]  # fmt: skip
    (tmp_path / "none.rules.yml").write_text("groups: []\n")
    spec = {"rule_files": ["none.rules.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}]}  # fmt: skip
    path = tmp_path / "panels.test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    try:
        result = promtool("test", "rules", path)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_cpu_busy_counts_iowait_as_idle_as_host_cpu_busy_does(tmp_path: Path) -> None:
    # "> 0": every value; rounded to a quarter, as rate()'s extrapolation leaves 1e-14 over 5m
    rule = f"round({catalogue.CPU.expr('', catalogue.Level('warning', 0, 0))}, 0.25)"
    _promtool_test(tmp_path, [
        {"expr": _promql("CPU busy", "A"), "eval_time": "10m",
         "exp_samples": [{"labels": f'{{instance="{h}:9100"}}', "value": BUSY[h]} for h in BUSY]},
        {"expr": rule, "eval_time": "10m",
         "exp_samples": [{"labels": f'{{instance="{h}:9100", job="node"}}', "value": BUSY[h]}
                         for h in BUSY]},
    ])  # fmt: skip


def test_prometheus_filesystem_fill_shows_the_alert_rules_filesystems(tmp_path: Path) -> None:
    def labels(mountpoint: str, fstype: str) -> str:
        return (f'{{device="dev-{fstype}", fstype="{fstype}", instance="db:9100", job="node", '
                f'mountpoint="{mountpoint}"}}')  # fmt: skip

    shown = [m for m in MOUNTS if m[0] in SHOWN]
    _promtool_test(tmp_path, [
        {"expr": _promql("Filesystem fill", "C"), "eval_time": "10m",
         "exp_samples": [{"labels": labels(mount, fstype), "value": used}
                         for mount, fstype, _, used in shown]},
        {"expr": _promql("Filesystem fill trend", "A"), "eval_time": "10m",
         "exp_samples": [{"labels": labels(mount, fstype), "value": 0} for mount, fstype, _, _ in shown]},
    ])  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the InfluxDB dashboards and the Grafana rules, on real InfluxDB


def _line(measurement: str, tags: Mapping[str, str], value: float, at: float) -> str:
    keys = ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
    return f"{measurement},{keys},collector=c,tenant=t value={value!r} {round(at * 1e9)}"


def _write_until_now(influxdb: InfluxDB, db: str, minutes: int, lines: Any) -> float:
    """Samples every STEP seconds for ``minutes`` up to now; returns now."""
    now = time.time() - 0.5
    at, points = now - minutes * 60, []
    while at <= now:
        points += lines(at)
        at += STEP
    influxdb.write(db, "\n".join(points))
    return now


def _cpu_lines(at: float) -> list[str]:
    return [_line(CPU, {"host": host, "cpu": cpu, "mode": mode}, rate * at, at)
            for host, modes in CPU_MODES.items() for cpu in CPUS for mode, rate in modes.items()]  # fmt: skip


def _fs_lines(at: float) -> list[str]:
    size, found = 1024.0, []
    for mountpoint, fstype, readonly, used in MOUNTS:
        tags = {"host": "db-01", "device": f"dev-{fstype}", "fstype": fstype,
                "mountpoint": mountpoint}  # fmt: skip
        found += [_line("node_filesystem_size_bytes", tags, size, at),
                  _line("node_filesystem_avail_bytes", tags, size * (1 - used / 100), at),
                  _line("node_filesystem_readonly", tags, float(readonly), at)]  # fmt: skip
    return found


def _by_host(
    influxdb: InfluxDB, db: str, name: str, query: PanelQuery, now: float, tag: str = "host"
) -> dict[str, list[float]]:
    dashboard = _dashboard(name)
    end_ms = round(now * 1000)
    chosen = dashboard_variables(dashboard, {"host": sorted(CPU_MODES)})
    text = expand_influxql(query.text, TimeRange(end_ms - 900_000, end_ms), chosen,
                           min_interval="20s")  # fmt: skip
    found: dict[str, list[float]] = {}
    for series in influxdb.query(text, db=db)["results"][0].get("series", []):
        values = [v for row in series["values"] for v in row[1:] if v is not None]
        found.setdefault(series["tags"][tag], []).extend(values)
    return found


def _figure_by_host(
    influxdb: InfluxDB, db: str, name: str, title: str, ref: str, now: float
) -> dict[str, list[float]]:
    """What target ``ref`` of a panel draws per host, its math evaluated as Grafana does."""
    dashboard = _dashboard(name)
    [panel] = [p for p in dashboard["panels"] if p["title"] == title and p["type"] != "row"]
    end_ms = round(now * 1000)
    chosen = dashboard_variables(dashboard, {"host": sorted(CPU_MODES)})

    def run(query: str) -> Any:
        text = expand_influxql(query, TimeRange(end_ms - 900_000, end_ms), chosen,
                               min_interval="20s")  # fmt: skip
        return influxdb.query(text, db=db, epoch="ms")

    found: dict[str, list[float]] = {}
    for series in panel_results(panel, run)[ref]:
        values = [v for _, v in series.points if v is not None]
        found.setdefault(dict(series.labels)["host"], []).extend(values)
    return found


@pytest.mark.integration
def test_influxdb_cpu_busy_panels_and_columns_count_iowait_as_idle(
    shared_influxdb: InfluxDB,
) -> None:
    db = shared_influxdb.unique_database("iowait")
    now = _write_until_now(shared_influxdb, db, 30, _cpu_lines)
    for name, title, ref in sorted(BUSY_FIGURES):
        if name == "host-prometheus.json":
            continue
        found = _figure_by_host(shared_influxdb, db, name, title, ref, now)
        assert set(found) == set(BUSY), (title, found)
        for host, values in found.items():
            assert values, (title, host)
            assert values == pytest.approx([BUSY[host]] * len(values), abs=1e-6), (title, host)


@pytest.mark.integration
def test_the_grafana_cpu_rule_fires_for_the_computing_host_only(shared_influxdb: InfluxDB) -> None:
    db = shared_influxdb.unique_database("iowait")
    _write_until_now(shared_influxdb, db, 30, _cpu_lines)
    rule = _rule("pa-cpu-busy-warning")
    limit = rule.expressions[-1]["conditions"][0]["evaluator"]["params"][0]
    assert BUSY["db-01"] < limit < 100 * (1 - CPU_MODES["db-01"]["idle"])  # iowait decides
    assert BUSY["web-01"] > limit
    result = evaluate(rule, shared_influxdb, db)
    means = {dict(labels)["host"]: value for labels, value in result.values["B"].items()}
    assert means == pytest.approx(BUSY, abs=1e-6)
    assert result.hosts() == {("web-01",)}


@pytest.mark.integration
def test_influxdb_filesystem_panels_show_what_the_filesystem_rule_selects(
    shared_influxdb: InfluxDB,
) -> None:
    db = shared_influxdb.unique_database("fs")
    now = _write_until_now(shared_influxdb, db, 15, _fs_lines)
    for title, ref in (("Filesystem fill", "A"), ("Filesystem fill", "B"),
                       ("Filesystem fill trend", "A")):  # fmt: skip
        query = _query("host-influxdb.json", title, ref)
        found = _by_host(shared_influxdb, db, "host-influxdb.json", query, now, "mountpoint")
        assert set(found) == SHOWN, (title, ref)
        assert all(found.values()), (title, ref)
    result = evaluate(_rule("pa-filesystem-used-warning"), shared_influxdb, db)
    assert {dict(labels)["mountpoint"] for labels in result.values["G"]} == SHOWN
    assert result.firing() == set()  # /mnt/ro is read-only; nothing read-write is 85% full


def test_a_fixed_alert_interval_fills_interval_ms_too() -> None:
    """$__interval_ms begins with $__interval: replaced second, it read 60s_ms, not InfluxQL."""
    from perfanalysis.grafana import influxql

    query = 'SELECT 1 WHERE "span" <= 2 * $__interval_ms GROUP BY time($__interval)'
    assert influxql.alerting(query, interval="60s") == (
        'SELECT 1 WHERE "span" <= 2 * 60000 GROUP BY time(60s)'
    )
    with pytest.raises(ValueError, match="not an InfluxQL duration"):
        influxql.alerting(query, interval="1d")
