"""The report as one self-contained HTML page: inline CSS and SVG, no script, no external request.

Every chart is a ``<figure class="chart" data-section=... data-chart=... data-host=...>``; each
section puts the hosts' figures of a chart side by side, on a shared scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from perfanalysis.report import svg
from perfanalysis.report.build import Report
from perfanalysis.report.model import PERCENT, Metric, Panel
from perfanalysis.report.series import gaps
from perfanalysis.report.style import STYLE
from perfanalysis.report.summary import executive_summary
from perfanalysis.report.tables import percentile_table
from perfanalysis.report.timerange import format_duration, written_duration
from perfanalysis.report.trend import HORIZON_PER_SPAN, MIN_POINTS, span_needed
from perfanalysis.report.units import NO_VALUE

SECTIONS = ("cpu", "memory", "disk", "network", "filesystem")


def render_page(report: Report) -> str:
    config = report.config
    zone = ZoneInfo(config.time.timezone)
    body = [
        _header(report, zone),
        executive_summary(report, _figure_row(_overview_panels(report), report, zone, "summary")),
    ]
    for key in SECTIONS:
        body.append(_section(report, key, zone))
    body.append(_recommendations(report))
    body.append(_method(report, zone))
    title = escape(config.heading)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


def when(epoch: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _period(report: Report, zone: ZoneInfo) -> str:
    """The period reported; for a range up to now, what of it is left out: the step in progress
    (the report ends at the last whole step)."""
    grid = report.grid
    text = f"{when(grid.start, zone)} to {when(grid.end, zone)} ({format_duration(grid.end - grid.start)})"
    if report.config.time.last is not None and report.requested is not None:
        now = report.requested[1]
        if now - grid.end >= 1:
            text += (
                f"; it ends at the last whole step, so the last {format_duration(now - grid.end)} "
                f"(up to {when(now, zone)}), a step still in progress, is left out"
            )
    return text


def _header(report: Report, zone: ZoneInfo) -> str:
    grid, config = report.grid, report.config
    facts = [
        ("Tenant", config.tenant),
        ("Hosts", ", ".join(config.hosts)),
        ("Period", _period(report, zone)),
        ("Resolution", f"one value per {format_duration(grid.step)} ({grid.count:,} steps)"),
        ("Source", f"InfluxDB database {report.database}, points of tenant {config.tenant}"),
        ("Generated", report.generated_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")),
    ]
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    warnings = "".join(
        f'<p class="warning" role="alert"><strong>Warning:</strong> {escape(text)}</p>'
        for text in report.warnings
    ) + "".join(f'<p class="note">{escape(text)}</p>' for text in report.notes + report.trend_notes)
    nav = "".join(
        f'<a href="#{key}">{label}</a>'
        for key, label in (
            ("summary", "Summary"),
            ("cpu", "CPU"),
            ("memory", "Memory"),
            ("disk", "Disk"),
            ("network", "Network"),
            ("filesystem", "Filesystems"),
            ("recommendations", "Recommendations"),
            ("method", "Method"),
        )
    )
    return f'<header><h1>{escape(report.config.heading)}</h1><dl class="facts">{rows}</dl>{warnings}<nav>{nav}</nav></header>'


def _overview_panels(report: Report) -> list[Panel]:
    """Hosts on one chart: CPU busy and memory used, one line per host."""
    hosts = report.hosts
    limits = report.config.thresholds

    def across(key: str, title: str, threshold: float | None) -> Panel:
        lines = [
            Metric(
                f"{key}:{h.host}",
                h.host,
                PERCENT,
                (h.metric(key) or Metric(key, "", PERCENT, [None] * report.grid.count)).values,
            )
            for h in hosts
        ]
        has_data = [any(column) for column in zip(*(h.has_data for h in hosts), strict=True)]
        return Panel(
            f"summary.{key}", title, PERCENT, lines, has_data, y_max=100, threshold=threshold
        )

    return [
        across("cpu.busy", "CPU busy, all hosts", limits.cpu_busy_percent),
        across("memory.used_percent", "Memory used, all hosts", limits.memory_used_percent),
    ]


def _figure(
    panel: Panel,
    report: Report,
    zone: ZoneInfo,
    section: str,
    host: str = "",
    top: float | None = None,
    section_note: str = "",
) -> str:
    panel = svg.fit_lines(panel)  # at most as many lines as there are styles to tell apart
    chart = svg.render(panel, report.grid, zone, top)
    if panel.stacked:
        legend = "".join(
            f'<li><i style="background:{colour}"></i>{escape(m.label)}</li>'
            for m, colour in zip(panel.lines, svg.colours(len(panel.lines)), strict=True)
        )
    else:
        legend = "".join(
            f'<li><i class="line" style="{svg.swatch(colour, dash)}" data-colour="{colour}" '
            f'data-dash="{dash}"></i>{escape(m.label)}</li>'
            for m, (colour, dash) in zip(panel.lines, svg.line_styles(panel.lines), strict=True)
        )
    if panel.threshold is not None:
        swatch = svg.swatch(svg.THRESHOLD_COLOUR, svg.THRESHOLD_DASH)
        legend += f'<li><i class="line threshold" style="{swatch}"></i>threshold {panel.threshold:g}{"%" if panel.unit == PERCENT else ""}</li>'
    if gaps(panel.has_data):
        legend += '<li><i class="gap"></i>no data</li>'
    shown = panel.note or section_note
    note = f'<p class="note">{escape(shown)}</p>' if shown else ""
    caption = (
        f'<span class="host">{escape(host)}</span> {escape(panel.title)}'
        if host
        else escape(panel.title)
    )
    return (
        f'<figure class="chart" data-section="{section}" data-chart="{escape(panel.key)}" data-host="{escape(host)}">'
        f'<figcaption>{caption}</figcaption>{chart}<ul class="legend">{legend}</ul>{note}</figure>'
    )


def _figure_row(panels: Sequence[Panel], report: Report, zone: ZoneInfo, section: str) -> str:
    return (
        '<div class="hosts">'
        + "".join(_figure(p, report, zone, section) for p in panels)
        + "</div>"
    )


def _section(report: Report, key: str, zone: ZoneInfo) -> str:
    hosts = report.hosts
    first = hosts[0].sections[key]
    parts = [f'<section id="{key}" data-section="{key}"><h2>{escape(first.title)}</h2>']
    subjects = [f"{h.host}: {h.sections[key].subject}" for h in hosts if h.sections[key].subject]
    if subjects:
        parts.append(f'<p class="subject">{escape("; ".join(subjects))}</p>')
    for index, panel in enumerate(first.panels):
        row = [h.sections[key].panels[index] for h in hosts]
        top = max(svg.data_top(p) for p in row)
        parts.append(f'<h3>{escape(panel.title)}</h3><div class="hosts">')
        for host, host_panel in zip(hosts, row, strict=True):
            note = host.sections[key].note
            parts.append(_figure(host_panel, report, zone, key, host.host, top, note))
        parts.append("</div>")
    parts.append(
        f"<h3>Percentiles</h3>{percentile_table(key, hosts, report.config.percentiles)}</section>"
    )
    return "".join(parts)


def _recommendations(report: Report) -> str:
    """The advice, and the trends not forecast for too little data (their absence is no sign
    that nothing fills up)."""
    unforecast = "".join(
        f'<p class="note" data-note="trend">{escape(text)}</p>' for text in report.trend_notes
    )
    if not report.recommendations:
        return f'<section id="recommendations"><h2>Recommendations</h2><p>No threshold was crossed: nothing to recommend.</p>{unforecast}</section>'
    items = []
    for item in report.recommendations:
        link = ""
        if item.link:
            target = (
                f'<a href="{escape(item.link)}">{escape(item.link)}</a>'
                if item.link.startswith("http")
                else f"<code>{escape(item.link)}</code> in the admin app"
            )
            link = f" See {escape(item.link_text)}: {target}."
        items.append(
            f'<li class="rec rec-{item.area}" data-host="{escape(item.host)}" data-area="{item.area}">'
            f'<span class="host">{escape(item.host)}</span> {escape(item.text)}{link}</li>'
        )
    return f'<section id="recommendations"><h2>Recommendations</h2><ul class="recs">{"".join(items)}</ul>{unforecast}</section>'


def _method(report: Report, zone: ZoneInfo) -> str:
    rows = []
    for host in report.hosts:
        runs = gaps(host.has_data)
        longest = max(runs, key=lambda r: r[1] - r[0]) if runs else None
        longest_text = (
            f"{format_duration((longest[1] - longest[0]) * report.grid.step)} from {when(report.grid.time_of(longest[0]), zone)}"
            if longest
            else NO_VALUE
        )
        rows.append(
            f'<tr><td>{escape(host.host)}</td><td class="num">{100 * host.coverage:.1f}%</td>'
            f'<td class="num">{100 * (1 - host.coverage):.1f}%</td><td class="num">{len(runs)}</td><td>{escape(longest_text)}</td></tr>'
        )
    p = "".join(f"p{x:g}, " for x in report.config.percentiles)
    return f"""<section id="method"><h2>Method and data coverage</h2>
