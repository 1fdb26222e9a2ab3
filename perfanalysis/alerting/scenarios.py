"""Input series for the promtool tests: for each rule, a host that stays quiet and hosts that cross
each threshold, with a model of the value the rule's expression sees at every minute.

Scenarios run normally until minute ``SWITCH`` and then change. Counters change their slope, so
``rate(...[5m])`` ramps to the new rate over five minutes; with a sample at both ends of every
window from minute 5 on, that rate is exactly ``(last - first) / 300``, which ``rate5`` computes.
From the model, promtests.py derives when each level starts to hold and when its ``for:`` has
elapsed; promtool then checks those predictions against Prometheus itself. Values are chosen off
the thresholds (midpoints, half minutes), never on them, and hosts are numbered (host-1 quiet,
host-2 and host-3 crossing levels) so that one promtool test group holds all of a rule's hosts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from perfanalysis.alerting.catalogue import PUSH_LAST_SUCCESS, Level
from perfanalysis.alerting.thresholds import Setting

SWITCH = 5  # minute at which scenarios turn abnormal; rate windows are full from minute 5
Series = Callable[[int], float]  # value at minute t
Labels = Mapping[str, str]
SeriesSpec = tuple[
    str, Labels, Callable[[int], float | None]
]  # metric, labels, values (None: no sample)


def _never(level: Level, t: int) -> float:
    return -1.0


def _zero(t: int) -> float:
    return 0.0


@dataclass(frozen=True)
class Scenario:
    title: str
    series: Sequence[SeriesSpec]
    labels: Labels  # the alert's labels as the expression produces them (empty if quiet)
    value: Series  # $value at minute t
    margin: Callable[[Level, int], float] = _never  # > 0 while the level holds
    start: int = SWITCH  # no level holds at start - 1
    quiet: bool = False  # must never alert


@dataclass(frozen=True)
class Hosts:
    """Target labels for host number n (``host-n:9100``), with the scope's tenant if it has one."""

    base: Labels

    def __call__(self, n: int, suffix: str = "") -> dict[str, str]:
        return {**self.base, "instance": f"host-{n}{suffix}:9100", "job": "node"}


def rate5(series: Series, t: int) -> float:
    return (series(t) - series(t - 5)) / 300


def counter(per_minute_before: float, per_minute_after: float, base: float = 1000) -> Series:
    """A counter that changes slope at SWITCH."""

    def value(t: int) -> float:
        return base + min(t, SWITCH) * per_minute_before + max(t - SWITCH, 0) * per_minute_after

    return value


def step(before: float, after: float) -> Series:
    return lambda t: before if t < SWITCH else after


def constant(value: float) -> Series:
    return lambda t: value


def above(value: Series) -> Callable[[Level, int], float]:
    """Relative distance above the level's threshold (positive: the level holds)."""

    def margin(level: Level, t: int) -> float:
        assert level.threshold is not None
        if value(t) == level.threshold == 0:
            return -1.0  # a flat counter's rate is exactly 0, and 0 > 0 is false
        return (value(t) - level.threshold) / max(abs(level.threshold), 1.0)

    return margin


def grid(value: float) -> float:
    """Round to 1/64 so that counters built from it add up exactly in binary floating point."""
    return round(value * 64) / 64


def thresholds(setting: Setting) -> list[float]:
    return [lv.threshold for lv in setting.levels() if lv.threshold is not None]


def baseline(setting: Setting) -> float:
    """A gauge's value before SWITCH: half the lowest threshold, well clear of every level."""
    return min(thresholds(setting), default=0) / 2


def targets(setting: Setting, high: float | None) -> list[tuple[str, float]]:
    """Values to test where higher is worse: quiet, between the levels, above every level."""
    levels = thresholds(setting)
    if not levels:  # disabled: even a very high value stays quiet
        return [("disabled", high if high is not None else 1e6)]
    low, top = min(levels), max(levels)
    result = [("quiet", low / 2)]
    if len(levels) == 2:
        result.append(("between warning and critical", (low + top) / 2))
    result.append(("above every level", (top + high) / 2 if high is not None else top * 2 or 1))
    return result


def scenario(title: str, series: Sequence[SeriesSpec], labels: Labels, value: Series) -> Scenario:
    """A scenario whose alert value is compared with ``>``; quiet if its title says so."""
    if title.startswith(("quiet", "disabled")):
        return Scenario(title, series, {}, value, quiet=True)
    return Scenario(title, series, labels, value, above(value))


