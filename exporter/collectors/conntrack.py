"""conntrack: node_nf_conntrack_* from /proc/sys/net/netfilter and /proc/net/stat/nf_conntrack.

As node_exporter 1.5.0: the entry count and limit from ``nf_conntrack_count`` and
``nf_conntrack_max``, and eight of the per-CPU statistics, summed over the CPUs, as gauges.
procfs 0.8 reads the statistics by position and wants exactly 17 hexadecimal columns per line
(the kernel's names for some columns changed, ``searched`` became ``clashres``, but not the
positions it reads).

The files are read in 1.5.0's order and what was read before a failure is still served, with
``node_scrape_collector_success`` 0: without the module (``nf_conntrack_count`` missing) there is
no data (logged at debug, as 1.5.0's ErrNoData); with the count and limit but without
/proc/net/stat/nf_conntrack (some container hosts' kernels), the count and limit are served, so
the table-full alert still works; statistics that do not parse fail the collector (logged as an
error) and the count and limit are served too.
"""

from __future__ import annotations

from exporter.model import GAUGE, CollectorError, MetricFamily, NoDataError, single
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
ENTRIES_HELP = "Number of currently allocated flow entries for connection tracking."
LIMIT_HELP = "Maximum size of connection tracking table."


class ConntrackCollector:
    name = "conntrack"

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def collect(self) -> list[MetricFamily]:
        out: list[MetricFamily] = []
        netfilter = ("sys", "net", "netfilter")
        try:
            count = _read_uint(self.paths.proc(*netfilter, "nf_conntrack_count"))
            out.append(single("node_nf_conntrack_entries", ENTRIES_HELP, GAUGE, count))
            limit = _read_uint(self.paths.proc(*netfilter, "nf_conntrack_max"))
            out.append(single("node_nf_conntrack_entries_limit", LIMIT_HELP, GAUGE, limit))
            totals = _statistics(self.paths.proc("net", "stat", "nf_conntrack"))
        except FileNotFoundError as exc:
            raise NoDataError(f"conntrack probably not loaded: {exc}", out) from None
        except (OSError, ValueError) as exc:
            raise CollectorError(f"failed to retrieve conntrack stats: {exc}", out) from exc
        for (_, suffix, help_text), total in zip(STATS, totals, strict=True):
            out.append(single(f"node_nf_conntrack_stat_{suffix}", help_text, GAUGE, float(total)))
        return out


def _statistics(path: str) -> list[int]:
    """The STATS columns of every CPU's line, summed."""
    totals = [0] * len(STATS)
    for line in read_text(path).splitlines()[1:]:
        fields = line.split()
        if len(fields) != 17:
            raise ValueError(f"{path}: invalid conntrackstat entry, missing fields")
        try:
            for i, (column, _, _) in enumerate(STATS):
                totals[i] += int(fields[column], 16)
        except ValueError:
            raise ValueError(f"{path}: not hexadecimal numbers: {line!r}") from None
    return totals


def _read_uint(path: str) -> float:
    """node_exporter's readUintFromFile: the trimmed text as a decimal uint64."""
    text = read_text(path).strip()
    if not text.isascii() or not text.isdigit() or int(text) >= 1 << 64:
        raise ValueError(f"{path}: not an unsigned integer: {text!r}")
    return float(int(text))
