"""Panel targets: InfluxQL (the SDK has no InfluxDB builder), PromQL and server-side math.

Each target carries the templated data source (``${datasource}``), never a concrete uid.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import expr, prometheus
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE_VARIABLE = "${datasource}"
INFLUXDB = DataSourceRef(type_val="influxdb", uid=DATASOURCE_VARIABLE)
PROMETHEUS = DataSourceRef(type_val="prometheus", uid=DATASOURCE_VARIABLE)
EXPRESSION = DataSourceRef(type_val="__expr__", uid="__expr__")

Target = cogbuilder.Builder[cogvariants.Dataquery]


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target as Grafana's InfluxDB data source stores it."""

    def __init__(self, ref_id: str, query: str) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = "time_series"
        self.alias = ""
        self.hide = False

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": INFLUXDB,
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias:
            payload["alias"] = self.alias
        if self.hide:
            payload["hide"] = True
        return payload


class InfluxQL(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, ref_id: str, query: str) -> None:
        self._internal = InfluxQLQuery(ref_id, query)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def alias(self, alias: str) -> InfluxQL:
        self._internal.alias = alias
        return self

    def table(self) -> InfluxQL:
        self._internal.result_format = "table"
        return self

    def hidden(self) -> InfluxQL:
        """Feeds an expression only; Grafana still runs it, but does not draw it."""
        self._internal.hide = True
        return self


def promql(ref_id: str, expression: str, legend: str = "", instant: bool = False) -> Target:
    query = prometheus.Dataquery().ref_id(ref_id).expr(expression).datasource(PROMETHEUS)
    query = query.legend_format(legend or "__auto")
    if instant:  # one row per series, for tables
        return query.instant().format(PromQueryFormat.TABLE)
    return query.range()


def math(ref_id: str, expression: str) -> Target:
    """A server-side expression over other targets, e.g. ``100 - 100 * $A / $B``."""
    return expr.TypeMath().ref_id(ref_id).expression(expression).datasource(EXPRESSION)
