"""Where the exporter reads the host from: node_exporter's --path.* flags."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Paths:
    procfs: str = "/proc"
    sysfs: str = "/sys"
    rootfs: str = "/"
    udev_data: str = "/run/udev/data"

    def proc(self, *parts: str) -> str:
        return os.path.join(self.procfs, *parts)

    def sys(self, *parts: str) -> str:
        return os.path.join(self.sysfs, *parts)

    def under_rootfs(self, mountpoint: str) -> str:
        return os.path.join(self.rootfs, mountpoint.lstrip("/"))

    def strip_rootfs(self, mountpoint: str) -> str:
        """A mount point as the monitored host sees it.

        The --path.rootfs prefix is removed when present (a container's own mount table); a host
        table read through --pid=host has none and is kept as it is, as node_exporter does.
        """
        root = self.rootfs.rstrip("/")
        if root and mountpoint == root:
            return "/"
        if root and mountpoint.startswith(root + "/"):
            return mountpoint[len(root) :]
        return mountpoint


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()
