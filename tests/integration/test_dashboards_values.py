"""The InfluxDB dashboards show the true values of known data, read from real InfluxDB 1.6.7.

test_dashboards_return_data.py checks that every panel query of a live stack returns something;
here an hour of known counters and gauges of three hosts is written, and each panel's visible
series (its InfluxQL targets, and its server-side math evaluated as Grafana evaluates it, below)
are compared, interval by interval, with values worked out by hand from the scenario:

- web-01: 2 CPUs 20% busy, steady; two pushes lost (a 30 s hole: bridged, no gap drawn).
- web-02: a VM paused for 20 minutes (no samples, and its counters stalled, as a paused guest's
  do), later rebooted (every counter starts again from 0). Right after the pause, CPU busy read
  99% (one minus the idle rate averaged over the 1,220 s the rate spanned) and network traffic
  262 bps instead of 16,000; at the reboot, CPU busy read 100% (the idle rate was left out as
  negative, iowait's, 0, stayed).
- db-01: kept running while its pushes were lost for ten minutes (its counters advanced), the
  gap's edges inside intervals: the intervals at the edges hold one sample instead of two, and
  one minus the idle rate read 55% busy there for 40%.

What a panel must show at each interval (``rate_truth``, ``gauge_truth``): a gauge where the
interval has samples; a rate where the interval and the one before it with samples are both
complete and at most a minute (or two intervals) apart, and no counter fell in between; null
everywhere else, so that Grafana draws a gap as a gap rather than a rate averaged across it.

The queries are expanded here by hand, as Grafana expands them for this range and these
selections (``expand``), not only by perfanalysis.grafana.macros, whose expansion must agree.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from perfanalysis.grafana import render
from perfanalysis.grafana.macros import ALL, TimeRange, expand_influxql
from perfanalysis.grafana.queries import dashboard_variables
from perfanalysis.testing.servers import InfluxDB

pytestmark = pytest.mark.integration

Labels = frozenset[tuple[str, str]]
Point = tuple[int, float | None]  # epoch ms, value (None: null)

# ---------------------------------------------------------------------------------------------
# Grafana's server-side math (pkg/expr/mathexp), for the binary expressions the panels use
# (``100 - 100 * $A / $B``, ``$A - $B``, ``$A / $B``), implemented here as Grafana implements it:
#
# - A target's value is its list of series, each with its labels (an InfluxDB series' tags: one
#   series per value column, as Grafana's InfluxQL converter makes them); a number is a scalar.
# - Series op series pairs the series of both sides by labels (``union`` in exp.go): equal label
#   sets, or either side without labels, pair with those labels; sets of the same size that
#   differ never pair; otherwise one set within the other pairs with the larger set; when nothing
#   paired and each side has exactly one series, the two pair without labels. Unpaired series
#   are dropped. Each pair is joined on equal timestamps (``biSeriesSeries``): a time missing on
#   the right drops the point, a null on either side gives null.
# - Scalar op series applies to every point of every series, null staying null.
# - Arithmetic is Go's float64: x / 0 is +-Inf, 0 / 0 and anything with NaN is NaN.


@dataclass(frozen=True)
class Series:
    labels: Labels
    points: tuple[Point, ...]


Value = float | list[Series]

_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
}  # fmt: skip


def _go(op: type[ast.operator], a: float, b: float) -> float:
    """``binaryOp`` of exp.go, with Go's float64 division."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if op is ast.Div:
        if b == 0:
            return math.nan if a == 0 else math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    return _ARITHMETIC[op](a, b)


def _union(left: list[Series], right: list[Series]) -> list[tuple[Labels, Series, Series]]:
    """``union`` of exp.go: which series of each side meet, and the labels of their result."""
    unions = []
    for a in left:
        for b in right:
            if a.labels == b.labels or not a.labels or not b.labels:
                labels = a.labels or b.labels
            elif len(a.labels) == len(b.labels):
                continue
            elif b.labels <= a.labels:
                labels = a.labels
            elif a.labels <= b.labels:
                labels = b.labels
            else:
                continue
            unions.append((labels, a, b))
    if not unions and len(left) == 1 and len(right) == 1:
        unions.append((frozenset(), left[0], right[0]))
    return unions


