"""Mutation-audit gaps in the netdev and stat collectors: one bad line is skipped and the other
series survive, as their docstrings promise (on a tmp_path copy, not the shared fixture trees)."""

from __future__ import annotations

from pathlib import Path

from exporter.collectors.netdev import NetdevCollector
from exporter.collectors.stat import StatCollector
from exporter.exposition import render
from exporter.paths import Paths
from tests.unit.promtext import parse_samples, series, value

NETDEV_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
)
GOOD = "    lo:  550806     896    0    0    0     0          0         0   550806     896    0    0    0     0       0          0\n"
ENS5 = "  ens5:132956071    3829    1    2    3     4          5         6   223399    2360    7    8    9    10      11         12\n"


def proc(tmp_path: Path, name: str, text: str) -> Paths:
    path = tmp_path / "proc" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return Paths(procfs=str(tmp_path / "proc"), rootfs="/")


def netdev_samples(tmp_path: Path, *lines: str) -> dict:
    paths = proc(tmp_path, "net/dev", NETDEV_HEADER + "".join(lines))
    return parse_samples(render(NetdevCollector(paths).collect()).decode())


def devices(samples: dict) -> set[str]:
    return {dict(lab)["device"] for lab in series(samples, "node_network_receive_bytes_total")}


def test_a_netdev_line_with_a_value_that_is_not_a_number_is_skipped(tmp_path: Path) -> None:
    bad = "  eth9:  12x34     896    0    0    0     0          0         0   1     1    0    0    0     0       0          0\n"
    samples = netdev_samples(tmp_path, GOOD, bad, ENS5)
    assert devices(samples) == {"lo", "ens5"}
    assert (
        samples[("node_network_transmit_compressed_total", frozenset({("device", "ens5")}))] == 12
    )


def test_a_netdev_line_with_more_or_fewer_columns_than_the_header_is_skipped(
    tmp_path: Path,
) -> None:
    extra = GOOD.replace("lo:", "eth8:").rstrip("\n") + "   99\n"
    fewer = "  eth7: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n"
    samples = netdev_samples(tmp_path, extra, GOOD, fewer, ENS5)
    assert devices(samples) == {"lo", "ens5"}
    assert samples[("node_network_receive_bytes_total", frozenset({("device", "lo")}))] == 550806


STAT = (
    "cpu  1618022 4340 393543 35177776 9144 0 11046 3197 208023 437\n"
    "intr 88123456 0 9 0 0\n"
    "ctxt 156789012\n"
    "btime 1714557600\n"
    "processes 98765\n"
    "procs_running 4\n"
    "procs_blocked 2\n"
)


def stat_samples(tmp_path: Path, text: str, softirq: bool = True) -> dict:
    paths = proc(tmp_path, "stat", text)
    return parse_samples(render(StatCollector(paths, softirq=softirq).collect()).decode())


def test_a_stat_line_that_is_not_a_number_is_skipped(tmp_path: Path) -> None:
    text = STAT.replace("ctxt 156789012", "ctxt 15678x9012").replace("processes 98765", "processes")
    text += "softirq 100 1 2 3 4 5 6 7 8 9 x\n"
    samples = stat_samples(tmp_path, text)
    assert series(samples, "node_context_switches_total") == {}
    assert series(samples, "node_forks_total") == {}
    assert series(samples, "node_softirqs_total") == {}
    assert value(samples, "node_intr_total") == 88123456
    assert value(samples, "node_boot_time_seconds") == 1714557600
    assert value(samples, "node_procs_blocked") == 2


def test_a_softirq_line_with_more_vectors_than_known_keeps_the_known_ones(tmp_path: Path) -> None:
    """A later kernel with an 11th vector: the 10 known ones are exported, the rest ignored."""
    samples = stat_samples(tmp_path, STAT + "softirq 166 1 2 3 4 5 6 7 8 9 10 100\n")
    softirqs = {dict(lab)["vector"]: v for lab, v in series(samples, "node_softirqs_total").items()}
    assert softirqs["hi"] == 1
    assert softirqs["rcu"] == 10
    assert len(softirqs) == 10
    assert value(samples, "node_procs_running") == 4


def test_a_softirq_line_with_fewer_vectors_gives_those_it_has(tmp_path: Path) -> None:
    samples = stat_samples(tmp_path, STAT + "softirq 45 1 2 3 4 5 6 7 8 9\n")
    softirqs = {dict(lab)["vector"]: v for lab, v in series(samples, "node_softirqs_total").items()}
    assert len(softirqs) == 9
    assert "rcu" not in softirqs
    assert softirqs["hrtimer"] == 9
    assert value(samples, "node_forks_total") == 98765
