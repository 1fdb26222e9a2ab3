"""The alert rules a tenant can tune: their PromQL, their thresholds' units and their runbook text.

Where node-mixin (docs/node-mixin in node_exporter) has a rule for the same thing, the expression
measures what node-mixin's does, so that it means what SREs expect:

* HostCpuBusy is node-mixin's NodeCPUHighUsage: the share of CPU time in modes other than idle and
  iowait, averaged over CPUs (a CPU waiting for a disk is idle; HostDiskIoSaturated covers disks).
* HostDiskIoSaturated is node-mixin's NodeDiskIOSaturation: the rate of io_time_weighted, the
  average number of requests in flight (iostat's aqu-sz), not io_time's share of time busy, which
  reads near 100% on SSDs and NVMe devices serving requests in parallel far from saturation.
* HostMemoryUsed, HostFilesystemAlmostFull and HostFilesystemFillingUp are NodeMemoryHighUtilization,
  NodeFilesystemAlmostOutOfSpace and NodeFilesystemSpaceFillingUp (percent used rather than
  available; the filling-up rule takes its floor from ``min_used_percent``).

The differences from node-mixin, all deliberate:

* every selector is scoped by ``tenant`` (a tenant's override must never touch another tenant's
  hosts), and aggregations use ``without`` so that target labels such as ``job`` and ``instance``
  survive into the notification;
* thresholds, ``for`` and severities are the tenant's (thresholds.yaml), and every rate is over 5
  minutes (NodeCPUHighUsage uses 2);
* filesystems are filtered by a list of pseudo and in-memory types (``FS_IGNORED``) instead of
  node-mixin's ``fstype!=""``; disks by a list of virtual and device-mapper devices
  (``DISK_IGNORED``), where node-mixin lists the physical ones and keeps ``dm-*``; and network
  interfaces by a list of virtual ones (``NIC_IGNORED``), where node-mixin takes every one;
* HostNetworkErrors counts receive plus transmit errors per second, where node-mixin's
  NodeNetworkReceiveErrs/TransmitErrs take errors per packet: an error rate that means a broken
  link whatever the traffic;
* rules node-mixin lacks: TargetDown (``up == 0``), HostFilesystemDeviceError (a mount that cannot be
  stat'ed), HostFilesystemTurnedReadOnly (node-mixin's filesystem rules skip read-only
  filesystems, so a filesystem remounted read-only after errors silences them), the rules on
  the push path (exporter, ingest) and AlertmanagerNotificationsFailing (Alertmanager's own
  delivery failures, as the alertmanager mixin's AlertmanagerFailedToSendAlerts);
* gauges are read through ``last_over_time(...[GAUGE_WINDOW])``: a failed scrape writes a stale
  marker into every series of the target, and a bare instant selector then returns nothing for
  one evaluation, which starts every ``for:`` again (a host failing one scrape in eight never
  alerted). node-mixin reads them bare;
* the rules on a host's own series (``host=True``) carry ``keep_firing_for``: the exporter's
  TargetDown ``for`` plus ``KEEP_FIRING_MARGIN``. A host that goes dark keeps its alerts firing
  until TargetDown fires and Alertmanager inhibits them (perfanalysis.alerting.alertmanager),
  rather than sending "resolved" for each; a real recovery is announced that much later.

Platform-wide rules that no tenant tunes (Watchdog, Prometheus' own failures) are in
perfanalysis.alerting.platform.

A warning and a critical rule share one alert name, so Alertmanager can inhibit the warning while
the critical one fires. No ``for:`` may exceed ``MAX_FOR`` (one day; a rule can lower it): a
condition that must hold longer before anyone hears of it belongs in a report, and the promtool
tests simulate every minute of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from perfanalysis.alerting.durations import format_duration
from perfanalysis.alerting.templates import (
    DECIMAL,
    DURATION,
    INSTANCE,
    NUMBER,
    PERCENT,
    Label,
    Text,
    text,
)

# Pseudo and in-memory filesystems whose fill level says nothing about the host's disks; the
# dashboards and the Grafana rules leave out the same types (perfanalysis.grafana.definitions).
FS_IGNORED_TYPES = ("tmpfs", "ramfs", "devtmpfs", "rootfs", "squashfs", "overlay", "iso9660",
                    "nsfs", "fuse.lxcfs")  # fmt: skip
FS_IGNORED = "|".join(FS_IGNORED_TYPES)  # a regex: the dot matches itself too
# Block devices that are not disks of their own: loop, RAM and optical devices, and device-mapper
# devices (dm-N: LVM volumes, dm-crypt, multipath) stacked on disks the rule already sees, so that
# one saturated NVMe under 150 LVM volumes is one alert, not 151. The Fleet dashboard's list
# (perfanalysis.grafana.fleet, PHYSICAL_DISK) leaves out the same devices.
DISK_IGNORED = "(loop|ram|zram|sr|fd|dm-)[0-9]+"
# Virtual network interfaces: loopback, the veth pairs, bridges, tunnels and overlays of Docker,
# LXC, libvirt, tap devices and Kubernetes' network plugins (flannel, Calico, Cilium). Their
# errors say nothing of the host's links, and a Kubernetes node has hundreds of them. An exclude
# list, anchored (PromQL anchors regexes; InfluxQL needs ^( )$): the Fleet dashboard's network
# columns (perfanalysis.grafana.fleet, PHYSICAL_NIC) leave out the same interfaces.
NIC_IGNORED_PATTERNS = ("lo", "veth.*", "docker.*", "br-.*", "virbr.*", "cni.*", "flannel.*",
                        "cali.*", "tunl.*", "lxc.*", "tap.*", "vxlan.*", "cilium_.*")  # fmt: skip
NIC_IGNORED = "|".join(NIC_IGNORED_PATTERNS)
# CPU time that is not busy, as node-mixin's NodeCPUHighUsage counts it: a CPU waiting for a disk
# is idle. The dashboards, the Grafana rules and the report count busy time from this too.
IDLE_MODES = ("idle", "iowait")
BUSY = f'mode!~"{"|".join(IDLE_MODES)}"'
REAL_DISKS = f'device!~"{DISK_IGNORED}"'
REAL_NICS = f'device!~"{NIC_IGNORED}"'
THRESHOLDS_FILE = "provisioning/thresholds.yaml"
MAX_FOR = 86400  # seconds: the longest ``for:`` a rule accepts unless it sets a lower max_for
READ_ONLY_WINDOW = "1d"  # how far back HostFilesystemTurnedReadOnly looks for a read-write state
DROPPED_WINDOW = "6h"  # the window of ExporterDroppingPoints' count
# The window of ExporterSkippingSamples' count: shorter than its default ``for``, so that one
# burst (a machine suspended, a process stopped) holds the condition for this long at most and
# only skipping that goes on alerts.
SKIPPED_WINDOW = "10m"
# How far back a gauge's last sample is taken (``last_over_time``): longer than a few failed
# scrapes at the 15s interval the stack uses, and than one at a 1m interval, also with
# Prometheus 3's left-open ranges; an exporter gone for good leaves its gauges' rules this late.
GAUGE_WINDOW = "2m"
# keep_firing_for of host rules, beyond TargetDown's ``for``: an evaluation interval or two for
# TargetDown to reach Alertmanager, and a resend if one was lost, before the others may resolve.
KEEP_FIRING_MARGIN = 300  # seconds
# Below this a condition rule fires on one failed scrape or one evaluation's blip.
MIN_CONDITION_FOR = 60  # seconds


@dataclass(frozen=True)
class Level:
    """One severity of one rule for one scope: what the expression compares against."""

    severity: str
    threshold: float | None  # None for condition rules (``up == 0``)
    for_seconds: int
    params: Mapping[str, float] = field(default_factory=dict)

    @property
    def for_text(self) -> str:
        return format_duration(self.for_seconds)

    @property
    def limit(self) -> str:
        """The threshold as PromQL and prose print it (``80``, ``0.9``, ``1e+04``)."""
        assert self.threshold is not None
        return f"{self.threshold:g}"


@dataclass(frozen=True)
class Param:
    """A rule-specific setting beside warning/critical/for, with its allowed range (an open end
    excludes the bound itself)."""

    name: str
    low: float
    high: float | None
    low_open: bool = False
    high_open: bool = False


@dataclass(frozen=True)
class RuleDef:
    key: str  # the name in thresholds.yaml
    alert: str
    unit: str  # how thresholds are expressed, for error messages and docs
    expr: Callable[[str, Level], str]
    summary: Callable[[Level], Text]
    description: Callable[[Level], Text]
    thresholds: bool = True  # False: a condition with a ``severity`` instead of warning/critical
    # The thresholds' range: what the expression can tell apart. An open end excludes the bound:
    # a percentage is never ``> 100``, so 100 is refused rather than giving a rule that never fires.
    low: float = 0.0
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    higher_is_worse: bool = True
    params: tuple[Param, ...] = ()
    max_for: int = MAX_FOR  # seconds
    max_for_reason: str = "a condition that must hold longer belongs in a report, not an alert"
    # conditions (no threshold) need a ``for`` of at least MIN_CONDITION_FOR; see thresholds.py
    min_for: int = 0  # seconds
    # why a threshold equal to ``low`` (with ``low_open``) is refused, for the error message
    low_reason: str = ""
    # judges one host's own series (scraped from its exporter): keep_firing_for while it is dark
    host: bool = False


def sel(metric: str, scope: str, *matchers: str) -> str:
    """``metric{matchers..., scope}``; the scope is the tenant matcher (possibly empty)."""
    inner = ",".join(m for m in (*matchers, scope) if m)
    return f"{metric}{{{inner}}}" if inner else metric


def last(selector: str) -> str:
    """A gauge's latest sample within GAUGE_WINDOW, so that a failed scrape's stale marker does
    not drop the series for an evaluation (and restart the rule's ``for:``)."""
    return f"last_over_time({selector}[{GAUGE_WINDOW}])"


def _fs(metric: str, scope: str) -> str:
    return sel(metric, scope, f'fstype!~"{FS_IGNORED}"')


def _used_percent(scope: str) -> str:
    avail, size = (
        last(_fs("node_filesystem_avail_bytes", scope)),
        last(_fs("node_filesystem_size_bytes", scope)),
    )
    return f"100 * (1 - {avail} / {size})"


def _tune(key: str) -> str:
    return f"if this is expected, tune {key} in {THRESHOLDS_FILE}."


CPU = RuleDef(
    key="cpu_busy_percent",
    alert="HostCpuBusy",
    unit="percent of CPU time neither idle nor iowait",
    high=100,
    high_open=True,
    low_open=True,
    low_reason="every host is busy a little: a rule at 0 would fire on all of them",
    host=True,
    expr=lambda s, lv: (
        "100 * sum without (mode) (avg without (cpu) "
        f"(rate({sel('node_cpu_seconds_total', s, BUSY)}[5m]))) "
        f"> {lv.limit}"
    ),
    summary=lambda lv: text("CPU ", PERCENT, "% busy on ", INSTANCE),
    description=lambda lv: text(
        "CPU on ",
        INSTANCE,
        f" has been more than {lv.limit}% busy for {lv.for_text} ",
        "(now ",
        PERCENT,
        "%, not counting iowait). Find what uses it (top, pidstat 5) and check recent deploys and ",
        "load tests; add capacity if the load is real; " + _tune("cpu_busy_percent"),
    ),
)

MEMORY = RuleDef(
    key="memory_used_percent",
    alert="HostMemoryUsed",
    unit="percent of MemTotal not available",
    high=100,
    high_open=True,
    low_open=True,
    low_reason="every host uses some memory: a rule at 0 would fire on all of them",
    host=True,
    expr=lambda s, lv: (
        f"100 * (1 - {last(sel('node_memory_MemAvailable_bytes', s))} / "
        f"{last(sel('node_memory_MemTotal_bytes', s))}) > {lv.limit}"
    ),
    summary=lambda lv: text("Memory ", PERCENT, "% used on ", INSTANCE),
    description=lambda lv: text(
        "Memory on ",
        INSTANCE,
        f" has been more than {lv.limit}% used (MemAvailable) for ",
        f"{lv.for_text} (now ",
        PERCENT,
        "%). The OOM killer comes next: find the largest ",
        "processes (ps aux --sort=-rss), look for leaks or a grown cache of a service; "
        + _tune("memory_used_percent"),
    ),
)

FILESYSTEM = RuleDef(
    key="filesystem_used_percent",
    alert="HostFilesystemAlmostFull",
    unit="percent of the filesystem not available to unprivileged users",
    high=100,
    high_open=True,
    low_open=True,
    low_reason="a filesystem holds something: a rule at 0 would fire on all of them",
    host=True,
    expr=lambda s, lv: (
        f"{_used_percent(s)} > {lv.limit} and {last(_fs('node_filesystem_readonly', s))} == 0"
    ),
    summary=lambda lv: text(
        "Filesystem ", Label("mountpoint"), " ", PERCENT, "% full on ", INSTANCE
    ),
    description=lambda lv: text(
        "Filesystem ",
        Label("mountpoint"),
        " (",
        Label("device"),
        ") on ",
        INSTANCE,
        f" has been more than {lv.limit}% full for {lv.for_text} (now ",
        PERCENT,
        "%). ",
        "Find what grew (du -xh --max-depth=2), rotate or delete logs and old artefacts, or ",
        "grow the volume; " + _tune("filesystem_used_percent"),
    ),
)

FILESYSTEM_PREDICTED = RuleDef(
    key="filesystem_predicted_full_hours",
    alert="HostFilesystemFillingUp",
    unit="hours until full at the rate of the last 6h",
    low_open=True,
    high=8760,  # a year: a six-hour trend says nothing about further ahead
    higher_is_worse=False,
    params=(Param("min_used_percent", 0, 100, high_open=True),),
    host=True,
    expr=lambda s, lv: (
        f"{_used_percent(s)} > {lv.params['min_used_percent']:g} and "
        f"predict_linear({_fs('node_filesystem_avail_bytes', s)}[6h], {lv.limit} * 3600) < 0 "
        f"and {last(_fs('node_filesystem_readonly', s))} == 0"
    ),
    summary=lambda lv: text(
        "Filesystem ", Label("mountpoint"), " on ", INSTANCE, f" full within {lv.limit}h"
    ),
    description=lambda lv: text(
        "At the rate of the last 6 hours, filesystem ",
        Label("mountpoint"),
        " (",
        Label("device"),
        ") on ",
        INSTANCE,
        f" will be full within {lv.limit} hours; it is ",
        PERCENT,
        "% full now. Find what is writing (iotop -o, du -xh --max-depth=2) before it ",
        "runs out; " + _tune("filesystem_predicted_full_hours"),
    ),
)

FILESYSTEM_DEVICE_ERROR = RuleDef(
    key="filesystem_device_error",
    alert="HostFilesystemDeviceError",
    unit="no threshold: the exporter cannot stat the filesystem (device_error == 1)",
    thresholds=False,
    min_for=MIN_CONDITION_FOR,
    host=True,
    expr=lambda s, lv: f"{last(_fs('node_filesystem_device_error', s))} == 1",
    summary=lambda lv: text("Cannot stat filesystem ", Label("mountpoint"), " on ", INSTANCE),
    description=lambda lv: text(
        "The exporter on ",
        INSTANCE,
        " has failed to get the statistics of filesystem ",
        Label("mountpoint"),
        " (",
        Label("device"),
        ", ",
        Label("fstype"),
        f") for {lv.for_text}: a hung network mount (NFS, CIFS), a failing disk or a mount the ",
        "exporter may not read. Processes touching it may hang, and its fill-level rules are ",
        "blind. Check the reason in the exporter's /health (filesystem_device_errors), the ",
        "kernel log (journalctl -k) and the mount (timeout 5 stat -f ",
        Label("mountpoint"),
        "). A reason of Permission denied is no fault of the mount: the exporter's user may not ",
        "reach it (a non-root exporter and the pod volumes under /var/lib/kubelet/pods); give ",
        "it access or add the mount to --collector.filesystem.mount-points-exclude (the flag ",
        "replaces the default pattern: keep its alternatives and add var/lib/kubelet/pods/.+).",
    ),
)

FILESYSTEM_READ_ONLY = RuleDef(
    key="filesystem_turned_read_only",
    alert="HostFilesystemTurnedReadOnly",
    unit=f"no threshold: read-only now, read-write within the last {READ_ONLY_WINDOW}",
    thresholds=False,
    max_for=3600,
    max_for_reason=f"the rule looks back {READ_ONLY_WINDOW}: it must fire well within that",
    min_for=MIN_CONDITION_FOR,
    host=True,
    expr=lambda s, lv: (
        f"{last(_fs('node_filesystem_readonly', s))} == 1 and "
        f"min_over_time({_fs('node_filesystem_readonly', s)}[{READ_ONLY_WINDOW}]) == 0"
    ),
    summary=lambda lv: text(
        "Filesystem ", Label("mountpoint"), " on ", INSTANCE, " turned read-only"
    ),
    description=lambda lv: text(
        "Filesystem ",
        Label("mountpoint"),
        " (",
        Label("device"),
        ", ",
        Label("fstype"),
        ") on ",
        INSTANCE,
        f" has been read-only for {lv.for_text} after being read-write within the last day: ",
        "writes to it fail, and the fill-level rules, which skip read-only filesystems, are ",
        "silent. The kernel remounts a filesystem read-only after IO or metadata errors ",
        "(ext4 errors=remount-ro): check journalctl -k and the disk (smartctl -a), then fsck ",
        "and remount it read-write or replace the disk. Only a change is an alert (a filesystem ",
        "mounted read-only on purpose never fires), and Prometheus looks back one day: the ",
        "alert resolves a day after the change if nobody remounts it; "
        + _tune("filesystem_turned_read_only"),
    ),
)

DISK_IO = RuleDef(
    key="disk_io_queue_length",
    alert="HostDiskIoSaturated",
    unit="requests in flight on the device, averaged over 5 minutes (iostat's aqu-sz)",
    host=True,
    expr=lambda s, lv: (
        f"rate({sel('node_disk_io_time_weighted_seconds_total', s, REAL_DISKS)}[5m]) > {lv.limit}"
    ),
    summary=lambda lv: text(
        "Disk ", Label("device"), " has ", DECIMAL, " requests queued on ", INSTANCE
    ),
    description=lambda lv: text(
        "Disk ",
        Label("device"),
        " on ",
        INSTANCE,
        f" has had more than {lv.limit} requests in flight on average (aqu-sz in iostat -x) ",
        f"for {lv.for_text} (now ",
        DECIMAL,
        "): requests queue and latency grows. Find the processes doing IO (iotop -o, ",
        "pidstat -d 5) and compare the device's await and IOPS with its limits; "
        + _tune("disk_io_queue_length"),
    ),
)

NETWORK = RuleDef(
    key="network_errors_per_second",
    alert="HostNetworkErrors",
    unit="receive plus transmit errors per second on one interface",
    host=True,
    expr=lambda s, lv: (
        f"rate({sel('node_network_receive_errs_total', s, REAL_NICS)}[5m]) + "
        f"rate({sel('node_network_transmit_errs_total', s, REAL_NICS)}[5m]) > {lv.limit}"
    ),
    summary=lambda lv: text(
        "Interface ", Label("device"), " on ", INSTANCE, " has ", NUMBER, " errors/s"
    ),
    description=lambda lv: text(
        "Interface ",
        Label("device"),
        " on ",
        INSTANCE,
        f" has had more than {lv.limit} ",
        f"receive and transmit errors per second for {lv.for_text} (now ",
        NUMBER,
        "/s). ",
        "Check the link and its counters (ethtool -S, ip -s link), the cable or virtual NIC, ",
        "and duplex or MTU mismatches; " + _tune("network_errors_per_second"),
    ),
)

TARGET_DOWN = RuleDef(
    key="exporter_down",
    alert="TargetDown",
    unit="no threshold: Prometheus cannot scrape the target (up == 0)",
    thresholds=False,
    min_for=MIN_CONDITION_FOR,
    expr=lambda s, lv: f"{sel('up', s)} == 0",
    summary=lambda lv: text("Cannot scrape ", Label("job"), " on ", INSTANCE),
    description=lambda lv: text(
        "Prometheus has failed to scrape ",
        Label("job"),
        " on ",
        INSTANCE,
        f" for {lv.for_text}: the host, the exporter or the network between them is down, so ",
        "this host's other alerts are blind. Check the host, then the exporter ",
        "(systemctl status, curl http://",
        INSTANCE,
        "/metrics) and firewalls.",
    ),
)

PUSH_LAST_SUCCESS = "perfanalysis_exporter_push_last_success_timestamp_seconds"
# served whenever push is configured, --web.disable-exporter-metrics or not (exporter/push)
PUSH_STARTED = "perfanalysis_exporter_push_started_timestamp_seconds"


def _last_push(s: str) -> str:
    """When the exporter last had a push acknowledged, or, if never (the metric is 0), when its
    push path started: a fresh exporter gets the threshold's grace, one that never succeeds
    still alerts. The push path's own start time is served even with
    --web.disable-exporter-metrics, which removes process_start_time_seconds; the process start
    time is the fallback for exporters from before that metric. The ``and`` keeps node_exporter
    and other processes that do not push out of the picture."""
    success = last(sel(PUSH_LAST_SUCCESS, s))
    never = f"{success} == 0"
    started = last(sel(PUSH_STARTED, s))
    process = last(sel("process_start_time_seconds", s))
    return f"({success} > 0 or ({started} and {never}) or ({process} and {never}))"


PUSH_STALLED = RuleDef(
    key="push_stalled_seconds",
    alert="ExporterPushStalled",
    unit="seconds since the exporter's last acknowledged push (or its start)",
    # Pushes (every 10s by default) and scrapes (15s) are seconds apart: below a minute the rule
    # would fire between two ordinary pushes. Over a day, the spool has long been dropping points.
    low=60,
    high=86400,
    host=True,
    expr=lambda s, lv: f"time() - {_last_push(s)} > {lv.limit}",
    summary=lambda lv: text("Exporter on ", INSTANCE, " has not pushed for ", DURATION),
    description=lambda lv: text(
        "The exporter on ",
        INSTANCE,
        " has had no push acknowledged by ingest for ",
        DURATION,
        f" (more than {lv.limit}s, counted from its start if it never had one): InfluxDB and ",
        "the Grafana dashboards miss its data while it spools. Check the exporter's log for ",
        "401/403 (revoked or expired key), 413 or connection errors, and ingest's health; "
        + _tune("push_stalled_seconds"),
    ),
)

INGEST_REJECTING = RuleDef(
    key="ingest_rejecting",
    alert="IngestRejectingPoints",
    unit="rejected points per second, summed over ingest replicas, per tenant and reason",
    expr=lambda s, lv: (
        "sum by (tenant, reason) "
        f"(rate({sel('perfanalysis_ingest_points_rejected_total', s)}[5m])) > {lv.limit}"
    ),
    summary=lambda lv: text(
        "Ingest rejects ",
        NUMBER,
        " points/s for tenant ",
        Label("tenant"),
        " (",
        Label("reason"),
        ")",
    ),
    description=lambda lv: text(
        "Ingest has rejected more than ",
        f"{lv.limit} points per second of tenant ",
        Label("tenant"),
        f" for {lv.for_text} (now ",
        NUMBER,
        "/s, reason ",
        Label("reason"),
        "). Invalid or too large batches are lost; rate-limited and storage failures are retried ",
        "and pile up in the exporters' spools. Check ingest's log for the collector and its ",
        "exporter version, the tenant's limits and InfluxDB's health; " + _tune("ingest_rejecting"),
    ),
)

SPOOL_GROWING = RuleDef(
    key="spool_growing",
    alert="ExporterSpoolGrowing",
    unit="queued points (the floor above which a growing spool alerts)",
    host=True,
    expr=lambda s, lv: (
        f"{last(sel('perfanalysis_exporter_push_points_queued', s))} > {lv.limit} and "
        f"deriv({sel('perfanalysis_exporter_push_points_queued', s)}[10m]) > 0"
    ),
    summary=lambda lv: text("Exporter spool on ", INSTANCE, " holds ", NUMBER, " points and grows"),
    description=lambda lv: text(
        "The exporter on ",
        INSTANCE,
        " has ",
        NUMBER,
        f" points queued (more than {lv.limit}) ",
        f"and the queue has kept growing for {lv.for_text}: pushes fail or are slower than ",
        "collection, and the bounded spool will drop the oldest points when full (it then ",
        "stops growing and ExporterDroppingPoints takes over). Check ",
        "ingest's health and 429/503 answers, and the exporter's push errors; "
        + _tune("spool_growing"),
    ),
)

PUSH_DROPPED = "perfanalysis_exporter_push_points_dropped_total"

EXPORTER_DROPPING = RuleDef(
    key="exporter_dropping_points",
    alert="ExporterDroppingPoints",
    unit=f"points an exporter dropped in the last {DROPPED_WINDOW}, per reason",
    host=True,
    expr=lambda s, lv: f"increase({sel(PUSH_DROPPED, s)}[{DROPPED_WINDOW}]) > {lv.limit}",
    summary=lambda lv: text(
        "Exporter on ",
        INSTANCE,
        " dropped ",
        NUMBER,
        " points (",
        Label("reason"),
        f") in {DROPPED_WINDOW}",
    ),
    description=lambda lv: text(
        "The exporter on ",
        INSTANCE,
        f" has dropped more than {lv.limit} points in the last 6 hours (now ",
        NUMBER,
        ", reason ",
        Label("reason"),
        "): they will never reach InfluxDB. spool_full: ingest has been unreachable or slower ",
        "than collection long enough to fill --push.spool-max-bytes or the spool's filesystem, ",
        "and the spool drops its oldest points (it no longer grows, so ExporterSpoolGrowing ",
        "resolves); rejected or ",
        "too_large: ingest refused them as bad data or as too large on their own (see the ",
        "exporter's log); spool_error: the spool could not take them (its filesystem is ",
        "read-only or failing, or full with nothing left to drop) and ingest did not take them from memory (sent at once, or after a backoff while they fit in 1MiB); non_finite: a collector reported NaN ",
        "or infinity, which line protocol cannot carry. A full spool drops a whole segment ",
        "(a 16th of --push.spool-max-bytes, at most 4MiB) each time it fills one; the count ",
        "covers 6 hours so that the alert holds from one drop to the next. How many hours of ",
        "points the spool, or a segment, holds depends on the host's series: its bytes / ",
        "(bytes per point x points per hour), with bytes per point ",
        "perfanalysis_exporter_push_spool_bytes / perfanalysis_exporter_push_points_queued ",
        "(gzip'd line protocol; while the spool holds a backlog) and points per hour ",
        "3600 x rate(perfanalysis_exporter_push_points_sent_total[1h]) (while pushes succeed); ",
        _tune("exporter_dropping_points"),
    ),
)

PUSH_SKIPPED = "perfanalysis_exporter_push_samples_skipped_total"

EXPORTER_SKIPPING = RuleDef(
    key="exporter_skipping_samples",
    alert="ExporterSkippingSamples",
    unit=f"samples an exporter's push thread skipped in the last {SKIPPED_WINDOW}",
    host=True,
    expr=lambda s, lv: f"increase({sel(PUSH_SKIPPED, s)}[{SKIPPED_WINDOW}]) > {lv.limit}",
    summary=lambda lv: text(
        "Exporter on ", INSTANCE, " skipped ", NUMBER, f" samples in {SKIPPED_WINDOW}"
    ),
    description=lambda lv: text(
        "The exporter on ",
        INSTANCE,
        f" has skipped more than {lv.limit} samples in every {SKIPPED_WINDOW} for ",
        f"{lv.for_text} (now ",
        NUMBER,
        "): its push thread was still busy when they were due, so they were never collected ",
        "and the host's data has holes (sending never makes one skip: ingest is not the cause). ",
        "Samples take longer than --push.interval: a collector blocked by a hung mount or a ",
        "stalled disk (see HostFilesystemDeviceError), or a host short of CPU; the exporter's log ",
        "says how long the sample took (push: skipped N sample(s)). Find the slow collector ",
        "(node_scrape_collector_duration_seconds on http://",
        INSTANCE,
        "/metrics), fix the mount or disk, exclude the mount or disable the collector, or raise ",
        "--push.interval; " + _tune("exporter_skipping_samples"),
    ),
)

NOTIFICATIONS_FAILED = "alertmanager_notifications_failed_total"

NOTIFICATIONS_FAILING = RuleDef(
    key="alertmanager_notifications_failing",
    alert="AlertmanagerNotificationsFailing",
    unit="no threshold: Alertmanager fails to deliver notifications through an integration",
    thresholds=False,
    min_for=MIN_CONDITION_FOR,
    # Per integration: which reason (4xx, 5xx, other, in Alertmanager 0.26 and later) is the log's.
    expr=lambda s, lv: f"sum without (reason) (rate({sel(NOTIFICATIONS_FAILED, s)}[5m])) > 0",
    summary=lambda lv: text(
        "Alertmanager ", INSTANCE, " fails to send ", Label("integration"), " notifications"
    ),
    description=lambda lv: text(
        "Alertmanager on ",
        INSTANCE,
        " has failed to deliver ",
        Label("integration"),
        f" notifications for {lv.for_text}: alerts routed to that receiver reach nobody (this one ",
        "too, if it goes the same way: look at Alertmanager's and Prometheus' alert pages). Check ",
        "Alertmanager's log (docker compose logs alertmanager) for the receiver and the error, ",
        "then the receiver's URL (PERFANALYSIS_ALERT_WEBHOOK_URL in Compose's .env, notify in ",
        f"{THRESHOLDS_FILE} elsewhere), its credentials and the network to it.",
    ),
)

RULES: dict[str, RuleDef] = {
    rule.key: rule
    for rule in (
        CPU,
        MEMORY,
        FILESYSTEM,
        FILESYSTEM_PREDICTED,
        FILESYSTEM_DEVICE_ERROR,
        FILESYSTEM_READ_ONLY,
        DISK_IO,
        NETWORK,
        TARGET_DOWN,
        PUSH_STALLED,
        INGEST_REJECTING,
        SPOOL_GROWING,
        EXPORTER_DROPPING,
        EXPORTER_SKIPPING,
        NOTIFICATIONS_FAILING,
    )
}
SEVERITIES = ("warning", "critical")
