"""cpu: node_cpu_seconds_total and node_cpu_guest_seconds_total from /proc/stat.

Ticks are divided by USER_HZ, which the kernel fixes at 100 for /proc/stat whatever CONFIG_HZ is
(node_exporter's procfs hard-codes the same). Per-CPU counters never go backwards: like
node_exporter's updateCPUStats, a mode that reads lower than before keeps its previous value,
an idle jump back of 3 s or more (CPU hot-plug) resets that CPU, and vanished CPUs are forgotten.
"""

from __future__ import annotations

import logging

from exporter.model import COUNTER, MetricFamily, family
from exporter.paths import Paths, read_text

log = logging.getLogger(__name__)

USER_HZ = 100.0
MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
GUEST_MODES = ("user", "nice")
COLUMNS = len(MODES) + len(GUEST_MODES)
IDLE = MODES.index("idle")
IDLE_JUMP_BACK_RESET = 3.0


class CPUCollector:
    name = "cpu"

    def __init__(self, paths: Paths, guest: bool = True) -> None:
        self.paths = paths
        self.guest = guest
        self._last: dict[str, list[float]] = {}

    def collect(self) -> list[MetricFamily]:
        seconds = family(
            "node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", COUNTER, "cpu", "mode"
        )
        guest = family(
            "node_cpu_guest_seconds_total",
            "Seconds the CPUs spent in guests (VMs) for each mode.",
            COUNTER,
            "cpu",
            "mode",
        )
        current: dict[str, list[float]] = {}
        for line in read_text(self.paths.proc("stat")).splitlines():
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            parts = line.split()
            cpu = parts[0][3:]
            if not cpu.isdigit() or len(parts) < 5:
                log.debug("skipping malformed /proc/stat line %r", line)
                continue
            try:
                values = [int(v) / USER_HZ for v in parts[1 : COLUMNS + 1]]
            except ValueError:
                log.debug("skipping malformed /proc/stat line %r", line)
                continue
            values += [0.0] * (COLUMNS - len(values))
            current[cpu] = self._monotonic(cpu, values)
        self._last = current
        add_seconds, add_guest = seconds.samples.append, guest.samples.append
        for cpu, values in current.items():
            for mode, value in zip(MODES, values, strict=False):
                add_seconds(((cpu, mode), value))
            if self.guest:
                add_guest(((cpu, "user"), values[8]))
                add_guest(((cpu, "nice"), values[9]))
        return [seconds, guest] if self.guest else [seconds]

    def _monotonic(self, cpu: str, values: list[float]) -> list[float]:
        previous = self._last.get(cpu)
        if previous is None:
            return values
        if previous[IDLE] - values[IDLE] >= IDLE_JUMP_BACK_RESET:
            log.debug(
                "cpu%s idle jumped back by %.2fs: resetting", cpu, previous[IDLE] - values[IDLE]
            )
            return values
        kept = [max(new, old) for new, old in zip(values, previous, strict=True)]
        if kept != values:
            log.debug("cpu%s: a counter went backwards, keeping the previous value", cpu)
        return kept
