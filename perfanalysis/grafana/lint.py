"""Grafana dashboard-linter's rules we rely on, in Python (the linter is Go; no Go toolchain here).

Mirrored: template-datasource, panel-datasource, panel-title-description, panel-units,
target-rate-interval (extended to ``increase``), target-job, target-instance, template-job,
template-instance, template-on-time-change-reload, uneditable. Added for our own dashboards:
unique panel ids, a sane grid, uids, no hard-coded data source uids, known variables, expressions
that reference existing targets, and the InfluxQL conventions ($timeFilter, GROUP BY
time($__interval) fill(null), the host filter, rates over complete intervals only and never across
a gap).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from perfanalysis.grafana import influxql as iq
from perfanalysis.grafana.lint_units import VALID_UNITS
from perfanalysis.grafana.queries import panel_queries

Dashboard = Mapping[str, Any]
TEMPLATED = {"${datasource}", "$datasource"}
BUILTIN_UIDS = {"__expr__", "-- Grafana --", "grafana"}
UNIT_PANELS = {"stat", "singlestat", "graph", "table", "timeseries", "gauge", "bargauge"}
MACROS = {"timeFilter", "interval", "__interval", "__interval_ms", "__rate_interval",
          "__rate_interval_ms", "__range", "__range_s", "__range_ms", "__from", "__to",
          "__dashboard", "__org", "__user", "__name", "__field", "__series", "__value",
          "__data", "__all"}  # fmt: skip
UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
VAR_REF = re.compile(r"\$(\w+)|\$\{(\w+)(?:[.:][^}]*)?\}|\[\[(\w+)(?::\w+)?\]\]")
RATE_CALL = re.compile(r"\b(rate|irate|increase)\s*\(")
INTERVAL_GROUP = re.compile(r"GROUP BY time\(\$__interval(, \$\{__to\}ms)?\)")
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                   "and", "or", "unless", "offset", "inf", "nan"}  # fmt: skip


def panels(dashboard: Dashboard) -> Iterator[Mapping[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variables(dashboard: Dashboard) -> list[Mapping[str, Any]]:
    result: list[Mapping[str, Any]] = dashboard.get("templating", {}).get("list", [])
    return result


def datasource_plugin(dashboard: Dashboard) -> str:
    for var in variables(dashboard):
        if var.get("type") == "datasource":
            return str(var.get("query", ""))
    return ""


def lint(dashboard: Dashboard) -> list[str]:
    """Every problem found, each prefixed with the dashboard's title."""
    title = dashboard.get("title", "?")
    checks = (_dashboard_rules, _template_rules, _panel_rules, _grid_rules, _target_rules)
    return [f"{title}: {problem}" for check in checks for problem in check(dashboard)]


def _dashboard_rules(d: Dashboard) -> Iterator[str]:
    if not UID.match(str(d.get("uid", ""))):
        yield f"uid {d.get('uid')!r} must be 1-40 letters, digits, '-' or '_'"
    if d.get("editable", True):
        yield "uneditable: dashboard should not be editable (editable: false)"
    if "__inputs" in d:
        yield "uses __inputs, which provisioning does not resolve"
    for ref in _datasource_refs(d):
        uid = ref.get("uid")
        if uid not in TEMPLATED and uid not in BUILTIN_UIDS:
            yield f"hard-coded data source uid {uid!r}: use ${{datasource}}"


def _datasource_refs(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, Mapping):
                yield value
            else:
                yield from _datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_refs(item)


def _template_rules(d: Dashboard) -> Iterator[str]:
    templated = [v for v in variables(d) if v.get("type") == "datasource"]
    if len(templated) != 1:
        yield f"template-datasource: want one datasource variable, found {len(templated)}"
    for var in templated:
        if var.get("name") != "datasource":
            yield f"template-datasource: variable {var.get('name')!r} should be named 'datasource'"
        if var.get("label") != "Data source":
            yield "template-datasource: the datasource variable should be labeled 'Data source'"
    for var in variables(d):
        if var.get("type") == "query" and var.get("refresh") != 2:
            yield f"template-on-time-change-reload: variable {var.get('name')!r} should refresh on time range change"
        if var.get("type") == "query" and var.get("datasource", {}).get("uid") not in TEMPLATED:
            yield f"variable {var.get('name')!r} should use the templated data source"
    if datasource_plugin(d) == "prometheus":
        for name in ("job", "instance"):
            yield from _promql_template(d, name)


def _promql_template(d: Dashboard, name: str) -> Iterator[str]:
    var = next((v for v in variables(d) if v.get("name") == name), None)
    if var is None:
        yield f"template-{name}: missing the {name} variable"
        return
    if var.get("type") != "query":
        yield f"template-{name}: should be a query variable"
    if var.get("label") != name.title():
        yield f"template-{name}: should be labeled {name.title()!r}"
    if not var.get("multi"):
        yield f"template-{name}: should be multi-select"
    if var.get("allValue") != ".+":
        yield f"template-{name}: allValue should be '.+'"


