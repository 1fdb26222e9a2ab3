"""conntrack serves what Debian's node_exporter 1.5.0 serves on the same fake /proc, file by file.

1.5.0 reads nf_conntrack_count, nf_conntrack_max and /proc/net/stat/nf_conntrack in that order and
keeps what it sent before a read failed, with success 0: a host whose kernel has the module but no
statistics file still gets its entry count and limit (the table-full alert), in both exporters.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import scrape_text
from perfanalysis.testing.servers import ServerRegistry
from tests.unit.promtext import tree

pytestmark = pytest.mark.integration

Served = dict[tuple[str, frozenset[tuple[str, str]]], tuple[float, str, str]]
STAT = ("net", "stat", "nf_conntrack")
NETFILTER = ("sys", "net", "netfilter")


def conntrack_series(text: str) -> Served:
    """node_nf_conntrack_* and the collector's success, with each family's HELP and TYPE."""
    served: Served = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("node_nf_conntrack") or (
                sample.name == "node_scrape_collector_success"
            ):
                key = (sample.name, frozenset(sample.labels.items()))
                served[key] = (sample.value, family.documentation, family.type)
    return served


def without(proc: Path, *parts: str) -> None:
    proc.joinpath(*parts).unlink()


def malformed_statistics(proc: Path) -> None:
    stat = proc.joinpath(*STAT)
    stat.write_text(stat.read_text() + "00000001 00000002\n")


CHANGES = {
    "everything": lambda proc: None,
    "no statistics file": lambda proc: without(proc, *STAT),
    "no limit file": lambda proc: without(proc, *NETFILTER, "nf_conntrack_max"),
    "no module": lambda proc: without(proc, *NETFILTER, "nf_conntrack_count"),
    "malformed statistics": malformed_statistics,
}


@pytest.mark.parametrize("case", CHANGES)
def test_same_series_values_and_success_as_node_exporter(
    case: str, servers: ServerRegistry, tmp_path: Path
) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(tree("6.8") / "proc", proc)
    CHANGES[case](proc)
    flags = [
        "--collector.disable-defaults",
        "--collector.conntrack",
        f"--path.procfs={proc}",
        f"--path.sysfs={tmp_path / 'sys'}",
    ]
    theirs = conntrack_series(servers.node_exporter(flags).metrics())
    ours = conntrack_series(scrape_text([*flags, "--web.disable-exporter-metrics"]))
    assert ours == theirs, case
    success = ("node_scrape_collector_success", frozenset({("collector", "conntrack")}))
    assert ours[success][0] == (1.0 if case == "everything" else 0.0)
    if case == "no statistics file":
        assert {name for name, _ in ours} == {
            "node_nf_conntrack_entries",
            "node_nf_conntrack_entries_limit",
            "node_scrape_collector_success",
        }
