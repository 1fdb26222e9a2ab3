"""vmstat: node_vmstat_<field> (untyped) for the /proc/vmstat fields matching a regex."""

from __future__ import annotations

import logging
import re

from exporter.model import UNTYPED, MetricFamily, single
from exporter.paths import Paths, read_text

log = logging.getLogger(__name__)

DEFAULT_FIELDS = r"^(oom_kill|pgpg|pswp|pg.*fault).*"


class VmstatCollector:
    name = "vmstat"

    def __init__(self, paths: Paths, fields: re.Pattern[str] | None = None) -> None:
        self.paths = paths
        self.fields = fields or re.compile(DEFAULT_FIELDS)

    def collect(self) -> list[MetricFamily]:
        out: list[MetricFamily] = []
        for line in read_text(self.paths.proc("vmstat")).splitlines():
            parts = line.split()
            if len(parts) != 2 or not self.fields.search(parts[0]):
                continue
            try:
                value = float(parts[1])
            except ValueError:
                log.debug("skipping malformed /proc/vmstat line %r", line)
                continue
            out.append(
                single(
                    f"node_vmstat_{parts[0]}",
                    f"/proc/vmstat information field {parts[0]}.",
                    UNTYPED,
                    value,
                )
            )
        return out