def _panel_rules(d: Dashboard) -> Iterator[str]:
    seen: set[int] = set()
    for panel in panels(d):
        name = f"panel {panel.get('id')} {panel.get('title')!r}"
        if panel.get("id") in seen or not isinstance(panel.get("id"), int):
            yield f"{name}: duplicate or missing panel id"
        seen.add(panel.get("id", -1))
        if panel.get("type") == "row":
            continue
        if not panel.get("title") or not panel.get("description"):
            yield f"panel-title-description: {name} needs a title and a description"
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        if unit not in VALID_UNITS:
            yield f"panel-units: {name} has no or an invalid unit {unit!r}"
        if panel.get("datasource", {}).get("uid") not in TEMPLATED:
            yield f"panel-datasource: {name} does not use the templated data source"
        if not panel.get("targets"):
            yield f"panel-no-targets: {name} has no targets"


def _grid_rules(d: Dashboard) -> Iterator[str]:
    boxes: list[tuple[str, int, int, int, int]] = []
    for panel in d.get("panels", []):
        grid = panel.get("gridPos", {})
        x, y, w, h = (grid.get(k, -1) for k in ("x", "y", "w", "h"))
        name = f"panel {panel.get('id')} {panel.get('title')!r}"
        if not (0 <= x < 24 and 1 <= w <= 24 and x + w <= 24 and h >= 1 and y >= 0):
            yield f"gridPos: {name} is off the 24-column grid: {grid}"
        for other, ox, oy, ow, oh in boxes:
            if x < ox + ow and ox < x + w and y < oy + oh and oy < y + h:
                yield f"gridPos: {name} overlaps {other}"
        boxes.append((name, x, y, w, h))


def _target_rules(d: Dashboard) -> Iterator[str]:
    defined = {v["name"] for v in variables(d)} | MACROS
    host_filter = any(v.get("name") == "host" for v in variables(d))
    prometheus = datasource_plugin(d) == "prometheus"
    for panel in panels(d):
        refs = {t.get("refId") for t in panel.get("targets", [])}
        if len(refs) != len(panel.get("targets", [])):
            yield f"panel {panel['id']}: duplicate refIds"
        for query in panel_queries({"panels": [panel]}):
            where = f"panel {query.panel_id} {query.panel_title!r} target {query.ref_id}"
            for match in VAR_REF.finditer(query.text):
                name = match.group(1) or match.group(2) or match.group(3)
                if query.language == "expression":
                    if name not in refs:
                        yield f"{where}: expression refers to missing target ${name}"
                elif name not in defined:
                    yield f"{where}: unknown variable ${name}"
            if query.language == "promql":
                yield from (f"{where}: {p}" for p in promql_problems(query.text, prometheus))
            elif query.language == "influxql":
                table = query.result_format == "table"
                yield from (
                    f"{where}: {p}" for p in influxql_problems(query.text, host_filter, table)
                )


def influxql_problems(query: str, host_filter: bool, table: bool) -> Iterator[str]:
    selects = len(re.findall(r"\bSELECT\b", query, re.I))
    if query.count("$timeFilter") < selects:
        yield "every SELECT needs $timeFilter"
    if host_filter and '"host" =~ /^$host$/' not in query:
        yield 'missing the "host" =~ /^$host$/ filter'
    if "$interval" in query:
        yield "use $__interval, not the deprecated $interval"
    if "derivative(" in query and (
        iq.COMPLETE not in query
        or query.count(f"GROUP BY {iq.BUCKETS}") != query.count("GROUP BY time(")
    ):
        yield (f"a rate (derivative) must end at a complete interval: {iq.COMPLETE} and "
               f"GROUP BY {iq.BUCKETS}")  # fmt: skip
    if not query.count("derivative(") == query.count(iq.SPAN) == query.count(iq.JOINED):
        yield (f"a rate (derivative) must not span a gap: {iq.SPAN} beside it, and "
               f"{iq.JOINED} in the SELECT above")  # fmt: skip
    if not table:
        if not INTERVAL_GROUP.search(query):
            yield "time series need GROUP BY time($__interval)"
        if not query.rstrip().endswith("fill(null)"):
            yield "the outer GROUP BY time() needs fill(null)"
        if query.count("fill(") < query.count("GROUP BY time("):
            yield "every GROUP BY time() needs a fill()"


def promql_problems(expr: str, dashboard_is_prometheus: bool = True) -> Iterator[str]:
    for match in RATE_CALL.finditer(expr):
        body = _call_body(expr, match.end() - 1)
        ranges = re.findall(r"\[([^\]]*)\]", body)
        if not ranges or any(r != "$__rate_interval" for r in ranges):
            yield f"target-rate-interval: {match.group(1)}() should use [$__rate_interval]"
    if not dashboard_is_prometheus:
        return
    for selector, matchers in _selectors(expr):
        for label in ("job", "instance"):
            if f'{label}=~"${label}"' not in matchers:
                yield f'target-{label}: selector {selector or ""}{{{matchers}}} lacks {label}=~"${label}"'


def _call_body(text: str, open_paren: int) -> str:
    depth = 0
    for index in range(open_paren, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return text[open_paren + 1 : index]
    return text[open_paren + 1 :]


def _selectors(expr: str) -> Iterator[tuple[str, str]]:
    """(metric name, matchers) of every vector selector; a bare metric name has no matchers."""
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    position = 0
    for match in re.finditer(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}|([A-Za-z_:][\w:]*)", text):
        if match.start() < position:
            continue
        if match.group(3):  # an identifier without braces: function, keyword, or bare metric
            following = text[match.end() :].lstrip()[:1]
            name = match.group(3)
            if following == "(" or name.lower() in PROMQL_KEYWORDS:
                continue
            yield name, ""
        else:
            yield match.group(1) or "", match.group(2)
        position = match.end()
