"""HTML tables: the percentiles of each section's key series, a row per series and host.

Each figure cell carries its exact value (``data-value``, Python's repr of the float) beside the
rounded text, so a test or a script can read the numbers back.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from perfanalysis.report.model import HostReport
from perfanalysis.report.stats import Summary
from perfanalysis.report.units import NO_VALUE, format_value


def stat_cell(stat: str, value: float | None, unit: str, over: bool = False) -> str:
    if value is None:
        return f'<td class="num" data-stat="{stat}">{NO_VALUE}</td>'
    mark = ' class="num over"' if over else ' class="num"'
    return f'<td{mark} data-stat="{stat}" data-value="{value!r}">{escape(format_value(value, unit))}</td>'


def percentile_table(
    section_key: str, hosts: Sequence[HostReport], percentiles: Sequence[float]
) -> str:
    heads = "".join(f'<th class="num">p{p:g}</th>' for p in percentiles)
    rows = []
    keys = _metric_keys(section_key, hosts)
    for metric_key in keys:
        for index, host in enumerate(hosts):
            metric = host.metric(metric_key)
            summary = host.summaries.get(metric_key)
            if metric is None or summary is None:
                continue
            label = (
                escape(metric.label) if index == 0 or _first_with(metric_key, hosts) is host else ""
            )
            cells = "".join(
                stat_cell(f"p{p:g}", summary.percentiles.get(p), metric.unit) for p in percentiles
            )
            cells += stat_cell("max", summary.maximum, metric.unit)
            cells += stat_cell("mean", summary.mean, metric.unit)
            cells += f'<td class="num" data-stat="present">{_present(summary)}</td>'
            rows.append(
                f'<tr data-metric="{escape(metric_key)}" data-host="{escape(host.host)}">'
                f'<td class="series">{label}</td><td class="host">{escape(host.host)}</td>{cells}</tr>'
            )
    if not rows:
        return ""
    return (
        f'<table class="stats" data-section="{section_key}"><thead><tr><th>series</th><th>host</th>'
        f'{heads}<th class="num">max</th><th class="num">mean</th><th class="num">data</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _metric_keys(section_key: str, hosts: Sequence[HostReport]) -> list[str]:
    keys: list[str] = []
    for host in hosts:
        for metric in host.sections[section_key].table:
            if metric.key not in keys:
                keys.append(metric.key)
    return keys


def _first_with(metric_key: str, hosts: Sequence[HostReport]) -> HostReport | None:
    return next((h for h in hosts if h.metric(metric_key) is not None), None)


def _present(summary: Summary) -> str:
    if summary.total == 0:
        return NO_VALUE
    return f"{100 * summary.count / summary.total:.0f}%"
