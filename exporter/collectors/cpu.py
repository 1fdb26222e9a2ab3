"""cpu: node_cpu_seconds_total and node_cpu_guest_seconds_total from /proc/stat, and with
``info`` node_cpu_info (and the first CPU's flags and bugs that match their filters) from
/proc/cpuinfo.

Ticks are divided by USER_HZ, which the kernel fixes at 100 for /proc/stat whatever CONFIG_HZ is
(node_exporter's procfs hard-codes the same). Per-CPU counters never go backwards: like
node_exporter's updateCPUStats, a mode that reads lower than before keeps its previous value,
an idle jump back of 3 s or more (CPU hot-plug) resets that CPU, and vanished CPUs are forgotten.
"""

from __future__ import annotations

import logging
import re

from exporter.collectors.cpuinfo import parse_cpuinfo
from exporter.model import COUNTER, GAUGE, MetricFamily, family
from exporter.paths import Paths, read_text, valid_utf8

log = logging.getLogger(__name__)

USER_HZ = 100.0
MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
GUEST_MODES = ("user", "nice")
COLUMNS = len(MODES) + len(GUEST_MODES)
IDLE = MODES.index("idle")
IDLE_JUMP_BACK_RESET = 3.0


class CPUCollector:
    name = "cpu"

    def __init__(
        self,
        paths: Paths,
        guest: bool = True,
        info: bool = False,
        flags_include: re.Pattern[str] | None = None,
        bugs_include: re.Pattern[str] | None = None,
    ) -> None:
        self.paths = paths
        self.guest = guest
        self.info = info
        self.flags_include = flags_include
        self.bugs_include = bugs_include
        self._last: dict[str, list[float]] = {}

    def collect(self) -> list[MetricFamily]:
        # node_exporter reads cpuinfo first: a file it cannot parse fails the whole collector
        info = self._info() if self.info else []
        return info + self._seconds()

    def _info(self) -> list[MetricFamily]:
        cpus = parse_cpuinfo(valid_utf8(read_text(self.paths.proc("cpuinfo"))))
        labels = ("package", "core", "cpu", "vendor", "family", "model", "model_name",
                  "microcode", "stepping", "cachesize")  # fmt: skip
        info = family("node_cpu_info", "CPU information from /proc/cpuinfo.", GAUGE, *labels)
        for cpu in cpus:
            info.samples.append(((cpu.package, cpu.core, cpu.processor, cpu.vendor, cpu.family,
                                  cpu.model, cpu.model_name, cpu.microcode, cpu.stepping,
                                  cpu.cachesize), 1.0))  # fmt: skip
        families = [info]
        first = cpus[0]
        for name, values, include in (
            ("flag", first.flags, self.flags_include),
            ("bug", first.bugs, self.bugs_include),
        ):
            if include is None:
                continue
            listed = family(
                f"node_cpu_{name}_info",
                f"The `{name}s` field of CPU information from /proc/cpuinfo taken from the "
                "first core.",
                GAUGE,
                name,
            )
            listed.samples.extend(((value,), 1.0) for value in values if include.search(value))
            families.append(listed)
        return families

    def _seconds(self) -> list[MetricFamily]:
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
