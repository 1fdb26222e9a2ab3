"""vmstat: node_vmstat_<field> (untyped) for the /proc/vmstat fields matching a regex."""

from __future__ import annotations

import logging
import re

from exporter.model import UNTYPED, MetricFamily, single
from exporter.paths import Paths, read_text, valid_utf8

log = logging.getLogger(__name__)

DEFAULT_FIELDS = r"^(oom_kill|pgpg|pswp|pg.*fault).*"


class VmstatCollector:
    name = "vmstat"

    def __init__(self, paths: Paths, fields: re.Pattern[str] | None = None) -> None:
        self.paths = paths
        self.fields = fields or re.compile(DEFAULT_FIELDS)
        self._wanted: dict[str, tuple[str, str] | None] = {}

    def _describe(self, field: str) -> tuple[str, str] | None:
        """The name and help of a field seen for the first time, None if it is not wanted;
        remembered across scrapes."""
        entry = None
        if self.fields.search(field) is not None:
            text = valid_utf8(field)
            entry = (f"node_vmstat_{text}", f"/proc/vmstat information field {text}.")
        self._wanted[field] = entry
        return entry

    def collect(self) -> list[MetricFamily]:
        out: list[MetricFamily] = []
        wanted = self._wanted
        for line in read_text(self.paths.proc("vmstat")).splitlines():
            field, _, value = line.partition(" ")  # most of the ~190 lines are not wanted
            described = wanted[field] if field in wanted else self._describe(field)
            if described is None:
                continue
            try:
                number = float(value)
            except ValueError:
                log.debug("skipping malformed /proc/vmstat line %r", line)
                continue
            out.append(single(described[0], described[1], UNTYPED, number))
        return out
