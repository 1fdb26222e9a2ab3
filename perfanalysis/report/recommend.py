"""Recommendations: each rule compares a host's figures with a threshold of the configuration.

* CPU busy at the thresholds' percentile above ``cpu_busy_percent``: a larger machine type, with a
  link to the collector's right-sizing ranking in the admin app.
* Memory used at that percentile above ``memory_used_percent``: more memory (same link).
* Disk utilisation at that percentile above ``disk_busy_percent``: faster storage.
* A filesystem's latest fill above ``filesystem_used_percent``; or full within
  ``filesystem_full_within`` of the report's end at the rate fitted over the range, counted from
  its latest sample. Forecast only from data spanning a quarter of ``filesystem_full_within``
  (``trend``): with less, ``trend_notes`` says that no trend was forecast, and why.
* Network errors (receive + transmit) above ``network_errors_per_second`` on average.
* Steps without data above ``data_missing_percent``: check the exporter; or, when the step is
  shorter than the host's sampling interval (so that steps without a sample are the step's doing),
  set a longer step (``step_warnings`` puts the same advice atop the report and on stderr).

Times are shown in the configuration's ``time.timezone``, as everywhere in the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from perfanalysis.report import series
from perfanalysis.report.config import Thresholds
from perfanalysis.report.model import FillForecast, HostReport
from perfanalysis.report.timerange import Grid, format_duration, nice_step, written_duration
from perfanalysis.report.trend import HORIZON_PER_SPAN, MIN_POINTS, ShortData
from perfanalysis.report.units import format_value

LinkFor = Callable[[HostReport], tuple[str, str]]  # (url or path, description)


@dataclass(frozen=True)
class Recommendation:
    host: str
    area: str  # cpu, memory, disk, filesystem, network, data
    text: str
    link: str = ""  # a URL, or an admin-app path when no admin URL is configured
    link_text: str = ""


def recommend(
    hosts: Sequence[HostReport], limits: Thresholds, sizing_link: LinkFor, *, timezone: str
) -> list[Recommendation]:
    """``timezone``: the IANA zone times are shown in (the configuration's time.timezone)."""
    zone = ZoneInfo(timezone)
    found: list[Recommendation] = []
    for host in hosts:
        found += _cpu_and_memory(host, limits, sizing_link)
        found += _disk(host, limits)
        found += _filesystems(host, limits, zone)
        found += _network(host, limits)
        found += _missing_data(host, limits, zone)
    return found


def _when(epoch: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M %Z")


def suggested_step(interval: float) -> int:
    """The step to suggest for data sampled every ``interval`` seconds: as step auto takes it,
    two samples a step, so sampling jitter leaves no step empty."""
    return nice_step(2 * interval)


def step_warnings(hosts: Sequence[HostReport]) -> list[str]:
    """A warning when the step is shorter than some host's sampling interval."""
    below = [h for h in hosts if h.step_below_sampling and h.sampling_interval is not None]
    if not below:
        return []
    step = below[0].grid.step
    longest = max(h.sampling_interval or 0.0 for h in below)
    listed = ", ".join(f"{h.host} ({format_duration(h.sampling_interval or 0)})" for h in below)
    return [
        f"time.step ({written_duration(step)}) is shorter than the sampling interval of "
        f"{listed}: some steps cannot hold a sample, and a rate (CPU, disk, network) needs a "
        "sample in a step and in the one before it, so those figures are missing, and the steps "
        "without data are the step's doing, not the exporter's; set time.step to at least "
        f"{written_duration(suggested_step(longest))} (two samples or more a step, as auto "
        "would choose), or auto"
    ]


def trend_notes(hosts: Sequence[HostReport], limits: Thresholds) -> list[str]:
    """The filesystems whose fill was not forecast, for too little data: one note per reason,
    naming them, what was missing and what to change (shown atop the report, above the
    recommendations and on stderr), where a too short period used to give no word at all."""
    within = limits.filesystem_full_within
    if within is None:
        return []
    reasons: dict[ShortData, dict[str, list[str]]] = {}
    for host in hosts:
        for fill in host.forecasts:
            if fill.not_forecast is not None:
                mounts = reasons.setdefault(fill.not_forecast, {})
                mounts.setdefault(host.host, []).append(fill.mountpoint)
    notes = []
    for short, mounts in reasons.items():
        where = "; ".join(f"{host} {', '.join(names)}" for host, names in mounts.items())
        fixes = []
        if short.span_short:
            fixes.append("report a longer period")
            longest = HORIZON_PER_SPAN * short.span
            if longest >= 60:
                fixes[-1] += (
                    ", or set thresholds.filesystem_full_within to at most "
                    f"{written_duration(longest - longest % 60)}"
                )
        if short.points_short:
            fixes.append("give a shorter time.step, for more steps with data")
        notes.append(
            f"filesystem fill trend not forecast ({where}): {short}, to forecast "
            f"{written_duration(within)} ahead (thresholds.filesystem_full_within). A trend is "
            f"extrapolated at most {HORIZON_PER_SPAN} times as far ahead as its data spans (as "
            f"node-mixin's alert, 24h ahead from 6h), and from {MIN_POINTS} steps with data or "
            f"more: {'; '.join(fixes)}"
        )
    return notes


def _at_percentile(host: HostReport, key: str, limits: Thresholds) -> float | None:
    summary = host.summaries.get(key)
    return summary.percentiles.get(limits.percentile) if summary else None


def _cpu_and_memory(
    host: HostReport, limits: Thresholds, sizing_link: LinkFor
) -> list[Recommendation]:
    found = []
    p = f"p{limits.percentile:g}"
    cpu = _at_percentile(host, "cpu.busy", limits)
    if limits.cpu_busy_percent is not None and cpu is not None and cpu > limits.cpu_busy_percent:
        link, text = sizing_link(host)
        found.append(
            Recommendation(
                host.host,
                "cpu",
                f"CPU busy {p} is {cpu:.1f}%, above {limits.cpu_busy_percent:g}%: consider a larger "
                "machine type (more or faster vCPUs).",
                link,
                text,
            )
        )
    memory = _at_percentile(host, "memory.used_percent", limits)
    if (
        limits.memory_used_percent is not None
        and memory is not None
        and memory > limits.memory_used_percent
    ):
        link, text = sizing_link(host)
        found.append(
            Recommendation(
                host.host,
                "memory",
                f"Memory used {p} is {memory:.1f}%, above {limits.memory_used_percent:g}%: add "
                "memory or move to a machine type with more of it.",
                link,
                text,
            )
        )
    return found


def _disk(host: HostReport, limits: Thresholds) -> list[Recommendation]:
    busy = _at_percentile(host, "disk.busy", limits)
    if limits.disk_busy_percent is None or busy is None or busy <= limits.disk_busy_percent:
        return []
    device = host.sections["disk"].subject
    return [
        Recommendation(
            host.host,
            "disk",
            f"Disk {device} was busy {busy:.1f}% of the time at p{limits.percentile:g}, above "
            f"{limits.disk_busy_percent:g}%: it is saturated; consider faster storage (more IOPS "
            "and throughput) or spreading the I/O over more disks.",
        )
    ]


def _filesystems(host: HostReport, limits: Thresholds, zone: ZoneInfo) -> list[Recommendation]:
    found = []
    for fill in host.forecasts:
        if (
            limits.filesystem_used_percent is not None
            and fill.used_percent is not None
            and fill.used_percent > limits.filesystem_used_percent
        ):
            found.append(
                Recommendation(
                    host.host,
                    "filesystem",
                    f"Filesystem {fill.mountpoint} is {fill.used_percent:.1f}% full, above "
                    f"{limits.filesystem_used_percent:g}%: free space or grow it.",
                )
            )
        full = _full_by_trend(host, fill, limits.filesystem_full_within, zone)
        if full is not None:
            found.append(Recommendation(host.host, "filesystem", full))
    return found


def _full_by_trend(
    host: HostReport, fill: FillForecast, within: float | None, zone: ZoneInfo
) -> str | None:
    """The advice when the trend fills the filesystem within ``within`` of the report's end."""
    if within is None or fill.full_at is None:
        return None
    remaining = fill.full_at - host.grid.end
    if remaining > within:
        return None
    when = _when(fill.full_at, zone)
    rate = format_value(-(fill.bytes_per_day or 0), "bytes")
    trend = f"Filesystem {fill.mountpoint} fills by {rate} a day: at that rate it"
    if remaining <= 0:
        return (
            f"{trend} was already full by the end of the period (around {when}, after its "
            "last sample): check it now, free space or grow it."
        )
    return (
        f"{trend} is full in about {format_duration(remaining)} (around {when}): free space "
        "or grow it before then."
    )


def _network(host: HostReport, limits: Thresholds) -> list[Recommendation]:
    errors = host.metric("network.errors")
    if limits.network_errors_per_second is None or errors is None:
        return []
    present = [x for x in errors.values if x is not None]
    if not present:
        return []
    mean = sum(present) / len(present)
    if mean <= limits.network_errors_per_second:
        return []
    count = sum(present) * host.grid.step
    device = host.sections["network"].subject
    return [
        Recommendation(
            host.host,
            "network",
            f"Interface {device} had {count:,.0f} receive and transmit errors ({mean:.3g}/s on "
            f"average, above {limits.network_errors_per_second:g}/s): check the link (cable, duplex, "
            "driver, MTU) and the switch port.",
        )
    ]


def _missing_data(host: HostReport, limits: Thresholds, zone: ZoneInfo) -> list[Recommendation]:
    missing = 100 * (1 - host.coverage)
    if limits.data_missing_percent is None or missing <= limits.data_missing_percent:
        return []
    if host.step_below_sampling and host.sampling_interval is not None:
        step, interval = host.grid.step, host.sampling_interval
        return [
            Recommendation(
                host.host,
                "data",
                f"{missing:.1f}% of the steps have no data from this host, but the step "
                f"({written_duration(step)}) is shorter than its sampling interval "
                f"({format_duration(interval)}): steps without a sample are unavoidable whatever "
                "the exporter does, and rates (CPU, disk, network) need a sample in two adjacent "
                f"steps. Set time.step to at least {written_duration(suggested_step(interval))}, "
                "or auto, and run the report again to see whether data is really missing.",
            )
        ]
    runs = series.gaps(host.has_data)
    grid = host.grid
    exporter = "check that its exporter runs and pushes (perfanalysis_exporter_push_* metrics)"
    if runs == [(0, grid.count)]:
        return [
            Recommendation(
                host.host, "data", f"No data from this host in the whole period: {exporter}."
            )
        ]
    if runs and runs[0][0] == 0:  # a late start: no data before some step, data after
        first = runs[0][1]
        text = (
            f"{missing:.1f}% of the period has no data from this host: its data starts only at "
            f"{_when(grid.time_of(first), zone)}, {format_duration(first * grid.step)} into the "
            "period (a host added, or an exporter started, then)"
        )
        later = runs[1:]
        if not later:
            return [Recommendation(host.host, "data", text + "; no step is missing after that.")]
        return [
            Recommendation(
                host.host, "data", f"{text}; after that, {_gaps(later, grid, zone)}: {exporter}."
            )
        ]
    return [
        Recommendation(
            host.host,
            "data",
            f"{missing:.1f}% of the period has no data from this host ({_gaps(runs, grid, zone)}): "
            f"{exporter}.",
        )
    ]


def _gaps(runs: Sequence[tuple[int, int]], grid: Grid, zone: ZoneInfo) -> str:
    """``2 gaps, the longest 30m from 2025-01-01 10:00 CET``."""
    longest = max(runs, key=lambda run: run[1] - run[0]) if runs else (0, 0)
    since = _when(grid.time_of(longest[0]), zone)
    span = format_duration((longest[1] - longest[0]) * grid.step)
    return f"{len(runs)} gap{'s' if len(runs) != 1 else ''}, the longest {span} from {since}"
