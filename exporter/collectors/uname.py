"""uname: node_uname_info from uname(2), with the NIS domain name read from procfs."""

from __future__ import annotations

import os

from exporter.model import GAUGE, MetricFamily, family
from exporter.paths import Paths, read_text, valid_utf8


class UnameCollector:
    name = "uname"

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def collect(self) -> list[MetricFamily]:
        uts = os.uname()
        try:
            domainname = read_text(self.paths.proc("sys", "kernel", "domainname")).strip()
        except OSError:
            domainname = "(none)"
        info = family(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            GAUGE,
            "sysname", "release", "version", "machine", "nodename", "domainname",
        )  # fmt: skip
        values = (uts.sysname, uts.release, uts.version, uts.machine, uts.nodename, domainname)
        info.add(1.0, *[valid_utf8(value) for value in values])  # a host name may hold any byte
        return [info]
