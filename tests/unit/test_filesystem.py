"""filesystem collector: mount-table parsing, filters, rootfs handling and hung mounts.

statfs is a fake returning exact values (or a real statvfs under a temporary --path.rootfs), so
the expectations do not depend on the machine running the tests.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exporter.collectors.filesystem import FilesystemCollector
from exporter.collectors.statfs import StatfsRunner
from exporter.exposition import render
from exporter.paths import Paths
from tests.unit.promtext import label_values, parse_samples, scrape, series, tree

SIZE_FAMILIES = (
    "node_filesystem_size_bytes",
    "node_filesystem_free_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_files",
    "node_filesystem_files_free",
    "node_filesystem_readonly",
)
MOUNTS = {
    "3.10": {
        ("rootfs", "rootfs", "/"),
        ("/dev/mapper/centos-root", "xfs", "/"),
        ("tmpfs", "tmpfs", "/run"),
        ("/dev/sda1", "xfs", "/boot"),
        ("/dev/mapper/centos-home", "xfs", "/home"),
        ("/dev/sdb1", "ext4", "/mnt/my disk"),
        ("tmpfs", "tmpfs", "/run/user/1000"),
    },
    "4.19": {
        ("tmpfs", "tmpfs", "/run"),
        ("/dev/mapper/vg0-root", "ext4", "/"),
        ("tmpfs", "tmpfs", "/run/lock"),
        ("/dev/nvme0n1p2", "ext2", "/boot"),
        ("/dev/nvme0n1p1", "vfat", "/boot/efi"),
        ("/dev/mapper/vg0-srv", "ext4", "/srv"),
        ("/dev/mapper/vg0-srv", "ext4", "/var/www"),
        ("/dev/mmcblk0p1", "vfat", "/mnt/tab\tdir"),
        ("/dev/mmcblk0p2", "ext4", "/data\\134backslash"),  # node_exporter 1.5.0 keeps \134
        ("tmpfs", "tmpfs", "/run/user/1000"),
    },
    "6.8": {
        ("tmpfs", "tmpfs", "/run"),
        ("/dev/mapper/ubuntu--vg-ubuntu--lv", "ext4", "/"),
        ("tmpfs", "tmpfs", "/run/lock"),
        ("/dev/nvme0n1p2", "ext4", "/boot"),
        ("/dev/nvme0n1p1", "vfat", "/boot/efi"),
        ("/dev/sda1", "ext4", "/mnt/my disk"),
        ("/dev/sdb", "xfs", "/srv/backup"),
        ("/dev/mapper/ubuntu--vg-ubuntu--lv", "ext4", "/var/lib/docker"),
        ("tmpfs", "tmpfs", "/run/user/1000"),
        ("nfs.example:/export/home", "nfs4", "/home"),
    },
}
# path -> (f_bsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree)
STATS = {
    "/": (4096, 2621440, 1310720, 1179648, 655360, 600000),
    "/srv/backup": (65536, 30000, 20000, 20000, 5000, 4000),
}
OTHER = (1024, 1000, 500, 400, 100, 90)


def statvfs(numbers: tuple[int, ...]) -> os.statvfs_result:
    bsize, blocks, bfree, bavail, files, ffree = numbers
    return os.statvfs_result((bsize, bsize, blocks, bfree, bavail, files, ffree, ffree, 0, 255))


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class FakeStatfs:
    def __init__(self, rootfs: str = "/", hung: str | None = None) -> None:
        self.rootfs = rootfs
        self.hung = hung
        self.release = threading.Event()
        self.paths: list[str] = []

    def __call__(self, path: str) -> os.statvfs_result:
        self.paths.append(path)
        host = "/" + os.path.relpath(path, self.rootfs).removeprefix(".")
        if host == self.hung:
            assert self.release.wait(10), "the test never released the hung statfs"
        if host.startswith("/missing"):
            raise OSError(errno.ENOENT, "No such file or directory", path)
        return statvfs(STATS.get(host, OTHER))


def make(
    procfs: Path, statfs: FakeStatfs, rootfs: str = "/", timeout: float = 5.0
) -> FilesystemCollector:
    paths = Paths(procfs=str(procfs), rootfs=rootfs)
    return FilesystemCollector(paths, runner=StatfsRunner(4, timeout, statfs=statfs))


def samples_of(collector: FilesystemCollector) -> dict:
    return parse_samples(render(collector.collect()).decode())


def collect(procfs: Path, statfs: FakeStatfs, rootfs: str = "/") -> dict:
    return samples_of(make(procfs, statfs, rootfs))


def mount_labels(samples: dict, name: str = "node_filesystem_device_error") -> set[tuple]:
    return {
        (dict(lab)["device"], dict(lab)["fstype"], dict(lab)["mountpoint"])
        for lab in series(samples, name)
    }


def one(samples: dict, name: str, mountpoint: str) -> float:
    (v,) = (v for lab, v in series(samples, name).items() if dict(lab)["mountpoint"] == mountpoint)
    return v


@pytest.mark.parametrize("kernel", sorted(MOUNTS))
def test_mounts_kept_by_the_default_filters(kernel: str) -> None:
    samples = collect(tree(kernel) / "proc", FakeStatfs())
    for name in (*SIZE_FAMILIES, "node_filesystem_device_error"):
        assert mount_labels(samples, name) == MOUNTS[kernel], name
    assert set(series(samples, "node_filesystem_device_error").values()) == {0}


def test_exact_values_and_readonly_on_6_8() -> None:
    samples = collect(tree("6.8") / "proc", FakeStatfs())
    assert one(samples, "node_filesystem_size_bytes", "/") == 2621440 * 4096
    assert one(samples, "node_filesystem_free_bytes", "/") == 1310720 * 4096
    assert one(samples, "node_filesystem_avail_bytes", "/") == 1179648 * 4096
    assert one(samples, "node_filesystem_files", "/") == 655360
    assert one(samples, "node_filesystem_files_free", "/") == 600000
    assert one(samples, "node_filesystem_size_bytes", "/srv/backup") == 30000 * 65536
    assert one(samples, "node_filesystem_readonly", "/srv/backup") == 1
    assert one(samples, "node_filesystem_readonly", "/") == 0


def test_escaped_mount_points_are_statted_unescaped() -> None:
    statfs = FakeStatfs()
    samples = collect(tree("4.19") / "proc", statfs)
    assert one(samples, "node_filesystem_readonly", "/mnt/tab\tdir") == 1
    assert {"/mnt/tab\tdir", "/data\\backslash"} <= set(statfs.paths)


# The reviewer's tree (/tmp/review-exporter/trees/esc): node_exporter 1.5.0 keeps the device
# exactly as in the table and decodes only \040 and \011 in the mount point.
ESCAPED_MOUNTS = (
    "/dev/mapper/centos-root / xfs rw,relatime 0 0\n"
    "user@host:/my\\040share /srv/share fuse.sshfs rw,nosuid,nodev,relatime 0 0\n"
    "/dev/sdc1 /srv/back\\134slash ext4 rw,relatime 0 0\n"
    "/dev/sdd1 /srv/new\\012line ext4 rw,relatime 0 0\n"
    "/dev/sde1 /srv/tab\\011and\\040space ext4 rw,relatime 0 0\n"
)


def test_escapes_are_labelled_as_node_exporter_1_5_0_and_statted_decoded(tmp_path: Path) -> None:
    (tmp_path / "proc" / "1").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "mounts").write_text(ESCAPED_MOUNTS)
    statfs = FakeStatfs()
    samples = collect(tmp_path / "proc", statfs)
    # node_exporter 1.5.0's labels on that tree, unescaped from its text output
    assert mount_labels(samples) == {
        ("/dev/mapper/centos-root", "xfs", "/"),
        ("user@host:/my\\040share", "fuse.sshfs", "/srv/share"),
        ("/dev/sdc1", "ext4", "/srv/back\\134slash"),
        ("/dev/sdd1", "ext4", "/srv/new\\012line"),
        ("/dev/sde1", "ext4", "/srv/tab\tand space"),
    }
    assert sorted(statfs.paths) == [
        "/",
        "/srv/back\\slash",
        "/srv/new\nline",
        "/srv/share",
        "/srv/tab\tand space",
    ]
    text = render(make(tmp_path / "proc", FakeStatfs()).collect()).decode()
    assert 'device="user@host:/my\\\\040share"' in text
    assert 'mountpoint="/srv/back\\\\134slash"' in text


def test_a_repeated_bind_mount_is_statted_and_exported_once() -> None:
    statfs = FakeStatfs()
    families = make(tree("4.19") / "proc", statfs).collect()
    size = next(f for f in families if f.name == "node_filesystem_size_bytes")
    assert [lab for lab, _ in size.samples].count(("/dev/mapper/vg0-srv", "ext4", "/var/www")) == 1
    assert statfs.paths.count("/var/www") == 1


def test_falls_back_to_proc_mounts(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    shutil.copy(tree("6.8") / "proc" / "mounts", tmp_path / "proc" / "mounts")
    samples = collect(tmp_path / "proc", FakeStatfs())
    assert mount_labels(samples) == MOUNTS["6.8"]


def test_a_statfs_error_reports_only_device_error(tmp_path: Path) -> None:
    (tmp_path / "proc" / "1").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "mounts").write_text(
        "/dev/sda1 / ext4 rw 0 0\n/dev/sdz1 /missing ext4 rw 0 0\n"
    )
    collector = make(tmp_path / "proc", FakeStatfs())
    samples = samples_of(collector)
    assert series(samples, "node_filesystem_device_error") == {
        frozenset({("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/")}): 0,
        frozenset({("device", "/dev/sdz1"), ("fstype", "ext4"), ("mountpoint", "/missing")}): 1,
    }
    for name in SIZE_FAMILIES:
        assert label_values(samples, name, "mountpoint") == {"/"}, name
    assert collector.device_errors.keys() == {"/missing"}


@pytest.fixture
def hung_home() -> Iterator[FakeStatfs]:
    statfs = FakeStatfs(hung="/home")
    yield statfs
    statfs.release.set()


def test_a_hung_mount_reports_device_error_and_nothing_else(hung_home: FakeStatfs) -> None:
    collector = make(tree("6.8") / "proc", hung_home, timeout=0.3)
    start = time.monotonic()
    samples = samples_of(collector)
    assert time.monotonic() - start < 0.3 + 1.0
    errors = {
        dict(lab)["mountpoint"]: v
        for lab, v in series(samples, "node_filesystem_device_error").items()
    }
    assert errors == {mp: (1 if mp == "/home" else 0) for _, _, mp in MOUNTS["6.8"]}
    for name in SIZE_FAMILIES:
        assert "/home" not in label_values(samples, name, "mountpoint"), name
        assert len(series(samples, name)) == len(MOUNTS["6.8"]) - 1, name
    assert collector.runner.stuck == ["/home"]
    assert collector.device_errors == {"/home": "mountpoint timeout"}
    hung_home.release.set()
    assert wait_until(lambda: collector.runner.stuck == [])
    assert hung_home.paths.count("/home") == 1
    after = samples_of(collector)
    assert set(series(after, "node_filesystem_device_error").values()) == {0}
    assert one(after, "node_filesystem_size_bytes", "/home") == OTHER[1] * OTHER[0]


# --path.rootfs: statfs runs under rootfs, and mount points are reported as the host sees them.


def write_mounts(tmp_path: Path, text: str) -> Path:
    (tmp_path / "proc" / "1").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "mounts").write_text(text)
    return tmp_path / "proc"


def test_rootfs_prefix_is_stripped_from_a_container_mount_table(tmp_path: Path) -> None:
    procfs = write_mounts(
        tmp_path,
        "overlay / overlay rw 0 0\n"
        "/dev/sda1 /host ext4 rw 0 0\n"
        "/dev/sda2 /host/boot ext4 ro 0 0\n"
        "/dev/sdc1 /hostile ext4 rw 0 0\n",
    )
    statfs = FakeStatfs(rootfs="/host")
    samples = collect(procfs, statfs, rootfs="/host")
    assert {"/", "/boot"} <= label_values(samples, "node_filesystem_device_error", "mountpoint")
    assert "/host" not in label_values(samples, "node_filesystem_device_error", "mountpoint")
    assert "ile" not in label_values(samples, "node_filesystem_device_error", "mountpoint")
    assert one(samples, "node_filesystem_readonly", "/boot") == 1
    assert {os.path.normpath(p) for p in statfs.paths} >= {"/host", "/host/boot"}


def test_host_mount_table_under_rootfs() -> None:
    """The documented container recipe: --pid=host with --path.rootfs=/host. <procfs>/1/mounts is
    the host's own table, without the /host prefix; node_exporter keeps such mount points as they
    are (its rootfsStripPrefix only trims a prefix that is there) and statfs's them under rootfs."""
    statfs = FakeStatfs(rootfs="/host")
    samples = collect(tree("6.8") / "proc", statfs, rootfs="/host")
    assert mount_labels(samples) == MOUNTS["6.8"]
    assert "/host/boot/efi" in {os.path.normpath(p) for p in statfs.paths}


