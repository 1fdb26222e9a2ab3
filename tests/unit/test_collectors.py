"""Every procfs collector against each fake kernel tree: a valid exposition, node_exporter's
TYPE and HELP lines, and one failing collector never taking the others down."""

from __future__ import annotations

import re

import pytest

from tests.unit.promtext import (
    KERNELS,
    NODE_COLLECTORS,
    headers,
    parse_samples,
    scrape,
    success,
    tree,
)

ALL = (*NODE_COLLECTORS, "cpufreq", "time", "uname")

# TYPE and HELP as Debian's node_exporter 1.5.0 prints them for these trees (irq pressure: 1.9+).
EXPECTED_HEADERS = {
    "node_boot_time_seconds": ("gauge", "Node boot time, in unixtime."),
    "node_context_switches_total": ("counter", "Total number of context switches."),
    "node_cpu_frequency_hertz": ("gauge", "Current cpu thread frequency in hertz."),
    "node_cpu_frequency_max_hertz": ("gauge", "Maximum cpu thread frequency in hertz."),
    "node_cpu_frequency_min_hertz": ("gauge", "Minimum cpu thread frequency in hertz."),
    "node_cpu_scaling_frequency_hertz": ("gauge", "Current scaled CPU thread frequency in hertz."),
    "node_cpu_scaling_frequency_max_hertz": ("gauge", "Maximum scaled CPU thread frequency in hertz."),
    "node_cpu_scaling_frequency_min_hertz": ("gauge", "Minimum scaled CPU thread frequency in hertz."),
    "node_cpu_guest_seconds_total": ("counter", "Seconds the CPUs spent in guests (VMs) for each mode."),
    "node_cpu_seconds_total": ("counter", "Seconds the CPUs spent in each mode."),
    "node_disk_discard_time_seconds_total": ("counter", "This is the total number of seconds spent by all discards."),
    "node_disk_discarded_sectors_total": ("counter", "The total number of sectors discarded successfully."),
    "node_disk_discards_completed_total": ("counter", "The total number of discards completed successfully."),
    "node_disk_discards_merged_total": ("counter", "The total number of discards merged."),
    "node_disk_flush_requests_time_seconds_total": ("counter", "This is the total number of seconds spent by all flush requests."),
    "node_disk_flush_requests_total": ("counter", "The total number of flush requests completed successfully"),
    "node_disk_info": ("gauge", "Info of /sys/block/<block_device>."),
    "node_disk_filesystem_info": ("gauge", "Info about disk filesystem."),
    "node_disk_device_mapper_info": ("gauge", "Info about disk device mapper."),
    "node_disk_ata_rotation_rate_rpm": ("gauge", "ATA disk rotation rate in RPMs (0 for SSDs)."),
    "node_disk_ata_write_cache": ("gauge", "ATA disk has a write cache."),
    "node_disk_ata_write_cache_enabled": ("gauge", "ATA disk has its write cache enabled."),
    "node_disk_io_now": ("gauge", "The number of I/Os currently in progress."),
    "node_disk_io_time_seconds_total": ("counter", "Total seconds spent doing I/Os."),
    "node_disk_io_time_weighted_seconds_total": ("counter", "The weighted # of seconds spent doing I/Os."),
    "node_disk_read_bytes_total": ("counter", "The total number of bytes read successfully."),
    "node_disk_read_time_seconds_total": ("counter", "The total number of seconds spent by all reads."),
    "node_disk_reads_completed_total": ("counter", "The total number of reads completed successfully."),
    "node_disk_reads_merged_total": ("counter", "The total number of reads merged."),
    "node_disk_write_time_seconds_total": ("counter", "This is the total number of seconds spent by all writes."),
    "node_disk_writes_completed_total": ("counter", "The total number of writes completed successfully."),
    "node_disk_writes_merged_total": ("counter", "The number of writes merged."),
    "node_disk_written_bytes_total": ("counter", "The total number of bytes written successfully."),
    "node_forks_total": ("counter", "Total number of forks."),
    "node_intr_total": ("counter", "Total number of interrupts serviced."),
    "node_load1": ("gauge", "1m load average."),
    "node_load15": ("gauge", "15m load average."),
    "node_load5": ("gauge", "5m load average."),
    "node_network_receive_bytes_total": ("counter", "Network device statistic receive_bytes."),
    "node_network_receive_compressed_total": ("counter", "Network device statistic receive_compressed."),
    "node_network_receive_drop_total": ("counter", "Network device statistic receive_drop."),
    "node_network_receive_errs_total": ("counter", "Network device statistic receive_errs."),
    "node_network_receive_fifo_total": ("counter", "Network device statistic receive_fifo."),
    "node_network_receive_frame_total": ("counter", "Network device statistic receive_frame."),
    "node_network_receive_multicast_total": ("counter", "Network device statistic receive_multicast."),
    "node_network_receive_packets_total": ("counter", "Network device statistic receive_packets."),
    "node_network_transmit_bytes_total": ("counter", "Network device statistic transmit_bytes."),
    "node_network_transmit_carrier_total": ("counter", "Network device statistic transmit_carrier."),
    "node_network_transmit_colls_total": ("counter", "Network device statistic transmit_colls."),
    "node_network_transmit_compressed_total": ("counter", "Network device statistic transmit_compressed."),
    "node_network_transmit_drop_total": ("counter", "Network device statistic transmit_drop."),
    "node_network_transmit_errs_total": ("counter", "Network device statistic transmit_errs."),
    "node_network_transmit_fifo_total": ("counter", "Network device statistic transmit_fifo."),
    "node_network_transmit_packets_total": ("counter", "Network device statistic transmit_packets."),
    "node_pressure_cpu_waiting_seconds_total": ("counter", "Total time in seconds that processes have waited for CPU time"),
    "node_pressure_io_stalled_seconds_total": ("counter", "Total time in seconds no process could make progress due to IO congestion"),
    "node_pressure_io_waiting_seconds_total": ("counter", "Total time in seconds that processes have waited due to IO congestion"),
    "node_pressure_irq_stalled_seconds_total": ("counter", "Total time in seconds no process could make progress due to IRQ"),
    "node_pressure_memory_stalled_seconds_total": ("counter", "Total time in seconds no process could make progress due to memory congestion"),
    "node_pressure_memory_waiting_seconds_total": ("counter", "Total time in seconds that processes have waited for memory"),
    "node_procs_blocked": ("gauge", "Number of processes blocked waiting for I/O to complete."),
    "node_procs_running": ("gauge", "Number of processes in runnable state."),
    "node_scrape_collector_duration_seconds": ("gauge", "node_exporter: Duration of a collector scrape."),
    "node_scrape_collector_success": ("gauge", "node_exporter: Whether a collector succeeded."),
    "node_time_clocksource_available_info": ("gauge", "Available clocksources read from '/sys/devices/system/clocksource'."),
    "node_time_clocksource_current_info": ("gauge", "Current clocksource read from '/sys/devices/system/clocksource'."),
    "node_time_seconds": ("gauge", "System time in seconds since epoch (1970)."),
    "node_time_zone_offset_seconds": ("gauge", "System time zone offset in seconds."),
    "node_uname_info": ("gauge", "Labeled system information as provided by the uname system call."),
}  # fmt: skip
GENERATED = {
    "node_memory_": ("gauge", "Memory information field {}."),
    "node_vmstat_": ("untyped", "/proc/vmstat information field {}."),
}
SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def expected_header(name: str) -> tuple[str, str]:
    for prefix, (kind, help_text) in GENERATED.items():
        if name.startswith(prefix):
            return kind, help_text.format(name.removeprefix(prefix))
    return EXPECTED_HEADERS[name]