def _series_series(op: type[ast.operator], labels: Labels, a: Series, b: Series) -> Series:
    """``biSeriesSeries`` of exp.go: points at the same time only."""
    at = dict(b.points)
    points: list[Point] = []
    for time, value in a.points:
        if time not in at:
            continue
        other = at[time]
        points.append((time, None if value is None or other is None else _go(op, value, other)))
    return Series(labels, tuple(points))


def _series_scalar(op: type[ast.operator], series: Series, k: float, first: bool) -> Series:
    """``biSeriesNumber`` of exp.go (``first``: the series is the left operand)."""
    return Series(series.labels, tuple(
        (t, None if v is None else _go(op, v, k) if first else _go(op, k, v))
        for t, v in series.points))  # fmt: skip


def evaluate_math(expression: str, results: Mapping[str, list[Series]]) -> list[Series]:
    """A math expression over the results of a panel's other targets, as Grafana computes it."""
    tree = ast.parse(re.sub(r"\$\{?(\w+)\}?", r"\1", expression), mode="eval").body

    def walk(node: ast.expr) -> Value:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return list(results[node.id])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            value = walk(node.operand)
            if isinstance(value, float):
                return -value
            return [_series_scalar(ast.Mult, s, -1.0, True) for s in value]
        if isinstance(node, ast.BinOp) and (
            type(node.op) in _ARITHMETIC or isinstance(node.op, ast.Div)
        ):
            op, a, b = type(node.op), walk(node.left), walk(node.right)
            if isinstance(a, float) and isinstance(b, float):
                return _go(op, a, b)
            if isinstance(a, float):
                assert isinstance(b, list)
                return [_series_scalar(op, s, a, False) for s in b]
            if isinstance(b, float):
                return [_series_scalar(op, s, b, True) for s in a]
            return [_series_series(op, labels, x, y) for labels, x, y in _union(a, b)]
        raise ValueError(f"not a math expression the panels use: {expression!r}")

    value = walk(tree)
    assert isinstance(value, list), f"{expression!r} is a number, not series"
    return value


def influx_series(answer: Mapping[str, Any]) -> list[Series]:
    """An InfluxDB answer (``epoch=ms``) as Grafana's InfluxQL converter hands it to expressions:
    a series per value column of each InfluxDB series, labelled with its tags."""
    found = []
    for result in answer["results"]:
        assert "error" not in result, result
        for series in result.get("series", []):
            labels = frozenset(series.get("tags", {}).items())
            for column in range(1, len(series["columns"])):
                found.append(
                    Series(labels, tuple((row[0], row[column]) for row in series["values"]))
                )
    return found


def panel_results(
    panel: Mapping[str, Any], run: Callable[[str], Mapping[str, Any]]
) -> dict[str, list[Series]]:
    """Every target of ``panel`` by refId: its InfluxQL queries through ``run`` (query text to
    InfluxDB answer), then its math expressions over them."""
    results: dict[str, list[Series]] = {}
    for target in panel["targets"]:
        if target["datasource"]["type"] == "influxdb":
            results[target["refId"]] = influx_series(run(target["query"]))
    for target in panel["targets"]:
        if target["datasource"]["type"] == "__expr__":
            assert target["type"] == "math", target
            results[target["refId"]] = evaluate_math(target["expression"], results)
    return results


# ---------------------------------------------------------------------------------------------
# the scenario

INTERVAL = (
    20  # seconds: $__interval for an hour at Grafana's 1,500 points, the data source's minimum
)
END = 1_700_002_800  # a whole hour: every interval boundary lies on the epoch's 20 s grid
START = END - 3600  # the dashboards' range: the last hour
FIRST = START - 1800  # samples from here (the stat's range below starts 20 minutes earlier)
STEP = 10  # seconds between samples: the exporter's default push interval
HOSTS = ("db-01", "web-01", "web-02")
PHASE = {"db-01": 5, "web-01": 0, "web-02": 0}  # seconds into each 10 s step a host samples at
PAUSE = (START + 1200, START + 2400)  # web-02 paused: no samples, counters stalled
REBOOT = START + 3000  # web-02 rebooted: every counter from 0
LOST = {"db-01": (START + 1795, START + 2415),  # pushes lost, counters running: edges mid-interval
        "web-01": (START + 1200, START + 1220),  # two pushes lost: an interval without samples
        "web-02": PAUSE}  # fmt: skip
