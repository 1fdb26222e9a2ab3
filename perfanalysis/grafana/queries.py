"""Every query of a dashboard's panels, for running them outside Grafana.

``panel_queries(dashboard)`` yields one ``PanelQuery`` per target of every panel (rows included),
with the language it is written in: ``influxql``, ``promql`` or ``expression`` (server-side math,
evaluated by Grafana over the other targets, not by a data source).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from perfanalysis.grafana.macros import ALL, Variable, variable


@dataclass(frozen=True)
class PanelQuery:
    panel_id: int
    panel_title: str
    ref_id: str
    language: str  # influxql | promql | expression
    text: str
    hidden: bool = False
    instant: bool = False
    result_format: str = "time_series"


def _panels(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _language(target: Mapping[str, Any], panel: Mapping[str, Any]) -> str:
    plugin = str((target.get("datasource") or panel.get("datasource") or {}).get("type", ""))
    return {"influxdb": "influxql", "prometheus": "promql", "__expr__": "expression"}.get(
        plugin, plugin
    )


def panel_queries(dashboard: Mapping[str, Any]) -> Iterator[PanelQuery]:
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            language = _language(target, panel)
            text = target.get("expression" if language == "expression" else
                              "expr" if language == "promql" else "query", "")  # fmt: skip
            yield PanelQuery(
                panel["id"],
                panel.get("title", ""),
                target.get("refId", ""),
                language,
                text,
                bool(target.get("hide")),
                bool(target.get("instant")),
                target.get("resultFormat") or target.get("format") or "time_series",
            )


def dashboard_variables(
    dashboard: Mapping[str, Any],
    values: Mapping[str, str | list[str]],
    options: Mapping[str, list[str]] | None = None,
) -> list[Variable]:
    """The dashboard's query variables with the given selections (``ALL`` for "All").

    ``options`` lists what "All" stands for, per variable without a custom all value.
    """
    found = []
    for model in dashboard.get("templating", {}).get("list", []):
        name = model["name"]
        if model.get("type") != "query" or name not in values:
            continue
        found.append(
            variable(
                name,
                values[name],
                multi=bool(model.get("multi")),
                include_all=bool(model.get("includeAll")),
                all_value=model.get("allValue") or None,
                options=(options or {}).get(name, ()),
            )
        )
    return found


__all__ = ["ALL", "PanelQuery", "dashboard_variables", "panel_queries"]