def test_real_statvfs_under_a_temporary_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for _, _, mountpoint in MOUNTS["6.8"] - {("/dev/sdb", "xfs", "/srv/backup")}:
        (root / mountpoint.lstrip("/")).mkdir(parents=True, exist_ok=True)
    samples = parse_samples(
        scrape(
            tree("6.8"),
            "filesystem",
            rootfs=root,
        )
    )
    errors = {
        dict(lab)["mountpoint"]: v
        for lab, v in series(samples, "node_filesystem_device_error").items()
    }
    assert errors == {mp: (1 if mp == "/srv/backup" else 0) for _, _, mp in MOUNTS["6.8"]}
    assert one(samples, "node_filesystem_size_bytes", "/mnt/my disk") > 0


# filter flags, through the configuration (real statfs under rootfs /: only labels are compared)


def mountpoints(*flags: str) -> set[str]:
    samples = parse_samples(scrape(tree("6.8"), "filesystem", flags=flags))
    return label_values(samples, "node_filesystem_device_error", "mountpoint")


def test_mount_points_exclude_flag_replaces_the_default() -> None:
    """/dev/shm and efivarfs under /sys come back once the default mount-point regex is replaced."""
    assert mountpoints("--collector.filesystem.mount-points-exclude=^/(run|boot)($|/)") == {
        "/",
        "/dev/shm",
        "/sys/firmware/efi/efivars",
        "/mnt/my disk",
        "/srv/backup",
        "/var/lib/docker",
        "/home",
    }


def test_mount_points_include_flag() -> None:
    assert mountpoints("--collector.filesystem.mount-points-include=^/(boot|srv)") == {
        "/boot",
        "/boot/efi",
        "/srv/backup",
    }


def test_fs_types_include_flag() -> None:
    assert mountpoints("--collector.filesystem.fs-types-include=^(nfs4|xfs|squashfs)$") == {
        "/home",
        "/srv/backup",
        "/snap/core22/1380",
    }


def test_fs_types_exclude_flag_replaces_the_default() -> None:
    """nsfs under /run/docker is only kept out by the default fs-type regex."""
    assert mountpoints("--collector.filesystem.fs-types-exclude=^(tmpfs|ext4|vfat|xfs)$") == {
        "/home",
        "/snap/core22/1380",
        "/run/docker/netns/4f5e6d",
    }