# -- one builder per rule


def cpu(setting: Setting, hosts: Hosts, tenant: str) -> list[Scenario]:
    out = []
    for n, (title, busy) in enumerate(targets(setting, 100), 1):
        idle = grid(60 * (1 - busy / 100))  # idle seconds per minute after SWITCH
        idle_series = counter(60, idle)

        def value(t: int, idle_series: Series = idle_series) -> float:
            return 100 * (1 - rate5(idle_series, t))

        host = hosts(n)
        series = [
            ("node_cpu_seconds_total", {**host, "cpu": "0", "mode": "idle"}, idle_series),
            ("node_cpu_seconds_total", {**host, "cpu": "0", "mode": "user"}, counter(0, 60 - idle)),
        ]
        out.append(scenario(f"{title} {value(SWITCH + 5):g}% busy", series, host, value))
    return out


def memory(setting: Setting, hosts: Hosts, tenant: str) -> list[Scenario]:
    total = 16 * 2**30
    out = []
    for n, (title, used) in enumerate(targets(setting, 100), 1):
        before = round(total * (1 - baseline(setting) / 100))
        available = step(before, round(total * (1 - used / 100)))

        def value(t: int, available: Series = available) -> float:
            return 100 * (1 - available(t) / total)

        host = hosts(n)
        series = [
            ("node_memory_MemTotal_bytes", host, constant(total)),
            ("node_memory_MemAvailable_bytes", host, available),
        ]
        out.append(scenario(f"{title} {value(SWITCH):g}% used", series, host, value))
    return out


