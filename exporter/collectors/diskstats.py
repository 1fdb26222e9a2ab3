"""diskstats: node_disk_* from /proc/diskstats, with node_disk_info from udev's database.

Only as many metrics as the line has fields are emitted (14 fields before 4.18, 18 with discards,
20 with flushes). Sectors are 512 bytes whatever the device's sector size, as the kernel counts them;
discarded sectors stay in sectors, as node_exporter exports them. Device names and udev values
go into labels through ``valid_utf8`` (the filters see the label); a disk is one series per name as
the kernel spells it, bytes included.
"""

from __future__ import annotations

import logging
import os

from exporter.collectors.filters import NameFilter
from exporter.collectors.goparse import go_parse_float
from exporter.collectors.names import LabelClashes
from exporter.model import COUNTER, GAUGE, MetricFamily, family
from exporter.paths import Paths, read_text, valid_utf8

log = logging.getLogger(__name__)

DEFAULT_EXCLUDE = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"
SECTOR = 512.0
MS = 0.001
MIN_FIELDS = 14  # major, minor, name and the 11 counters every kernel since 2.6 prints

# (name, help, type, scale) for each /proc/diskstats field after major, minor and name
FIELDS: tuple[tuple[str, str, str, float], ...] = (
    ("reads_completed_total", "The total number of reads completed successfully.", COUNTER, 1),
    ("reads_merged_total", "The total number of reads merged.", COUNTER, 1),
    ("read_bytes_total", "The total number of bytes read successfully.", COUNTER, SECTOR),
    ("read_time_seconds_total", "The total number of seconds spent by all reads.", COUNTER, MS),
    ("writes_completed_total", "The total number of writes completed successfully.", COUNTER, 1),
    ("writes_merged_total", "The number of writes merged.", COUNTER, 1),
    ("written_bytes_total", "The total number of bytes written successfully.", COUNTER, SECTOR),
    ("write_time_seconds_total", "This is the total number of seconds spent by all writes.", COUNTER, MS),
    ("io_now", "The number of I/Os currently in progress.", GAUGE, 1),
    ("io_time_seconds_total", "Total seconds spent doing I/Os.", COUNTER, MS),
    ("io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", COUNTER, MS),
    ("discards_completed_total", "The total number of discards completed successfully.", COUNTER, 1),
    ("discards_merged_total", "The total number of discards merged.", COUNTER, 1),
    ("discarded_sectors_total", "The total number of sectors discarded successfully.", COUNTER, 1),
    ("discard_time_seconds_total", "This is the total number of seconds spent by all discards.", COUNTER, MS),
    ("flush_requests_total", "The total number of flush requests completed successfully", COUNTER, 1),
    ("flush_requests_time_seconds_total", "This is the total number of seconds spent by all flush requests.", COUNTER, MS),
)  # fmt: skip

INFO_LABELS = ("device", "major", "minor", "path", "wwn", "model", "serial", "revision")
# node_exporter 1.5.0 takes the serial from ID_SERIAL_SHORT alone: no SCSI_IDENT_SERIAL, no ID_SERIAL
SERIAL_KEY = "ID_SERIAL_SHORT"
# udev property -> (metric, help) for ATA disks (ID_ATA set and not empty, whatever its value)
ATA = {
    "ID_ATA_WRITE_CACHE": ("node_disk_ata_write_cache", "ATA disk has a write cache."),
    "ID_ATA_WRITE_CACHE_ENABLED": ("node_disk_ata_write_cache_enabled", "ATA disk has its write cache enabled."),
    "ID_ATA_ROTATION_RATE_RPM": ("node_disk_ata_rotation_rate_rpm", "ATA disk rotation rate in RPMs (0 for SSDs)."),
}  # fmt: skip


