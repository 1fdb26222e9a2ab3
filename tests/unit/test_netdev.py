"""netdev collector: the 16 /proc/net/dev columns per interface, names, filters and bad lines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exporter.config import load
from perfanalysis.config import ConfigError
from tests.unit.promtext import (
    NODE_COLLECTORS,
    headers,
    label_values,
    parse_samples,
    scrape,
    series,
    success,
    tree,
)

RECEIVE = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
TRANSMIT = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")
NAMES = [f"node_network_receive_{k}_total" for k in RECEIVE] + [
    f"node_network_transmit_{k}_total" for k in TRANSMIT
]


def netdev(kernel: str, *flags: str) -> dict:
    return parse_samples(scrape(tree(kernel), "netdev", flags=flags))


def columns(samples: dict, device: str) -> list[float]:
    return [samples[(name, frozenset({("device", device)}))] for name in NAMES]


@pytest.mark.parametrize(
    ("kernel", "devices"),
    [
        ("3.10", {"eth0", "lo", "eth1", "docker0", "veth1a2b3c4"}),
        ("4.19", {"lo", "enp3s0", "ibr10:30", "wlp2s0", "br-1a2b3c4d5e6f"}),
        ("6.8", {"lo", "ens5", "docker0", "cali1234abcd", "tailscale0", "wg0"}),
    ],
)
def test_device_set_every_family(kernel: str, devices: set[str]) -> None:
    samples = netdev(kernel)
    assert success(samples) == {"netdev": 1}
    for name in NAMES:
        assert label_values(samples, name, "device") == devices, name


def test_no_space_after_the_colon() -> None:
    assert columns(netdev("3.10"), "eth0") == [
        68210035552, 56341289, 3, 1204, 5, 6, 7, 104557,
        9412876543, 31234567, 8, 9, 10, 11, 12, 13,
    ]  # fmt: skip


def test_colon_in_the_name_splits_at_the_last_colon() -> None:
    assert columns(netdev("4.19"), "ibr10:30") == [1111, 22, 0, 0, 0, 0, 0, 3, 4444, 55] + [0] * 6


def test_line_without_colon_is_skipped_and_the_rest_kept() -> None:
    samples = netdev("4.19")
    assert columns(samples, "enp3s0") == [
        9876543210, 7654321, 12, 34, 0, 5, 0, 4321,
        1234567890, 2345678, 0, 7, 0, 3, 2, 0,
    ]  # fmt: skip
    assert columns(samples, "br-1a2b3c4d5e6f")[0] == 5678


def test_values_beyond_2_to_the_53() -> None:
    assert columns(netdev("6.8"), "wg0")[0] == float(18446744073709551)
    text = scrape(tree("6.8"), "netdev")
    assert 'node_network_receive_bytes_total{device="wg0"} 1.844674407370955e+16\n' in text


def test_counters_with_node_exporter_help() -> None:
    found = headers(scrape(tree("6.8"), "netdev"))
    assert {name: found[name][0] for name in NAMES} == dict.fromkeys(NAMES, "counter")
    assert (
        found["node_network_transmit_colls_total"][1] == "Network device statistic transmit_colls."
    )


def test_device_exclude() -> None:
    samples = netdev("3.10", "--collector.netdev.device-exclude=^(lo|veth.*)$")
    devices = label_values(samples, "node_network_receive_bytes_total", "device")
    assert devices == {"eth0", "eth1", "docker0"}


def test_device_include_is_unanchored_like_go() -> None:
    samples = netdev("6.8", "--collector.netdev.device-include=ca|s5")
    devices = label_values(samples, "node_network_receive_bytes_total", "device")
    assert devices == {"ens5", "cali1234abcd", "tailscale0"}


def test_include_and_exclude_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="mutually exclusive"):
        load(["--collector.netdev.device-include=eth", "--collector.netdev.device-exclude=lo"], {})


def test_missing_net_dev_fails_only_netdev(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(tree("6.8"), root)
    (root / "proc" / "net" / "dev").unlink()
    samples = parse_samples(scrape(root))
    assert success(samples) == {name: 0 if name == "netdev" else 1 for name in NODE_COLLECTORS}
    assert series(samples, "node_network_receive_bytes_total") == {}
    assert series(samples, "node_disk_reads_completed_total")
