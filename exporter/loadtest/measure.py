"""One window at a requested load on the real host: the workers run, /proc/stat says how busy it was.

The coordinator picks a start a little ahead (so every worker has the command before it), reads
/proc/stat at the start and at the deadline, and then collects the workers' counts and CPU time.

100% (and calibration) runs every worker flat out until the deadline. A load below 100% becomes a
quota of ``load/100 * vcpus * window * units per CPU-second`` units over all workers, so the
workers use that share of the host's CPU time. The calibration is per CPU-second rather than per
wall second (the original's choice): on a quiet host the two agree, and on a host where other work
takes CPU the quota still means the load asked for, which lets the background check tell the two
apart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from exporter.loadtest.controller import FULL_LOAD, Window
from exporter.loadtest.pool import WorkerPool
from exporter.loadtest.procstat import CpuTimes, busy_percent, read_cpu_times, steal_percent
from exporter.loadtest.worker import sleep_until

LEAD_SECONDS = 0.05  # between sending a window and its start


class SystemMeasurer:
    def __init__(
        self,
        pool: WorkerPool,
        window_seconds: float,
        read_times: Callable[[], CpuTimes] = read_cpu_times,
        vcpus: int | None = None,
        wait_until: Callable[[float], None] = sleep_until,
    ) -> None:
        self.pool = pool
        self.window = window_seconds
        self.read_times = read_times
        self.vcpus = vcpus or os.cpu_count() or 1
        self.wait_until = wait_until
        self.rate = 0.0  # units per second of all workers flat out, set by calibrate()
        self.units_per_cpu_second = 0.0  # set by calibrate()

    def calibrate(self, windows: int = 2) -> float:
        """Flat-out windows (the first one also warms up); the best sets the rates. Returns units/s."""
        for _ in range(windows):
            window = self.measure(FULL_LOAD)
            self.rate = max(self.rate, window.units_per_second)
            cpu_share = (window.own_busy_percent or 0.0) / 100.0 * self.vcpus
            if cpu_share > 0:
                per_cpu = window.units_per_second / cpu_share
                self.units_per_cpu_second = max(self.units_per_cpu_second, per_cpu)
        return self.rate

    def quota(self, load_percent: float) -> int | None:
        if load_percent >= FULL_LOAD:
            return None
        units = load_percent / 100.0 * self.vcpus * self.window * self.units_per_cpu_second
        return max(0, round(units))

    def measure(self, load_percent: float) -> Window:
        start = time.monotonic() + LEAD_SECONDS
        deadline = start + self.window
        self.pool.dispatch(start, deadline, self.quota(load_percent))
        self.wait_until(start)
        before = self.read_times()
        self.wait_until(deadline)
        after = self.read_times()
        reports = self.pool.collect(deadline)
        units = sum(report.units for report in reports)
        cpu_seconds = sum(report.cpu_seconds for report in reports)
        return Window(
            load_percent=load_percent,
            busy_percent=busy_percent(before, after),
            units_per_second=units / self.window,
            own_busy_percent=100.0 * cpu_seconds / (self.window * self.vcpus),
            steal_percent=steal_percent(before, after),
        )
