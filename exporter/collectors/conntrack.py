"""conntrack: node_nf_conntrack_* from /proc/sys/net/netfilter and /proc/net/stat/nf_conntrack.

As node_exporter 1.5.0: the entry count and limit from ``nf_conntrack_count`` and
``nf_conntrack_max``, and eight of the per-CPU statistics, summed over the CPUs, as gauges.
procfs 0.8 reads the statistics by position and wants exactly 17 hexadecimal columns per line
(the kernel's names for some columns changed, ``searched`` became ``clashres``, but not the
positions it reads). Without the module (a file missing) the collector has no data
(``node_scrape_collector_success`` 0, logged at debug), as 1.5.0's ErrNoData.

One difference: when the two /proc/sys files exist but /proc/net/stat/nf_conntrack does not
(1.5.0 then serves the entry count and limit with success 0), this collector serves nothing: a
collector here either succeeds or drops its samples.
"""

from __future__ import annotations

from exporter.model import GAUGE, MetricFamily, NoDataError, single
from exporter.paths import Paths, read_text

# (column of /proc/net/stat/nf_conntrack, metric suffix, HELP)
STATS = (
    (2, "found", "Number of searched entries which were successful."),
    (4, "invalid", "Number of packets seen which can not be tracked."),
    (5, "ignore", "Number of packets seen which are already connected to a conntrack entry."),
    (8, "insert", "Number of entries inserted into the list."),
    (9, "insert_failed", "Number of entries for which list insertion was attempted but failed."),
    (10, "drop", "Number of packets dropped due to conntrack failure."),
    (11, "early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."),
    (16, "search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
)  # fmt: skip


class ConntrackCollector:
    name = "conntrack"

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def collect(self) -> list[MetricFamily]:
        try:
            count = _read_uint(self.paths.proc("sys", "net", "netfilter", "nf_conntrack_count"))
            limit = _read_uint(self.paths.proc("sys", "net", "netfilter", "nf_conntrack_max"))
            stat_text = read_text(self.paths.proc("net", "stat", "nf_conntrack"))
        except FileNotFoundError as exc:
            raise NoDataError(f"conntrack probably not loaded: {exc}") from None
        totals = [0] * len(STATS)
        for line in stat_text.splitlines()[1:]:
            fields = line.split()
            if len(fields) != 17:
                raise ValueError("invalid conntrackstat entry, missing fields")
            for i, (column, _, _) in enumerate(STATS):
                totals[i] += int(fields[column], 16)
        out = [
            single(
                "node_nf_conntrack_entries",
                "Number of currently allocated flow entries for connection tracking.",
                GAUGE,
                count,
            ),
            single(
                "node_nf_conntrack_entries_limit",
                "Maximum size of connection tracking table.",
                GAUGE,
                limit,
            ),
        ]
        for (_, suffix, help_text), total in zip(STATS, totals, strict=True):
            out.append(single(f"node_nf_conntrack_stat_{suffix}", help_text, GAUGE, float(total)))
        return out


def _read_uint(path: str) -> float:
    """node_exporter's readUintFromFile: the trimmed text as a decimal uint64."""
    text = read_text(path).strip()
    if not text.isascii() or not text.isdigit() or int(text) >= 1 << 64:
        raise ValueError(f"{path}: not an unsigned integer: {text!r}")
    return float(int(text))