<table class="coverage"><thead><tr><th>host</th><th class="num">steps with data</th><th class="num">missing</th><th class="num">gaps</th><th>longest gap</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<ul class="method">
<li>Values are read per step of {format_duration(report.grid.step)}, steps starting on the clock of {escape(report.config.time.timezone)}: a counter's last sample in the step, a gauge's mean. A rate is the counter's increase from the last sample of one step to the last sample of the next over the time between those two samples (so a sample lost or late does not inflate it); a reset gives no value. The first step's rate comes from the last sample of the step before the period.</li>
<li>Gaps: a step without samples has no value, nothing is interpolated across it, and it is shaded grey in the charts. A rate needs its step and the one before. Missing data is counted from the CPU counters' steps.</li>
<li>Percentiles ({p}the maximum and the mean) are computed over the steps that have a value, by linear interpolation between closest ranks (R's default quantile type 7, numpy's default): rank h = (n &minus; 1) &middot; p / 100 in the sorted values.</li>
<li>CPU busy is 100% minus the idle and iowait share of all CPU time (a CPU waiting for a disk is idle, as the alert rules count it); memory used is MemTotal &minus; MemAvailable; cache is Buffers + Cached + SReclaimable; disk utilisation is the share of time with I/O in progress (io_time); disk queue is the rate of io_time_weighted; filesystem fill is 100% &minus; avail / size{_forecast_method(report)}.</li>
</ul></section>"""


def _forecast_method(report: Report) -> str:
    within = report.config.thresholds.filesystem_full_within
    if within is None:
        return "; no fill is forecast (thresholds.filesystem_full_within is null)"
    return (
        ", and the forecast fits a least-squares line to the free bytes over the period, made "
        f"only from steps with data spanning at least {format_duration(span_needed(within))} and "
        f"numbering at least {MIN_POINTS}: a trend is extrapolated at most {HORIZON_PER_SPAN} "
        f"times as far ahead ({written_duration(within)}, filesystem_full_within) as its data spans"
    )
