"""CPU time of other processes, from /proc/<pid>/stat: what the benchmarks charge to each side."""

from __future__ import annotations

import os
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