ROOT_FS = {"device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
IGNORED_FS = (  # full, but never alerting
    ({"device": "tmpfs", "fstype": "tmpfs", "mountpoint": "/run"}, 0),
    ({"device": "/dev/sdb1", "fstype": "ext4", "mountpoint": "/mnt/ro"}, 1),  # read-only
)


def fs_series(labels: Labels, size: float, avail: Series, readonly: int) -> list[SeriesSpec]:
    return [
        ("node_filesystem_size_bytes", labels, constant(size)),
        ("node_filesystem_avail_bytes", labels, avail),
        ("node_filesystem_readonly", labels, constant(readonly)),
    ]


def filesystem(setting: Setting, hosts: Hosts, tenant: str) -> list[Scenario]:
    size = 100 * 2**30
    out = []
    for n, (title, used) in enumerate(targets(setting, 100), 1):
        before = round(size * (1 - baseline(setting) / 100))
        avail = step(before, round(size * (1 - used / 100)))

        def value(t: int, avail: Series = avail) -> float:
            return 100 * (1 - avail(t) / size)

        host = hosts(n)
        series = fs_series({**host, **ROOT_FS}, size, avail, 0)
        for labels, readonly in IGNORED_FS:
            series += fs_series({**host, **labels}, size, step(size / 2, size / 100), readonly)
        title = f"{title} / {value(SWITCH):g}% full (its tmpfs and read-only fs 99%)"
        out.append(scenario(title, series, {**host, **ROOT_FS}, value))
    return out


def filesystem_predicted(setting: Setting, hosts: Hosts, tenant: str) -> list[Scenario]:
    """Filesystems emptying linearly from minute 0, so that ``predict_linear`` is exact."""
    per_minute = 2**20  # bytes written per minute
    floor = setting.params["min_used_percent"]
    levels = thresholds(setting)

    def filling(minutes_to_full: float, used_at_start: float) -> tuple[float, Series]:
        avail0 = per_minute * minutes_to_full
        return float(round(avail0 / (1 - used_at_start / 100))), lambda t: avail0 - per_minute * t

    host = hosts(1)
    slow_size, slow = filling(2 * 60 * (max(levels, default=24) + 24), floor + (100 - floor) / 2)
    series = fs_series({**host, **ROOT_FS}, slow_size, slow, 0)
    fast_hours = min(levels, default=4) / 2
    for labels, readonly in IGNORED_FS:
        size, fast = filling(fast_hours * 60, 99)
        series += fs_series({**host, **labels}, size, fast, readonly)
    title = f"quiet / fills slowly; its tmpfs and read-only fs full in {fast_hours:g}h"
    # /data fills from empty and will be full in under the lowest level's hours, but stays below
    # min_used_percent until after the last evaluation (at most `for` + 8 minutes in).
    minutes = 0.9 * 60 * min(levels, default=4)
    last = SWITCH + math.ceil(setting.for_seconds / 60) + 8
    if floor > 0 and minutes * floor / 100 > last:
        size, fast = filling(minutes, 0)
        series += fs_series({**host, **ROOT_FS, "mountpoint": "/data"}, size, fast, 0)
        title += f"; /data fills from empty in {minutes / 60:g}h, below {floor:g}% for now"
    out = [Scenario(title, series, {}, _zero, quiet=True)]
    for n, hours in enumerate(sorted(levels, reverse=True), 2):
        # Full in `hours` half a minute after SWITCH: the level starts to hold at SWITCH.
        size, avail = filling(hours * 60 + SWITCH - 0.5, floor + (100 - floor) / 2)

        def value(t: int, size: float = size, avail: Series = avail) -> float:
            return 100 * (1 - avail(t) / size)

        def margin(level: Level, t: int, value: Series = value, avail: Series = avail) -> float:
            assert level.threshold is not None
            if t < 1:
                return -1.0  # a single sample: predict_linear has no result yet
            reach = per_minute * level.threshold * 60  # written in `threshold` hours
            return min((reach - avail(t)) / reach, (value(t) - floor) / max(floor, 1.0))

        labels = {**hosts(n), **ROOT_FS}
        title = f"/ {value(0):g}% full at minute 0, full {hours:g}h {SWITCH - 0.5:g}m later"
        out.append(Scenario(title, fs_series(labels, size, avail, 0), labels, value, margin, 1))
    return out


def disk_io(setting: Setting, hosts: Hosts, tenant: str) -> list[Scenario]:
    out = []
    for n, (title, busy) in enumerate(targets(setting, 1), 1):
        io = counter(0, grid(60 * busy))

        def value(t: int, io: Series = io) -> float:
            return rate5(io, t)

        sda, loop0 = {**hosts(n), "device": "sda"}, {**hosts(n), "device": "loop0"}
        series = [
            ("node_disk_io_time_seconds_total", sda, io),
            ("node_disk_io_time_seconds_total", loop0, counter(0, 60)),
        ]
        title = f"{title} sda {value(SWITCH + 5):g} busy (its loop0 always busy)"
        out.append(scenario(title, series, sda, value))
    return out


def network(setting: Setting, hosts: Hosts, tenant: str) -> list[Scenario]:
    out = []
    for n, (title, errors) in enumerate(targets(setting, None), 1):
        half = counter(0, grid(30 * errors))  # receive and transmit errors each

        def value(t: int, half: Series = half) -> float:
            return rate5(half, t) + rate5(half, t)

        eth0 = {**hosts(n), "device": "eth0"}
        series = [
            ("node_network_receive_errs_total", eth0, half),
            ("node_network_transmit_errs_total", eth0, half),
        ]
        out.append(scenario(f"{title} eth0 {value(SWITCH + 5):g} errors/s", series, eth0, value))
    return out


def target_down(setting: Setting, hosts: Hosts, tenant: str) -> list[Scenario]:
    quiet = Scenario("quiet up", [("up", hosts(1), constant(1))], {}, _zero, quiet=True)
    title = f"scrapes fail from {SWITCH}m"
    series = [("up", hosts(2), step(1, 0))]
    if not setting.levels():
        return [quiet, Scenario(f"disabled: {title}", series, {}, _zero, quiet=True)]
    down = Scenario(title, series, hosts(2), _zero, lambda lv, t: 1.0 if t >= SWITCH else -1.0)
    return [quiet, down]


def push_stalled(setting: Setting, hosts: Hosts, tenant: str) -> list[Scenario]:
    """host-1 pushes, host-2 stops pushing, host-3 starts at SWITCH and never has a push
    acknowledged (its timestamp is 0, so its start time counts); host-4 is a node_exporter."""
    levels = thresholds(setting)
    # Pushes are acknowledged `lag` seconds before each scrape; the lag keeps the values off the
    # thresholds, which are usually whole minutes.
    lag = next((x for x in (30, 20, 40, 10, 50) if all((t - x) % 60 for t in levels)), 15)
    metric = PUSH_LAST_SUCCESS

    def working(t: int) -> float:
        return 60 * t - lag

    def stalled(t: int) -> float:
        return working(min(t, SWITCH - 1))

    def started(t: int) -> float | None:
        return None if t < SWITCH else working(SWITCH)

    def never(t: int) -> float | None:
        return None if t < SWITCH else 0.0

    def since_stall(t: int) -> float:
        return 60 * t - stalled(t)

    def since_start(t: int) -> float:
        return 60.0 * t - working(SWITCH)

    quiet: list[SeriesSpec] = [
        (metric, hosts(1), working),
        ("process_start_time_seconds", hosts(1), constant(0)),
        ("process_start_time_seconds", hosts(4), constant(0)),
    ]
    out = [Scenario("quiet host-1 pushes every minute, host-4 does not push at all", quiet, {},
                    _zero, quiet=True)]  # fmt: skip
    prefix = "" if levels else "disabled: "
    series: list[SeriesSpec] = [
        (metric, hosts(2), stalled),
        ("process_start_time_seconds", hosts(2), constant(0)),
    ]
    out.append(scenario(f"{prefix}pushes fail from {SWITCH}m", series, hosts(2), since_stall))
    series = [(metric, hosts(3), never), ("process_start_time_seconds", hosts(3), started)]
    title = f"{prefix}started at {SWITCH}m, never acknowledged"
    out.append(scenario(title, series, hosts(3), since_start))
    return out


REASONS = ("invalid_line", "timestamp_out_of_range", "field_type_conflict")


def ingest_rejecting(setting: Setting, hosts: Hosts, tenant: str) -> list[Scenario]:
    out = []
    for n, (title, per_second) in enumerate(targets(setting, None)):
        half = counter(0, grid(30 * per_second))  # from each of two ingest replicas

        def value(t: int, half: Series = half) -> float:
            return rate5(half, t) * 2

        labels = {"tenant": tenant, "reason": REASONS[n]}
        series = [
            ("perfanalysis_ingest_points_rejected_total",
             {"instance": f"ingest-{replica}:8081", "job": "ingest", **labels}, half)
            for replica in (1, 2)
        ]  # fmt: skip
        title = f"{title} {REASONS[n]}, {value(SWITCH + 5):g} points/s over two replicas"
        out.append(scenario(title, series, labels, value))
    return out


def spool_growing(setting: Setting, hosts: Hosts, tenant: str) -> list[Scenario]:
    metric = "perfanalysis_exporter_push_points_queued"
    floors = sorted(thresholds(setting))
    top, low = max(floors, default=1000), min(floors, default=1000)
    series: list[SeriesSpec] = [(metric, hosts(1), constant(2 * top or 1))]
    title = f"quiet {2 * top or 1:g} points, not growing"
    if low > 0:  # host-1b grows for 10 minutes, to half the lowest floor

        def slowly(t: int) -> float:
            return min(max(t - SWITCH, 0), 10) * grid(low / 20)

        series.append((metric, hosts(1, "b"), slowly))
        title += "; host-1b growing below the floor"
    out = [Scenario(title, series, {}, _zero, quiet=True)]
    for n, floor in enumerate(floors, 2):
        per_minute = max(grid(floor / 2.5), 1 / 64)  # above the floor 3 minutes after SWITCH

        def queued(t: int, per_minute: float = per_minute) -> float:
            return float(max(t - SWITCH, 0) * per_minute)

        def margin(level: Level, t: int, queued: Series = queued) -> float:
            return above(queued)(level, t) if t > SWITCH else -1.0  # deriv > 0 from SWITCH + 1

        title = f"grows by {per_minute:g} points a minute from {SWITCH}m"
        out.append(Scenario(title, [(metric, hosts(n), queued)], hosts(n), queued, margin))
    return out


BUILDERS: dict[str, Callable[[Setting, Hosts, str], list[Scenario]]] = {
    "cpu_busy_percent": cpu,
    "memory_used_percent": memory,
    "filesystem_used_percent": filesystem,
    "filesystem_predicted_full_hours": filesystem_predicted,
    "disk_io_saturation": disk_io,
    "network_errors_per_second": network,
    "exporter_down": target_down,
    "push_stalled_seconds": push_stalled,
    "ingest_rejecting": ingest_rejecting,
    "spool_growing": spool_growing,
}
