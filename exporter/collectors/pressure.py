"""pressure: PSI stall totals from /proc/pressure, in seconds (the kernel counts microseconds).

A kernel without PSI has no /proc/pressure (before 4.20, or built without CONFIG_PSI), or refuses
the reads with EOPNOTSUPP (CONFIG_PSI_DEFAULT_DISABLED booted without psi=1, as RHEL 8). Either way
the collector reports no data, as node_exporter 1.5.0 (ErrNoData: success 0, logged at debug),
which the registry does not count as a failure. A resource missing among others is skipped (1.5.0
gives up on the whole collector); any other read error, or files that hold no stall total, fail
the collector.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable

from exporter.model import COUNTER, MetricFamily, NoDataError, single
from exporter.paths import Paths, read_text

log = logging.getLogger(__name__)

NOT_SUPPORTED = frozenset({errno.ENOENT, errno.EOPNOTSUPP, errno.ENOTSUP})

# resource -> {"some"|"full": (metric, help)}
RESOURCES: dict[str, dict[str, tuple[str, str]]] = {
    "cpu": {
        "some": ("node_pressure_cpu_waiting_seconds_total", "Total time in seconds that processes have waited for CPU time"),
    },
    "io": {
        "some": ("node_pressure_io_waiting_seconds_total", "Total time in seconds that processes have waited due to IO congestion"),
        "full": ("node_pressure_io_stalled_seconds_total", "Total time in seconds no process could make progress due to IO congestion"),
    },
    "memory": {
        "some": ("node_pressure_memory_waiting_seconds_total", "Total time in seconds that processes have waited for memory"),
        "full": ("node_pressure_memory_stalled_seconds_total", "Total time in seconds no process could make progress due to memory congestion"),
    },
    "irq": {
        "full": ("node_pressure_irq_stalled_seconds_total", "Total time in seconds no process could make progress due to IRQ"),
    },
}  # fmt: skip


class PressureCollector:
    name = "pressure"

    def __init__(self, paths: Paths, read: Callable[[str], str] = read_text) -> None:
        self.paths = paths
        self.read = read

    def collect(self) -> list[MetricFamily]:
        out: list[MetricFamily] = []
        supported = False
        for resource, kinds in RESOURCES.items():
            try:
                text = self.read(self.paths.proc("pressure", resource))
            except OSError as exc:
                if exc.errno not in NOT_SUPPORTED:
                    raise
                continue
            supported = True
            for line in text.splitlines():
                kind, _, rest = line.partition(" ")
                spec = kinds.get(kind)
                if spec is None:
                    continue
                total = next((f[6:] for f in rest.split() if f.startswith("total=")), None)
                if total is None or not total.isdigit():
                    log.debug("skipping malformed pressure line %r", line)
                    continue
                # node_exporter divides twice; the float result differs in the last digit from / 1e6
                out.append(single(spec[0], spec[1], COUNTER, int(total) / 1000.0 / 1000.0))
        if not supported:
            raise NoDataError(
                "no pressure information: needs Linux >= 4.20 with CONFIG_PSI enabled (psi=1)"
            )
        if not out:
            raise ValueError(f"{self.paths.proc('pressure')}: no stall total in any file")
        return out
