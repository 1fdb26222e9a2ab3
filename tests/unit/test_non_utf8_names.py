"""Names from the kernel that are not UTF-8: real bytes for system calls, distinct valid labels.

The fake trees are built in tmp_path because their files must hold raw bytes, and because the
mount point must be a real directory for statfs to succeed on it.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from exporter.collectors.filesystem import FilesystemCollector
from exporter.collectors.netdev import NetdevCollector
from exporter.collectors.statfs import StatfsRunner
from exporter.exposition import render
from exporter.paths import Paths, valid_utf8
from tests.unit.promtext import label_values, parse_samples, scrape, series, success, value

NET_DEV_HEADER = (
    b"Inter-|   Receive                                                |  Transmit\n"
    b" face |bytes    packets errs drop fifo frame compressed multicast"
    b"|bytes    packets errs drop fifo colls carrier compressed\n"
)


def mangle(path: bytes) -> bytes:
    """A path as the kernel writes it into /proc/mounts: backslash, space, tab, newline as \\ooo."""
    for char in b"\\ \t\n":  # the backslash first, so that the escapes' own are left alone
        path = path.replace(bytes([char]), b"\\%03o" % char)
    return path


def net_dev_line(name: bytes, first: int) -> bytes:
    return b"%6s:%d" % (name, first) + b" 0" * 15 + b"\n"


def write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("eth0", "eth0"),
        ("caf\u00e9", "caf\u00e9"),
        ("back\\slash", "back\\slash"),  # a valid name is never changed
        ("x\udcff", "x\\xff"),
        ("a\\b\udcfe", "a\\\\b\\xfe"),
        ("\u00e9\udcc3", "\u00e9\\xc3"),
    ],
)
def test_valid_utf8_keeps_valid_names_and_escapes_bytes(name: str, label: str) -> None:
    assert valid_utf8(name) == label
    label.encode()


def test_valid_utf8_keeps_names_with_bad_bytes_apart() -> None:
    # a literal "\xff" before a bad byte, against two bad bytes: alike once backslashreplace'd
    names = ["a\\xff\udcfe", "a\udcff\udcfe", "a\\\udcfe", "a\\\\\udcfe"]
    assert len({valid_utf8(name) for name in names}) == len(names)


def test_statfs_gets_the_real_bytes_of_a_mount_point_that_is_not_utf8(tmp_path: Path) -> None:
    mountpoint = os.fsencode(tmp_path) + b"/bad\xffutf"
    try:
        os.mkdir(mountpoint)
    except OSError as exc:
        if exc.errno != errno.EILSEQ:
            raise
        pytest.skip("the temporary directory's filesystem refuses names that are not UTF-8")
    write(tmp_path / "proc" / "1" / "mounts", b"tbad %s tmpfs rw 0 0\n" % mangle(mountpoint))
    called: list[bytes] = []

    def statvfs(path: str) -> os.statvfs_result:
        called.append(os.fsencode(path))
        return os.statvfs(path)

    collector = FilesystemCollector(
        Paths(procfs=str(tmp_path / "proc")), runner=StatfsRunner(statfs=statvfs)
    )
    samples = parse_samples(render(collector.collect()).decode("utf-8"))

    assert called == [mountpoint]
    label = os.fsdecode(tmp_path) + "/bad\\xffutf"
    where = {"device": "tbad", "fstype": "tmpfs", "mountpoint": label}
    assert value(samples, "node_filesystem_device_error", **where) == 0
    assert value(samples, "node_filesystem_size_bytes", **where) > 0
    assert collector.device_errors == {}  # /health's source: nothing to report


def test_mount_labels_with_bad_bytes_stay_apart_from_escaped_backslashes(tmp_path: Path) -> None:
    mounts = b"".join(
        b"dev%d %s ext4 rw 0 0\n" % (number, mangle(path))
        for number, path in enumerate([b"/m/a\xff", b"/m/a\\xff", b"/m/b\xff\\134 c"])
    )
    write(tmp_path / "proc" / "1" / "mounts", mounts)
    collector = FilesystemCollector(
        Paths(procfs=str(tmp_path / "proc")),
        runner=StatfsRunner(statfs=lambda path: os.statvfs("/")),
    )
    samples = parse_samples(render(collector.collect()).decode("utf-8"))
    assert label_values(samples, "node_filesystem_size_bytes", "mountpoint") == {
        "/m/a\\xff",  # the byte 0xff
        "/m/a\\134xff",  # the text \xff: the kernel's \134 for the backslash stays, as in 1.5.0
        "/m/b\\xff\\\\134134 c",  # the byte 0xff, the text \134 and a space
    }


def test_interfaces_differing_only_in_bad_bytes_are_two_series(tmp_path: Path) -> None:
    lines = [(b"x\xfe", 11), (b"x\xfd", 22), (b"back\\slash", 33), (b"eth0", 44)]
    write(
        tmp_path / "proc" / "net" / "dev",
        NET_DEV_HEADER + b"".join(net_dev_line(name, first) for name, first in lines),
    )
    samples = parse_samples(scrape(tmp_path, "netdev"))
    assert success(samples) == {"netdev": 1}
    received = {
        dict(labels)["device"]: bytes_
        for labels, bytes_ in series(samples, "node_network_receive_bytes_total").items()
    }
    assert received == {"x\\xfe": 11, "x\\xfd": 22, "back\\slash": 33, "eth0": 44}


def test_device_filters_see_the_escaped_label(tmp_path: Path) -> None:
    lines = [(b"x\xfe", 11), (b"x\xfd", 22)]
    write(
        tmp_path / "proc" / "net" / "dev",
        NET_DEV_HEADER + b"".join(net_dev_line(name, first) for name, first in lines),
    )
    samples = parse_samples(
        scrape(tmp_path, "netdev", flags=(r"--collector.netdev.device-exclude=^x\\xfe$",))
    )
    assert label_values(samples, "node_network_receive_bytes_total", "device") == {"x\\xfd"}


def test_a_valid_name_equal_to_an_escaped_one_is_reported_not_merged_silently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [(b"x\\xfe", 11), (b"x\xfe", 22)]  # the text "\xfe", then the byte 0xfe
    write(
        tmp_path / "proc" / "net" / "dev",
        NET_DEV_HEADER + b"".join(net_dev_line(name, first) for name, first in lines),
    )
    collector = NetdevCollector(Paths(procfs=str(tmp_path / "proc")))
    with caplog.at_level(logging.WARNING, logger="exporter.collectors.names"):
        samples = parse_samples(render(collector.collect()).decode("utf-8"))
        collector.collect()
    assert series(samples, "node_network_receive_bytes_total") == {
        frozenset({("device", "x\\xfe")}): 11
    }
    (record,) = caplog.records  # once per pair of names, not once per scrape
    assert "/proc/net/dev: 'x\\\\xfe' and 'x\\udcfe' both give the label value" in record.message


def test_disks_differing_only_in_bad_bytes_are_two_series_with_valid_udev_labels(
    tmp_path: Path,
) -> None:
    counters = b" 1 0 8 1 2 0 16 2 0 3 3"
    write(
        tmp_path / "proc" / "diskstats",
        b"   8       0 disk\xfe" + counters + b"\n   8      16 disk\xfd" + counters + b"\n",
    )
    write(
        tmp_path / "run" / "udev" / "data" / "b8:0",
        b"E:ID_MODEL=Mod\xe9le\nE:ID_SERIAL_SHORT=S\\N\xff\nE:ID_PATH=pci-0000:00:17.0-ata-1\n",
    )
    samples = parse_samples(scrape(tmp_path, "diskstats"))
    assert success(samples) == {"diskstats": 1}
    assert label_values(samples, "node_disk_reads_completed_total", "device") == {
        "disk\\xfe",
        "disk\\xfd",
    }
    info = {dict(labels)["device"]: dict(labels) for labels in series(samples, "node_disk_info")}
    assert info["disk\\xfe"]["model"] == "Mod\\xe9le"
    assert info["disk\\xfe"]["serial"] == "S\\\\N\\xff"
    assert info["disk\\xfe"]["path"] == "pci-0000:00:17.0-ata-1"
    assert info["disk\\xfd"]["model"] == ""


def test_uname_domainname_that_is_not_utf8(tmp_path: Path) -> None:
    write(tmp_path / "proc" / "sys" / "kernel" / "domainname", b"corp\xff.example\n")
    samples = parse_samples(scrape(tmp_path, "uname"))
    assert label_values(samples, "node_uname_info", "domainname") == {"corp\\xff.example"}