EDGES = {START + 1780, START + 2420}  # db-01's rates from or to an interval with one sample
TAGS = "collector=c,tenant=t"  # what ingest adds to every point

CPU = {  # seconds per second of each CPU in each mode; every CPU's modes add up to 1
    "db-01": {"0": {"user": 0.3, "system": 0.1, "iowait": 0.2, "idle": 0.4, "steal": 0.0}},
    "web-01": {"0": {"user": 0.25, "system": 0.05, "iowait": 0.1, "idle": 0.6, "steal": 0.0},
               "1": {"user": 0.1, "system": 0.0, "iowait": 0.0, "idle": 0.9, "steal": 0.0}},
    "web-02": {"0": {"user": 0.5, "system": 0.0, "iowait": 0.0, "idle": 0.5, "steal": 0.0}},
}  # fmt: skip
BUSY = {"db-01": 40.0, "web-01": 20.0, "web-02": 50.0}  # 100 - 100 * (idle + iowait) / 1 s
GiB = 2**30
MEMORY = {  # MemTotal, MemAvailable, MemFree, Cached, Buffers, SwapTotal, SwapFree
    "db-01": (16 * GiB, 8 * GiB, 4 * GiB, 3 * GiB, GiB / 2, GiB, GiB),
    "web-01": (8 * GiB, 2 * GiB, GiB, 0.75 * GiB, GiB / 4, 2 * GiB, 1.5 * GiB),
    "web-02": (4 * GiB, 3 * GiB, 2 * GiB, GiB / 2, GiB / 8, 0.0, 0.0),
}
MEMORY_FIELDS = (
    "MemTotal",
    "MemAvailable",
    "MemFree",
    "Cached",
    "Buffers",
    "SwapTotal",
    "SwapFree",
)
USED = {"db-01": 50.0, "web-01": 75.0, "web-02": 25.0}  # 100 - 100 * available / total
SWAP_USED = {"db-01": 0.0, "web-01": 25.0, "web-02": math.nan}  # web-02 has none: 0 / 0
LOAD = {"db-01": (3.0, 2.0, 1.0), "web-01": (0.5, 0.75, 1.0), "web-02": (1.5, 1.25, 1.0)}
NICS = {  # bytes received, sent, packets received, sent per second
    "db-01": {"eth0": (10_000, 5_000, 40, 30)},
    "web-01": {"eth0": (125_000, 62_500, 100, 50), "lo": (1e6, 1e6, 10, 10)},  # lo: not shown
    "web-02": {"ens3": (2_000, 1_000, 20, 10)},
}
DISKS = {  # reads, read seconds, writes, write seconds, bytes read, written, io seconds per second
    "db-01": {"nvme0n1": (1000, 0.1, 500, 0.05, 4_096_000, 2_048_000, 0.5)},
    "web-01": {"sda": (100, 0.5, 50, 0.1, 409_600, 204_800, 0.3),
               "loop0": (1, 0.001, 0, 0, 4096, 0, 0.001)},  # not shown
    "web-02": {"vda": (10, 0.02, 20, 0.2, 40_960, 81_920, 0.1)},
}  # fmt: skip
DISK_FIELDS = ("reads_completed_total", "read_time_seconds_total", "writes_completed_total",
               "write_time_seconds_total", "read_bytes_total", "written_bytes_total",
               "io_time_seconds_total")  # fmt: skip
