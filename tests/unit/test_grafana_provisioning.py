"""provisioning/grafana/ for a single-tenant deployment: parses, holds the keys Grafana needs,
references only what exists, commits no secret, and documents every variable it expands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfanalysis.grafana import alerts, provisioning, render

DIR = provisioning.default_dir()
ENV_REF = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DIR / name).read_text())
    return data


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    groups = _load("alerting/rules.yaml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_file_parses_with_api_version_1() -> None:
    for name in provisioning.files():
        assert _load(name)["apiVersion"] == 1, name


def test_no_stray_files() -> None:
    found = {str(p.relative_to(DIR)) for p in DIR.rglob("*.yaml")}
    assert found == set(provisioning.files())


def test_datasources() -> None:
    sources = _load("datasources/perfanalysis.yaml")["datasources"]
    assert [s["uid"] for s in sources] == ["influxdb", "prometheus"]
    influx = sources[0]
    assert influx["type"] == "influxdb"
    assert influx["access"] == "proxy"
    assert influx["orgId"] == 1
    assert influx["jsonData"]["version"] == "InfluxQL"
    assert "database" not in influx
    assert influx["jsonData"]["dbName"] == "${INFLUXDB_DATABASE}"
    assert influx["user"] == "${INFLUXDB_READ_USER}"
    assert influx["secureJsonData"] == {"password": "${INFLUXDB_READ_PASSWORD}"}
    assert [s["isDefault"] for s in sources].count(True) == 1
    assert sources[1]["type"] == "prometheus"
    assert sources[1]["jsonData"]["timeInterval"] == "15s"


def test_no_secret_is_committed() -> None:
    for name in provisioning.files():
        for key, value in _walk(_load(name)):
            if re.search(r"password|token|secret", key, re.I):
                assert re.fullmatch(r"\$\{\w+\}", str(value)), (
                    f"{name}: {key} holds a literal secret"
                )


def _walk(node: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in _walk(v, str(k))]
    if isinstance(node, list):
        return [pair for item in node for pair in _walk(item, key)]
    return [(key, node)]


def test_dashboard_provider_points_at_the_dashboards() -> None:
    (provider,) = _load("dashboards/perfanalysis.yaml")["providers"]
    assert provider["type"] == "file"
    assert provider["orgId"] == 1
    assert provider["options"]["path"] == provisioning.DASHBOARDS_PATH
    assert provider["folderUid"] == alerts.FOLDER_UID
    assert provider["allowUiUpdates"] is False
    assert sorted(p.name for p in render.default_dir().glob("*.json")) == sorted(
        render.render_all()
    )


def test_rule_group(rules: list[dict[str, Any]]) -> None:
    (group,) = _load("alerting/rules.yaml")["groups"]
    assert group["orgId"] == 1
    assert group["folder"] == alerts.FOLDER_TITLE
    assert group["interval"] == "60s"
    assert [r["title"] for r in rules] == [
        f"{name} ({severity})"
        for name in ("CPU busy", "Memory used", "Filesystem used", "Collector stopped pushing")
        for severity in ("warning", "critical")
    ]  # the committed thresholds.yaml's defaults have both levels of each


def test_rules_have_what_grafana_requires(rules: list[dict[str, Any]]) -> None:
    uids = [r["uid"] for r in rules]
    assert len(set(uids)) == len(uids)
    assert all(0 < len(u) <= 40 for u in uids)
    for rule in rules:
        assert {
            "uid",
            "title",
            "condition",
            "data",
            "for",
            "labels",
            "noDataState",
            "execErrState",
        } <= set(rule)
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert re.fullmatch(r"(\d+[wdhms])+", rule["for"])  # Prometheus' (and Grafana's) spelling
        refs = [d["refId"] for d in rule["data"]]
        assert len(set(refs)) == len(refs)
        assert rule["condition"] == refs[-1]
        assert rule["noDataState"] in {"NoData", "Alerting", "OK"}
        assert rule["execErrState"] in {
            "Error",
            "Alerting",
            "OK",
        }


def test_rules_reference_existing_datasources_and_refs(rules: list[dict[str, Any]]) -> None:
    provisioned = {s["uid"] for s in _load("datasources/perfanalysis.yaml")["datasources"]}
    for rule in rules:
        refs = {d["refId"] for d in rule["data"]}
        for item in rule["data"]:
            model = item["model"]
            assert model["refId"] == item["refId"]
            if item["datasourceUid"] == "__expr__":
                sources = (
                    re.findall(r"\$(\w+)", model["expression"])
                    if model["type"] == "math"
                    else [model["expression"]]
                )
                assert set(sources) <= refs - {item["refId"]}, rule["uid"]
            else:
                assert item["datasourceUid"] in provisioned
                assert item["relativeTimeRange"]["from"] > 0
                assert "$timeFilter" in model["query"]
                assert "$host" not in model["query"]


def test_rules_link_to_the_host_dashboard(rules: list[dict[str, Any]]) -> None:
    panels = {
        p["id"]: p["title"]
        for p in render.as_dict(
            __import__("perfanalysis.grafana.dashboards", fromlist=["x"]).host_influxdb()
        )["panels"]
    }
    for rule in rules:
        assert rule["dashboardUid"] == "pa-host-influxdb"
        assert rule["panelId"] in panels


def test_templates_survive_env_interpolation(rules: list[dict[str, Any]]) -> None:
    """Grafana expands $VARS in labels (and ${VARS} in annotations in newer versions)."""
    for rule in rules:
        assert not any("$" in v for v in rule["labels"].values())
        assert not any("${" in v for v in rule["annotations"].values())


def test_contact_point_and_policy() -> None:
    notifications = _load("alerting/notifications.yaml")
    (contact,) = notifications["contactPoints"]
    (receiver,) = contact["receivers"]
    assert receiver["type"] == "webhook"
    assert receiver["uid"]
    assert receiver["settings"]["url"] == "${PERFANALYSIS_ALERT_WEBHOOK_URL}"
    (policy,) = notifications["policies"]
    names = {contact["name"]}
    assert policy["orgId"] == 1
    assert policy["receiver"] in names
    assert all(route["receiver"] in names for route in policy.get("routes", []))
    assert "host" in policy["group_by"]


def test_every_variable_is_documented() -> None:
    readme = (DIR / "README.md").read_text()
    documented = set(re.findall(r"^\| `(\w+)` \|", readme, re.M))
    used = set()
    for name in (
        "datasources/perfanalysis.yaml",
        "dashboards/perfanalysis.yaml",
        "alerting/notifications.yaml",
    ):
        used |= {a or b for a, b in ENV_REF.findall((DIR / name).read_text())}
    for rule_file in (
        "alerting/rules.yaml",
    ):  # only labels and braced annotations are expanded there
        for group in _load(rule_file)["groups"]:
            for rule in group["rules"]:
                used |= {a or b for v in rule["labels"].values() for a, b in ENV_REF.findall(v)}
    assert used <= documented, used - documented
    assert documented <= used, documented - used


def test_files_say_they_are_generated() -> None:
    for name in provisioning.files():
        assert (DIR / name).read_text().startswith(provisioning.HEADER)


def test_readme_lists_every_file() -> None:
    readme = (DIR / "README.md").read_text()
    for name in provisioning.files():
        assert f"`{name}`" in readme, name
    assert Path(DIR / "README.md").exists()
