"""CPU time of other processes: what the benchmarks charge to each side.

``cpu_seconds`` reads /proc/<pid>/stat, in clock ticks (10 ms where SC_CLK_TCK is 100): fine over
seconds. ``cpu_clock`` reads a process's CPU-time clock, in nanoseconds, for windows of a few
milliseconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Iterable[int], kernel_only: bool = False, gone_ok: bool = True) -> float:
    """CPU time of ``pids`` (user and kernel, or kernel only), all their threads included. A
    process that has exited counts nothing, or raises FileNotFoundError without ``gone_ok``."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            if not gone_ok:
                raise
            continue
        total += int(fields[12]) if kernel_only else int(fields[11]) + int(fields[12])
    return total / TICKS


def cpu_clock(pid: int) -> float:
    """CPU seconds of process ``pid`` so far, all its threads included (those that have exited
    too), at nanosecond resolution: the clock clock_getcpuclockid(3) names, the same one
    time.process_time reads for this process. Linux lets any process read it; OSError (EINVAL)
    once the process is gone."""
    # the kernel's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), as clock_getcpuclockid builds it
    return time.clock_gettime(((~pid) << 3) | 2)