class DiskstatsCollector:
    name = "diskstats"

    def __init__(self, paths: Paths, devices: NameFilter | None = None) -> None:
        self.paths = paths
        self.wanted = devices or NameFilter.build(None, None, DEFAULT_EXCLUDE)
        self.clashes = LabelClashes("/proc/diskstats")

    def collect(self) -> list[MetricFamily]:
        families = [MetricFamily(f"node_disk_{n}", h, t, ("device",)) for n, h, t, _ in FIELDS]
        scales = [scale for *_, scale in FIELDS]
        info = family("node_disk_info", "Info of /sys/block/<block_device>.", GAUGE, *INFO_LABELS)
        filesystem = family(
            "node_disk_filesystem_info", "Info about disk filesystem.", GAUGE,
            "device", "type", "usage", "uuid", "version",
        )  # fmt: skip
        mapper = family(
            "node_disk_device_mapper_info", "Info about disk device mapper.", GAUGE,
            "device", "name", "uuid", "vg_name", "lv_name", "lv_layer",
        )  # fmt: skip
        ata = {
            key: family(name, help_text, GAUGE, "device") for key, (name, help_text) in ATA.items()
        }
        seen: dict[str, str] = {}  # label -> the disk name it was exported for
        for line in read_text(self.paths.proc("diskstats")).splitlines():
            parts = line.split()
            if len(parts) < MIN_FIELDS:
                log.debug("skipping short /proc/diskstats line %r", line)
                continue
            major, minor, name = parts[0], parts[1], parts[2]
            device = valid_utf8(name)
            if self.clashes.seen_before(seen, name, device) or not self.wanted(device):
                continue
            try:
                values = [float(v) for v in parts[3 : 3 + len(FIELDS)]]
            except ValueError:
                log.debug("skipping malformed /proc/diskstats line %r", line)
                continue
            seen[device] = name
            for fam, value, scale in zip(families, values, scales, strict=False):
                fam.samples.append(((device,), value * scale if scale != 1 else value))
            udev = self._udev(major, minor)
            serial = udev.get(SERIAL_KEY, "")
            info.add(
                1.0, device, valid_utf8(major), valid_utf8(minor), udev.get("ID_PATH", ""),
                udev.get("ID_WWN", ""), udev.get("ID_MODEL", ""), serial, udev.get("ID_REVISION", ""),
            )  # fmt: skip
            if udev.get("ID_FS_TYPE"):  # empty: none, as node_exporter 1.5.0
                filesystem.add(
                    1.0, device, udev["ID_FS_TYPE"], udev.get("ID_FS_USAGE", ""),
                    udev.get("ID_FS_UUID", ""), udev.get("ID_FS_VERSION", ""),
                )  # fmt: skip
            if udev.get("DM_NAME"):
                mapper.add(
                    1.0, device, udev["DM_NAME"], udev.get("DM_UUID", ""),
                    udev.get("DM_VG_NAME", ""), udev.get("DM_LV_NAME", ""), udev.get("DM_LV_LAYER", ""),
                )  # fmt: skip
            if udev.get("ID_ATA"):  # any value, "0" included, as node_exporter 1.5.0
                for key, fam in ata.items():
                    if key not in udev:
                        continue
                    number = go_parse_float(udev[key])
                    if number is None:
                        log.debug("%s: udev property %s is not a number", device, key)
                    else:
                        fam.add(number, device)
        return [*families, info, filesystem, mapper, *ata.values()]

    def _udev(self, major: str, minor: str) -> dict[str, str]:
        """udev's properties of the device, each value ready for a label."""
        path = os.path.join(self.paths.udev_data, f"b{major}:{minor}")
        try:
            text = read_text(path)
        except OSError:
            return {}
        ascii_only = text.isascii()  # O(1): escaping is needed only when a byte is not ASCII
        properties = {}
        for line in text.splitlines():
            if line.startswith("E:"):
                key, sep, value = line[2:].partition("=")
                if sep:  # a line without "=" is skipped, as node_exporter does
                    properties[key] = value if ascii_only else valid_utf8(value)
        return properties
