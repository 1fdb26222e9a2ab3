"""time: node_time_seconds, the zone offset, and the clocksources from sysfs."""

from __future__ import annotations

import os
import time

from exporter.model import GAUGE, MetricFamily, family, single
from exporter.paths import Paths, read_text, valid_utf8

CLOCKSOURCE_DIR = ("devices", "system", "clocksource")


class TimeCollector:
    name = "time"

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def collect(self) -> list[MetricFamily]:
        now = time.time_ns()
        local = time.localtime(now // 1_000_000_000)
        zone = family(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            GAUGE,
            "time_zone",
        )
        zone.add(float(local.tm_gmtoff), valid_utf8(local.tm_zone))
        out = [
            single(
                "node_time_seconds", "System time in seconds since epoch (1970).", GAUGE, now / 1e9
            ),
            zone,
        ]
        return out + self._clocksources()

    def _clocksources(self) -> list[MetricFamily]:
        where = "/sys/devices/system/clocksource"
        available = family(
            "node_time_clocksource_available_info",
            f"Available clocksources read from '{where}'.",
            GAUGE,
            "device",
            "clocksource",
        )
        current = family(
            "node_time_clocksource_current_info",
            f"Current clocksource read from '{where}'.",
            GAUGE,
            "device",
            "clocksource",
        )
        base = self.paths.sys(*CLOCKSOURCE_DIR)
        try:
            entries = sorted(e for e in os.listdir(base) if e.startswith("clocksource"))
        except OSError:
            return []
        for entry in entries:
            device = valid_utf8(entry[len("clocksource") :])
            try:
                names = read_text(os.path.join(base, entry, "available_clocksource")).split()
                active = read_text(os.path.join(base, entry, "current_clocksource")).strip()
            except OSError:
                continue
            for name in names:
                available.add(1.0, device, valid_utf8(name))
            if active:
                current.add(1.0, device, valid_utf8(active))
        return [available, current]
