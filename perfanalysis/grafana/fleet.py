"""The Fleet dashboard (InfluxDB): one row per host, top-N panels, and CPU busy over time.

Each table column is one InfluxQL query returning a row per host (``GROUP BY "host"``); the table
drops the per-query time column, merges the results on ``host``, and derives used memory and disk
from two columns each (InfluxQL has no join to divide one measurement by another).
"""

# ruff: noqa: S608 -- InfluxQL for dashboards, built from constants; no input reaches it

from __future__ import annotations

from typing import Any

from perfanalysis.grafana import definitions
from perfanalysis.grafana import influxql as iq
from perfanalysis.grafana.devices import PHYSICAL_DISK, PHYSICAL_NIC
from perfanalysis.grafana.panels import Override, Spec, transformation
from perfanalysis.grafana.targets import InfluxQL, Target

ROOT = "\"mountpoint\" = '/'"
TOP = 10


def _table(ref: str, query: str) -> Target:
    return InfluxQL(ref, query).table()


def cpu_busy() -> str:
    return definitions.cpu_busy("cpu_busy", over_time=False)


def cpus() -> str:
    inner = (
        'SELECT last("value") AS "v" FROM "node_cpu_seconds_total" '
        f'WHERE {iq.HOST} AND {iq.HOST_MODE_IDLE} AND $timeFilter GROUP BY "host", "cpu"'
    )
    return f'SELECT count("v") AS "cpus" FROM ({inner}) WHERE $timeFilter GROUP BY "host"'


def _mean_then(measurement: str, condition: str, per: tuple[str, ...], outer: str) -> str:
    """Rates per series of ``per``, averaged over the range, then ``outer`` per host."""
    middle = iq.rate_over(measurement, condition, per=per, by=per, select='mean("r") AS "m"',
                          over_time=False)  # fmt: skip
    return f'SELECT {outer} FROM ({middle}) WHERE $timeFilter GROUP BY "host"'


def disk_util() -> str:
    return _mean_then("node_disk_io_time_seconds_total", PHYSICAL_DISK, ("host", "device"),
                      'max("m") AS "disk_util"')  # fmt: skip


def network(direction: str) -> str:
    return _mean_then(f"node_network_{direction}_bytes_total", PHYSICAL_NIC, ("host", "device"),
                      f'sum("m") * 8 AS "{direction}"')  # fmt: skip


def _matcher(name: str) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name}}


def _binary(left: str, operator: str, right: str, alias: str) -> dict[str, Any]:
    return transformation("calculateField", mode="binary", alias=alias, replaceFields=False,
                          binary={"left": _matcher(left), "operator": operator, "right": _matcher(right)})  # fmt: skip


def _used(total: str, available: str, alias: str) -> list[dict[str, Any]]:
    """``alias`` = (total - available) / total, through a helper column."""
    return [
        _binary(total, "-", available, f"{alias}_bytes"),
        _binary(f"{alias}_bytes", "/", total, alias),
    ]


DROP_TIME = transformation(
    "organize", excludeByName={"Time": True}, indexByName={}, renameByName={}
)
MERGE = transformation("merge")


def _top(column: str) -> list[dict[str, Any]]:
    return [transformation("sortBy", sort=[{"field": column, "desc": True}]),
            transformation("limit", limitField=TOP)]  # fmt: skip


def _unit(name: str, unit: str) -> Override:
    return Override("name", name, {"unit": unit})


_COLUMNS = {"host": "Host", "cpu_busy": "CPU busy", "cpus": "CPUs", "load1": "Load 1m",
            "memory_used": "Memory used", "root_used": "Root FS used", "last_push": "Last push"}  # fmt: skip
_HELPERS = ["mem_total", "mem_available", "memory_used_bytes", "root_size", "root_avail",
            "root_used_bytes"]  # fmt: skip

HOSTS_TABLE = Spec(
    "Hosts", "Every host that pushed in the time range: CPU busy (neither idle nor iowait, mean "
    "over the range), CPUs, latest load, memory and root filesystem used, and when the host last "
    "pushed.", "percent",
    kind="table", width=24, height=10, decimals=1, sort_by="CPU busy",
    overrides=[_unit("CPUs", "short"), _unit("Load 1m", "short"), _unit("Memory used", "percentunit"),
               _unit("Root FS used", "percentunit"), _unit("Last push", "dateTimeFromNow")],
    transformations=[DROP_TIME, MERGE, *_used("mem_total", "mem_available", "memory_used"),
                     *_used("root_size", "root_avail", "root_used"),
                     transformation("organize", excludeByName=dict.fromkeys(_HELPERS, True),
                                    indexByName={k: i for i, k in enumerate(_COLUMNS)},
                                    renameByName=_COLUMNS)],
)  # fmt: skip


