"""Filesystems: fill (``100 * (1 - avail / size)``, as the alert rules count it) per mountpoint,
and when each will be full at the rate fitted over the range (least squares on free bytes),
counted from its latest sample."""

from __future__ import annotations

import math
from collections.abc import Sequence

from perfanalysis.report import metrics as m
from perfanalysis.report.fetch import HostData
from perfanalysis.report.model import PERCENT, FillForecast, Metric, Panel, Section
from perfanalysis.report.series import combine, last_present, present
from perfanalysis.report.timerange import Grid

MIN_FIT_POINTS = 10


def filesystem_section(
    data: HostData, used_threshold: float | None
) -> tuple[Section, list[FillForecast]]:
    mounts = data.selection.mountpoints
    lines, forecasts, raw = [], [], []
    for mount in mounts:
        avail = data.get(m.FILESYSTEM["avail"], mountpoint=mount)
        size = data.get(m.FILESYSTEM["size"], mountpoint=mount)
        raw += [avail, size]
        fill = combine(lambda a, s: None if s == 0 else 100 * (1 - a / s), avail, size)
        lines.append(Metric(f"filesystem.used_percent:{mount}", mount, PERCENT, fill))
        forecasts.append(forecast(mount, data.grid, avail, fill))
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
    mount: str, grid: Grid, avail: Sequence[float | None], fill: Sequence[float | None]
) -> FillForecast:
    latest_fill = last_present(fill)
    latest_avail = last_present(avail)
    slope = fitted_slope([(grid.time_of(i), a) for i, a in enumerate(avail) if a is not None])
    if slope is None or latest_avail is None:
        return FillForecast(mount, latest_fill[1] if latest_fill else None, None, None)
    index, free = latest_avail
    seconds = free / -slope if slope < 0 else None
    used = latest_fill[1] if latest_fill else None
    return FillForecast(mount, used, seconds, slope * 86400, grid.time_of(index))


def fitted_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of y over x; None with too few points or no spread in x."""
    if len(points) < MIN_FIT_POINTS:
        return None
    n = len(points)
    mean_x = math.fsum(x for x, _ in points) / n
    mean_y = math.fsum(y for _, y in points) / n
    spread = math.fsum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return math.fsum((x - mean_x) * (y - mean_y) for x, y in points) / spread
