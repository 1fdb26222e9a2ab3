"""On this machine's live /proc, our exporter and Debian's node_exporter 1.5.0 agree.

Both run with the same collectors and the same filter flags. Series sets must be identical family
by family, HELP and TYPE identical, constant gauges equal, and every changing value of
node_exporter must lie between two reads of ours taken just before and just after it (counters
and gauges only move a little in the milliseconds between reads; a read that straddles a real
change is retried).
"""

from __future__ import annotations

import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from perfanalysis.testing.anchor import COMMON_FLAGS, NODE_EXPORTER_ONLY
from perfanalysis.testing.servers import ServerRegistry

pytestmark = pytest.mark.integration

IGNORED_FAMILIES = {"node_exporter_build_info", "node_scrape_collector_duration_seconds"}
# values that do not change while the machine runs (exact names: node_filesystem_files_free
# changes, node_filesystem_files does not)
CONSTANT_NAMES = frozenset({
    "node_boot_time_seconds", "node_memory_MemTotal_bytes", "node_memory_SwapTotal_bytes",
    "node_memory_VmallocTotal_bytes", "node_memory_Hugepagesize_bytes", "node_memory_HugePages_Total",
    "node_filesystem_size_bytes", "node_filesystem_files", "node_filesystem_readonly",
    "node_filesystem_device_error", "node_uname_info", "node_time_zone_offset_seconds",
    "node_time_clocksource_available_info", "node_time_clocksource_current_info", "node_disk_info",
    "node_scrape_collector_success",
})  # fmt: skip
ATTEMPTS = 8
Key = tuple[str, frozenset[tuple[str, str]]]


def parse(text: str) -> tuple[dict[Key, float], dict[str, tuple[str, str]]]:
    samples: dict[Key, float] = {}
    headers: dict[str, tuple[str, str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("node_") or family.name in IGNORED_FAMILIES:
                continue
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
            headers[sample.name] = (family.documentation, family.type)
    return samples, headers


def tolerance(name: str) -> float:
    """Slack beyond the bracket of our two reads.

    CPU times move in ticks of 10 ms. The runnable and blocked process counts include the two
    exporters themselves, which are running while they read /proc/stat.
    """
    if name.startswith(("node_cpu_seconds_total", "node_cpu_guest_seconds_total")):
        return 0.011
    if name in ("node_procs_running", "node_procs_blocked"):
        return 2.0
    return 0.0


@pytest.fixture
def exporters(servers: ServerRegistry) -> tuple[object, object]:
    ours = servers.exporter(COMMON_FLAGS)
    theirs = servers.node_exporter(COMMON_FLAGS + NODE_EXPORTER_ONLY)
    return ours, theirs


def test_same_families_series_help_and_type(exporters: tuple) -> None:  # type: ignore[type-arg]
    ours, theirs = exporters
    our_samples, our_headers = parse(ours.metrics())
    their_samples, their_headers = parse(theirs.metrics())
    assert set(our_samples) == set(their_samples), (
        f"only ours: {sorted(set(our_samples) - set(their_samples))[:10]}\n"
        f"only node_exporter: {sorted(set(their_samples) - set(our_samples))[:10]}"
    )
    assert our_headers == their_headers
    assert len(our_samples) > 100
    assert all(
        v == 1 for (name, _), v in our_samples.items() if name == "node_scrape_collector_success"
    )


def test_values_agree(exporters: tuple) -> None:  # type: ignore[type-arg]
    ours, theirs = exporters
    pending: set[Key] | None = None
    for _ in range(ATTEMPTS):
        before, _ = parse(ours.metrics())
        middle, _ = parse(theirs.metrics())
        after, _ = parse(ours.metrics())
        keys = set(middle) if pending is None else pending
        pending = set()
        for key in keys:
            name = key[0]
            if name in CONSTANT_NAMES:
                assert before[key] == middle[key] == after[key], key
                continue
            low, high = sorted((before[key], after[key]))
            slack = tolerance(name)
            if not low - slack <= middle[key] <= high + slack:
                pending.add(key)
        if not pending:
            break
    assert not pending, (
        f"values outside our bracketing reads after {ATTEMPTS} tries: {sorted(pending)[:10]}"
    )


CPU_INFO_FAMILIES = ("node_cpu_info", "node_cpu_flag_info", "node_cpu_bug_info")


def test_cpu_info_flags_and_bugs_agree(servers: ServerRegistry) -> None:
    """--collector.cpu.info with flag and bug filters, on this machine's /proc/cpuinfo."""
    flags = ["--collector.disable-defaults", "--collector.cpu", "--no-collector.netdev.netlink",
             "--collector.cpu.info.flags-include=^(fpu|aes|avx2?|sse4_2|hypervisor)$|^lm",
             "--collector.cpu.info.bugs-include=spec"]  # fmt: skip
    ours = servers.exporter(flags)
    theirs = servers.node_exporter(flags)
    our_samples, our_headers = parse(ours.metrics())
    their_samples, their_headers = parse(theirs.metrics())

    def info(samples: dict[Key, float]) -> dict[Key, float]:
        return {key: value for key, value in samples.items() if key[0] in CPU_INFO_FAMILIES}

    assert info(our_samples) == info(their_samples)
    assert {n: our_headers.get(n) for n in CPU_INFO_FAMILIES} == {
        n: their_headers.get(n) for n in CPU_INFO_FAMILIES
    }
    cpus = sum(1 for name, _ in info(their_samples) if name == "node_cpu_info")
    assert cpus == os.cpu_count()
    assert ("node_cpu_flag_info", frozenset({("flag", "fpu")})) in our_samples
