"""Disk: throughput, IOPS, latency, utilisation and queue depth of one device.

Latency is the time spent on the completed operations over their number (iostat's r_await and
w_await), present only in steps with operations; utilisation is the share of time the device
was busy (``io_time``, iostat's %util); the average queue is the rate of ``io_time_weighted``
(iostat's aqu-sz), shown with the in-flight count ``io_now``.
"""

from __future__ import annotations

from perfanalysis.report import metrics as m
from perfanalysis.report.fetch import HostData
from perfanalysis.report.model import (
    BYTES_PER_SECOND,
    COUNT,
    MILLISECONDS,
    PER_SECOND,
    PERCENT,
    Metric,
    Panel,
    Section,
)
from perfanalysis.report.series import Values, divide, empty, present, scaled


def disk_section(
    data: HostData, busy_threshold: float | None, candidates: dict[str, float]
) -> Section:
    device = data.selection.disk
    count = data.grid.count
    counters = {
        name: data.get(measurement, device=device) if device else [None] * count
        for name, measurement in m.DISK_COUNTERS.items()
    }
    r = {
        name: data.rate(measurement, device=device) if device else empty(count)
        for name, measurement in m.DISK_COUNTERS.items()
    }
    in_flight: Values = data.get(m.DISK_IN_FLIGHT, device=device) if device else [None] * count
    has_data = present(*counters.values())
    read_latency = divide(r["read_time"], r["reads"], 1000)
    write_latency = divide(r["write_time"], r["writes"], 1000)
    busy = scaled(r["io_time"], 100)

    metrics = {
        "read_bytes": Metric("disk.read_bytes", "read", BYTES_PER_SECOND, r["read_bytes"]),
        "write_bytes": Metric("disk.write_bytes", "written", BYTES_PER_SECOND, r["written_bytes"]),
        "reads": Metric("disk.reads", "reads", PER_SECOND, r["reads"]),
        "writes": Metric("disk.writes", "writes", PER_SECOND, r["writes"]),
        "read_latency": Metric("disk.read_latency", "read", MILLISECONDS, read_latency),
        "write_latency": Metric("disk.write_latency", "write", MILLISECONDS, write_latency),
        "busy": Metric("disk.busy", "busy", PERCENT, busy),
        "queue": Metric(
            "disk.queue", "average queue (io_time_weighted)", COUNT, r["io_time_weighted"]
        ),
        "in_flight": Metric("disk.in_flight", "in flight (io_now)", COUNT, in_flight),
    }
    panels = [
        Panel(
            "disk.throughput",
            "Disk throughput",
            BYTES_PER_SECOND,
            [metrics["read_bytes"], metrics["write_bytes"]],
            has_data,
        ),
        Panel(
            "disk.iops",
            "Disk operations (IOPS)",
            PER_SECOND,
            [metrics["reads"], metrics["writes"]],
            has_data,
        ),
        Panel(
            "disk.latency",
            "Disk latency per operation",
            MILLISECONDS,
            [metrics["read_latency"], metrics["write_latency"]],
            has_data,
        ),
        Panel(
            "disk.busy",
            "Disk utilisation",
            PERCENT,
            [metrics["busy"]],
            has_data,
            y_max=100,
            threshold=busy_threshold,
        ),
        Panel(
            "disk.queue",
            "Disk queue depth",
            COUNT,
            [metrics["queue"], metrics["in_flight"]],
            has_data,
        ),
    ]
    table = [
        _relabel(metrics["read_bytes"], "disk read"),
        _relabel(metrics["write_bytes"], "disk written"),
        _relabel(metrics["reads"], "disk reads (IOPS)"),
        _relabel(metrics["writes"], "disk writes (IOPS)"),
        _relabel(metrics["read_latency"], "read latency"),
        _relabel(metrics["write_latency"], "write latency"),
        _relabel(metrics["busy"], "disk utilisation"),
        _relabel(metrics["queue"], "disk queue (average)"),
    ]
    return Section(
        "disk",
        "Disk I/O",
        device or "",
        panels,
        table,
        has_data,
        _note(device, candidates, has_data),
    )


def _relabel(metric: Metric, label: str) -> Metric:
    return Metric(metric.key, label, metric.unit, metric.values)


def _note(device: str | None, candidates: dict[str, float], has_data: list[bool]) -> str:
    if device is None:
        return "No disk statistics (node_disk_*) for this host in this range."
    if not any(has_data):
        known = ", ".join(sorted(candidates)) or "none"
        return f"No data for disk {device} in this range (disks with data: {known})."
    return ""