DATA_SHRINKS = 1000  # bytes per second web-01's /data loses
FILESYSTEMS = {  # mountpoint: fstype, device, size, available at FIRST
    "db-01": {"/": ("ext4", "nvme0n1p1", 500 * GiB, 450 * GiB)},
    "web-01": {"/": ("ext4", "sda1", 100 * GiB, 40 * GiB), "/boot": ("ext4", "sda2", GiB, GiB / 4),
               "/data": ("xfs", "sdb1", 1000 * GiB, 500 * GiB),
               "/run": ("tmpfs", "tmpfs", GiB, 0.9 * GiB)},  # tmpfs: not shown
    "web-02": {"/": ("xfs", "vda1", 20 * GiB, 15 * GiB)},
}  # fmt: skip
# The variables as selected: the three hosts, "All" devices and interfaces, which Grafana's
# variable queries and the physical-only regex leave as these (lo and loop0 left out)
DEVICES = ["nvme0n1", "sda", "vda"]
INTERFACES = ["ens3", "eth0"]


def samples(host: str) -> list[int]:
    lost = LOST[host]
    return [t for t in range(FIRST + PHASE[host], END + 1, STEP) if not lost[0] <= t < lost[1]]


SAMPLES = {host: samples(host) for host in HOSTS}


def counted(host: str, t: int) -> float:
    """Seconds a host's counters have counted at ``t``: since a boot a day before FIRST, less
    web-02's pause; from 0 at web-02's reboot."""
    if host == "web-02" and t >= REBOOT:
        return float(t - REBOOT)
    paused = max(0, min(t, PAUSE[1]) - PAUSE[0]) if host == "web-02" else 0
    return float(t - (FIRST - 86400) - paused)


def available(host: str, mountpoint: str, t: float) -> float:
    start = FILESYSTEMS[host][mountpoint][3]
    return start - DATA_SHRINKS * (t - FIRST) if mountpoint == "/data" else start


def _line(measurement: str, tags: Mapping[str, str], value: float, t: int) -> str:
    keys = ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
    return f"{measurement},{keys},{TAGS} value={value!r} {t}"


def lines(host: str, t: int) -> Iterator[str]:
    up = counted(host, t)
    host_tag = {"host": host}
    yield _line("node_uname_info", host_tag, 1.0, t)
    for cpu, modes in CPU[host].items():
        for mode, rate in modes.items():
            yield _line(
                "node_cpu_seconds_total", {**host_tag, "cpu": cpu, "mode": mode}, rate * up, t
            )
    for field, value in zip(MEMORY_FIELDS, MEMORY[host], strict=True):
        yield _line(f"node_memory_{field}_bytes", host_tag, value, t)
    for name, value in zip(("load1", "load5", "load15"), LOAD[host], strict=True):
        yield _line(f"node_{name}", host_tag, value, t)
    for device, rates in NICS[host].items():
        tags = {**host_tag, "device": device}
        for name, rate in zip(("receive_bytes", "transmit_bytes", "receive_packets",
                               "transmit_packets"), rates, strict=True):  # fmt: skip
            yield _line(f"node_network_{name}_total", tags, rate * up, t)
    for device, rates in DISKS[host].items():
        tags = {**host_tag, "device": device}
        for name, rate in zip(DISK_FIELDS, rates, strict=True):
            yield _line(f"node_disk_{name}", tags, rate * up, t)
    for mountpoint, (fstype, device, size, _) in FILESYSTEMS[host].items():
        tags = {**host_tag, "device": device, "fstype": fstype, "mountpoint": mountpoint}
        yield _line("node_filesystem_size_bytes", tags, size, t)
        yield _line("node_filesystem_avail_bytes", tags, available(host, mountpoint, t), t)


@pytest.fixture(scope="module")
def scenario(shared_influxdb: InfluxDB) -> str:
    db = shared_influxdb.unique_database("values")
    points = [line for host in HOSTS for t in SAMPLES[host] for line in lines(host, t)]
    for i in range(0, len(points), 20_000):
        shared_influxdb.write(db, "\n".join(points[i : i + 20_000]), precision="s")
    return db


# ---------------------------------------------------------------------------------------------
# the truth, interval by interval


@dataclass(frozen=True)
class NullOr:
    """Either null or this value is right (a rate of 0 at the reboot: 0 to 0 is no fall)."""

    value: float


