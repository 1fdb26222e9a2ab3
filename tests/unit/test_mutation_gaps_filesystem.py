"""Mutation-audit gaps in exporter/collectors/filesystem.py: a mount table that changes between
scrapes, the first of duplicate mounts, and sizes in f_bsize units as node_exporter 1.5.0."""

from __future__ import annotations

import os
from pathlib import Path

from exporter.collectors.filesystem import FilesystemCollector
from exporter.collectors.statfs import StatfsRunner
from exporter.exposition import render
from exporter.paths import Paths
from tests.unit.promtext import parse_samples, series


class Statfs:
    """statvfs results whose f_bsize (4096) and f_frsize (1024) differ, per path."""

    def __init__(self) -> None:
        self.numbers = {"/": (100, 60, 50, 1000, 900), "/data": (10, 5, 4, 100, 90)}

    def __call__(self, path: str) -> os.statvfs_result:
        blocks, bfree, bavail, files, ffree = self.numbers.get(path, (1, 1, 1, 1, 1))
        return os.statvfs_result((4096, 1024, blocks, bfree, bavail, files, ffree, ffree, 0, 255))


def write_mounts(procfs: Path, *lines: str) -> None:
    (procfs / "1").mkdir(parents=True, exist_ok=True)
    (procfs / "1" / "mounts").write_text("".join(line + "\n" for line in lines))


def collector(procfs: Path) -> FilesystemCollector:
    paths = Paths(procfs=str(procfs), rootfs="/")
    return FilesystemCollector(paths, runner=StatfsRunner(2, 5.0, statfs=Statfs()))


def values(c: FilesystemCollector, name: str) -> dict[tuple[str, str, str], float]:
    samples = parse_samples(render(c.collect()).decode())
    return {
        (dict(lab)["device"], dict(lab)["fstype"], dict(lab)["mountpoint"]): value
        for lab, value in series(samples, name).items()
    }


ROOT = "/dev/sda1 / ext4 rw,relatime 0 0"
DATA = "/dev/sdb1 /data xfs rw,relatime 0 0"


def test_a_mount_added_or_removed_between_scrapes_shows_up(tmp_path: Path) -> None:
    write_mounts(tmp_path, ROOT)
    c = collector(tmp_path)
    assert set(values(c, "node_filesystem_size_bytes")) == {("/dev/sda1", "ext4", "/")}
    write_mounts(tmp_path, ROOT, DATA)
    assert set(values(c, "node_filesystem_size_bytes")) == {
        ("/dev/sda1", "ext4", "/"),
        ("/dev/sdb1", "xfs", "/data"),
    }
    write_mounts(tmp_path, DATA.replace(" rw,", " ro,"))  # / gone, /data remounted read-only
    assert values(c, "node_filesystem_readonly") == {("/dev/sdb1", "xfs", "/data"): 1.0}


def test_the_first_of_duplicate_mounts_wins(tmp_path: Path) -> None:
    """The same device, type and mount point twice (mounted over itself): one series, with the
    first line's options."""
    write_mounts(
        tmp_path,
        "/dev/sdb1 /data xfs ro,relatime 0 0",
        "/dev/sdb1 /data xfs rw,relatime 0 0",
        "/dev/sdc1 /data xfs rw,relatime 0 0",  # another device there is another series
    )
    c = collector(tmp_path)
    assert [(m.device, m.readonly) for m in c.mounts()] == [
        ("/dev/sdb1", True),
        ("/dev/sdc1", False),
    ]
    assert values(c, "node_filesystem_readonly") == {
        ("/dev/sdb1", "xfs", "/data"): 1.0,
        ("/dev/sdc1", "xfs", "/data"): 0.0,
    }


def test_sizes_are_blocks_times_f_bsize_as_node_exporter_1_5_0_gives_them(tmp_path: Path) -> None:
    """node_exporter 1.5.0 (filesystem_linux.go) multiplies statfs(2)'s Blocks, Bfree and Bavail
    by Bsize, not Frsize; glibc's statvfs gives statfs's f_bsize as f_bsize. The fake gives
    f_bsize 4096 and f_frsize 1024, so the other choice is off by four."""
    write_mounts(tmp_path, ROOT, DATA)
    c = collector(tmp_path)
    labels = ("/dev/sda1", "ext4", "/")
    assert values(c, "node_filesystem_size_bytes")[labels] == 100 * 4096
    assert values(c, "node_filesystem_free_bytes")[labels] == 60 * 4096
    assert values(c, "node_filesystem_avail_bytes")[labels] == 50 * 4096
    assert values(c, "node_filesystem_files")[labels] == 1000
    assert values(c, "node_filesystem_files_free")[labels] == 900
    assert values(c, "node_filesystem_size_bytes")[("/dev/sdb1", "xfs", "/data")] == 10 * 4096
