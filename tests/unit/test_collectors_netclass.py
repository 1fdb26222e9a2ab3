"""netclass collector: /sys/class/net/<iface> attributes as node_exporter 1.5.0 exports them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.unit.promtext import (
    headers,
    labels,
    parse_samples,
    scrape,
    series,
    success,
    tree,
    value,
)


def test_properties_on_6_8() -> None:
    text = scrape(tree("6.8"), "netclass")
    samples = parse_samples(text)
    assert success(samples) == {"netclass": 1}
    # bonding_masters is a regular file: not an interface
    assert series(samples, "node_network_up") == {
        labels(device="eth0"): 1, labels(device="lo"): 0, labels(device="wlan0"): 0,
    }  # fmt: skip
    assert series(samples, "node_network_info")[
        labels(device="eth0", address="52:54:00:12:34:56", broadcast="ff:ff:ff:ff:ff:ff",
               duplex="full", ifalias="uplink", operstate="up")
    ] == 1  # fmt: skip
    # attributes a device lacks are empty in info and absent as numbers
    assert labels(device="wlan0", address="3c:22:fb:00:00:01", broadcast="", duplex="",
                  ifalias="", operstate="down") in series(samples, "node_network_info")  # fmt: skip
    assert value(samples, "node_network_flags", device="eth0") == 0x1003
    assert value(samples, "node_network_mtu_bytes", device="eth0") == 9000
    assert value(samples, "node_network_carrier_changes_total", device="eth0") == 3
    assert series(samples, "node_network_speed_bytes") == {
        labels(device="eth0"): 1_250_000_000,
        labels(device="wlan0"): -125000,  # -1: unknown, exported as 1.5.0 does by default
        labels(device="lo"): 0,  # not a number: 0, as 1.5.0 (its parse error is ignored)
    }
    assert labels(device="wlan0") not in series(samples, "node_network_carrier")
    assert headers(text)["node_network_up"] == (
        "gauge",
        "Value is 1 if operstate is 'up', 0 otherwise.",
    )
    assert headers(text)["node_network_carrier_up_changes_total"] == (
        "counter",
        "Network device property: carrier_up_changes_total",
    )


def test_ignored_devices_and_invalid_speed() -> None:
    flags = (
        "--collector.netclass.ignored-devices=^lo$",
        "--collector.netclass.ignore-invalid-speed",
    )
    samples = parse_samples(scrape(tree("6.8"), "netclass", flags=flags))
    assert set(series(samples, "node_network_up")) == {
        labels(device="eth0"),
        labels(device="wlan0"),
    }
    assert series(samples, "node_network_speed_bytes") == {labels(device="eth0"): 1_250_000_000}


def test_unreadable_attribute_skipped_other_errors_fail(tmp_path: Path) -> None:
    shutil.copytree(tree("6.8") / "sys" / "class", tmp_path / "sys" / "class")
    mtu = tmp_path / "sys" / "class" / "net" / "eth0" / "mtu"
    mtu.chmod(0)
    samples = parse_samples(scrape(tmp_path, "netclass"))
    if success(samples) == {"netclass": 1}:  # as root the file stays readable
        assert labels(device="lo") in series(samples, "node_network_mtu_bytes")
    mtu.chmod(0o644)
    # a directory without any attribute: up 0 and info with empty values only
    (tmp_path / "sys" / "class" / "net" / "dummy0").mkdir()
    samples = parse_samples(scrape(tmp_path, "netclass"))
    assert value(samples, "node_network_up", device="dummy0") == 0


def test_no_sys_class_net_is_no_data(tmp_path: Path) -> None:
    (tmp_path / "sys").mkdir()
    assert success(parse_samples(scrape(tmp_path, "netclass"))) == {"netclass": 0}


def test_netlink_refused() -> None:
    from exporter.config import load
    from perfanalysis.config import ConfigError

    with pytest.raises(ConfigError, match=r"netclass\.netlink"):
        load(["--collector.netclass.netlink"], {})
    assert load(["--no-collector.netclass.netlink"], {})["collector_netclass_netlink"] is False