Truth = float | NullOr | None


def in_interval(host: str, start: int, end: int = END) -> list[int]:
    return [t for t in SAMPLES[host] if start <= t < start + INTERVAL and t <= end]


def gauge_truth(
    host: str, value: Callable[[list[int]], float], begin: int = START, end: int = END
) -> Callable[[int], Truth]:
    """A gauge: the mean of the interval's samples (``value`` of their times), where it has any."""

    def truth(start: int) -> Truth:
        found = in_interval(host, start, end) if start >= begin else []
        return value(found) if found else None

    return truth


def rate_truth(
    host: str,
    per_second: float,
    *,
    edge: float | None = None,
    counter: bool = True,
    begin: int = START,
    end: int = END,
) -> Callable[[int], Truth]:
    """A rate whose true value is ``per_second``, drawn as ``edge`` on db-01's gap edges.

    Shown for a complete interval (the range ends more than one interval after it) that has
    samples, when the interval with samples before it is at most a minute, or two intervals,
    earlier, and, for a counter, no reset falls inside it. For the range's first interval that
    one lies before the range: InfluxDB reads it for a derivative, but not in a subquery (where
    every rate now is), so the first interval may be null.

    At db-01's gap edges one of the two intervals holds one sample, 5 s off the interval's centre:
    a rate of one series reads 15 s of counting as 20 (``edge`` by default 0.75 of the rate),
    which InfluxQL cannot tell; a ratio of two rates of the same samples stays exact.
    """
    at_edge = per_second * 0.75 if edge is None else edge

    def truth(start: int) -> Truth:
        if start + 2 * INTERVAL > end or not in_interval(host, start, end):
            return None
        before = [
            s
            for s in range(start - INTERVAL, begin - INTERVAL - 1, -INTERVAL)
            if in_interval(host, s, end)
        ]
        if not before or start - before[0] > max(2 * INTERVAL, 60):
            return None
        if counter and host == "web-02" and start <= REBOOT < start + INTERVAL:
            return NullOr(0.0) if per_second == 0 else None
        value = at_edge if host == "db-01" and start in EDGES else per_second
        return NullOr(value) if before[0] < begin else value

    return truth


def constant(value: float) -> Callable[[list[int]], float]:
    return lambda _: value


def _fill(host: str, mountpoint: str) -> Callable[[list[int]], float]:
    size = FILESYSTEMS[host][mountpoint][2]
    return lambda times: 100 - 100 * available(host, mountpoint, sum(times) / len(times)) / size


def _key(labels: Labels, ref: str = "") -> str:
    return " ".join([*([ref] if ref else []), *(f"{k}={v}" for k, v in sorted(labels))])


def _host(host: str, ref: str = "", **tags: str) -> str:
    return _key(frozenset({"host": host, **tags}.items()), ref)


