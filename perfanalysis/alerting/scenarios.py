"""Input series for the promtool tests: for each rule, a host that stays quiet and hosts that cross
each threshold, with a model of the value the rule's expression sees at every minute.

Scenarios run normally until minute ``SWITCH`` and then change. Counters change their slope, so
``rate(...[5m])`` ramps to the new rate over five minutes; with a sample at both ends of every
window from minute 5 on, that rate is exactly ``(last - first) * (1 / 300)``, in that order (the
extrapolation factor 1, divided by the range, times the difference, as Prometheus computes it:
``/ 300`` differs in the last bit, and so in the rounding of an annotation), which ``rate5``
computes. ``increase(...[6h])`` of a counter starting at 0 is exactly the difference.
From the model, promtests.py derives when each level starts to hold and when its ``for:`` has
elapsed; promtool then checks those predictions against Prometheus itself. Values are chosen off
the thresholds (midpoints, half minutes), never on them, and hosts are numbered (host-1 quiet,
host-2 and host-3 crossing levels) so that one promtool test group holds all of a rule's hosts.
A value that still lands on a threshold (a rate ramping up over five minutes passes k/5 of its
final value, and 4/5 of 50 is 40) makes promtests.py build again with the next ``attempt``, which
moves the values within their band.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from perfanalysis.alerting.catalogue import (
    NOTIFICATIONS_FAILED,
    PUSH_DROPPED,
    PUSH_LAST_SUCCESS,
    PUSH_SKIPPED,
    PUSH_STARTED,
    SKIPPED_WINDOW,
    Level,
)
from perfanalysis.alerting.durations import parse_duration
from perfanalysis.alerting.thresholds import Setting

SWITCH = 5  # minute at which scenarios turn abnormal; rate windows are full from minute 5
HORIZON = 180  # minutes after a scenario's start within which levels are tested, by default
# Where within its band a value sits, per attempt: the middle first, then either side of it.
SHIFTS = (0.0, 0.0625, -0.0625, 0.125, -0.125, 0.1875, -0.1875, 0.25)
ATTEMPTS = len(SHIFTS)
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
    horizon: int = HORIZON  # minutes after start within which each level must start to hold


@dataclass(frozen=True)
class Hosts:
    """Target labels for host number n (``host-n:9100``), with the scope's tenant if it has one."""

    base: Labels

    def __call__(self, n: int, suffix: str = "") -> dict[str, str]:
        return {**self.base, "instance": f"host-{n}{suffix}:9100", "job": "node"}


def rate5(series: Series, t: int) -> float:
    return (series(t) - series(t - 5)) * (1 / 300)


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


def grid(value: float, steps: int = 64) -> float:
    """Round to 1/steps (a power of two) so that counters built from it add up exactly in binary
    floating point."""
    return round(value * steps) / steps


def steps_for(setting: Setting, per_minute: float) -> int:
    """Grid steps for a counter growing by ``per_minute`` times a rate each minute: fine enough to
    place a value a thousandth of the lowest positive level apart, coarse enough that counters of
    a few times the highest level, over a day of minutes, keep every bit (within 2**50)."""
    positive = [lv for lv in thresholds(setting) if lv > 0]
    if not positive:
        return 64
    wanted = math.ceil(math.log2(1000 / (min(positive) * per_minute)))
    room = 50 - math.ceil(math.log2(1000 + 5 * max(positive) * per_minute * 2000))
    return 1 << max(6, min(wanted, room))


def thresholds(setting: Setting) -> list[float]:
    return [lv.threshold for lv in setting.levels() if lv.threshold is not None]


def baseline(setting: Setting) -> float:
    """A gauge's value before SWITCH: half the lowest threshold, well clear of every level."""
    return min(thresholds(setting), default=0) / 2


