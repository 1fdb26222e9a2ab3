"""conntrack collector: entries, limit and the per-CPU statistics summed, as 1.5.0."""

from __future__ import annotations

import shutil
from pathlib import Path

from exporter.collectors.conntrack import ConntrackCollector
from exporter.exposition import render
from exporter.paths import Paths
from exporter.registry import Registry
from tests.unit.promtext import headers, parse_samples, scrape, success, tree, value


def test_conntrack_on_6_8() -> None:
    text = scrape(tree("6.8"), "conntrack")
    samples = parse_samples(text)
    assert success(samples) == {"conntrack": 1}
    got = {name: v for (name, _), v in samples.items() if name.startswith("node_nf_")}
    assert got == {
        "node_nf_conntrack_entries": 1834,
        "node_nf_conntrack_entries_limit": 262144,
        # two CPUs' hexadecimal columns, summed
        "node_nf_conntrack_stat_found": 0x10 + 0x20,
        "node_nf_conntrack_stat_invalid": 0x2A + 0x0F,
        "node_nf_conntrack_stat_ignore": 5 + 6,
        "node_nf_conntrack_stat_insert": 3 + 4,
        "node_nf_conntrack_stat_insert_failed": 1,
        "node_nf_conntrack_stat_drop": 2 + 1,
        "node_nf_conntrack_stat_early_drop": 3,
        "node_nf_conntrack_stat_search_restart": 0x14 + 1,
    }
    assert value(samples, "node_nf_conntrack_entries") == 1834
    assert headers(text)["node_nf_conntrack_entries_limit"] == (
        "gauge",
        "Maximum size of connection tracking table.",
    )


def test_no_module_is_no_data(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    samples = parse_samples(scrape(tmp_path, "conntrack"))
    assert success(samples) == {"conntrack": 0}
    assert not [name for name, _ in samples if name.startswith("node_nf_")]


def test_malformed_statistics_fail_the_collector(tmp_path: Path) -> None:
    shutil.copytree(tree("6.8") / "proc", tmp_path / "proc")
    stat = tmp_path / "proc" / "net" / "stat" / "nf_conntrack"
    stat.write_text(stat.read_text() + "00000001 00000002\n")
    assert success(parse_samples(scrape(tmp_path, "conntrack"))) == {"conntrack": 0}


def test_without_statistics_the_count_and_limit_are_served_as_no_data(tmp_path: Path) -> None:
    """As 1.5.0 on a kernel without /proc/net/stat/nf_conntrack: entries and limit, success 0,
    and for /health the host's normal state, not a failure."""
    shutil.copytree(tree("6.8") / "proc", tmp_path / "proc")
    (tmp_path / "proc" / "net" / "stat" / "nf_conntrack").unlink()
    registry = Registry([ConntrackCollector(Paths(procfs=str(tmp_path / "proc")))])
    result = registry.scrape()
    assert set(result.no_data) == {"conntrack"}
    assert not result.failures
    samples = parse_samples(render(result.families).decode())
    assert success(samples) == {"conntrack": 0}
    assert {name: v for (name, _), v in samples.items() if name.startswith("node_nf_")} == {
        "node_nf_conntrack_entries": 1834,
        "node_nf_conntrack_entries_limit": 262144,
    }


def test_malformed_statistics_still_serve_the_count_and_limit(tmp_path: Path) -> None:
    shutil.copytree(tree("6.8") / "proc", tmp_path / "proc")
    stat = tmp_path / "proc" / "net" / "stat" / "nf_conntrack"
    stat.write_text(stat.read_text() + "00000001 00000002\n")
    result = Registry([ConntrackCollector(Paths(procfs=str(tmp_path / "proc")))]).scrape()
    assert "nf_conntrack: invalid conntrackstat entry" in result.failures["conntrack"]
    names = {name for name, _ in parse_samples(render(result.families).decode())}
    assert {"node_nf_conntrack_entries", "node_nf_conntrack_entries_limit"} <= names
    assert not any(name.startswith("node_nf_conntrack_stat_") for name in names)
