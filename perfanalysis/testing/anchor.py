"""Flags that make our exporter and Debian's node_exporter 1.5.0 comparable, series for series.

Both run the same collectors with the same filter regexes (1.5.0's Debian defaults differ from
upstream's, which we follow); node_exporter reads /proc/net/dev as we do instead of netlink.
``COMMON_FLAGS`` runs every collector this exporter has (the parity tests); ``BENCH_FLAGS`` the 12
the benchmarks have always measured (``BENCH_COLLECTORS``), so that their figures stay comparable
from run to run as collectors are added.
"""

from __future__ import annotations

from exporter.collectors.catalogue import COLLECTORS
from exporter.collectors.diskstats import DEFAULT_EXCLUDE as DISK_EXCLUDE
from exporter.collectors.filesystem import DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE

# the collectors bench.exporter and bench.push measure: the exporter's 12 until 2026-11-25
BENCH_COLLECTORS = (
    "cpu", "cpufreq", "diskstats", "filesystem", "loadavg", "meminfo", "netdev", "pressure",
    "stat", "time", "uname", "vmstat",
)  # fmt: skip
FILTER_FLAGS = [
    f"--collector.diskstats.device-exclude={DISK_EXCLUDE}",
    "--collector.netdev.device-exclude=^$",
    f"--collector.filesystem.mount-points-exclude={DEFAULT_MOUNT_POINTS_EXCLUDE}",
    f"--collector.filesystem.fs-types-exclude={DEFAULT_FS_TYPES_EXCLUDE}",
]
COMMON_FLAGS = [
    "--collector.disable-defaults",
    *[f"--collector.{name}" for name in COLLECTORS],
    *FILTER_FLAGS,
]
BENCH_FLAGS = [
    "--collector.disable-defaults",
    *[f"--collector.{name}" for name in BENCH_COLLECTORS],
    *FILTER_FLAGS,
]
NODE_EXPORTER_ONLY = ["--no-collector.netdev.netlink"]
