"""loadavg: node_load1, node_load5 and node_load15 from /proc/loadavg."""

from __future__ import annotations

from exporter.model import GAUGE, MetricFamily, single
from exporter.paths import Paths, read_text


class LoadavgCollector:
    name = "loadavg"

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def collect(self) -> list[MetricFamily]:
        parts = read_text(self.paths.proc("loadavg")).split()
        if len(parts) < 3:
            raise ValueError(f"unexpected content in {self.paths.proc('loadavg')}: {parts!r}")
        return [
            single(f"node_load{window}", f"{window}m load average.", GAUGE, float(text))
            for window, text in zip((1, 5, 15), parts, strict=False)
        ]
