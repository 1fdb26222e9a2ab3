"""The exporter's own process_* metrics (client_python's names), read from /proc/self.

Always the real /proc, not --path.procfs: they describe this process, not the monitored host.
"""

from __future__ import annotations

import os
import resource
import sys

from exporter.model import COUNTER, GAUGE, MetricFamily, family, single

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _boot_time() -> float:
    with open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


class ProcessCollector:
    name = "process"

    def __init__(self, version: str) -> None:
        self.version = version
        self._boot = _boot_time()

    def collect(self) -> list[MetricFamily]:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        start = self._boot + int(fields[19]) / CLOCK_TICKS
        build = family(
            "perfanalysis_exporter_build_info",
            "A metric with a constant '1' value labeled by version and Python version.",
            GAUGE,
            "version",
            "pythonversion",
        )
        build.add(1.0, self.version, ".".join(map(str, sys.version_info[:3])))
        return [
            single("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", COUNTER, (utime + stime) / CLOCK_TICKS),
            single("process_virtual_memory_bytes", "Virtual memory size in bytes.", GAUGE, float(fields[20])),
            single("process_resident_memory_bytes", "Resident memory size in bytes.", GAUGE, float(int(fields[21]) * PAGE_SIZE)),
            single("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", GAUGE, start),
            single("process_open_fds", "Number of open file descriptors.", GAUGE, float(len(os.listdir("/proc/self/fd")))),
            single("process_max_fds", "Maximum number of open file descriptors.", GAUGE, float(resource.getrlimit(resource.RLIMIT_NOFILE)[0])),
            build,
        ]  # fmt: skip
