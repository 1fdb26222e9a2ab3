"""Reading each host's series from InfluxDB: first what the host has, then its values per step.

Discovery is one request per host (aggregates over the whole range: bytes moved per disk and
interface, filesystems, the collector tag, sample times for the sampling interval). The values
are read in time chunks of whole steps, one request per host and chunk holding a statement per
group of measurements; requests run concurrently and a progress line counts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from perfanalysis.report import influxql as q
from perfanalysis.report import metrics as m
from perfanalysis.report.detect import busiest_disk, busiest_interface, real_mountpoints
from perfanalysis.report.influx import InfluxReader, SeriesRows
from perfanalysis.report.series import Values
from perfanalysis.report.timerange import Grid

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # measurement, sorted (tag, value) pairs
INTERVAL_SAMPLES = 200


def key(measurement: str, **tags: str) -> SeriesKey:
    return measurement, tuple(sorted(tags.items()))


@dataclass
class Discovery:
    host: str
    disk_bytes: dict[str, float] = field(default_factory=dict)  # device -> bytes read + written
    network_bytes: dict[str, float] = field(default_factory=dict)  # device -> bytes in + out
    fstypes: dict[str, str] = field(default_factory=dict)  # mountpoint -> filesystem type
    collector: str | None = None
    sample_times: list[float] = field(default_factory=list)


@dataclass
class Selection:
    """What is read for one host."""

    host: str
    disk: str | None
    network: str | None
    mountpoints: list[str]


@dataclass
class HostData:
    selection: Selection
    grid: Grid
    series: dict[SeriesKey, Values] = field(default_factory=dict)

    def get(self, measurement: str, **tags: str) -> Values:
        found = self.series.get(key(measurement, **tags))
        return found if found is not None else [None] * self.grid.count

    def tag_values(self, measurement: str, tag: str) -> list[str]:
        return sorted(
            {
                dict(tags)[tag]
                for name, tags in self.series
                if name == measurement and tag in dict(tags)
            }
        )


def known_hosts(reader: InfluxReader) -> set[str]:
    statement = f"SHOW TAG VALUES FROM {q.identifier(m.CPU)} WITH KEY = {q.identifier('host')}"
    (result,) = reader.query([statement])
    return {str(row[1]) for series in result for row in series.values}


def discover(reader: InfluxReader, host: str, start: int, end: int) -> Discovery:
    where = q.where(host, {}, start, end)
    statements = [
        q.select(
            "spread",
            [m.DISK_COUNTERS["read_bytes"], m.DISK_COUNTERS["written_bytes"]],
            where,
            ["device"],
        ),
        q.select(
            "spread",
            [m.NETWORK_COUNTERS["receive_bytes"], m.NETWORK_COUNTERS["transmit_bytes"]],
            where,
            ["device"],
        ),
        q.select("last", [m.FILESYSTEM["size"]], where, ["mountpoint", "fstype"]),
        q.select("last", [m.CPU], where, ["collector"]),
        f"SELECT {q.identifier('value')} FROM {q.identifier(m.CPU)} WHERE "  # noqa: S608 (InfluxQL, quoted)
        f"{q.where(host, {'cpu': '0', 'mode': 'idle'}, start, end)} LIMIT {INTERVAL_SAMPLES}",
    ]
    disks, networks, filesystems, collectors, samples = reader.query(statements)
    found = Discovery(host)
    _add_totals(found.disk_bytes, disks)
    _add_totals(found.network_bytes, networks)
    found.fstypes = {
        s.tags["mountpoint"]: s.tags.get("fstype", "")
        for s in filesystems
        if s.tags.get("mountpoint")
    }
    latest = max(
        ((s.values[0][0], s.tags.get("collector", "")) for s in collectors if s.values),
        default=None,
    )
    found.collector = (latest[1] or None) if latest else None
    found.sample_times = [float(row[0]) for s in samples for row in s.values]
    return found


def _add_totals(totals: dict[str, float], result: Iterable[SeriesRows]) -> None:
    for series in result:
        device = series.tags.get("device", "")
        for row in series.values:
            if device and row[1] is not None:
                totals[device] = totals.get(device, 0.0) + float(row[1])


def statements(selection: Selection, start: int, end: int, step: int) -> list[str]:
    """The statements that read one host's values for buckets in [start, end)."""
    host = selection.host
    memory = [*m.MEMORY.values(), m.LOAD1]
    chosen = [
        q.select("last", [m.CPU], q.where(host, {}, start, end), ["cpu", "mode"], step),
        q.select("mean", memory, q.where(host, {}, start, end), (), step),
    ]
    if selection.disk:
        disk = q.where(host, {"device": selection.disk}, start, end)
        chosen.append(q.select("last", m.DISK_COUNTERS.values(), disk, ["device"], step))
        chosen.append(q.select("mean", [m.DISK_IN_FLIGHT], disk, ["device"], step))
    if selection.network:
        network = q.where(host, {"device": selection.network}, start, end)
        chosen.append(q.select("last", m.NETWORK_COUNTERS.values(), network, ["device"], step))
    if selection.mountpoints:
        mounts = q.where(host, {"mountpoint": selection.mountpoints}, start, end)
        chosen.append(q.select("mean", m.FILESYSTEM.values(), mounts, ["mountpoint"], step))
    return chosen


def read_values(
    reader: InfluxReader,
    selections: Sequence[Selection],
    grid: Grid,
    chunk_buckets: int,
    concurrency: int,
    on_progress: Callable[[], None],
) -> dict[str, HostData]:
    hosts = {s.host: HostData(s, grid) for s in selections}
    tasks = [(s, first, count) for s in selections for first, count in grid.chunks(chunk_buckets)]

    def run(selection: Selection, first: int, count: int) -> tuple[str, list[list[SeriesRows]]]:
        start, end = grid.time_of(first), grid.time_of(first + count)
        return selection.host, reader.query(statements(selection, start, end, grid.step))

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(run, *task) for task in tasks]
        for future in as_completed(futures):
            host, results = future.result()
            for result in results:
                _store(hosts[host], result)
            on_progress()
    return hosts


def _store(data: HostData, result: Iterable[SeriesRows]) -> None:
    grid = data.grid
    for series in result:
        values = data.series.setdefault(
            (series.name, tuple(sorted(series.tags.items()))), [None] * grid.count
        )
        for moment, value in series.values:
            index = (int(moment) - grid.start) // grid.step
            if value is not None and 0 <= index < grid.count:
                values[index] = float(value)


def chunk_buckets(step: int, max_buckets: int = 2000, max_seconds: int = 86400) -> int:
    """Buckets per request: at most a day of raw data scanned, at most ``max_buckets`` returned."""
    return max(1, min(max_buckets, max_seconds // step))


def select_devices(
    found: Discovery,
    disk: str | None,
    network: str | None,
    mounts: Sequence[str] | None,
    excluded: Iterable[str],
) -> Selection:
    return Selection(
        host=found.host,
        disk=disk or busiest_disk(found.disk_bytes),
        network=network or busiest_interface(found.network_bytes),
        mountpoints=list(mounts)
        if mounts is not None
        else real_mountpoints(found.fstypes, excluded),
    )


def as_mapping(found: Sequence[Discovery]) -> Mapping[str, Discovery]:
    return {d.host: d for d in found}