def targets(setting: Setting, high: float | None, attempt: int = 0) -> list[tuple[str, float]]:
    """Values to test where higher is worse: quiet, between the levels, above every level (below
    ``high``, which the rule's value never reaches). ``attempt`` moves each within its band."""
    levels = thresholds(setting)
    if not levels:  # disabled: even a very high value stays quiet
        return [("disabled", high if high is not None else 1e6)]
    low, top = min(levels), max(levels)
    where = 0.5 + SHIFTS[attempt % ATTEMPTS]
    result = [("quiet", low / 2)]
    if len(levels) == 2:
        result.append(("between warning and critical", low + (top - low) * where))
    if high is not None:
        result.append(("above every level", top + (high - top) * where))
    else:
        result.append(("above every level", (top or 0.5) * (1.5 + where)))
    return result


def scenario(
    title: str,
    series: Sequence[SeriesSpec],
    labels: Labels,
    value: Series,
    horizon: int = HORIZON,
) -> Scenario:
    """A scenario whose alert value is compared with ``>``; quiet if its title says so."""
    if title.startswith(("quiet", "disabled")):
        return Scenario(title, series, {}, value, quiet=True)
    return Scenario(title, series, labels, value, above(value), horizon=horizon)


# -- one builder per rule


FINE = 2**36  # grid steps for CPU seconds: counters stay below 2**14, so they keep every bit


def cpu(setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0) -> list[Scenario]:
    """One CPU, busy in user and system mode, and waiting for IO most of the rest of its time:
    iowait is idle time, as in node-mixin, so even the quiet host is mostly not idle. Before
    SWITCH every host is as busy as the quiet one (a little more or less with each attempt), so
    the rate's ramp to a host's new level does not start from 0: from 0, a host at 100% would
    pass 20, 40, 60 and 80% exactly, and a level there could not be tested."""
    out = []
    shift = SHIFTS[attempt % ATTEMPTS]
    before = grid(60 * baseline(setting) / 100 * (1 + shift), FINE)  # busy seconds per minute
    for n, (title, busy) in enumerate(targets(setting, 100, attempt), 1):
        seconds = grid(60 * busy / 100, FINE)  # busy seconds per minute after SWITCH
        if title.startswith("quiet"):
            seconds = before
        user = grid(seconds * 0.75, FINE)
        iowait = grid((60 - max(seconds, before)) * 0.8, FINE)
        modes = {
            "idle": counter(60 - before - iowait, 60 - seconds - iowait),
            "iowait": counter(iowait, iowait),
            "system": counter(before - grid(before * 0.75, FINE), seconds - user),
            "user": counter(grid(before * 0.75, FINE), user),
        }

        def value(t: int, modes: Mapping[str, Series] = modes) -> float:
            return 100 * (rate5(modes["system"], t) + rate5(modes["user"], t))

        host = hosts(n)
        series: list[SeriesSpec] = [
            ("node_cpu_seconds_total", {**host, "cpu": "0", "mode": mode}, values)
            for mode, values in modes.items()
        ]
        title = f"{title} {value(SWITCH + 5):.4g}% busy, {100 * iowait / 60:.3g}% iowait"
        out.append(scenario(title, series, host, value))
    return out


def memory(setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0) -> list[Scenario]:
    total = 16 * 2**30
    out = []
    for n, (title, used) in enumerate(targets(setting, 100, attempt), 1):
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


def filesystem(setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0) -> list[Scenario]:
    size = 100 * 2**30
    out = []
    for n, (title, used) in enumerate(targets(setting, 100, attempt), 1):
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


def filesystem_predicted(
    setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0
) -> list[Scenario]:
    """Filesystems emptying linearly from minute 0, so that ``predict_linear`` is exact."""
    per_minute = 2**20  # bytes written per minute
    early = 0.5 + SHIFTS[attempt % ATTEMPTS] * 1.5  # minutes, 0 < early < 1
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
        # Full in `hours` a fraction of a minute (`early`) before SWITCH: the level starts to hold
        # at SWITCH.
        size, avail = filling(hours * 60 + SWITCH - early, floor + (100 - floor) / 2)

        def value(t: int, size: float = size, avail: Series = avail) -> float:
            return 100 * (1 - avail(t) / size)

        def margin(level: Level, t: int, value: Series = value, avail: Series = avail) -> float:
            assert level.threshold is not None
            if t < 1:
                return -1.0  # a single sample: predict_linear has no result yet
            reach = per_minute * level.threshold * 60  # written in `threshold` hours
            return min((reach - avail(t)) / reach, (value(t) - floor) / max(floor, 1.0))

        labels = {**hosts(n), **ROOT_FS}
        title = f"/ {value(0):g}% full at minute 0, full {hours:g}h {SWITCH - early:g}m later"
        out.append(Scenario(title, fs_series(labels, size, avail, 0), labels, value, margin, 1))
    return out


