"""Panel specifications shared by the InfluxQL and PromQL flavours, and the builders behind them.

A ``Spec`` says what a panel shows (title, description, unit, kind, size); the flavour supplies the
targets. ``Board`` numbers panels and rows in order, so ids are stable and unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from perfanalysis.grafana.targets import Target

PanelBuilder = cogbuilder.Builder[dm.Panel]


@dataclass(frozen=True)
class Override:
    """A field override: fields matched by ``name``, ``regexp`` or ``query`` (refId)."""

    match: str
    value: str
    properties: dict[str, Any]

    def apply(self, panel: Any) -> None:
        values = [dm.DynamicConfigValue(id_val=k, value=v) for k, v in self.properties.items()]
        if self.match == "name":
            panel.override_by_name(self.value, values)
        elif self.match == "regexp":
            panel.override_by_regexp(self.value, values)
        else:
            panel.override_by_query(self.value, values)


@dataclass(frozen=True)
class Spec:
    title: str
    description: str
    unit: str
    kind: str = "timeseries"  # timeseries | stat | table
    width: int = 8
    height: int = 8
    stacked: bool = False
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    overrides: Sequence[Override] = ()
    transformations: Sequence[dict[str, Any]] = ()
    sort_by: str = ""  # tables: column sorted descending


def negative_y(pattern: str) -> Override:
    """Draw matching series below the axis (transmit and write under receive and read)."""
    return Override("regexp", pattern, {"custom.transform": "negative-Y"})


def named(ref_id: str, display_name: str) -> Override:
    return Override("query", ref_id, {"displayName": display_name})


def _timeseries(spec: Spec) -> Any:
    legend = cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE).placement(
        cm.LegendPlacement.BOTTOM).show_legend(True).calcs(["mean", "max", "lastNotNull"])  # fmt: skip
    tooltip = cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)
    panel = timeseries.Panel().legend(legend).tooltip(tooltip).fill_opacity(10).line_width(1)
    if spec.stacked:
        panel = panel.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)).fill_opacity(40)
    return panel


def _stat(spec: Spec) -> Any:
    reduce = cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
    return stat.Panel().reduce_options(reduce).graph_mode(cm.BigValueGraphMode.AREA).color_mode(
        cm.BigValueColorMode.VALUE)  # fmt: skip


def _table(spec: Spec) -> Any:
    panel = table.Panel().show_header(True)
    if spec.sort_by:
        panel = panel.sort_by([cb.TableSortByFieldState().display_name(spec.sort_by).desc(True)])
    return panel


_KINDS = {"timeseries": _timeseries, "stat": _stat, "table": _table}


def build(
    spec: Spec, targets: Sequence[Target], datasource: dm.DataSourceRef, panel_id: int
) -> Any:
    panel = _KINDS[spec.kind](spec)
    panel = panel.id(panel_id).title(spec.title).description(spec.description).unit(spec.unit)
    panel = panel.datasource(datasource).span(spec.width).height(spec.height)
    for target in targets:
        panel = panel.with_target(target)
    if spec.min is not None:
        panel = panel.min(spec.min)
    if spec.max is not None:
        panel = panel.max(spec.max)
    if spec.decimals is not None:
        panel = panel.decimals(spec.decimals)
    for override in spec.overrides:
        override.apply(panel)
    for transformation in spec.transformations:
        panel = panel.with_transformation(
            dm.DataTransformerConfig(id_val=transformation["id"], options=transformation["options"])
        )
    return panel


GRID_WIDTH = 24


@dataclass
class Board:
    """A dashboard under construction: ids in the order added, panels laid out left to right and
    wrapped at the grid's 24 columns (the SDK's own layout overflows rather than wraps)."""

    dashboard: db.Dashboard
    datasource: dm.DataSourceRef
    next_id: int = 1
    x: int = 0
    y: int = 0
    line_height: int = 0

    def row(self, title: str) -> Board:
        self._newline()
        self.dashboard.with_row(
            db.Row(title).id(self._take()).grid_pos(dm.GridPos(1, GRID_WIDTH, 0, self.y))
        )
        self.y += 1
        return self

    def panel(self, spec: Spec, targets: Sequence[Target]) -> Board:
        if self.x + spec.width > GRID_WIDTH:
            self._newline()
        panel = build(spec, targets, self.datasource, self._take())
        panel.grid_pos(dm.GridPos(spec.height, spec.width, self.x, self.y))
        self.dashboard.with_panel(panel)
        self.x += spec.width
        self.line_height = max(self.line_height, spec.height)
        return self

    def _newline(self) -> None:
        if self.x:
            self.x, self.y, self.line_height = 0, self.y + self.line_height, 0

    def _take(self) -> int:
        taken, self.next_id = self.next_id, self.next_id + 1
        return taken


def transformation(transform_id: str, **options: Any) -> dict[str, Any]:
    return {"id": transform_id, "options": options}
