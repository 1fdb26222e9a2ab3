"""netdev: node_network_{receive,transmit}_*_total from /proc/net/dev.

Columns are taken from the file's own header, so kernels with other column sets parse correctly.
The values equal node_exporter's netlink "legacy" mode; only receive_nohandler (netlink-only) is
absent. The ``device`` label is the interface name through ``valid_utf8`` (the filters see that
label); an interface is one series per name as the kernel spells it, bytes included.
"""

from __future__ import annotations

import logging

from exporter.collectors.filters import NameFilter
from exporter.collectors.names import LabelClashes
from exporter.model import COUNTER, MetricFamily
from exporter.paths import Paths, read_text, valid_utf8

log = logging.getLogger(__name__)


class NetdevCollector:
    name = "netdev"

    def __init__(self, paths: Paths, devices: NameFilter | None = None) -> None:
        self.paths = paths
        self.wanted = devices or NameFilter.build(None, None, None)
        self.clashes = LabelClashes("/proc/net/dev")

    def collect(self) -> list[MetricFamily]:
        lines = read_text(self.paths.proc("net", "dev")).splitlines()
        if len(lines) < 2 or lines[1].count("|") < 2:
            raise ValueError(f"{self.paths.proc('net', 'dev')}: missing the two header lines")
        _, receive, transmit = lines[1].split("|")[:3]
        keys = [f"receive_{k}" for k in receive.split()] + [
            f"transmit_{k}" for k in transmit.split()
        ]
        families = {
            key: MetricFamily(
                f"node_network_{key}_total",
                f"Network device statistic {key}.",
                COUNTER,
                ("device",),
            )
            for key in keys
        }
        seen: dict[str, str] = {}  # label -> the interface name it was exported for
        for line in lines[2:]:
            left, sep, data = line.rpartition(":")
            name = left.strip()
            if not sep or not name:
                log.debug("skipping malformed /proc/net/dev line %r", line)
                continue
            device = valid_utf8(name)
            if self.clashes.seen_before(seen, name, device) or not self.wanted(device):
                continue
            try:
                values = [float(v) for v in data.split()]
            except ValueError:
                log.debug("skipping malformed /proc/net/dev line %r", line)
                continue
            if len(values) != len(keys):
                log.debug("skipping /proc/net/dev line with %d columns: %r", len(values), line)
                continue
            seen[device] = name
            for key, value in zip(keys, values, strict=True):
                families[key].samples.append(((device,), value))
        return list(families.values())
