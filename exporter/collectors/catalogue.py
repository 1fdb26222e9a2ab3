"""The collectors this exporter implements, in node_exporter's names, and how each is built."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.collectors.clock import TimeCollector
from exporter.collectors.conntrack import ConntrackCollector
from exporter.collectors.cpu import CPUCollector
from exporter.collectors.cpufreq import CPUFreqCollector
from exporter.collectors.diskstats import DEFAULT_EXCLUDE, DiskstatsCollector
from exporter.collectors.filefd import FilefdCollector
from exporter.collectors.filesystem import (
    DEFAULT_FS_TYPES_EXCLUDE,
    DEFAULT_MOUNT_POINTS_EXCLUDE,
    FilesystemCollector,
)
from exporter.collectors.filters import NameFilter
from exporter.collectors.loadavg import LoadavgCollector
from exporter.collectors.meminfo import MeminfoCollector
from exporter.collectors.netclass import NetclassCollector
from exporter.collectors.netdev import NetdevCollector
from exporter.collectors.pressure import PressureCollector
from exporter.collectors.stat import StatCollector
from exporter.collectors.statfs import StatfsRunner
from exporter.collectors.textfile import TextfileCollector
from exporter.collectors.timex import TimexCollector
from exporter.collectors.uname import UnameCollector
from exporter.collectors.vmstat import VmstatCollector
from exporter.paths import Paths
from exporter.registry import Collector

Settings = Mapping[str, Any]


@dataclass(frozen=True)
class Entry:
    help: str
    build: Callable[[Paths, Settings], Collector]


def _filter(values: Settings, prefix: str, default: str | None = None) -> NameFilter:
    return NameFilter.build(values[f"{prefix}_include"], values[f"{prefix}_exclude"], default)


# Alphabetical, but textfile last: the registry runs collectors in this order and keeps the first
# family of a name, so a *.prom file never shadows a series of the exporter's own collectors.
COLLECTORS: dict[str, Entry] = {
    "conntrack": Entry("connection tracking statistics from /proc/sys/net/netfilter and /proc/net/stat/nf_conntrack", lambda p, v: ConntrackCollector(p)),
    "cpu": Entry("CPU seconds by mode from /proc/stat", lambda p, v: CPUCollector(
        p,
        guest=v["collector_cpu_guest"],
        info=v["collector_cpu_info"],
        flags_include=v["collector_cpu_info_flags_include"],
        bugs_include=v["collector_cpu_info_bugs_include"],
    )),
    "cpufreq": Entry("CPU frequencies from /sys/devices/system/cpu/cpu*/cpufreq", lambda p, v: CPUFreqCollector(p)),
    "diskstats": Entry("disk I/O statistics from /proc/diskstats", lambda p, v: DiskstatsCollector(p, _filter(v, "collector_diskstats_device", DEFAULT_EXCLUDE))),
    "filefd": Entry("file descriptor statistics from /proc/sys/fs/file-nr", lambda p, v: FilefdCollector(p)),
    "filesystem": Entry("filesystem statistics from statfs(2)", lambda p, v: FilesystemCollector(
        p,
        _filter(v, "collector_filesystem_mount_points", DEFAULT_MOUNT_POINTS_EXCLUDE),
        _filter(v, "collector_filesystem_fs_types", DEFAULT_FS_TYPES_EXCLUDE),
        StatfsRunner(v["collector_filesystem_stat_workers"], v["collector_filesystem_mount_timeout"]),
    )),
    "loadavg": Entry("load averages from /proc/loadavg", lambda p, v: LoadavgCollector(p)),
    "meminfo": Entry("memory statistics from /proc/meminfo", lambda p, v: MeminfoCollector(p)),
    "netclass": Entry("network interface properties from /sys/class/net", lambda p, v: NetclassCollector(
        p, v["collector_netclass_ignored_devices"], v["collector_netclass_ignore_invalid_speed"]
    )),
    "netdev": Entry("network interface statistics from /proc/net/dev", lambda p, v: NetdevCollector(p, _filter(v, "collector_netdev_device"))),
    "pressure": Entry("pressure stall information from /proc/pressure", lambda p, v: PressureCollector(p)),
    "stat": Entry("kernel and system statistics from /proc/stat", lambda p, v: StatCollector(p, softirq=v["collector_stat_softirq"])),
    "time": Entry("the current system time and clocksources", lambda p, v: TimeCollector(p)),
    "timex": Entry("clock synchronisation state from adjtimex(2)", lambda p, v: TimexCollector(p)),
    "uname": Entry("system information from uname(2)", lambda p, v: UnameCollector(p)),
    "vmstat": Entry("selected fields of /proc/vmstat", lambda p, v: VmstatCollector(p, v["collector_vmstat_fields"])),
    "textfile": Entry("metrics from the *.prom files of --collector.textfile.directory", lambda p, v: TextfileCollector(p, v["collector_textfile_directory"])),
}  # fmt: skip