def host_panels() -> dict[str, dict[str, Callable[[int], Truth]]]:
    """Panel title -> series (refId when the panel shows several targets, then labels) -> truth."""
    panels: dict[str, dict[str, Callable[[int], Truth]]] = {
        title: {} for title in ("CPU busy", "Memory used", "Root filesystem used", "CPU cores",
                                "CPU time by mode", "Load against cores", "Memory",
                                "Memory and swap used", "Network traffic", "Network packets",
                                "Disk IOPS", "Disk throughput", "Disk latency", "Disk utilisation",
                                "Filesystem fill", "Filesystem fill trend")}  # fmt: skip
    for h in HOSTS:
        cpus = CPU[h]
        panels["CPU busy"][_host(h)] = rate_truth(h, BUSY[h], edge=BUSY[h])  # a ratio
        panels["Memory used"][_host(h)] = gauge_truth(h, constant(USED[h]))
        root = FILESYSTEMS[h]["/"]
        panels["Root filesystem used"][_host(h)] = gauge_truth(
            h, constant(100 - 100 * root[3] / root[2])
        )
        panels["CPU cores"][_host(h)] = gauge_truth(h, constant(len(cpus)))
        for mode in ("user", "system", "iowait", "steal"):
            mean = sum(modes[mode] for modes in cpus.values()) / len(cpus)
            panels["CPU time by mode"][_host(h, mode=mode)] = rate_truth(h, mean)
        load = panels["Load against cores"]
        for ref, value in zip("ABC", LOAD[h], strict=True):
            load[_host(h, ref)] = gauge_truth(h, constant(value))
        load[_host(h, "D")] = gauge_truth(h, constant(len(cpus)))
        memory = MEMORY[h]
        for ref, value in zip("ABCDE", memory[:5], strict=True):
            panels["Memory"][_host(h, ref)] = gauge_truth(h, constant(value))
        panels["Memory"][_host(h, "U")] = gauge_truth(h, constant(memory[0] - memory[1]))
        panels["Memory and swap used"][_host(h, "M")] = gauge_truth(h, constant(USED[h]))
        panels["Memory and swap used"][_host(h, "S")] = gauge_truth(h, constant(SWAP_USED[h]))
        for device, (rx, tx, prx, ptx) in NICS[h].items():
            if device in INTERFACES:
                for ref, value in (("A", rx * 8), ("B", tx * 8)):
                    panels["Network traffic"][_host(h, ref, device=device)] = rate_truth(h, value)
                for ref, value in (("A", prx), ("B", ptx)):
                    panels["Network packets"][_host(h, ref, device=device)] = rate_truth(h, value)
        for device, (reads, read_s, writes, write_s, read_b, written_b, busy) in DISKS[h].items():
            if device not in DEVICES:
                continue
            for title, pairs in (("Disk IOPS", (("A", reads), ("B", writes))),
                                 ("Disk throughput", (("A", read_b), ("B", written_b))),
                                 ("Disk latency", (("R", read_s / reads), ("W", write_s / writes)))):  # fmt: skip
                for ref, value in pairs:
                    edge = value if title == "Disk latency" else None  # a ratio of rates
                    panels[title][_host(h, ref, device=device)] = rate_truth(h, value, edge=edge)
            panels["Disk utilisation"][_host(h, device=device)] = rate_truth(h, busy)
        for mountpoint, (fstype, *_) in FILESYSTEMS[h].items():
            if fstype == "tmpfs":
                continue
            key = _host(h, mountpoint=mountpoint)
            panels["Filesystem fill"][key] = gauge_truth(h, _fill(h, mountpoint))
            shrinks = DATA_SHRINKS if mountpoint == "/data" else 0
            panels["Filesystem fill trend"][key] = rate_truth(h, shrinks, counter=False)
    return panels


# ---------------------------------------------------------------------------------------------
# running a panel as Grafana would


def expand(query: str, end: int = END) -> str:
    """The macros and variables of a query, replaced with what Grafana puts there for the hour
    ending at ``end``, $__interval 20s, and the selections above (multi-value and "All":
    a regex alternation of the values, sorted as the variables sort them)."""
    end_ms = end * 1000
    for macro, value in (("$timeFilter", f"time >= {end_ms - 3_600_000}ms and time <= {end_ms}ms"),
                         ("${__to}", str(end_ms)), ("$__interval_ms", str(INTERVAL * 1000)),
                         ("$__interval", f"{INTERVAL}s"), ("$host", f"({'|'.join(HOSTS)})"),
                         ("$device", f"({'|'.join(DEVICES)})"),
                         ("$interface", f"({'|'.join(INTERFACES)})")):  # fmt: skip
        query = query.replace(macro, value)
    assert not re.search(r"\$[\w{]", query), query
    return query


