"""Busy% of the host's CPUs between two /proc/stat snapshots.

busy = 1 - (idle + iowait) / total, where total is the sum of user, nice, system, idle, iowait,
irq, softirq and steal ticks of the aggregate ``cpu`` line (the guest columns are already part of
user and nice, so they are not added again). Steal therefore counts as busy, as it did in the
original perfcpumeasure.
"""

from __future__ import annotations

from dataclasses import dataclass

PROC_STAT = "/proc/stat"
COUNTED_FIELDS = 8  # user nice system idle iowait irq softirq steal
IDLE, IOWAIT, STEAL = 3, 4, 7


@dataclass(frozen=True)
class CpuTimes:
    idle: int  # idle + iowait ticks
    total: int
    steal: int = 0  # time the hypervisor gave this VM's CPUs to other guests


def parse_cpu_times(text: str) -> CpuTimes:
    """The aggregate ``cpu`` line of a /proc/stat text."""
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] != "cpu":
            continue
        try:
            ticks = [int(value) for value in fields[1 : 1 + COUNTED_FIELDS]]
        except ValueError:
            raise ValueError(f"malformed cpu line in /proc/stat: {line!r}") from None
        if len(ticks) < IDLE + 1:
            raise ValueError(f"too few fields in the cpu line of /proc/stat: {line!r}")
        idle = ticks[IDLE] + (ticks[IOWAIT] if len(ticks) > IOWAIT else 0)
        steal = ticks[STEAL] if len(ticks) > STEAL else 0
        return CpuTimes(idle=idle, total=sum(ticks), steal=steal)
    raise ValueError("no aggregate cpu line in /proc/stat")


def read_cpu_times(path: str = PROC_STAT) -> CpuTimes:
    with open(path, encoding="ascii") as handle:
        return parse_cpu_times(handle.read())


def busy_percent(before: CpuTimes, after: CpuTimes) -> float:
    """Busy% over the interval; iowait may step backwards on tickless kernels, so it is clamped."""
    total = after.total - before.total
    if total <= 0:
        raise ValueError("no CPU time elapsed between the two /proc/stat snapshots")
    idle = min(max(after.idle - before.idle, 0), total)
    return 100.0 * (1.0 - idle / total)


def steal_percent(before: CpuTimes, after: CpuTimes) -> float:
    total = after.total - before.total
    if total <= 0:
        return 0.0
    return 100.0 * min(max(after.steal - before.steal, 0), total) / total
