"""The committed dashboards are the generator's output, with stable uids and the panels we promise."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from perfanalysis.grafana import cli, provisioning, render, variables
from perfanalysis.grafana.macros import ALL, TimeRange, expand_influxql
from perfanalysis.grafana.queries import dashboard_variables, panel_queries

UIDS = {"host-influxdb.json": "pa-host-influxdb", "host-prometheus.json": "pa-host-prometheus",
        "fleet.json": "pa-fleet", "ingest.json": "pa-ingest"}  # fmt: skip
HOST_PANELS = [
    "CPU busy", "Memory used", "Root filesystem used", "CPU cores", "CPU time by mode",
    "Load against cores", "Pressure stall", "Memory", "Memory and swap used", "Network traffic",
    "Network packets", "Network errors and drops", "Disk IOPS", "Disk throughput", "Disk latency",
    "Disk utilisation", "Filesystem fill", "Filesystem fill trend",
]  # fmt: skip
FLEET_PANELS = ["Hosts reporting", "Hosts", "Top 10 by CPU busy", "Top 10 by memory used",
                "Top 10 by disk utilisation", "Top 10 by network traffic", "CPU busy per host"]  # fmt: skip
INGEST_PANELS = ["Points accepted", "Points rejected", "Rejected share", "Collectors pushing",
                 "Points per second by tenant", "Rejections by reason", "Requests by status",
                 "Storage write latency", "Storage writes by outcome", "Requests per storage write",
                 "Spool depth", "Time since last push", "Collectors by time since last push"]  # fmt: skip


@pytest.fixture(scope="module")
def generated() -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in render.render_all().items()}


def _titles(dashboard: dict[str, Any]) -> list[str]:
    return [p["title"] for p in dashboard["panels"] if p["type"] != "row"]


def test_committed_dashboards_match_the_generator() -> None:
    assert render.drift(render.default_dir()) == [], "run: python -m perfanalysis.grafana generate"


def test_committed_provisioning_matches_the_generator() -> None:
    for name, text in provisioning.files().items():
        path = provisioning.default_dir() / name
        assert path.read_text() == text, (
            f"{path} is stale: run python -m perfanalysis.grafana generate"
        )


def test_check_command_agrees() -> None:
    assert cli.check() == 0


def test_generation_is_deterministic() -> None:
    assert render.render_all() == render.render_all()


def test_uids_are_stable(generated: dict[str, dict[str, Any]]) -> None:
    assert {name: d["uid"] for name, d in generated.items()} == UIDS


@pytest.mark.parametrize(
    ("name", "titles"),
    [("host-influxdb.json", HOST_PANELS), ("host-prometheus.json", HOST_PANELS),
     ("fleet.json", FLEET_PANELS), ("ingest.json", INGEST_PANELS)],
)  # fmt: skip
def test_panels(generated: dict[str, dict[str, Any]], name: str, titles: list[str]) -> None:
    assert _titles(generated[name]) == titles


def test_both_host_flavours_share_every_panel_but_the_queries(
    generated: dict[str, dict[str, Any]],
) -> None:
    def shape(dashboard: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(p["id"], p["type"], p["title"], p.get("description"), p["gridPos"],
                 p.get("fieldConfig", {}).get("defaults", {}).get("unit")) for p in dashboard["panels"]]  # fmt: skip

    assert shape(generated["host-influxdb.json"]) == shape(generated["host-prometheus.json"])


def test_schema_version_of_the_pinned_sdk(generated: dict[str, dict[str, Any]]) -> None:
    assert {d["schemaVersion"] for d in generated.values()} == {41}


def test_every_promql_rate_uses_rate_interval(generated: dict[str, dict[str, Any]]) -> None:
    for dashboard in generated.values():
        for query in panel_queries(dashboard):
            for match in re.finditer(r"\b(rate|irate|increase)\(", query.text):
                assert "[$__rate_interval]" in query.text[match.end() :], query


def test_influxql_queries_expand_completely(generated: dict[str, dict[str, Any]]) -> None:
    time_range = TimeRange.last("6h", 1_700_000_000_000)
    for name in ("host-influxdb.json", "fleet.json"):
        dashboard = generated[name]
        chosen = dashboard_variables(dashboard, {"host": ["a", "b.example"], "device": ALL, "interface": ALL},
                                     {"device": ["sda"], "interface": ["eth0"]})  # fmt: skip
        for query in panel_queries(dashboard):
            if query.language == "influxql":
                text = expand_influxql(query.text, time_range, chosen)
                assert not re.search(r"\$\w|\$\{|\[\[", text), text
                assert "/^(a|b\\.example)$/" in text


def test_device_variables_use_the_filter(generated: dict[str, dict[str, Any]]) -> None:
    """Which names each filter keeps: tests/unit/test_grafana_ignored_devices.py."""
    for name in ("host-influxdb.json", "host-prometheus.json"):
        found = {v["name"]: v for v in generated[name]["templating"]["list"]}
        assert found["device"]["regex"] == variables.physical_only(
            "node_disk_io_time_seconds_total"
        )
        assert found["interface"]["regex"] == variables.physical_only(
            "node_network_receive_bytes_total"
        )
        assert found["device"]["regex"] != found["interface"]["regex"]
        for variable in (found["device"], found["interface"]):
            assert variable["includeAll"]
            assert "allValue" not in variable


def test_host_variable_reads_node_uname_info(generated: dict[str, dict[str, Any]]) -> None:
    found = {v["name"]: v for v in generated["host-influxdb.json"]["templating"]["list"]}
    assert found["host"]["query"] == 'SHOW TAG VALUES FROM "node_uname_info" WITH KEY = "host"'
    assert found["host"]["multi"]


def test_units_and_descriptions_everywhere(generated: dict[str, dict[str, Any]]) -> None:
    for dashboard in generated.values():
        for panel in dashboard["panels"]:
            if panel["type"] != "row":
                assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
                assert len(panel["description"]) > 20, panel["title"]


def test_expressions_only_reference_targets_of_their_panel(
    generated: dict[str, dict[str, Any]],
) -> None:
    for dashboard in generated.values():
        for panel in dashboard["panels"]:
            refs = {t["refId"] for t in panel.get("targets", [])}
            for target in panel.get("targets", []):
                if target.get("type") == "math":
                    assert set(re.findall(r"\$(\w+)", target["expression"])) <= refs
