"""The executive summary: one row of headline figures per host, the findings, and the overview
charts (every host on one chart)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from perfanalysis.report.model import BYTES_PER_SECOND, PERCENT, HostReport
from perfanalysis.report.tables import stat_cell
from perfanalysis.report.units import NO_VALUE, format_value

if TYPE_CHECKING:
    from perfanalysis.report.build import Report


def executive_summary(report: Report, overview_charts: str) -> str:
    limits = report.config.thresholds
    p = limits.percentile
    heads = [
        "host",
        f"CPU busy p{p:g}",
        f"memory used p{p:g}",
        f"disk busy p{p:g}",
        f"network in p{p:g}",
        f"network out p{p:g}",
        "fullest filesystem",
        "data",
        "findings",
    ]
    rows = "".join(_row(host, report) for host in report.hosts)
    count = len(report.recommendations)
    findings = (
        "No threshold was crossed."
        if not count
        else (
            f"{count} recommendation{'s' if count != 1 else ''}: "
            + "; ".join(f"{escape(r.host)}: {escape(r.area)}" for r in report.recommendations)
            + '. Details under <a href="#recommendations">Recommendations</a>.'
        )
    )
    return (
        f'<section id="summary" data-section="summary"><h2>Executive summary</h2>'
        f'<p>{_overview_sentence(report)}</p><p class="findings">{findings}</p>'
        f'<table class="overview"><thead><tr>{"".join(f"<th{_align(i)}>{escape(h)}</th>" for i, h in enumerate(heads))}</tr></thead>'
        f"<tbody>{rows}</tbody></table>{overview_charts}</section>"
    )


def _overview_sentence(report: Report) -> str:
    hosts = report.hosts
    busiest = max(hosts, key=lambda h: _at(h, "cpu.busy", report) or -1.0)
    value = _at(busiest, "cpu.busy", report)
    p = report.config.thresholds.percentile
    text = f"{len(hosts)} host{'s' if len(hosts) != 1 else ''} reported."
    if value is not None:
        text += f" The busiest CPU is on {escape(busiest.host)}: {value:.1f}% busy at p{p:g}."
    missing = [h for h in hosts if h.coverage < 1]
    if missing:
        text += (
            " Data is missing for "
            + ", ".join(
                f"{escape(h.host)} ({100 * (1 - h.coverage):.1f}% of the steps)" for h in missing
            )
            + "."
        )
    else:
        text += " No step is missing data."
    return text


def _at(host: HostReport, key: str, report: Report) -> float | None:
    summary = host.summaries.get(key)
    return summary.percentiles.get(report.config.thresholds.percentile) if summary else None


def _row(host: HostReport, report: Report) -> str:
    limits = report.config.thresholds
    p = f"p{limits.percentile:g}"

    def cell(key: str, unit: str, limit: float | None = None) -> str:
        value = _at(host, key, report)
        return stat_cell(
            p, value, unit, over=limit is not None and value is not None and value > limit
        )

    fullest = max(host.forecasts, key=lambda f: f.used_percent or -1.0, default=None)
    fs_text = (
        f"{escape(fullest.mountpoint)} {format_value(fullest.used_percent, PERCENT)}"
        if fullest and fullest.used_percent is not None
        else NO_VALUE
    )
    fs_over = (
        fullest is not None
        and limits.filesystem_used_percent is not None
        and (fullest.used_percent or 0) > limits.filesystem_used_percent
    )
    findings = sum(1 for r in report.recommendations if r.host == host.host)
    coverage_over = (
        limits.data_missing_percent is not None
        and 100 * (1 - host.coverage) > limits.data_missing_percent
    )
    return (
        f'<tr data-host="{escape(host.host)}"><td class="host">{escape(host.host)}</td>'
        + cell("cpu.busy", PERCENT, limits.cpu_busy_percent)
        + cell("memory.used_percent", PERCENT, limits.memory_used_percent)
        + cell("disk.busy", PERCENT, limits.disk_busy_percent)
        + cell("network.receive_bytes", BYTES_PER_SECOND)
        + cell("network.transmit_bytes", BYTES_PER_SECOND)
        + f'<td class="{"over" if fs_over else ""}">{fs_text}</td>'
        + f'<td class="num{" over" if coverage_over else ""}">{100 * host.coverage:.1f}%</td>'
        + f'<td class="num">{findings}</td></tr>'
    )


def _align(column: int) -> str:
    """The host and filesystem columns are text; the others figures."""
    return "" if column in (0, 6) else ' class="num"'