def disk_io(setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0) -> list[Scenario]:
    """Requests in flight (the rate of io_time_weighted); every nvme0n1 is also busy all the time,
    as an NVMe device serving a few requests in parallel reads, which is not saturation. Every
    host's LVM volume on it (dm-0) and its loop0 have more requests in flight than every level:
    they are not disks of their own, and never alert."""
    out = []
    levels = thresholds(setting)
    steps = steps_for(setting, 60)
    saturated = counter(0, grid(60 * 4 * max(levels, default=10) + 60, steps))
    for n, (title, queue) in enumerate(targets(setting, None, attempt), 1):
        weighted = counter(0, grid(60 * queue, steps))

        def value(t: int, weighted: Series = weighted) -> float:
            return rate5(weighted, t)

        nvme = {**hosts(n), "device": "nvme0n1"}
        series: list[SeriesSpec] = [
            ("node_disk_io_time_weighted_seconds_total", nvme, weighted),
            ("node_disk_io_time_seconds_total", nvme, counter(0, 60)),
        ]
        for virtual in ("dm-0", "loop0"):
            labels = {**hosts(n), "device": virtual}
            series += [
                ("node_disk_io_time_weighted_seconds_total", labels, saturated),
                ("node_disk_io_time_seconds_total", labels, counter(0, 60)),
            ]
        title = (
            f"{title} nvme0n1 {value(SWITCH + 5):g} requests in flight, 100% busy "
            f"(its dm-0 and loop0 {rate5(saturated, SWITCH + 5):g})"
        )
        out.append(scenario(title, series, nvme, value))
    return out


# Virtual interfaces every host has, with more errors than every level: a container's veth pair
# (Docker, most Kubernetes network plugins) and a Cilium pod interface. They never alert.
VIRTUAL_NICS = ("veth1a2b3c4", "lxc5d6e7f8")


def network(setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0) -> list[Scenario]:
    out = []
    steps = steps_for(setting, 30)
    levels = thresholds(setting)
    # receive and transmit errors each, per minute: together twice the highest level plus 1 a second
    noisy = counter(0, grid(30 * (2 * max(levels, default=10) + 1), steps))
    for n, (title, errors) in enumerate(targets(setting, None, attempt), 1):
        half = counter(0, grid(30 * errors, steps))  # receive and transmit errors each

        def value(t: int, half: Series = half) -> float:
            return rate5(half, t) + rate5(half, t)

        eth0 = {**hosts(n), "device": "eth0"}
        series: list[SeriesSpec] = [
            ("node_network_receive_errs_total", eth0, half),
            ("node_network_transmit_errs_total", eth0, half),
        ]
        for virtual in VIRTUAL_NICS:
            labels = {**hosts(n), "device": virtual}
            series += [
                ("node_network_receive_errs_total", labels, noisy),
                ("node_network_transmit_errs_total", labels, noisy),
            ]
        title = (
            f"{title} eth0 {value(SWITCH + 5):g} errors/s "
            f"(its {' and '.join(VIRTUAL_NICS)} {2 * rate5(noisy, SWITCH + 5):g})"
        )
        out.append(scenario(title, series, eth0, value))
    return out


def condition(
    title: str, series: Sequence[SeriesSpec], labels: Labels, setting: Setting
) -> Scenario:
    """A condition rule's scenario: it holds from SWITCH on (quiet if the rule is disabled)."""
    if not setting.levels():
        return Scenario(f"disabled: {title}", series, {}, _zero, quiet=True)
    return Scenario(title, series, labels, _zero, lambda lv, t: 1.0 if t >= SWITCH else -1.0)