def hosts_targets() -> list[Target]:
    return [_table("A", cpu_busy()), _table("B", cpus()),
            _table("C", iq.latest("node_load1", alias="load1")),
            _table("D", iq.latest("node_memory_MemTotal_bytes", alias="mem_total")),
            _table("E", iq.latest("node_memory_MemAvailable_bytes", alias="mem_available")),
            _table("F", iq.latest("node_filesystem_size_bytes", ROOT, alias="root_size")),
            _table("G", iq.latest("node_filesystem_avail_bytes", ROOT, alias="root_avail")),
            _table("H", iq.latest("node_time_seconds", select='last("value") * 1000', alias="last_push"))]  # fmt: skip


def _top_spec(
    title: str,
    description: str,
    unit: str,
    column: str,
    extra: list[dict[str, Any]],
    hide: tuple[str, ...] = (),
) -> Spec:
    keep = transformation(
        "organize",
        excludeByName=dict.fromkeys(hide, True),
        indexByName={"host": 0, column: 1},
        renameByName={},
    )
    return Spec(title, description, unit, kind="table", width=6, height=9, decimals=1,
                transformations=[DROP_TIME, MERGE, *extra, *_top(column), keep])  # fmt: skip


TOP_CPU = _top_spec(f"Top {TOP} by CPU busy", "Hosts with the highest mean CPU busy share over the "
                    "time range (CPU time neither idle nor iowait).", "percent", "cpu_busy", [])  # fmt: skip
TOP_MEMORY = _top_spec(f"Top {TOP} by memory used", "Hosts with the largest share of memory in use "
                       "(latest sample).", "percentunit", "memory_used",
                       _used("mem_total", "mem_available", "memory_used"),
                       hide=("mem_total", "mem_available", "memory_used_bytes"))  # fmt: skip
TOP_DISK = _top_spec(f"Top {TOP} by disk utilisation", "Hosts whose busiest physical disk had IO in "
                     "flight for the largest share of the time range.", "percentunit", "disk_util", [])  # fmt: skip
TOP_NETWORK = _top_spec(f"Top {TOP} by network traffic", "Hosts moving the most bits per second "
                        "(received + transmitted on physical interfaces, mean over the range).",
                        "bps", "traffic", [transformation("calculateField", mode="binary",
                        alias="traffic", replaceFields=False, binary={"left": _matcher("receive"),
                        "operator": "+", "right": _matcher("transmit")})])  # fmt: skip

CPU_OVER_TIME = Spec("CPU busy per host", "Share of CPU time neither idle nor iowait on each host "
                     "over time (a CPU waiting for a disk is idle, as in the alert rules).",
                     "percent", width=24, height=9, min=0, max=100)  # fmt: skip
HOSTS_REPORTING = Spec("Hosts reporting", "Hosts that pushed at least one sample in the time range.",
                       "short", kind="stat", width=24, height=3, decimals=0)  # fmt: skip


def hosts_reporting() -> str:
    inner = f'SELECT last("value") AS "v" FROM "node_uname_info" WHERE {iq.HOST} AND $timeFilter GROUP BY "host"'
    return f'SELECT count("v") AS "hosts" FROM ({inner}) WHERE $timeFilter'


def panels() -> list[tuple[str, list[tuple[Spec, list[Target]]]]]:
    return [
        ("Hosts", [(HOSTS_REPORTING, [_table("A", hosts_reporting())]),
                   (HOSTS_TABLE, hosts_targets())]),
        ("Top hosts", [(TOP_CPU, [_table("A", cpu_busy())]),
                       (TOP_MEMORY, [_table("A", iq.latest("node_memory_MemTotal_bytes", alias="mem_total")),
                                     _table("B", iq.latest("node_memory_MemAvailable_bytes", alias="mem_available"))]),
                       (TOP_DISK, [_table("A", disk_util())]),
                       (TOP_NETWORK, [_table("A", network("receive")), _table("B", network("transmit"))])]),
        ("Over time", [(CPU_OVER_TIME, [InfluxQL("A", definitions.cpu_busy()).alias("$tag_host")])]),
    ]  # fmt: skip
