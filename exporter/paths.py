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

    def strip_rootfs(self, mountpoint: str) -> str | None:
        """A host mount point as seen from the monitored host, or None when outside rootfs."""
        root = self.rootfs.rstrip("/")
        if not root:
            return mountpoint
        if mountpoint == root:
            return "/"
        if mountpoint.startswith(root + "/"):
            return mountpoint[len(root) :]
        return None


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()