def target_down(setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0) -> list[Scenario]:
    quiet = Scenario("quiet up", [("up", hosts(1), constant(1))], {}, _zero, quiet=True)
    series = [("up", hosts(2), step(1, 0))]
    return [quiet, condition(f"scrapes fail from {SWITCH}m", series, hosts(2), setting)]


def device_error(setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0) -> list[Scenario]:
    """host-2's NFS mount stops answering at SWITCH (the exporter then reports only its
    device_error); host-1's tmpfs errs too, but pseudo filesystems are ignored."""
    metric = "node_filesystem_device_error"
    run = {"device": "tmpfs", "fstype": "tmpfs", "mountpoint": "/run/user/1000"}
    quiet: list[SeriesSpec] = [
        (metric, {**hosts(1), **ROOT_FS}, constant(0)),
        (metric, {**hosts(1), **run}, step(0, 1)),
    ]
    title = f"quiet / answers; its tmpfs errs from {SWITCH}m"
    out = [Scenario(title, quiet, {}, _zero, quiet=True)]
    nfs = {**hosts(2), "device": "nas:/export", "fstype": "nfs4", "mountpoint": "/mnt/nas"}
    series = [(metric, {**hosts(2), **ROOT_FS}, constant(0)), (metric, nfs, step(0, 1))]
    out.append(condition(f"NFS mount hangs from {SWITCH}m", series, nfs, setting))
    return out


def read_only(setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0) -> list[Scenario]:
    """host-2's /data is remounted read-only at SWITCH (ext4 errors=remount-ro); host-1's /boot/efi
    is read-only from the start (by design: never alerts) and its squashfs, an ignored type,
    turns read-only."""
    metric = "node_filesystem_readonly"
    efi = {"device": "/dev/sda15", "fstype": "vfat", "mountpoint": "/boot/efi"}
    snap = {"device": "/dev/loop0", "fstype": "squashfs", "mountpoint": "/snap/core/1"}
    quiet: list[SeriesSpec] = [
        (metric, {**hosts(1), **ROOT_FS}, constant(0)),
        (metric, {**hosts(1), **efi}, constant(1)),
        (metric, {**hosts(1), **snap}, step(0, 1)),
    ]
    title = (
        f"quiet / read-write, /boot/efi always read-only, a squashfs turns read-only at {SWITCH}m"
    )
    out = [Scenario(title, quiet, {}, _zero, quiet=True)]
    data = {**hosts(2), "device": "/dev/sdb1", "fstype": "ext4", "mountpoint": "/data"}
    series = [(metric, {**hosts(2), **ROOT_FS}, constant(0)), (metric, data, step(0, 1))]
    out.append(condition(f"/data remounted read-only at {SWITCH}m", series, data, setting))
    return out


def push_stalled(setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0) -> list[Scenario]:
    """host-1 pushes, host-2 stops pushing; host-3 starts at SWITCH and never has a push
    acknowledged (its timestamp is 0, so its push path's start time counts: it serves no process
    metrics, --web.disable-exporter-metrics), as does host-5, an exporter from before that metric
    (its process start time counts); host-4 is a node_exporter."""
    levels = thresholds(setting)
    # Pushes are acknowledged `lag` seconds before each scrape; the lag keeps the values off the
    # thresholds, which are usually whole minutes.
    lags: tuple[int, ...] = (30, 20, 40, 10, 50, 25, 35, 15)
    lags = lags[attempt % len(lags) :] + lags[: attempt % len(lags)]
    lag = next((x for x in lags if all((t - x) % 60 for t in levels)), 15)
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
    # the levels are crossed by time itself: the highest one takes its seconds after SWITCH
    horizon = max(HORIZON, math.ceil(max(levels, default=0) / 60) + 2)
    title = f"{prefix}pushes fail from {SWITCH}m"
    out.append(scenario(title, series, hosts(2), since_stall, horizon))
    series = [(metric, hosts(3), never), (PUSH_STARTED, hosts(3), started)]
    title = f"{prefix}started at {SWITCH}m without process metrics, never acknowledged"
    out.append(scenario(title, series, hosts(3), since_start, horizon))
    series = [(metric, hosts(5), never), ("process_start_time_seconds", hosts(5), started)]
    title = f"{prefix}an older exporter started at {SWITCH}m, never acknowledged"
    out.append(scenario(title, series, hosts(5), since_start, horizon))
    return out


