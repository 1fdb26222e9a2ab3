"""The dashboards PerfAnalysis ships, by file name, each built by a function of no arguments.

Uids are fixed here: Grafana keys dashboards on them, so links and provisioning stay stable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from perfanalysis.grafana import fleet, host, ingest, variables
from perfanalysis.grafana.panels import Board, Spec
from perfanalysis.grafana.targets import INFLUXDB, PROMETHEUS, Target

TAG = "perfanalysis"
Rows = list[tuple[str, list[tuple[Spec, list[Target]]]]]


def _dashboard(
    title: str, uid: str, description: str, tags: Sequence[str], since: str
) -> db.Dashboard:
    return (
        db.Dashboard(title).uid(uid).description(description).tags([TAG, *tags])
        .time(f"now-{since}", "now").refresh("1m").timezone("browser").readonly()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
    )  # fmt: skip


def _fill(board: Board, rows: Rows) -> dm.Dashboard:
    for title, panels in rows:
        board.row(title)
        for spec, targets in panels:
            board.panel(spec, targets)
    return board.dashboard.build()


def host_influxdb() -> dm.Dashboard:
    dashboard = (
        _dashboard(
            "PerfAnalysis / Host (InfluxDB)",
            "pa-host-influxdb",
            "One or more hosts from the samples their exporters push: CPU, load, memory, network, "
            "disk, filesystems and pressure.",
            ["linux", "influxdb"],
            "1h",
        )
        .with_variable(variables.datasource("influxdb"))
        .with_variable(variables.influx_host(False))
    )
    dashboard = dashboard.with_variable(
        variables.influx_device("device", "Disk", "node_disk_io_time_seconds_total")
    ).with_variable(
        variables.influx_device("interface", "Interface", "node_network_receive_bytes_total")
    )
    rows = [(title, [(p.spec, p.influx()) for p in panels]) for title, panels in host.ROWS]
    return _fill(Board(dashboard, INFLUXDB), rows)


def host_prometheus() -> dm.Dashboard:
    dashboard = _dashboard(
        "PerfAnalysis / Host (Prometheus)",
        "pa-host-prometheus",
        "The Host dashboard's panels in PromQL, for exporters scraped by Prometheus.",
        ["linux", "prometheus"],
        "1h",
    )
    for variable in (variables.datasource("prometheus"), variables.prom_job(), variables.prom_instance(),
                     variables.prom_device("device", "Disk", "node_disk_io_time_seconds_total"),
                     variables.prom_device("interface", "Interface", "node_network_receive_bytes_total")):  # fmt: skip
        dashboard = dashboard.with_variable(variable)
    rows = [(title, [(p.spec, p.prom()) for p in panels]) for title, panels in host.ROWS]
    return _fill(Board(dashboard, PROMETHEUS), rows)


def fleet_influxdb() -> dm.Dashboard:
    dashboard = (
        _dashboard(
            "PerfAnalysis / Fleet",
            "pa-fleet",
            "Every host of the tenant at a glance, the busiest first, from pushed samples.",
            ["fleet", "influxdb"],
            "6h",
        )
        .with_variable(variables.datasource("influxdb"))
        .with_variable(variables.influx_host(True))
    )
    return _fill(Board(dashboard, INFLUXDB), fleet.panels())


def ingest_prometheus() -> dm.Dashboard:
    metrics = '{__name__=~"perfanalysis_.+"}'
    dashboard = _dashboard(
        "PerfAnalysis / Ingest and collectors",
        "pa-ingest",
        "Ingest's accepted and rejected points by tenant and reason; each exporter's spool and "
        "last push, from their self-metrics in Prometheus.",
        ["ingest", "prometheus"],
        "6h",
    )
    for variable in (variables.datasource("prometheus"), variables.prom_job(metrics),
                     variables.prom_instance(metrics),
                     variables.prom_label("tenant", "Tenant", "perfanalysis_ingest_points_accepted_total", "tenant")):  # fmt: skip
        dashboard = dashboard.with_variable(variable)
    return _fill(Board(dashboard, PROMETHEUS), ingest.panels())


DASHBOARDS: dict[str, Callable[[], dm.Dashboard]] = {
    "host-influxdb.json": host_influxdb,
    "host-prometheus.json": host_prometheus,
    "fleet.json": fleet_influxdb,
    "ingest.json": ingest_prometheus,
}
