"""Choosing the busiest disk and interface, the real filesystems and the sampling interval."""

from __future__ import annotations

from perfanalysis.report.detect import (
    busiest_disk,
    busiest_interface,
    real_mountpoints,
    sampling_interval,
)
from perfanalysis.report.fetch import Discovery, select_devices


def test_the_busiest_disk_moved_the_most_bytes_read_plus_written() -> None:
    assert busiest_disk({"sda": 5e9, "nvme0n1": 7e9, "dm-0": 6.9e9}) == "nvme0n1"
    assert busiest_disk({"sdb": 10.0, "sda": 10.0}) == "sda"  # a tie goes to the first name
    assert busiest_disk({}) is None


def test_the_busiest_interface_is_never_loopback() -> None:
    assert busiest_interface({"lo": 9e12, "eth0": 1e6, "ifb0": 0.0}) == "eth0"
    assert busiest_interface({"lo": 1e9}) is None
    assert busiest_interface({"bond0": 3e9, "eth0": 2e9, "eth1": 1e9}) == "bond0"


def test_pseudo_filesystems_are_left_out_by_type() -> None:
    found = {"/": "ext4", "/run": "tmpfs", "/var": "xfs", "/dev": "devtmpfs"}
    assert real_mountpoints(found, ["tmpfs", "devtmpfs"]) == ["/", "/var"]
    assert real_mountpoints(found, []) == ["/", "/dev", "/run", "/var"]


def test_the_configuration_wins_over_detection() -> None:
    found = Discovery(
        "web-01", {"sda": 1.0, "sdb": 2.0}, {"lo": 9.0, "eth0": 1.0}, {"/": "ext4", "/run": "tmpfs"}
    )
    chosen = select_devices(found, None, None, None, ["tmpfs"])
    assert (chosen.disk, chosen.network, chosen.mountpoints) == ("sdb", "eth0", ["/"])
    configured = select_devices(found, "sda", "eth1", ("/run",), ["tmpfs"])
    assert (configured.disk, configured.network, configured.mountpoints) == (
        "sda",
        "eth1",
        ["/run"],
    )


def test_the_sampling_interval_is_the_median_spacing() -> None:
    assert sampling_interval([0.0, 10.0, 20.0, 31.0, 40.0, 100.0]) == 10.0
    assert sampling_interval([5.0]) is None
    assert sampling_interval([]) is None
