"""Template variables: data source, host (InfluxQL) or job/instance (PromQL), device, interface.

Virtual devices are left out of the disk and interface lists by the variables' regex, so "All"
expands to physical devices only; any other value (``dm-0``, ``docker0``) can still be typed in.
The lists are the alert rules' (perfanalysis.grafana.devices).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from perfanalysis.grafana.devices import DISK_VARIABLE_REGEX, NIC_VARIABLE_REGEX
from perfanalysis.grafana.targets import INFLUXDB, PROMETHEUS

# The physical devices' regex of a device variable, by the metric prefix it lists devices of.
PHYSICAL_ONLY = {"node_disk_": DISK_VARIABLE_REGEX, "node_network_": NIC_VARIABLE_REGEX}

JOB = 'job=~"$job"'
ON_TIME_RANGE_CHANGE = dm.VariableRefresh.ON_TIME_RANGE_CHANGED


def datasource(plugin: str) -> db.DatasourceVariable:
    """The one templated data source: the linter wants it named ``datasource``."""
    return db.DatasourceVariable("datasource").label("Data source").type(plugin)


def _query(name: str, label: str, query: str, ref: dm.DataSourceRef) -> db.QueryVariable:
    return (
        db.QueryVariable(name).label(label).query(query).datasource(ref)
        .refresh(ON_TIME_RANGE_CHANGE).sort(dm.VariableSort.ALPHABETICAL_ASC)
    )  # fmt: skip


def influx_host(include_all: bool) -> db.QueryVariable:
    variable = _query(
        "host", "Host", 'SHOW TAG VALUES FROM "node_uname_info" WITH KEY = "host"', INFLUXDB
    )
    variable = variable.multi(True).include_all(include_all)
    return variable.all_value(".*") if include_all else variable


def physical_only(metric: str) -> str:
    """The regex that keeps the physical disks or interfaces among ``metric``'s devices."""
    for prefix, regex in PHYSICAL_ONLY.items():
        if metric.startswith(prefix):
            return regex
    raise ValueError(
        f"device variable on {metric!r}: no list of virtual devices for it; "
        f"the metric must start with one of {', '.join(PHYSICAL_ONLY)}"
    )


def influx_device(name: str, label: str, measurement: str) -> db.QueryVariable:
    query = f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "device" WHERE "host" =~ /^$host$/'
    variable = _query(name, label, query, INFLUXDB).multi(True).include_all(True)
    return variable.regex(physical_only(measurement))


def prom_job(metric: str = "node_uname_info") -> db.QueryVariable:
    return _query("job", "Job", f"label_values({metric}, job)", PROMETHEUS).multi(True).include_all(
        True).all_value(".+")  # fmt: skip


def _selector(metric: str, matchers: str) -> str:
    """``metric{matchers}``, or the matchers added to a selector already in braces."""
    return f"{metric[:-1]}, {matchers}}}" if metric.endswith("}") else f"{metric}{{{matchers}}}"


def prom_instance(metric: str = "node_uname_info") -> db.QueryVariable:
    query = f"label_values({_selector(metric, JOB)}, instance)"
    return (
        _query("instance", "Instance", query, PROMETHEUS)
        .multi(True)
        .include_all(True)
        .all_value(".+")
    )


def prom_device(name: str, label: str, metric: str) -> db.QueryVariable:
    query = f'label_values({metric}{{job=~"$job", instance=~"$instance"}}, device)'
    variable = _query(name, label, query, PROMETHEUS).multi(True).include_all(True)
    return variable.regex(physical_only(metric))


def prom_label(name: str, label: str, metric: str, key: str) -> db.QueryVariable:
    query = f'label_values({metric}{{job=~"$job", instance=~"$instance"}}, {key})'
    return _query(name, label, query, PROMETHEUS).multi(True).include_all(True).all_value(".+")
