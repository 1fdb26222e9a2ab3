"""stat collector: interrupts, context switches, forks, boot time and process states, exactly."""

from __future__ import annotations

import pytest

from tests.unit.promtext import headers, parse_samples, scrape, series, tree, value

EXPECTED = {
    "3.10": (1234567890, 2345678901, 1234567, 1588142345, 3, 1),
    "4.19": (4711234567, 9876543210, 456789, 1600000000, 2, 0),
    "6.8": (88123456, 156789012, 98765, 1714557600, 4, 2),
}
NAMES = (
    "node_intr_total",
    "node_context_switches_total",
    "node_forks_total",
    "node_boot_time_seconds",
    "node_procs_running",
    "node_procs_blocked",
)


@pytest.mark.parametrize("kernel", sorted(EXPECTED))
def test_scalars(kernel: str) -> None:
    samples = parse_samples(scrape(tree(kernel), "stat"))
    assert {name: value(samples, name) for name in NAMES} == dict(
        zip(NAMES, EXPECTED[kernel], strict=True)
    )
    assert series(samples, "node_softirqs_total") == {}


def test_types_boot_time_is_a_gauge() -> None:
    found = headers(scrape(tree("6.8"), "stat"))
    assert {name: found[name][0] for name in NAMES} == {
        "node_intr_total": "counter",
        "node_context_switches_total": "counter",
        "node_forks_total": "counter",
        "node_boot_time_seconds": "gauge",
        "node_procs_running": "gauge",
        "node_procs_blocked": "gauge",
    }


def test_softirq_vectors_without_the_total() -> None:
    samples = parse_samples(scrape(tree("6.8"), "stat", flags=("--collector.stat.softirq",)))
    got = {dict(lab)["vector"]: v for lab, v in series(samples, "node_softirqs_total").items()}
    assert got == {
        "hi": 3,
        "timer": 12345678,
        "net_tx": 4567,
        "net_rx": 8765432,
        "block": 2345678,
        "block_iopoll": 0,
        "tasklet": 123,
        "sched": 9876543,
        "hrtimer": 0,
        "rcu": 12340877,
    }
