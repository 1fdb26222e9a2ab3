"""From a configuration to an analysed report: credentials, discovery, step, values, analysis."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from perfanalysis.report.config import ReportConfig, TimeSpec
from perfanalysis.report.cpu import cpu_section
from perfanalysis.report.detect import sampling_interval
from perfanalysis.report.disk import disk_section
from perfanalysis.report.fetch import (
    Discovery,
    HostData,
    chunk_buckets,
    discover,
    known_hosts,
    read_values,
    select_devices,
)
from perfanalysis.report.filesystem import filesystem_section
from perfanalysis.report.influx import ReportError
from perfanalysis.report.memory import memory_section
from perfanalysis.report.model import HostReport
from perfanalysis.report.network import network_section
from perfanalysis.report.progress import Progress
from perfanalysis.report.recommend import Recommendation, recommend, step_warnings
from perfanalysis.report.source import Source, open_source
from perfanalysis.report.stats import summarise
from perfanalysis.report.timerange import Grid, nice_step, written_duration


@dataclass
class Report:
    config: ReportConfig
    grid: Grid
    database: str
    hosts: list[HostReport]
    recommendations: list[Recommendation]
    admin_url: str
    generated_at: datetime
    timings: dict[str, float] = field(default_factory=dict)
    requested: tuple[float, float] | None = None  # the range asked for (epoch seconds)
    warnings: list[str] = field(default_factory=list)  # shown atop the report and on stderr


def build_report(
    config: ReportConfig,
    settings: dict[str, Any],
    now: float | None = None,
    stream: TextIO | None = None,
) -> Report:
    started = time.monotonic()
    timings: dict[str, float] = {}
    source = open_source(config, settings)
    reader = source.reader
    try:
        start, end = requested_range(config.time, time.time() if now is None else now)
        _check_hosts(config, known_hosts(reader), reader.database)
        with ThreadPoolExecutor(max_workers=settings["influxdb_concurrency"]) as pool:
            found = list(
                pool.map(
                    lambda host: discover(reader, host, int(start), int(end) + 1), config.hosts
                )
            )
        timings["discovery"] = time.monotonic() - started
        intervals = [sampling_interval(d.sample_times) for d in found]
        try:
            grid = report_grid(config.time, start, end, intervals)
        except ReportError as exc:
            raise ReportError(f"{config.source}: {exc}") from None
        selections = [_selection(config, d) for d in found]
        tasks = len(selections) * len(grid.chunks(chunk_buckets(grid.step)))
        progress = Progress(
            f"reading {len(selections)} host(s) from {reader.database}",
            tasks,
            stream,
            settings["progress"],
        )
        data = read_values(
            reader,
            selections,
            grid,
            chunk_buckets(grid.step),
            settings["influxdb_concurrency"],
            progress.advance,
        )
        progress.finish()
        timings["read"] = time.monotonic() - started - timings["discovery"]
    finally:
        reader.close()
    hosts = [analyse_host(data[d.host], d, config) for d in found]
    link = _sizing_link(config.tenant, source, settings["admin_url"])
    recommendations = recommend(hosts, config.thresholds, link, timezone=config.time.timezone)
    warnings = step_warnings(hosts)
    for warning in warnings:
        print(f"perfanalysis report: warning: {warning}", file=stream or sys.stderr)
    timings["analysis"] = time.monotonic() - started - timings["discovery"] - timings["read"]
    return Report(
        config,
        grid,
        reader.database,
        hosts,
        recommendations,
        settings["admin_url"],
        datetime.now(UTC),
        timings,
        (start, end),
        warnings,
    )


def requested_range(spec: TimeSpec, now: float) -> tuple[float, float]:
    if spec.last is not None:
        return now - spec.last, now
    assert spec.start is not None
    assert spec.end is not None
    return spec.start.timestamp(), spec.end.timestamp()


def report_grid(spec: TimeSpec, start: float, end: float, intervals: list[float | None]) -> Grid:
    """The buckets: the configured step, or the smallest nice step that gives at most
    ``max_points`` buckets and at least two samples per bucket (so jitter leaves none empty).

    A relative range (``last``) ends at the last whole step before now: the step in progress is
    left out, as its counters' rates would be counted over a step not yet over (the header says
    how much of it is left out). The range holds at least two steps (a configured step is
    checked with the configuration; an automatic one here, as it follows the sampling interval).
    """
    step = spec.step
    if step is None:
        sampled = max((i for i in intervals if i), default=0.0)
        step = nice_step(max((end - start) / spec.max_points, 2 * sampled, 1))
        if 2 * step > end - start:
            key = "time.last" if spec.last is not None else "time.start and time.end"
            why = (
                f", two samples of the data's sampling interval of {written_duration(round(sampled))}"
                if sampled and nice_step(2 * sampled) == step
                else ""
            )
            raise ReportError(
                f"{key}: the range ({written_duration(int(end - start))}) is too short for two "
                f"steps of {written_duration(step)} (step auto{why}), and a rate (CPU, disk, "
                "network) needs a step and the one before it: give a range of at least "
                f"{written_duration(2 * step)}"
            )
    if spec.last is not None:  # end at the last whole step: a step in progress is incomplete
        last = int(end // step) * step
        count = max(1, -(-spec.last // step))
        return Grid(last - count * step, step, count)
    return Grid.covering(start, end, step)


def _check_hosts(config: ReportConfig, known: set[str], database: str) -> None:
    unknown = [host for host in config.hosts if host not in known]
    if unknown:
        listed = ", ".join(sorted(known)[:20]) or "none"
        raise ReportError(
            f"{config.source}: hosts: no data ever for {', '.join(unknown)} in "
            f"{database} (hosts with CPU data: {listed})"
        )


def _selection(config: ReportConfig, found: Discovery) -> Any:
    return select_devices(
        found,
        config.disk.for_host(found.host),
        config.network.for_host(found.host),
        config.mountpoints.for_host(found.host),
        config.exclude_fstypes,
    )


def analyse_host(data: HostData, found: Discovery, config: ReportConfig) -> HostReport:
    limits = config.thresholds
    filesystems, forecasts = filesystem_section(data, limits.filesystem_used_percent)
    sections = {
        "cpu": cpu_section(data, limits.cpu_busy_percent),
        "memory": memory_section(data, limits.memory_used_percent),
        "disk": disk_section(data, limits.disk_busy_percent, found.disk_bytes),
        "network": network_section(data, found.network_bytes),
        "filesystem": filesystems,
    }
    host = HostReport(
        data.selection.host,
        found.collector,
        data.grid,
        sections,
        forecasts=forecasts,
        sampling_interval=sampling_interval(found.sample_times),
    )
    wanted = sorted({*config.percentiles, limits.percentile})
    for section in sections.values():
        for metric in section.table:
            host.summaries[metric.key] = summarise(metric.values, wanted)
    return host


def _sizing_link(
    slug: str, source: Source, admin_url: str
) -> Callable[[HostReport], tuple[str, str]]:
    def link(host: HostReport) -> tuple[str, str]:
        ident = (source.collector_ids or {}).get(host.collector or "")
        if source.collector_ids is None:
            path = f"/tenants/{slug}"
            text = f"the right-sizing ranking of collector {host.collector or host.host} from the tenant's page"
        elif ident is None:
            path, text = (
                f"/tenants/{slug}",
                f"the tenant's collectors (collector {host.collector or 'unknown'} not found in the admin database)",
            )
        else:
            path, text = (
                f"/tenants/{slug}/collectors/{ident}/rightsizing",
                "the right-sizing ranking",
            )
        return (admin_url.rstrip("/") + path if admin_url else path), text

    return link
