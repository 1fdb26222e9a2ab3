"""The host dashboards' disk and interface lists, the Fleet dashboard's columns and the alert rules
leave out the same virtual devices (one list each, perfanalysis.alerting.catalogue), each read as
its engine reads it: PromQL anchored, InfluxQL's regex literal as written, Grafana's variable
regex as JavaScript, showing a capturing group's text instead of the value when it has one."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

import pytest
import yaml

from perfanalysis.alerting.generate import RULES_DIR
from perfanalysis.grafana import devices, render, variables
from perfanalysis.grafana.queries import panel_queries

KEPT_NICS = ["eth0", "ens3", "enp0s31f6", "bond0", "wlan0"]
IGNORED_NICS = ["lo", "veth1a2b", "docker0", "br-1234", "virbr0", "cni0", "flannel.1", "cali12ab",
                "tunl0", "lxc12ab", "tap0", "vxlan.calico", "cilium_host"]  # fmt: skip
KEPT_DISKS = ["sda", "nvme0n1", "vda", "xvda", "mmcblk0"]
IGNORED_DISKS = ["loop0", "ram0", "zram0", "sr0", "fd0", "dm-0"]
NICS, DISKS = KEPT_NICS + IGNORED_NICS, KEPT_DISKS + IGNORED_DISKS
# (what the devices are, the alert rule judging them, the metric prefix the dashboards read)
KINDS = [
    ("interfaces", "HostNetworkErrors", "node_network_", NICS, KEPT_NICS),
    ("disks", "HostDiskIoSaturated", "node_disk_", DISKS, KEPT_DISKS),
]
PROMQL_EXCLUDE = re.compile(r'device!~"((?:[^"\\]|\\.)*)"')
INFLUXQL_EXCLUDE = re.compile(r'"device" !~ /((?:[^/\\]|\\.)*)/')


@pytest.fixture(scope="module")
def committed() -> dict[str, dict[str, Any]]:
    return {
        name: json.loads((render.default_dir() / name).read_text()) for name in render.render_all()
    }


def one(found: Iterable[str], where: str) -> str:
    distinct = set(found)
    assert len(distinct) == 1, f"{where}: expected one exclusion, found {sorted(distinct)}"
    return distinct.pop()


def rule_exclusion(alert: str) -> str:
    groups = yaml.safe_load((RULES_DIR / "default.rules.yml").read_text())["groups"]
    exprs = [r["expr"] for g in groups for r in g["rules"] if r.get("alert") == alert]
    assert exprs, f"no {alert} rule in {RULES_DIR / 'default.rules.yml'}"
    return one((m for e in exprs for m in PROMQL_EXCLUDE.findall(e)), alert)


def fleet_exclusion(fleet: dict[str, Any], prefix: str) -> str:
    texts = [q.text for q in panel_queries(fleet) if f'FROM "{prefix}' in q.text]
    assert texts, f"the Fleet dashboard reads no {prefix}* measurement"
    return one((m for t in texts for m in INFLUXQL_EXCLUDE.findall(t)), f"fleet.json {prefix}*")


def variable_regex(dashboard: dict[str, Any], prefix: str) -> str:
    found = [v["regex"] for v in dashboard["templating"]["list"] if prefix in v.get("query", "")]
    return one(found, f"{dashboard['title']}: the {prefix}* variable")


def grafana_lists(regex: str, values: list[str]) -> list[str | None]:
    """What Grafana lists of a query variable's values under its regex (its
    metricNamesToVariableValues): a value the regex does not match is dropped; one it matches
    is listed as the regex's first capturing group when it has one (None here for JavaScript's
    undefined, a group that took no part), else as itself."""
    body, _, flags = regex.removeprefix("/").rpartition("/")
    assert regex.startswith("/"), regex
    assert not flags, regex
    pattern = re.compile(body)
    listed: list[str | None] = []
    for value in values:
        match = pattern.search(value)
        if match:
            listed.append(match.group(1) if pattern.groups else value)
    return listed


@pytest.mark.parametrize(
    ("kind", "alert", "prefix", "names", "kept"), KINDS, ids=[k[0] for k in KINDS]
)
def test_rules_fleet_and_host_variables_keep_the_same_names(
    committed: dict[str, dict[str, Any]],
    kind: str,
    alert: str,
    prefix: str,
    names: list[str],
    kept: list[str],
) -> None:
    rule = re.compile(rule_exclusion(alert))
    assert [n for n in names if not rule.fullmatch(n)] == kept, f"{alert} ({kind})"
    fleet = re.compile(fleet_exclusion(committed["fleet.json"], prefix))
    assert [n for n in names if not fleet.search(n)] == kept, f"fleet.json ({kind})"
    for name in ("host-influxdb.json", "host-prometheus.json"):
        assert grafana_lists(variable_regex(committed[name], prefix), names) == kept, name


@pytest.mark.parametrize(
    ("kind", "alert", "prefix", "names", "kept"), KINDS, ids=[k[0] for k in KINDS]
)
def test_javascript_lists_the_kept_names_as_themselves(
    kind: str, alert: str, prefix: str, names: list[str], kept: list[str]
) -> None:
    """The variable regex under a real JavaScript engine, by Grafana's rule above."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node (a JavaScript engine) is not installed")
    script = """
const [regex, names] = JSON.parse(process.argv[1]);
const [, body, flags] = regex.match(/^\\/(.*)\\/([a-z]*)$/);
const pattern = new RegExp(body, flags);
const listed = [];
for (const name of names) {
  const match = pattern.exec(name);
  if (match) listed.push(match.length > 1 ? (match[1] ?? null) : name);
}
console.log(JSON.stringify(listed));
"""
    regex = variables.physical_only(f"{prefix}x")
    result = subprocess.run([node, "-e", script, json.dumps([regex, names])],
                            capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    assert json.loads(result.stdout) == kept


@pytest.mark.parametrize(
    ("pattern", "named"),
    [("eth\\d+", "\\"), ("(?!lo)", "! ?"), ("/dev/.*", "/"), ("lo$", "$"), ("wl{1}an", "{ }")],
)
def test_a_list_outside_the_shared_syntax_is_refused_naming_it(pattern: str, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"TEST_IGNORED = {pattern!r} uses {named}:")):
        devices.variable_excluding("TEST_IGNORED", pattern)


def test_a_list_that_is_no_regex_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"TEST_IGNORED = '\(lo' is not a regex"):
        devices.influx_excluding("TEST_IGNORED", "(lo")


def test_groups_become_non_capturing_outside_bracket_expressions_only() -> None:
    assert devices.non_capturing("(a|b)[(]c(d)") == "(?:a|b)[(]c(?:d)"


def test_a_device_variable_on_an_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match=r"node_filesystem_size_bytes.*node_disk_, node_network_"):
        variables.prom_device("device", "Disk", "node_filesystem_size_bytes")
