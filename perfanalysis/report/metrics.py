"""The node_exporter measurements a report reads, grouped by how they are queried.

Counters (``*_total``) are read as the last value per step and turned into rates; gauges are
read as the mean per step.
"""

from __future__ import annotations

CPU = "node_cpu_seconds_total"
LOAD1 = "node_load1"

MEMORY = {
    "total": "node_memory_MemTotal_bytes",
    "available": "node_memory_MemAvailable_bytes",
    "free": "node_memory_MemFree_bytes",
    "cached": "node_memory_Cached_bytes",
    "buffers": "node_memory_Buffers_bytes",
    "reclaimable": "node_memory_SReclaimable_bytes",
    "swap_total": "node_memory_SwapTotal_bytes",
    "swap_free": "node_memory_SwapFree_bytes",
}

DISK_COUNTERS = {
    "read_bytes": "node_disk_read_bytes_total",
    "written_bytes": "node_disk_written_bytes_total",
    "reads": "node_disk_reads_completed_total",
    "writes": "node_disk_writes_completed_total",
    "read_time": "node_disk_read_time_seconds_total",
    "write_time": "node_disk_write_time_seconds_total",
    "io_time": "node_disk_io_time_seconds_total",
    "io_time_weighted": "node_disk_io_time_weighted_seconds_total",
}
DISK_IN_FLIGHT = "node_disk_io_now"

NETWORK_COUNTERS = {
    "receive_bytes": "node_network_receive_bytes_total",
    "transmit_bytes": "node_network_transmit_bytes_total",
    "receive_packets": "node_network_receive_packets_total",
    "transmit_packets": "node_network_transmit_packets_total",
    "receive_errors": "node_network_receive_errs_total",
    "transmit_errors": "node_network_transmit_errs_total",
    "receive_drops": "node_network_receive_drop_total",
    "transmit_drops": "node_network_transmit_drop_total",
}

FILESYSTEM = {
    "avail": "node_filesystem_avail_bytes",
    "size": "node_filesystem_size_bytes",
}
