"""Time-series charts as inline SVG: lines or stacked areas over a step grid, gaps shaded.

A value ``None`` breaks its line (nothing is drawn across missing data); the buckets without
underlying data are shaded grey. Longer series than the plot has pixels are reduced to each
pixel column's minimum and maximum (areas: the mean), so peaks stay visible.

Each line has a style of its own, which its legend entry shows (``line_styles``, ``swatch``): the
palette's ten colours solid, then each again dashed, dotted and dash-dotted, 40 in all. A chart
of more lines (hosts on the summary's charts, a host's filesystems) draws the 38 with the highest
peaks and, over all of them, the median and the maximum at each step (``fit_lines``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from perfanalysis.report.model import Metric, Panel
from perfanalysis.report.series import gaps
from perfanalysis.report.timerange import NICE_STEPS, Grid
from perfanalysis.report.units import nice_ticks, scale_for, tick_label

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#59a14f",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#bab0ac",
)
DASHES = ("", "7 3", "2 2.5", "9 3 2 3")  # solid, dashed, dotted, dash-dotted
LIMIT_DASH = "4 3"  # a line drawn as a limit (Metric.dashed: memory total, swap size)
MAX_LINES = len(PALETTE) * len(DASHES)  # lines a chart tells apart
GAP_FILL = "#e3e3e3"
THRESHOLD_COLOUR = "#c0392b"
THRESHOLD_DASH = "12 3 2 3 2 3"  # dash-dot-dot: no line has it
LABEL_CHAR_WIDTH = 6.0  # tick labels are 10.5 px: about this wide per character, in chart units
TICK_STEPS = (*NICE_STEPS, 172800, 604800)  # the step choices, plus 2 days and a week
Point = tuple[float, float | None]  # (bucket index, value); None breaks the line
Scale = Callable[[float], float]


@dataclass(frozen=True)
class Frame:
    width: int = 640
    height: int = 220
    left: int = 62
    right: int = 14
    top: int = 10
    bottom: int = 26

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom


FRAME = Frame()


def colours(count: int) -> list[str]:
    return [PALETTE[i % len(PALETTE)] for i in range(count)]


def line_styles(lines: Sequence[Metric]) -> list[tuple[str, str]]:
    """Each line's (colour, stroke-dasharray; "" solid): distinct for up to MAX_LINES lines."""
    return [
        (
            PALETTE[index % len(PALETTE)],
            LIMIT_DASH if metric.dashed else DASHES[index // len(PALETTE) % len(DASHES)],
        )
        for index, metric in enumerate(lines)
    ]


def swatch(colour: str, dash: str) -> str:
    """The CSS of a legend swatch drawn as the line is: solid, or the dash pattern in pixels."""
    if not dash:
        return f"background:{colour}"
    stops, position = [], 0.0
    for number, length in enumerate(float(x) for x in dash.split()):
        paint = colour if number % 2 == 0 else "transparent"
        stops.append(f"{paint} {position:g}px {position + length:g}px")
        position += length
    return f"background:repeating-linear-gradient(90deg,{','.join(stops)})"


def fit_lines(panel: Panel) -> Panel:
    """The panel with at most MAX_LINES lines, each told apart by its style: beyond that, the
    MAX_LINES - 2 lines with the highest peaks (in their order), then the median and the maximum
    of all the lines at each step, and a note saying so. Stacked panels are left as they are."""
    lines = panel.lines
    if panel.stacked or len(lines) <= MAX_LINES:
        return panel

    def peak(metric: Metric) -> float:
        return max((v for v in metric.values if v is not None), default=-math.inf)

    ranked = sorted(range(len(lines)), key=lambda i: (-peak(lines[i]), i))
    kept = [lines[i] for i in sorted(ranked[: MAX_LINES - 2])]
    columns = list(zip(*(m.values for m in lines), strict=True))

    def across(function: Callable[[list[float]], float]) -> list[float | None]:
        return [
            function(present) if (present := [v for v in column if v is not None]) else None
            for column in columns
        ]

    count = len(lines)
    key = panel.key
    summary = [
        Metric(f"{key}.median", f"median of all {count}", panel.unit, across(_median)),
        Metric(f"{key}.max", f"maximum of all {count}", panel.unit, across(max)),
    ]
    note = (
        f"{count} lines: the {len(kept)} with the highest peaks are drawn, with the median and "
        f"the maximum of all {count} at each step."
    )
    return replace(panel, lines=kept + summary, note=f"{panel.note} {note}".strip())


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def data_top(panel: Panel) -> float:
    """The largest value drawn (stacked: the largest sum), at least the threshold."""
    if panel.stacked:
        sums = [
            sum(v for v in column if v is not None)
            for column in zip(*(m.values for m in panel.lines), strict=True)
        ]
        top = max(sums, default=0.0)
    else:
        top = max((v for m in panel.lines for v in m.values if v is not None), default=0.0)
    return max(top, panel.threshold or 0.0)


def render(panel: Panel, grid: Grid, zone: ZoneInfo, shared_top: float | None = None) -> str:
    f = FRAME
    top = max(shared_top if shared_top is not None else data_top(panel), panel.y_max or 0.0)
    divisor, suffix = scale_for(panel.unit, top)
    ticks = nice_ticks(top / divisor if top > 0 else 1.0)
    y_top = ticks[-1] * divisor

    def x_of(index: float) -> float:
        return f.left + index / grid.count * f.plot_width

    def y_of(value: float) -> float:
        return f.top + f.plot_height * (1 - min(max(value / y_top, 0.0), 1.02))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {f.width} {f.height}" role="img" '
        f'aria-label="{escape(panel.title)}" class="chart-svg">'
    ]
    for first, after in gaps(panel.has_data):
        x0, x1 = x_of(first), x_of(after)
        parts.append(
            f'<rect class="gap" x="{x0:.1f}" y="{f.top}" width="{max(x1 - x0, 1.0):.1f}" height="{f.plot_height}" fill="{GAP_FILL}"/>'
        )
    for tick in ticks:
        y = y_of(tick * divisor)
        parts.append(
            f'<line x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e8e8e8"/>'
        )
        space = " " if panel.unit in ("bytes", "bytes/s") else ""
        label = tick_label(tick) + (space + suffix if tick else "")
        parts.append(
            f'<text x="{f.left - 6}" y="{y + 3.5:.1f}" text-anchor="end" class="tick">{escape(label)}</text>'
        )
    parts += _time_axis(grid, zone, x_of)
    parts += (
        _areas(panel, grid.count, x_of, y_of)
        if panel.stacked
        else _lines(panel, grid.count, x_of, y_of)
    )
    if panel.threshold is not None:
        y = y_of(panel.threshold)
        parts.append(
            f'<line class="threshold" x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{THRESHOLD_COLOUR}" stroke-dasharray="{THRESHOLD_DASH}" stroke-width="1.6"/>'
        )
    parts.append(
        f'<line x1="{f.left}" x2="{f.width - f.right}" y1="{f.top + f.plot_height}" y2="{f.top + f.plot_height}" stroke="#999"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _lines(panel: Panel, count: int, x_of: Scale, y_of: Scale) -> list[str]:
    drawn = []
    for metric, (colour, pattern) in zip(panel.lines, line_styles(panel.lines), strict=True):
        path = _path(envelope(metric.values, FRAME.plot_width), x_of, y_of)
        if path:
            dash = f' stroke-dasharray="{pattern}"' if pattern else ""
            drawn.append(
                f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.4" stroke-linejoin="round" stroke-linecap="round"{dash}/>'
            )
    return drawn


def _path(points: Sequence[Point], x_of: Scale, y_of: Scale) -> str:
    commands: list[str] = []
    pen_down = False
    for index, value in points:
        if value is None:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{x_of(index + 0.5):.1f},{y_of(value):.1f}")
        if not pen_down:
            commands.append("l0,0")  # a lone sample still shows as a dot (round caps)
        pen_down = True
    return "".join(commands)


def _areas(panel: Panel, count: int, x_of: Scale, y_of: Scale) -> list[str]:
    layers = [averaged(m.values, FRAME.plot_width) for m in panel.lines]
    if not layers:
        return []
    positions = [index for index, _ in layers[0]]
    below: list[float | None] = [0.0] * len(positions)
    drawn = []
    for number, layer in enumerate(layers):
        above = [
            None if b is None or v is None else b + v
            for b, (_, v) in zip(below, layer, strict=True)
        ]
        colour = PALETTE[number % len(PALETTE)]
        for run in _runs(above):
            top_edge = [f"{x_of(positions[i] + 0.5):.1f},{y_of(above[i] or 0.0):.1f}" for i in run]
            bottom_edge = [
                f"{x_of(positions[i] + 0.5):.1f},{y_of(below[i] or 0.0):.1f}" for i in reversed(run)
            ]
            drawn.append(
                f'<polygon points="{" ".join(top_edge + bottom_edge)}" fill="{colour}" fill-opacity="0.85" stroke="{colour}" stroke-width="0.6"/>'
            )
        below = above
    return drawn


def _runs(values: Sequence[float | None]) -> list[list[int]]:
    runs: list[list[int]] = []
    current: list[int] = []
    for index, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(index)
    if current:
        runs.append(current)
    return runs


def envelope(values: Sequence[float | None], columns: int) -> list[Point]:
    """Each column's minimum and maximum (in time order) when there are more values than columns."""
    if len(values) <= 2 * columns:
        return list(enumerate(values))
    size = math.ceil(len(values) / columns)
    points: list[Point] = []
    for start in range(0, len(values), size):
        chunk = [
            (start + i, v) for i, v in enumerate(values[start : start + size]) if v is not None
        ]
        if not chunk:
            points.append((float(start), None))
            continue
        low = min(chunk, key=lambda p: p[1])
        high = max(chunk, key=lambda p: p[1])
        points += sorted({low, high})
    return [(float(i), v) for i, v in points]


def averaged(values: Sequence[float | None], columns: int) -> list[Point]:
    """Each column's mean (None if any value is missing) when there are more values than columns."""
    if len(values) <= 2 * columns:
        return [(float(i), v) for i, v in enumerate(values)]
    size = math.ceil(len(values) / columns)
    points: list[Point] = []
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        mean = None if any(v is None for v in chunk) else sum(v or 0.0 for v in chunk) / len(chunk)
        points.append((start + (len(chunk) - 1) / 2, mean))
    return points


def _time_axis(grid: Grid, zone: ZoneInfo, x_of: Scale) -> list[str]:
    span = grid.end - grid.start
    interval = next(
        (s for s in TICK_STEPS if span / s <= 7),
        TICK_STEPS[-1] * math.ceil(span / TICK_STEPS[-1] / 7),
    )
    offset = int(datetime.fromtimestamp(grid.start, zone).utcoffset().total_seconds())  # type: ignore[union-attr]
    first = math.ceil((grid.start + offset) / interval) * interval - offset
    shape = (
        "%H:%M:%S"
        if interval < 60
        else "%H:%M"
        if span <= 86400
        else "%a %H:%M"
        if interval < 86400
        else "%a %d %b"
    )
    parts = []
    drawn_until = -math.inf  # right end of the last label drawn
    for moment in range(first, grid.end + 1, interval):
        x = x_of((moment - grid.start) / grid.step)
        label = datetime.fromtimestamp(moment, zone).strftime(shape)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{FRAME.top + FRAME.plot_height}" y2="{FRAME.top + FRAME.plot_height + 4}" stroke="#999"/>'
        )
        anchor, left, right = _placed(x, len(label) * LABEL_CHAR_WIDTH)
        if left < drawn_until + 6:
            continue  # it would overlap the previous label: the tick stays, unlabelled
        drawn_until = right
        parts.append(
            f'<text x="{x:.1f}" y="{FRAME.height - 8}" text-anchor="{anchor}" class="tick">{escape(label)}</text>'
        )
    return parts


def _placed(x: float, width: float) -> tuple[str, float, float]:
    """Centred under its tick, unless that would cut the label off at an edge of the chart."""
    if x + width / 2 > FRAME.width - 2:
        return "end", x - width, x
    if x - width / 2 < 2:
        return "start", x, x + width
    return "middle", x - width / 2, x + width / 2
