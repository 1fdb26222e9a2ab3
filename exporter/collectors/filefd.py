"""filefd: node_filefd_allocated and node_filefd_maximum from /proc/sys/fs/file-nr, as 1.5.0.

The file holds three tab-separated numbers: allocated handles, free handles (always 0 since
Linux 2.6) and the maximum. Fewer than three fields, or a value Go's ParseFloat refuses, fails the
collector, as node_exporter's.
"""

from __future__ import annotations

from exporter.model import GAUGE, MetricFamily, single
from exporter.paths import Paths, read_text
from perfanalysis.config import number


class FilefdCollector:
    name = "filefd"

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def collect(self) -> list[MetricFamily]:
        path = self.paths.proc("sys", "fs", "file-nr")
        parts = read_text(path).strip().split("\t")
        if len(parts) < 3:
            raise ValueError(f"unexpected number of file stats in {path!r}")
        out = []
        for name, text in (("allocated", parts[0]), ("maximum", parts[2])):
            try:
                value = number(text)
            except ValueError:
                raise ValueError(f"invalid value {text} in file-nr") from None
            out.append(
                single(f"node_filefd_{name}", f"File descriptor statistics: {name}.", GAUGE, value)
            )
        return out
