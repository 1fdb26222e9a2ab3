"""Synthetic hosts for the report's unit tests: HostData as fetch would return it, built from
per-step rates and levels, with chosen steps missing."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import pytest

from perfanalysis.report import metrics as m
from perfanalysis.report.build import analyse_host
from perfanalysis.report.config import ReportConfig, Thresholds, TimeSpec
from perfanalysis.report.fetch import Discovery, HostData, Selection, key, span_key
from perfanalysis.report.model import HostReport
from perfanalysis.report.timerange import Grid

GIB = 1024**3
Level = Callable[[int], float]  # step index -> value


def constant(value: float) -> Level:
    return lambda _index: value


@dataclass
class Behaviour:
    cpu_busy: Level = field(default_factory=lambda: constant(0.3))  # share of each CPU (user)
    cpu_iowait: Level = field(default_factory=lambda: constant(0.0))  # share of each CPU
    memory_used: Level = field(default_factory=lambda: constant(0.5))
    disk_busy: Level = field(default_factory=lambda: constant(0.2))
    fs_fill: Level = field(default_factory=lambda: constant(0.5))
    network_errors: float = 0.0  # per second
    missing: Collection[int] = ()
    cpus: int = 2
    has_disk: bool = True
    sampled_before: bool = True  # a sample in the step before the grid: step 0 has a rate


def synthetic_host(
    host: str, grid: Grid, how: Behaviour | None = None
) -> tuple[HostData, Discovery]:
    how = how or Behaviour()
    selection = Selection(host, "vda" if how.has_disk else None, "eth0", ["/"])
    data = HostData(selection, grid)
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def put(measurement: str, value: float, **tags: str) -> None:
        data.series.setdefault(key(measurement, **tags), [None] * grid.count)[index] = value

    def add(measurement: str, increase: float, **tags: str) -> float:
        name = key(measurement, **tags)
        if name not in counters and how.sampled_before:
            data.before[name] = 1000.0
        counters[name] = counters.get(name, 1000.0) + increase
        return counters[name]

    def count(measurement: str, value: float, **tags: str) -> None:
        """A counter's last value in the step, sampled at the step's end; and the time since
        the sample before (the end of the last step with one: all counters are stored together,
        each group's span once for the step)."""
        put(measurement, value, **tags)
        name = span_key(measurement, **tags)  # one series of its group's, as fetch reads them
        spans = data.spans.setdefault(name, [None] * grid.count)
        since = latest.get(name, -1 if how.sampled_before else None)
        if since != index:  # the group's first counter in this step
            spans[index] = None if since is None else (index - since) * step
            latest[name] = index

    latest: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    step = grid.step
    for index in range(grid.count):
        busy, iowait, disk_busy = how.cpu_busy(index), how.cpu_iowait(index), how.disk_busy(index)
        increases = {
            **{(str(c), "user"): busy * step for c in range(how.cpus)},
            **{(str(c), "iowait"): iowait * step for c in range(how.cpus)},
            **{(str(c), "idle"): (1 - busy - iowait) * step for c in range(how.cpus)},
        }
        disk = {
            "read_bytes": 4096.0 * 100 * step,
            "written_bytes": 8192.0 * 50 * step,
            "reads": 100.0 * step,
            "writes": 50.0 * step,
            "read_time": 0.2 * step,
            "write_time": 0.5 * step,
            "io_time": disk_busy * step,
            "io_time_weighted": 2 * disk_busy * step,
        }
        network = {name: 1000.0 * step for name in m.NETWORK_COUNTERS}
        network["receive_errors"] = how.network_errors * step
        network["transmit_errors"] = network["receive_drops"] = network["transmit_drops"] = 0.0
        stored = index not in how.missing
        for (cpu, mode), increase in increases.items():
            value = add(m.CPU, increase, cpu=cpu, mode=mode)
            if stored:
                count(m.CPU, value, cpu=cpu, mode=mode)
        for name, increase in disk.items() if how.has_disk else ():
            value = add(m.DISK_COUNTERS[name], increase, device="vda")
            if stored:
                count(m.DISK_COUNTERS[name], value, device="vda")
        for name, increase in network.items():
            value = add(m.NETWORK_COUNTERS[name], increase, device="eth0")
            if stored:
                count(m.NETWORK_COUNTERS[name], value, device="eth0")
        if not stored:
            continue
        total = 16.0 * GIB
        used = how.memory_used(index) * total
        memory = {
            "total": total,
            "available": total - used,
            "free": (total - used) / 2,
            "cached": (total - used) / 4,
            "buffers": 0.0,
            "reclaimable": 0.0,
            "swap_total": 0.0,
            "swap_free": 0.0,
        }
        for name, value in memory.items():
            put(m.MEMORY[name], value)
        put(m.LOAD1, busy * how.cpus)
        if how.has_disk:
            put(m.DISK_IN_FLIGHT, 1.0, device="vda")
        put(m.FILESYSTEM["size"], 100.0 * GIB, mountpoint="/")
        put(m.FILESYSTEM["avail"], (1 - how.fs_fill(index)) * 100 * GIB, mountpoint="/")
    disks = {"vda": 1e9} if how.has_disk else {}
    found = Discovery(host, disks, {"eth0": 1e6}, {"/": "ext4"}, f"{host}-collector")
    return data, found


def config_for(hosts: tuple[str, ...], thresholds: Thresholds | None = None) -> ReportConfig:
    spec = TimeSpec(last=3600, start=None, end=None, step=60)
    return ReportConfig("report.yaml", "acme", hosts, spec, thresholds=thresholds or Thresholds())


def analysed(
    host: str, grid: Grid, how: Behaviour | None = None, thresholds: Thresholds | None = None
) -> HostReport:
    data, found = synthetic_host(host, grid, how)
    return analyse_host(data, found, config_for((host,), thresholds))


def test_a_steady_synthetic_host_reads_back_its_levels() -> None:
    grid = Grid(1_700_000_000, 60, 30)
    report = analysed("web-01", grid, Behaviour(cpu_busy=constant(0.25), memory_used=constant(0.5)))
    assert report.summaries["cpu.busy"].percentiles[95] == 25.0
    assert report.summaries["memory.used_percent"].maximum == 50.0
    assert report.summaries["disk.busy"].mean == pytest.approx(20.0)
    assert report.coverage == 1.0
