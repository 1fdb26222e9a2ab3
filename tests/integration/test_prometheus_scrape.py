"""Real Prometheus scrapes our exporter, and promtool lints what it serves."""

from __future__ import annotations

import pytest

from perfanalysis.testing.servers import ServerRegistry, prometheus_config, promtool, wait_until

pytestmark = pytest.mark.integration


def mem_total_bytes() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return float(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def test_prometheus_scrapes_the_exporter(servers: ServerRegistry) -> None:
    exporter = servers.exporter()
    prometheus = servers.prometheus(prometheus_config({"perfanalysis": [exporter.address]}))
    target = prometheus.wait_for_target_up("perfanalysis", timeout=30)
    assert target["health"] == "up"
    assert prometheus.query('up{job="perfanalysis"}')[0]["value"][1] == "1"
    result = wait_until(
        lambda: prometheus.query('node_memory_MemTotal_bytes{job="perfanalysis"}'),
        timeout=15,
        what="node_memory_MemTotal_bytes in Prometheus",
    )
    assert float(result[0]["value"][1]) == mem_total_bytes()
    modes = prometheus.query('count by (mode) (node_cpu_seconds_total{job="perfanalysis"})')
    assert {r["metric"]["mode"] for r in modes} == {
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    }  # fmt: skip
    failed = prometheus.query('node_scrape_collector_success{job="perfanalysis"} == 0')
    assert failed == []


def lint(text: str) -> set[str]:
    result = promtool("check", "metrics", input=text)
    assert result.returncode in (0, 3), result.stderr
    return {line for line in (result.stdout + result.stderr).splitlines() if line.strip()}


def test_promtool_finds_nothing_beyond_node_exporters_own_names(servers: ServerRegistry) -> None:
    """promtool flags only the camelCase node_memory_* names, which node_exporter exports too.

    Those names are the vocabulary (Active_anon, MemTotal...), fixed by node_exporter and used by
    every dashboard; each complaint must also be raised on node_exporter's own output.
    """
    ours = lint(servers.exporter(["--collector.disable-defaults", "--collector.meminfo"]).metrics())
    theirs = lint(
        servers.node_exporter(["--collector.disable-defaults", "--collector.meminfo"]).metrics()
    )
    assert all("camelCase" in line and line.startswith("node_memory_") for line in ours), ours
    assert ours <= theirs


def test_promtool_is_clean_on_every_other_collector(servers: ServerRegistry) -> None:
    text = servers.exporter(["--no-collector.meminfo"]).metrics()
    assert lint(text) == set()