REASONS = ("invalid_line", "timestamp_out_of_range", "field_type_conflict")


def ingest_rejecting(
    setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0
) -> list[Scenario]:
    out = []
    steps = steps_for(setting, 30)
    for n, (title, per_second) in enumerate(targets(setting, None, attempt)):
        half = counter(0, grid(30 * per_second, steps))  # from each of two ingest replicas

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


def spool_growing(setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0) -> list[Scenario]:
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
        # above the floor 3 minutes after SWITCH
        shift = SHIFTS[attempt % ATTEMPTS]
        per_minute = max(grid(floor / (2.5 + shift), 1024), (1 + 2 * shift) / 64)

        def queued(t: int, per_minute: float = per_minute) -> float:
            return float(max(t - SWITCH, 0) * per_minute)

        def margin(level: Level, t: int, queued: Series = queued) -> float:
            return above(queued)(level, t) if t > SWITCH else -1.0  # deriv > 0 from SWITCH + 1

        title = f"grows by {per_minute:g} points a minute from {SWITCH}m"
        out.append(Scenario(title, [(metric, hosts(n), queued)], hosts(n), queued, margin))
    return out


DROPPED_WINDOW = 360  # minutes: catalogue.DROPPED_WINDOW
DROP_REASONS = ("non_finite", "rejected", "spool_error", "spool_full", "too_large")


def in_window(series: Series) -> Series:
    """``increase(...[6h])`` of a counter that starts at 0 at minute 0: Prometheus extrapolates
    the start of a window back to the counter's zero, so it is exactly the difference."""
    return lambda t: series(t) - series(max(t - DROPPED_WINDOW, 0))


def exporter_dropping(
    setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0
) -> list[Scenario]:
    """host-1 dropped points before the test (spool_full survives restarts, so it does not start
    at 0) and host-1b drops half the lowest level once; host-2's spool is full from SWITCH on and
    drops points every minute (it no longer grows, so ExporterSpoolGrowing is silent), host-3 has
    batches rejected."""
    floors = sorted(thresholds(setting))
    low = min(floors, default=1000)

    def reasons(host: Labels, **values: Series) -> list[SeriesSpec]:
        return [(PUSH_DROPPED, {**host, "reason": r}, values.get(r, _zero)) for r in DROP_REASONS]

    series = reasons(hosts(1), spool_full=constant(5000))
    title = "quiet nothing dropped during the test"
    if low > 0:
        series += reasons(hosts(1, "b"), rejected=step(0, grid(low / 2)))
        title += f"; host-1b drops {grid(low / 2):g} once"
    out = [Scenario(title, series, {}, _zero, quiet=True)]
    # The spool-full host crosses the highest level: a full spool loses everything collected.
    crossing = zip(sorted(floors, reverse=True), ("spool_full", "rejected"), strict=False)
    for n, (floor, reason) in enumerate(crossing, 2):
        # above the level 3 minutes after SWITCH; at a level of 0, any point dropped is too many
        shift = SHIFTS[attempt % ATTEMPTS]
        per_minute = (
            max(grid(floor / (2.5 + shift), 1024), (1 + 2 * shift) / 64) if floor else 1 + 2 * shift
        )

        def dropped(t: int, per_minute: float = per_minute) -> float:
            return float(max(t - SWITCH, 0) * per_minute)

        value = in_window(dropped)

        def margin(level: Level, t: int, value: Series = value) -> float:
            return above(value)(level, t) if t > SWITCH else -1.0

        title = f"{reason}: drops {per_minute:g} points a minute from {SWITCH}m"
        labels = {**hosts(n), "reason": reason}
        out.append(Scenario(title, reasons(hosts(n), **{reason: dropped}), labels, value, margin))
    return out


SKIPPED_MINUTES = parse_duration(SKIPPED_WINDOW) // 60


