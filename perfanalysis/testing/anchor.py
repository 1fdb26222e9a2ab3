"""Flags that make our exporter and Debian's node_exporter 1.5.0 comparable, series for series.

Both run the same collectors with the same filter regexes (1.5.0's Debian defaults differ from
upstream's, which we follow); node_exporter reads /proc/net/dev as we do instead of netlink.
Used by the parity tests and by bench/exporter.
"""

from __future__ import annotations

from exporter.collectors.catalogue import COLLECTORS
from exporter.collectors.diskstats import DEFAULT_EXCLUDE as DISK_EXCLUDE
from exporter.collectors.filesystem import DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE

COMMON_FLAGS = [
    "--collector.disable-defaults",
    *[f"--collector.{name}" for name in COLLECTORS],
    f"--collector.diskstats.device-exclude={DISK_EXCLUDE}",
    "--collector.netdev.device-exclude=^$",
    f"--collector.filesystem.mount-points-exclude={DEFAULT_MOUNT_POINTS_EXCLUDE}",
    f"--collector.filesystem.fs-types-exclude={DEFAULT_FS_TYPES_EXCLUDE}",
]
NODE_EXPORTER_ONLY = ["--no-collector.netdev.netlink"]
