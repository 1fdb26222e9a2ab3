"""meminfo: node_memory_<Field>_bytes from /proc/meminfo, node_exporter 1.5.0's generic rule.

Every key is exported, so fields new kernels add appear without a release. ``Active(anon)`` becomes
``Active_anon``; values with a unit are kB and multiplied by 1024 with ``_bytes`` appended; unit-less
keys (HugePages_*) are exported as they are.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from exporter.model import COUNTER, GAUGE, MetricFamily, single
from exporter.paths import Paths, read_text, valid_utf8

log = logging.getLogger(__name__)

PARENTHESES = re.compile(r"\((.*)\)")


class MeminfoCollector:
    name = "meminfo"

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def collect(self) -> list[MetricFamily]:
        out: dict[str, MetricFamily] = {}
        for line in read_text(self.paths.proc("meminfo")).splitlines():
            parts = line.split()
            if not parts:
                continue
            if not parts[0].endswith(":") or len(parts) not in (2, 3):
                log.debug("skipping malformed /proc/meminfo line %r", line)
                continue
            try:
                value = float(parts[1])
            except ValueError:
                log.debug("skipping malformed /proc/meminfo line %r", line)
                continue
            name, help_text, kind = _describe(parts[0][:-1], len(parts) == 3)
            if len(parts) == 3:
                value *= 1024
            if name not in out:
                out[name] = single(name, help_text, kind, value)
        return list(out.values())


@lru_cache(maxsize=512)
def _describe(field: str, has_unit: bool) -> tuple[str, str, str]:
    key = PARENTHESES.sub(r"_\1", valid_utf8(field)) + ("_bytes" if has_unit else "")
    kind = COUNTER if key.endswith("_total") else GAUGE
    return f"node_memory_{key}", f"Memory information field {key}.", kind
