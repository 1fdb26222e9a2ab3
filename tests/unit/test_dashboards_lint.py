"""Grafana dashboard-linter's rules, mirrored in Python (perfanalysis.grafana.lint), run on every
committed dashboard; each rule is also shown to catch the fault it is for. PromQL is parsed by the
real Prometheus parser: every panel query, its variables expanded as Grafana would, goes through
``promtool check rules``."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfanalysis.grafana import influxql as iq
from perfanalysis.grafana import render
from perfanalysis.grafana.lint import lint, promql_problems
from perfanalysis.grafana.macros import ALL, TimeRange, expand_promql
from perfanalysis.grafana.queries import dashboard_variables, panel_queries

COMMITTED = sorted(render.default_dir().glob("*.json"))


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((render.default_dir() / name).read_text())
    return data


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_dashboard_passes_every_rule(path: Path) -> None:
    assert lint(json.loads(path.read_text())) == []


def test_all_four_dashboards_are_linted() -> None:
    assert [p.name for p in COMMITTED] == [
        "fleet.json",
        "host-influxdb.json",
        "host-prometheus.json",
        "ingest.json",
    ]


def _panel(d: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in d["panels"] if p.get("title") == title and p["type"] != "row")


def _first_target(d: dict[str, Any], title: str) -> dict[str, Any]:
    target: dict[str, Any] = _panel(d, title)["targets"][0]
    return target


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        node: Any = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


MUTATIONS: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("host-prometheus.json", "no unit", lambda d: _panel(d, "Disk IOPS")["fieldConfig"]["defaults"].pop("unit"), "panel-units"),
    ("host-prometheus.json", "bad unit", lambda d: _panel(d, "Disk IOPS")["fieldConfig"]["defaults"].update(unit="furlongs"), "panel-units"),
    ("fleet.json", "no description", lambda d: _panel(d, "Hosts").update(description=""), "panel-title-description"),
    ("host-influxdb.json", "hard-coded uid", lambda d: _panel(d, "Memory")["datasource"].update(uid="P1809F7CD0C75ACF3"), "hard-coded data source uid"),
    ("ingest.json", "target uid", lambda d: _first_target(d, "Spool depth")["datasource"].update(uid="abc"), "hard-coded data source uid"),
    ("ingest.json", "no datasource variable", lambda d: d["templating"]["list"].pop(0), "template-datasource"),
    ("ingest.json", "renamed datasource variable", lambda d: d["templating"]["list"][0].update(name="ds"), "template-datasource"),
    ("host-prometheus.json", "rate without $__rate_interval", lambda d: _first_target(d, "Disk utilisation").update(expr='rate(node_disk_io_time_seconds_total{job=~"$job", instance=~"$instance"}[5m])'), "target-rate-interval"),
    ("ingest.json", "increase without $__rate_interval", lambda d: _first_target(d, "Spool depth").update(expr='increase(x{job=~"$job", instance=~"$instance"}[1h])'), "target-rate-interval"),
    ("host-prometheus.json", "no job matcher", lambda d: _first_target(d, "CPU cores").update(expr='count(node_cpu_seconds_total{instance=~"$instance"})'), "target-job"),
    ("host-prometheus.json", "bare metric", lambda d: _first_target(d, "CPU cores").update(expr="count(node_cpu_seconds_total)"), "target-instance"),
    ("host-prometheus.json", "no job variable", lambda d: d["templating"]["list"].pop(1), "template-job"),
    ("host-prometheus.json", "instance not multi", lambda d: d["templating"]["list"][2].update(multi=False), "template-instance"),
    ("host-prometheus.json", "job allValue", lambda d: d["templating"]["list"][1].update(allValue=".*"), "template-job"),
    ("fleet.json", "refresh on load", lambda d: d["templating"]["list"][1].update(refresh=1), "template-on-time-change-reload"),
    ("fleet.json", "editable", _set(["editable"], True), "uneditable"),
    ("fleet.json", "duplicate id", lambda d: d["panels"][2].update(id=d["panels"][1]["id"]), "duplicate"),
    ("fleet.json", "off the grid", lambda d: d["panels"][2]["gridPos"].update(x=6), "off the 24-column grid"),
    ("fleet.json", "overlap", lambda d: d["panels"][2]["gridPos"].update(y=2), "overlaps"),
    ("fleet.json", "bad uid", _set(["uid"], "x" * 41), "uid"),
    ("host-influxdb.json", "no $timeFilter", lambda d: _first_target(d, "Memory").update(query='SELECT mean("value") FROM "m" WHERE "host" =~ /^$host$/ GROUP BY time($__interval) fill(null)'), "$timeFilter"),
    ("host-influxdb.json", "no host filter", lambda d: _first_target(d, "Memory").update(query='SELECT mean("value") FROM "m" WHERE $timeFilter GROUP BY time($__interval) fill(null)'), "host"),
    ("host-influxdb.json", "fixed group by", lambda d: _first_target(d, "Memory").update(query='SELECT mean("value") FROM "m" WHERE "host" =~ /^$host$/ AND $timeFilter GROUP BY time(1m) fill(null)'), "GROUP BY time($__interval)"),
    ("host-influxdb.json", "no fill", lambda d: _first_target(d, "Memory").update(query='SELECT mean("value") FROM "m" WHERE "host" =~ /^$host$/ AND $timeFilter GROUP BY time($__interval)'), "fill(null)"),
    ("host-influxdb.json", "unknown variable", lambda d: _first_target(d, "Memory").update(query=_first_target(d, "Memory")["query"] + " $nowhere"), "unknown variable"),
    ("host-influxdb.json", "dangling expression", lambda d: _panel(d, "Memory")["targets"][-1].update(expression="$A - $Z"), "missing target"),
    ("host-influxdb.json", "rate across a gap", lambda d: _first_target(d, "Network traffic").update(query=_first_target(d, "Network traffic")["query"].replace(f"{iq.JOINED} AND ", "")), "span a gap"),
    ("host-influxdb.json", "rate without its span", lambda d: _first_target(d, "Disk utilisation").update(query=_first_target(d, "Disk utilisation")["query"].replace(f", {iq.SPAN}", "")), "span a gap"),
    ("fleet.json", "CPU seconds across a gap", lambda d: _first_target(d, "CPU busy per host").update(query=_first_target(d, "CPU busy per host")["query"].replace(f"{iq.JOINED} AND ", "")), "span a gap"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "fault", "mutate", "rule"), MUTATIONS, ids=[m[1] for m in MUTATIONS]
)
def test_rule_catches_its_fault(
    name: str, fault: str, mutate: Callable[[dict[str, Any]], None], rule: str
) -> None:
    dashboard = copy.deepcopy(_load(name))
    mutate(dashboard)
    problems = lint(dashboard)
    assert any(rule in p for p in problems), (fault, problems)


def test_promql_checker_reads_selectors_carefully() -> None:
    good = ('sum by (instance) (rate(a{job=~"$job", instance=~"$instance"}[$__rate_interval])) / on (instance) '
            'group_left count without (cpu) (b{job=~"$job", instance=~"$instance"}) and time() > 0')  # fmt: skip
    assert list(promql_problems(good)) == []
    assert len(list(promql_problems('up{job=~"$job"} + node_load1'))) == 3


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed"
)
def test_every_promql_query_parses_with_promtool(tmp_path: Path) -> None:
    time_range = TimeRange.last("6h", 1_700_000_000_000)
    rules = []
    for name in ("host-prometheus.json", "ingest.json"):
        dashboard = _load(name)
        prefix = name.removesuffix(".json").replace("-", "_")
        chosen = dashboard_variables(
            dashboard, {"job": ALL, "instance": ["web.1:9100", "db:9100"], "device": ALL, "interface": ALL,
                        "tenant": ["acme"]}, {"device": ["sda", "nvme0n1"], "interface": ["eth0"]})  # fmt: skip
        for query in panel_queries(dashboard):
            assert query.language == "promql"
            expr = expand_promql(query.text, time_range, chosen).expr
            rules.append(
                {"record": f"{prefix}_panel_{query.panel_id}_{query.ref_id}", "expr": expr}
            )
        for var in dashboard["templating"]["list"]:
            if var["type"] == "query":  # label_values(SELECTOR, label): the selector must parse
                selector = var["query"][len("label_values(") : var["query"].rindex(",")]
                rules.append(
                    {
                        "record": f"{prefix}_variable_{var['name']}",
                        "expr": expand_promql(selector, time_range, chosen).expr,
                    }
                )
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