@pytest.fixture(scope="module", params=KERNELS)
def full_scrape(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param, scrape(tree(request.param), *ALL)


def test_every_collector_succeeds_except_pressure_before_4_20(full_scrape: tuple[str, str]) -> None:
    kernel, text = full_scrape
    psi = 1 if kernel == "6.8" else 0
    assert success(parse_samples(text)) == {name: psi if name == "pressure" else 1 for name in ALL}


def test_headers_match_node_exporter(full_scrape: tuple[str, str]) -> None:
    _, text = full_scrape
    found = headers(text)
    assert {name: expected_header(name) for name in found} == found


def test_families_sorted_each_with_help_type_then_samples(full_scrape: tuple[str, str]) -> None:
    _, text = full_scrape
    order: list[str] = []
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = line.split()[2]
            order.append(current)
        elif line.startswith("# TYPE "):
            assert line.split()[2] == current
        else:
            match = SAMPLE_LINE.match(line)
            assert match, line
            assert match.group(1) == current, line
    assert order == sorted(order)
    assert len(order) == len(set(order))


def test_no_series_twice(full_scrape: tuple[str, str]) -> None:
    _, text = full_scrape
    series_lines = [ln.rpartition(" ")[0] for ln in text.splitlines() if not ln.startswith("#")]
    assert len(series_lines) == len(set(series_lines))
    assert len(parse_samples(text)) == len(series_lines)


def test_family_counts_on_6_8() -> None:
    found = headers(scrape(tree("6.8"), *NODE_COLLECTORS))
    prefixes = ("node_cpu_", "node_memory_", "node_network_", "node_disk_", "node_pressure_")
    counts = {p: sum(name.startswith(p) for name in found) for p in prefixes}
    assert counts == {
        "node_cpu_": 2,
        "node_memory_": 57,
        "node_network_": 16,
        "node_disk_": 23,
        "node_pressure_": 6,
    }
