"""Reading each host's series from InfluxDB: first what the host has, then its values per step.

Every query is of the report's tenant: its condition starts with the ``tenant`` tag ingest forces
on every point (``reader.tenant``), so the hosts found and the values read are that tenant's,
whatever else the database holds.

Discovery is one request per host (aggregates over the whole range: bytes moved per disk and
interface, filesystems, the collector tag, sample times for the sampling interval). The values
are read in time chunks of whole steps, one request per host and chunk holding a statement per
group of measurements; requests run concurrently and a progress line counts them. Counters are
read from one step before each chunk (the first step's rate needs the step before it), with the
time between each step's last sample and the one before it (``influxql.sample_spans``): a rate
is an increase over the time it took, not over the nominal step. Those times are read from one
series of each group (``SPAN_SOURCES``: a CPU's idle time, a disk's io_time, an interface's bytes
received) and stand for the group's other counters: the exporter pushes every sample of a
scrape with one timestamp. Read so, the times add about 15% to the reading (one series of
each group scanned again); read for every counter, they tripled it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from perfanalysis.report import influxql as q
from perfanalysis.report import metrics as m
from perfanalysis.report.detect import busiest_disk, busiest_interface, real_mountpoints
from perfanalysis.report.influx import InfluxReader, SeriesRows
from perfanalysis.report.series import Values, rate
from perfanalysis.report.timerange import Grid

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # measurement, sorted (tag, value) pairs
INTERVAL_SAMPLES = 200
# counter -> (the series whose sample times stand for its group's, its condition, the group's tag)
SpanSource = tuple[str, dict[str, str], str]
SPAN_SOURCES: dict[str, SpanSource] = {
    m.CPU: (m.CPU, {"mode": "idle"}, "cpu"),
    **dict.fromkeys(m.DISK_COUNTERS.values(), (m.DISK_COUNTERS["io_time"], {}, "device")),
    **dict.fromkeys(
        m.NETWORK_COUNTERS.values(), (m.NETWORK_COUNTERS["receive_bytes"], {}, "device")
    ),
}


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
    series: dict[SeriesKey, Values] = field(default_factory=dict)  # last (counters) or mean
    # counters: per step, seconds from the last sample before the step's first to its last
    spans: dict[SeriesKey, Values] = field(default_factory=dict)
    # counters: the last value in the step before the grid's first (for the first step's rate)
    before: dict[SeriesKey, float] = field(default_factory=dict)

    def get(self, measurement: str, **tags: str) -> Values:
        found = self.series.get(key(measurement, **tags))
        return found if found is not None else [None] * self.grid.count

    def span(self, measurement: str, **tags: str) -> Values:
        """A counter's seconds per step since the sample before (of its group: SPAN_SOURCES)."""
        found = self.spans.get(span_key(measurement, **tags))
        return found if found is not None else [None] * self.grid.count

    def rate(self, measurement: str, **tags: str) -> Values:
        """A counter's rate per step: its increase over the real time between samples."""
        name = key(measurement, **tags)
        return rate(
            self.get(measurement, **tags), self.span(measurement, **tags), self.before.get(name)
        )

    def tag_values(self, measurement: str, tag: str) -> list[str]:
        return sorted(
            {
                dict(tags)[tag]
                for name, tags in self.series
                if name == measurement and tag in dict(tags)
            }
        )


def span_key(measurement: str, **tags: str) -> SeriesKey:
    """Where a counter's times between samples are kept: under its group's source series."""
    source = SPAN_SOURCES.get(measurement)
    if source is None:
        return key(measurement, **tags)
    name, _, tag = source
    return key(name, **{tag: tags.get(tag, "")})


def known_hosts(reader: InfluxReader) -> set[str]:
    """The hosts with CPU data ever, among the reader's tenant's points."""
    statement = (
        f"SHOW TAG VALUES FROM {q.identifier(m.CPU)} WITH KEY = {q.identifier('host')} "
        f"WHERE {q.tenant_is(reader.tenant)}"
    )
    (result,) = reader.query([statement])
    return {str(row[1]) for series in result for row in series.values}