def _dashboard(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((render.default_dir() / name).read_text())
    return data


def _panel(dashboard: Mapping[str, Any], title: str) -> dict[str, Any]:
    [panel] = [p for p in dashboard["panels"] if p.get("title") == title and p["type"] != "row"]
    return panel


def shown(
    influxdb: InfluxDB, db: str, dashboard: Mapping[str, Any], title: str, end: int = END,
    refs: tuple[str, ...] = (),
) -> dict[str, dict[int, float | None]]:  # fmt: skip
    """The series a panel draws (its targets not hidden, or ``refs``), by key: the refId when it
    draws several targets, then the labels. Points by interval start, in seconds."""
    variables = dashboard_variables(
        dashboard, {"host": list(HOSTS), "device": ALL, "interface": ALL},
        {"device": DEVICES, "interface": INTERFACES},
    )  # fmt: skip

    def run(query: str) -> Mapping[str, Any]:
        text = expand(query, end)
        ours = expand_influxql(query, TimeRange((end - 3600) * 1000, end * 1000), variables,
                               min_interval=f"{INTERVAL}s")  # fmt: skip
        assert ours == text, "perfanalysis.grafana.macros expands otherwise than Grafana"
        return influxdb.query(text, db=db, epoch="ms")

    panel = _panel(dashboard, title)
    results = panel_results(panel, run)
    drawn = refs or tuple(t["refId"] for t in panel["targets"] if not t.get("hide"))
    series: dict[str, dict[int, float | None]] = {}
    for ref in drawn:
        for s in results[ref]:
            key = _key(s.labels, ref if len(drawn) > 1 else "")
            assert key not in series, f"{title}: two series {key}"
            series[key] = {t // 1000: v for t, v in s.points}
    return series


def _agrees(got: float | None, want: Truth) -> bool:
    if isinstance(want, NullOr):
        return got is None or _agrees(got, want.value)
    if want is None or got is None:
        return want is got
    if math.isnan(want):
        return math.isnan(got)
    return got == pytest.approx(want, rel=1e-6, abs=1e-9)


def disagreements(
    drawn: Mapping[str, Mapping[int, float | None]],
    truth: Mapping[str, Callable[[int], Truth]],
    end: int = END,
) -> list[str]:
    found = [f"series {key}: drawn, not expected" for key in sorted(set(drawn) - set(truth))]
    found += [f"series {key}: expected, not drawn" for key in sorted(set(truth) - set(drawn))]
    for key in sorted(set(drawn) & set(truth)):
        points = drawn[key]
        for start in sorted(set(points) | set(range(end - 3600, end + 1, INTERVAL))):
            want, got = truth[key](start), points.get(start)
            if not _agrees(got, want):
                found.append(f"{key} at {start - START:+d} s: drew {got}, true {want}")
    return found


HOST_PANELS = host_panels()


@pytest.mark.parametrize("title", sorted(HOST_PANELS))
def test_host_panel_draws_the_true_values(
    scenario: str, shared_influxdb: InfluxDB, title: str
) -> None:
    drawn = shown(shared_influxdb, scenario, _dashboard("host-influxdb.json"), title)
    problems = disagreements(drawn, HOST_PANELS[title])
    assert not problems, f"{title}:\n" + "\n".join(problems[:40])


def fleet_busy(host: str) -> Callable[[int], Truth]:
    """The Fleet dashboard's CPU busy, 1 minus the idle time per second (a fifth of the series of
    the Host dashboard's ratio): true but on db-01's gap edges, where the idle time counted over
    15 s is read as 20 s's, and the host 55% busy for 40."""
    return rate_truth(host, BUSY[host], edge=100 - 0.75 * (100 - BUSY[host]))


def test_fleet_cpu_busy_per_host_draws_the_true_values(
    scenario: str, shared_influxdb: InfluxDB
) -> None:
    drawn = shown(shared_influxdb, scenario, _dashboard("fleet.json"), "CPU busy per host")
    problems = disagreements(drawn, {_host(h): fleet_busy(h) for h in HOSTS})
    assert not problems, "\n".join(problems[:40])


def _means(truth: Callable[[int], Truth]) -> list[float]:
    """The mean of what a rate draws over the range, without and with its first interval
    (``NullOr``: drawn or not)."""
    values = [truth(start) for start in range(START, END + 1, INTERVAL)]
    drawn = [v for v in values if isinstance(v, float)]
    maybe = [v.value for v in values if isinstance(v, NullOr)]
    return [sum(drawn) / len(drawn), sum(drawn + maybe) / len(drawn + maybe)]


@pytest.mark.parametrize("title", ["Hosts", "Top 10 by CPU busy"])
def test_fleet_cpu_busy_column_is_the_mean_over_the_range(
    scenario: str, shared_influxdb: InfluxDB, title: str
) -> None:
    """The mean of every interval's CPU busy: the pause and the reboot leave it true (a rate
    across the pause read 99%, the reboot 100%)."""
    drawn = shown(shared_influxdb, scenario, _dashboard("fleet.json"), title, refs=("A",))
    values = {key: [v for v in points.values() if v is not None] for key, points in drawn.items()}
    assert set(values) == {_host(h) for h in HOSTS}
    for h in HOSTS:
        [value] = values[_host(h)]
        means = _means(fleet_busy(h))
        assert any(value == pytest.approx(mean, abs=1e-6) for mean in means), (h, value, means)
    assert values[_host("web-02")] == [pytest.approx(BUSY["web-02"], abs=1e-6)]


def test_cpu_busy_stat_right_after_a_pause_shows_the_busy_share(
    scenario: str, shared_influxdb: InfluxDB
) -> None:
    """The dashboard opened 40 s after web-02 resumed and db-01's pushes came back: the newest
    complete interval is the first after the gap. The stat (last value not null) read 99.2%
    for web-02, 39% for db-01, from rates spanning the gap."""
    end = PAUSE[1] + 2 * INTERVAL
    dashboard = _dashboard("host-influxdb.json")
    stat = _panel(dashboard, "CPU busy")
    assert stat["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]
    drawn = shown(shared_influxdb, scenario, dashboard, "CPU busy", end=end)
    last = {key: [v for _, v in sorted(points.items()) if v is not None][-1]
            for key, points in drawn.items()}  # fmt: skip
    assert last == {_host(h): pytest.approx(BUSY[h], abs=1e-6) for h in HOSTS}
    truth = {_host(h): rate_truth(h, BUSY[h], edge=BUSY[h], begin=end - 3600, end=end)
             for h in HOSTS}  # fmt: skip
    problems = disagreements(drawn, truth, end=end)
    assert not problems, "\n".join(problems[:40])


# ---------------------------------------------------------------------------------------------
# the math itself, on series whose answer is plain


def _s(labels: Mapping[str, str], *values: float | None) -> Series:
    return Series(frozenset(labels.items()), tuple((i * 1000, v) for i, v in enumerate(values)))


def test_math_pairs_series_by_labels_as_grafana_does() -> None:
    a = [_s({"host": "a"}, 1, 2, None), _s({"host": "b"}, 3, 4, 5)]
    b = [_s({"host": "b"}, 6, 8, 10), _s({"host": "a"}, 4, 0, 2)]
    got = {s.labels: s.points for s in evaluate_math("100 - 100 * $A / $B", {"A": a, "B": b})}
    assert got == {
        frozenset({("host", "a")}): ((0, 75.0), (1000, math.inf * -1), (2000, None)),
        frozenset({("host", "b")}): ((0, 50.0), (1000, 50.0), (2000, 50.0)),
    }
    # one set of labels within the other: paired, with the larger set
    wide = [_s({"host": "a", "device": "sda"}, 10), _s({"host": "b", "device": "sda"}, 20)]
    got = {s.labels: s.points for s in evaluate_math("$A / $B", {"A": wide, "B": a})}
    assert got == {frozenset({("host", "a"), ("device", "sda")}): ((0, 10.0),),
                   frozenset({("host", "b"), ("device", "sda")}): ((0, 20 / 3),)}  # fmt: skip
    # one series each side, labels apart: paired anyway, without labels; 0 / 0 is NaN
    [alone] = evaluate_math("$A / $B", {"A": [_s({"x": "1"}, 0)], "B": [_s({"y": "2"}, 0)]})
    assert alone.labels == frozenset()
    assert math.isnan(alone.points[0][1] or 0.0)
    # a time on one side only is dropped
    [joined] = evaluate_math("$A - $B", {"A": [_s({}, 1, 2)], "B": [_s({}, 1)]})
    assert joined.points == ((0, 0.0),)
