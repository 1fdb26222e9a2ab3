"""Filesystems: fill (``100 * (1 - avail / size)``, as the alert rules count it) per mountpoint,
and when each will be full at the rate fitted over the range (least squares on free bytes),
counted from its latest sample; forecast only from enough data for the horizon asked (``trend``)."""

from __future__ import annotations

from collections.abc import Sequence

from perfanalysis.report import metrics as m
from perfanalysis.report.fetch import HostData
from perfanalysis.report.model import PERCENT, FillForecast, Metric, Panel, Section
from perfanalysis.report.series import combine, last_present, present
from perfanalysis.report.timerange import Grid
from perfanalysis.report.trend import fitted_slope, short_data


def filesystem_section(
    data: HostData, used_threshold: float | None, horizon: int | None
) -> tuple[Section, list[FillForecast]]:
    """``horizon``: how far ahead the fill is forecast (thresholds.filesystem_full_within); None:
    not at all."""
    mounts = data.selection.mountpoints
    lines, forecasts, raw = [], [], []
    for mount in mounts:
        avail = data.get(m.FILESYSTEM["avail"], mountpoint=mount)
        size = data.get(m.FILESYSTEM["size"], mountpoint=mount)
        raw += [avail, size]
        fill = combine(lambda a, s: None if s == 0 else 100 * (1 - a / s), avail, size)
        lines.append(Metric(f"filesystem.used_percent:{mount}", mount, PERCENT, fill))
        forecasts.append(forecast(mount, data.grid, avail, fill, horizon))
    has_data = present(*raw) if raw else [False] * data.grid.count
    panel = Panel(
        "filesystem.fill",
        "Filesystem fill",
        PERCENT,
        lines,
        has_data,
        y_max=100,
        threshold=used_threshold,
    )
    table = [Metric(x.key, f"{x.label} used", PERCENT, x.values) for x in lines]
    note = "" if mounts else "No filesystems reported (or all of an excluded type) in this range."
    subject = ", ".join(mounts)
    return Section("filesystem", "Filesystems", subject, [panel], table, has_data, note), forecasts


def forecast(
    mount: str,
    grid: Grid,
    avail: Sequence[float | None],
    fill: Sequence[float | None],
    horizon: int | None,
) -> FillForecast:
    latest_fill = last_present(fill)
    used = latest_fill[1] if latest_fill else None
    latest_avail = last_present(avail)
    if horizon is None or latest_avail is None:
        return FillForecast(mount, used, None, None)
    short = short_data([a is not None for a in avail], grid.step, horizon)
    if short is not None:
        return FillForecast(mount, used, None, None, not_forecast=short)
    slope = fitted_slope([(grid.time_of(i), a) for i, a in enumerate(avail) if a is not None])
    if slope is None:
        return FillForecast(mount, used, None, None)
    index, free = latest_avail
    seconds = free / -slope if slope < 0 else None
    return FillForecast(mount, used, seconds, slope * 86400, grid.time_of(index))
