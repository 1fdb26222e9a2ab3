"""From a configuration to an analysed report: credentials, discovery, step, values, analysis."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from perfanalysis.report.config import ReportConfig, TimeSpec
from perfanalysis.report.cpu import cpu_section
from perfanalysis.report.detect import sampling_interval
from perfanalysis.report.disk import disk_section
from perfanalysis.report.fetch import (
    Discovery,
    HostData,
    chunk_buckets,
    data_extent,
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
from perfanalysis.report.recommend import Recommendation, recommend, step_warnings, trend_notes
from perfanalysis.report.source import Source, open_source
from perfanalysis.report.stats import summarise
from perfanalysis.report.timerange import (
    NICE_STEPS,
    Grid,
    clock_offset,
    format_duration,
    format_instant,
    nice_step,
    offset_changes,
    written_duration,
)


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
    notes: list[str] = field(default_factory=list)  # about the steps: in the header and on stderr
    # trends not forecast for too little data: in the header, the recommendations and on stderr
    trend_notes: list[str] = field(default_factory=list)


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
        warnings = period_warnings(config.time, grid, start, end)
        if not any(_holds_data(host) for host in data.values()):
            warnings.append(no_data_warning(config, grid, data_extent(reader, config.hosts)))
    finally:
        reader.close()
    hosts = [analyse_host(data[d.host], d, config) for d in found]
    link = _sizing_link(config.tenant, source, settings["admin_url"])
    recommendations = recommend(hosts, config.thresholds, link, timezone=config.time.timezone)
    warnings += step_warnings(hosts)
    notes = step_notes(config.time, grid)
    unforecast = trend_notes(hosts, config.thresholds)
    for warning in warnings:
        print(f"perfanalysis report: warning: {warning}", file=stream or sys.stderr)
    for note in notes + unforecast:
        print(f"perfanalysis report: note: {note}", file=stream or sys.stderr)
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
        notes,
        unforecast,
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
    Steps are on the clock of ``time.timezone`` (timerange), with its offset at the end of a
    ``last`` range and at the start of an absolute one.
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
    zone = ZoneInfo(spec.timezone)
    if spec.last is not None:  # end at the last whole step: a step in progress is incomplete
        offset = clock_offset(step, zone, end)
        last = math.floor((end - offset) / step) * step + offset
        count = max(1, -(-spec.last // step))
        return Grid(last - count * step, step, count)
    return Grid.covering(start, end, step, clock_offset(step, zone, start))


def period_warnings(spec: TimeSpec, grid: Grid, start: float, end: float) -> list[str]:
    """What the grid adds to the range asked for: an absolute range not on whole steps is
    widened to them, and a ``last`` that is no whole number of steps starts earlier; the figures
    then hold data from outside the range, which the report says (how much, and how to avoid
    it). A ``last`` range's end, the step in progress left out, is said on the Period line."""
    zone = ZoneInfo(spec.timezone)
    step = written_duration(grid.step)

    def at(epoch: float) -> str:
        return format_instant(epoch, zone)

    if spec.last is not None:
        extra = grid.count * grid.step - spec.last
        if extra <= 0:
            return []
        return [
            f"time.last ({written_duration(spec.last)}) is not a whole number of steps of "
            f"{step}: the period is {grid.count} steps, {format_duration(extra)} longer, from "
            f"{at(grid.start)}, and the figures include the data of that time; give a "
            "time.last that is a multiple of time.step to report exactly that long"
        ]
    early, late = start - grid.start, grid.end - end
    if early <= 0 and late <= 0:
        return []
    added = " and ".join(
        part
        for part in (
            f"{format_duration(early)} before time.start" if early > 0 else "",
            f"{format_duration(late)} after time.end" if late > 0 else "",
        )
        if part
    )
    advice = (
        "give a start and end on whole steps of the time zone's clock (as these) to report "
        "exactly the range asked for"
    )
    shifts = {after - before for _, before, after in _shifted(zone, grid)}
    if shifts:
        fitting = max(x for x in NICE_STEPS if all(shift % x == 0 for shift in shifts))
        advice += (
            f"; {spec.timezone} changes its UTC offset within the period, so steps of {step} "
            "cannot all start on its clock (see the note on the steps): steps of at most "
            f"{written_duration(fitting)} can"
        )
    return [
        f"time.start and time.end are not both on whole steps of {step} in {spec.timezone}: the "
        f"period was widened to {at(grid.start)} to {at(grid.end)}, {added}, and the figures "
        f"include the data of that time; {advice}"
    ]


def _shifted(zone: ZoneInfo, grid: Grid) -> list[tuple[int, int, int]]:
    """The changes of the zone's UTC offset in the period that move the steps off its clock."""
    return [
        change
        for change in offset_changes(zone, grid.start, grid.end)
        if (change[2] - change[1]) % grid.step
    ]


def step_notes(spec: TimeSpec, grid: Grid) -> list[str]:
    """A change of the zone's UTC offset in the period that the step does not divide (daylight
    saving time with steps over 1h): the steps, fixed lengths of time, leave the clock on one
    side of it (timerange)."""
    zone = ZoneInfo(spec.timezone)
    notes = []
    for moment, before, after in _shifted(zone, grid):
        edge_before = grid.start + (moment - 1 - grid.start) // grid.step * grid.step
        edge_after = edge_before + grid.step

        def clock(epoch: int) -> str:
            return datetime.fromtimestamp(epoch, zone).strftime("%H:%M")

        notes.append(
            f"{spec.timezone} changes from {_utc(before)} to {_utc(after)} at "
            f"{format_instant(moment, zone)}, within the period: every step is a fixed "
            f"{written_duration(grid.step)} of time (InfluxDB groups by fixed lengths), so the "
            f"steps start at {clock(edge_before)} on the clock before the change and at "
            f"{clock(edge_after)} after it"
        )
    return notes


def _utc(offset: int) -> str:
    sign = "+" if offset >= 0 else "-"
    hours, rest = divmod(abs(offset), 3600)
    return f"UTC{sign}{hours:02d}:{rest // 60:02d}"


def _holds_data(data: HostData) -> bool:
    return any(value is not None for values in data.series.values() for value in values)


def no_data_warning(config: ReportConfig, grid: Grid, extent: dict[str, tuple[int, int]]) -> str:
    """No host has a single value in the period: every figure is empty. Where their data is."""
    zone = ZoneInfo(config.time.timezone)
    known = "; ".join(
        f"{host}'s from {format_instant(first, zone)} to {format_instant(last, zone)}"
        for host, (first, last) in sorted(extent.items())
    )
    return (
        f"no data at all from {', '.join(config.hosts)} in the period "
        f"({format_instant(grid.start, zone)} to {format_instant(grid.end, zone)}): every figure "
        f"is empty. The hosts' CPU data is {known or 'nowhere'}: check time.start and time.end "
        "(or time.last) and time.timezone"
    )


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
    filesystems, forecasts = filesystem_section(
        data, limits.filesystem_used_percent, limits.filesystem_full_within
    )
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