def exporter_skipping(
    setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0
) -> list[Scenario]:
    """host-1 skipped samples before the test and none since; host-1b's machine is suspended and
    skips a burst at SWITCH, more than every level, which holds the condition for the window's
    minutes only (built only when ``for`` is at least that long: a shorter one fires on it, as
    meant). host-2 and host-3 skip samples every minute from SWITCH on, each past one level.
    The crossing counters start at 0 at minute 0 (the counter restarts with the exporter): an
    increase over a window reaching back before the first sample is then not extrapolated, and
    is exactly the difference, as ``in_window``."""
    floors = sorted(thresholds(setting))
    series: list[SeriesSpec] = [(PUSH_SKIPPED, hosts(1), constant(7))]
    title = "quiet host-1 skipped 7 before the test, none since"
    if setting.for_seconds >= SKIPPED_MINUTES * 60:
        burst = grid(2 * max(floors, default=10) + 1)
        series.append((PUSH_SKIPPED, hosts(1, "b"), step(0, burst)))
        title += f"; host-1b skips {burst:g} at once at {SWITCH}m (a suspended machine)"
    out = [Scenario(title, series, {}, _zero, quiet=True)]
    for n, floor in enumerate(floors, 2):
        # above the level 3 minutes after SWITCH; at a level of 0, any sample skipped is too many
        shift = SHIFTS[attempt % ATTEMPTS]
        per_minute = (
            max(grid(floor / (2.5 + shift), 1024), (1 + 2 * shift) / 64) if floor else 1 + 2 * shift
        )

        def skipped(t: int, per_minute: float = per_minute) -> float:
            return float(max(t - SWITCH, 0) * per_minute)

        def value(t: int, skipped: Series = skipped) -> float:
            return skipped(t) - skipped(max(t - SKIPPED_MINUTES, 0))

        def margin(level: Level, t: int, value: Series = value) -> float:
            return above(value)(level, t) if t > SWITCH else -1.0

        title = f"skips {per_minute:g} samples a minute from {SWITCH}m"
        out.append(Scenario(title, [(PUSH_SKIPPED, hosts(n), skipped)], hosts(n), value, margin))
    return out


def notifications_failing(
    setting: Setting, hosts: Hosts, tenant: str, attempt: int = 0
) -> list[Scenario]:
    """host-1's Alertmanager failed once before the test (the counter is not 0) and delivers since;
    host-2's webhook fails at every attempt from SWITCH on, for two reasons at once (one alert)."""

    def am(n: int, reason: str) -> dict[str, str]:
        return {**hosts(n), "job": "alertmanager", "integration": "webhook", "reason": reason}

    def failing(t: int) -> float:
        return 2.0 + max(t - SWITCH + 1, 0) * 3

    quiet = Scenario(
        "quiet no failure during the test",
        [(NOTIFICATIONS_FAILED, am(1, "other"), constant(2))],
        {},
        _zero,
        quiet=True,
    )
    series: list[SeriesSpec] = [
        (NOTIFICATIONS_FAILED, am(2, "other"), failing),
        (NOTIFICATIONS_FAILED, am(2, "serverError"), failing),
    ]
    labels = {k: v for k, v in am(2, "").items() if k != "reason"}
    return [
        quiet,
        condition(f"every webhook attempt fails from {SWITCH}m", series, labels, setting),
    ]


BUILDERS: dict[str, Callable[[Setting, Hosts, str, int], list[Scenario]]] = {
    "cpu_busy_percent": cpu,
    "memory_used_percent": memory,
    "filesystem_used_percent": filesystem,
    "filesystem_predicted_full_hours": filesystem_predicted,
    "filesystem_device_error": device_error,
    "filesystem_turned_read_only": read_only,
    "disk_io_queue_length": disk_io,
    "network_errors_per_second": network,
    "exporter_down": target_down,
    "push_stalled_seconds": push_stalled,
    "ingest_rejecting": ingest_rejecting,
    "spool_growing": spool_growing,
    "exporter_dropping_points": exporter_dropping,
    "exporter_skipping_samples": exporter_skipping,
    "alertmanager_notifications_failing": notifications_failing,
}