def data_extent(reader: InfluxReader, hosts: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Each host's first and last CPU sample ever (epoch seconds), hosts without one left out:
    what to tell when a period holds no data (one request, only then)."""
    statements = [
        f"SELECT {function}({q.identifier('value')}) FROM {q.identifier(m.CPU)} WHERE "  # noqa: S608 (InfluxQL, quoted)
        f"{q.tenant_is(reader.tenant)} AND {q.identifier('host')} = {q.literal(host)}"
        for host in hosts
        for function in ("first", "last")
    ]
    results = reader.query(statements)
    extent = {}
    for index, host in enumerate(hosts):
        first, last = results[2 * index], results[2 * index + 1]
        times = [int(row[0]) for series in (*first, *last) for row in series.values]
        if times:
            extent[host] = (min(times), max(times))
    return extent


def discover(reader: InfluxReader, host: str, start: int, end: int) -> Discovery:
    tenant = reader.tenant
    where = q.where(tenant, host, {}, start, end)
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
        f"{q.where(tenant, host, {'cpu': '0', 'mode': 'idle'}, start, end)} LIMIT {INTERVAL_SAMPLES}",
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


def statements(
    selection: Selection, tenant: str, start: int, end: int, step: int, offset: int = 0
) -> list[str]:
    """The statements that read one host's values for buckets in [start, end), buckets starting
    ``offset`` seconds past multiples of the step (the report's time zone). Counters are read
    from ``start - step``: the step before the first gives the first step's rate."""
    host = selection.host
    back = start - step

    def where(tags: dict[str, str | list[str]], since: int = start) -> str:
        return q.where(tenant, host, tags, since, end)

    def counters(
        measurements: Iterable[str], tags: dict[str, str | list[str]], group: list[str]
    ) -> list[str]:
        chosen = list(measurements)
        source, only, tag = SPAN_SOURCES[chosen[0]]
        times = where({**tags, **only}, back)
        return [
            q.select("last", chosen, where(tags, back), group, step, offset),
            q.sample_spans([source], times, back, end, [tag], step, offset),
        ]

    memory = [*m.MEMORY.values(), m.LOAD1]
    chosen = [
        *counters([m.CPU], {}, ["cpu", "mode"]),
        q.select("mean", memory, where({}), (), step, offset),
    ]
    if selection.disk:
        disk: dict[str, str | list[str]] = {"device": selection.disk}
        chosen += counters(m.DISK_COUNTERS.values(), disk, ["device"])
        chosen.append(q.select("mean", [m.DISK_IN_FLIGHT], where(disk), ["device"], step, offset))
    if selection.network:
        chosen += counters(m.NETWORK_COUNTERS.values(), {"device": selection.network}, ["device"])
    if selection.mountpoints:
        mounts = where({"mountpoint": selection.mountpoints})
        chosen.append(q.select("mean", m.FILESYSTEM.values(), mounts, ["mountpoint"], step, offset))
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

    def run(
        selection: Selection, first: int, count: int
    ) -> tuple[str, int, list[list[SeriesRows]]]:
        start, end = grid.time_of(first), grid.time_of(first + count)
        chosen = statements(selection, reader.tenant, start, end, grid.step, grid.offset)
        return selection.host, first, reader.query(chosen)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(run, *task) for task in tasks]
        for future in as_completed(futures):
            host, first, results = future.result()
            for result in results:
                _store(hosts[host], result, first)
            on_progress()
    return hosts


def _store(data: HostData, result: Iterable[SeriesRows], first: int = 0) -> None:
    """A chunk's values (from its bucket ``first``) into their buckets: a counter's last value in
    the step before the grid into ``before``, the spans (nanoseconds) into ``spans`` in seconds.
    The step before the chunk is read for counters: its last values are the same as its own
    chunk's, but not its span (the sample before its first is outside the chunk's query), which
    is left to its own chunk."""
    grid = data.grid
    for series in result:
        name = (series.name, tuple(sorted(series.tags.items())))
        spans = series.columns[-1] == q.ELAPSED
        target = data.spans if spans else data.series
        for moment, value in series.values:
            if value is None:
                continue
            index = (int(moment) - grid.start) // grid.step
            if spans and index < first:
                continue
            if 0 <= index < grid.count:
                values = target.setdefault(name, [None] * grid.count)
                values[index] = float(value) / 1e9 if spans else float(value)
            elif index == -1:
                data.before[name] = float(value)


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
