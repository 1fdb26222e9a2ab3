"""stat: interrupts, context switches, forks, boot time and process states from /proc/stat."""

from __future__ import annotations

import logging

from exporter.model import COUNTER, GAUGE, MetricFamily, family, single
from exporter.paths import Paths, read_text

log = logging.getLogger(__name__)

SOFTIRQ_VECTORS = (
    "hi", "timer", "net_tx", "net_rx", "block", "block_iopoll", "tasklet", "sched", "hrtimer", "rcu",
)  # fmt: skip

SCALARS = {
    "intr": ("node_intr_total", "Total number of interrupts serviced.", COUNTER),
    "ctxt": ("node_context_switches_total", "Total number of context switches.", COUNTER),
    "processes": ("node_forks_total", "Total number of forks.", COUNTER),
    "btime": ("node_boot_time_seconds", "Node boot time, in unixtime.", GAUGE),
    "procs_running": ("node_procs_running", "Number of processes in runnable state.", GAUGE),
    "procs_blocked": (
        "node_procs_blocked",
        "Number of processes blocked waiting for I/O to complete.",
        GAUGE,
    ),
}


class StatCollector:
    name = "stat"

    def __init__(self, paths: Paths, softirq: bool = False) -> None:
        self.paths = paths
        self.softirq = softirq

    def collect(self) -> list[MetricFamily]:
        out: list[MetricFamily] = []
        for line in read_text(self.paths.proc("stat")).splitlines():
            key, _, rest = line.partition(" ")
            spec = SCALARS.get(key)
            if spec is None and not (self.softirq and key == "softirq"):
                continue
            # intr carries hundreds of per-IRQ counts: only the first (the total) is needed
            parts = rest.split(None, 1) if spec is not None else rest.split()
            try:
                numbers = [float(p) for p in parts[:1]] if spec else [float(p) for p in parts]
            except ValueError:
                log.debug("skipping malformed /proc/stat line %r", line)
                continue
            if not numbers:
                continue
            if spec is not None:
                out.append(single(spec[0], spec[1], spec[2], numbers[0]))
                continue
            softirqs = family("node_softirqs_total", "Number of softirq calls.", COUNTER, "vector")
            for vector, value in zip(SOFTIRQ_VECTORS, numbers[1:], strict=False):
                softirqs.add(value, vector)
            out.append(softirqs)
        return out
