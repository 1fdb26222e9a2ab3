"""Where the exporter reads the host from: node_exporter's --path.* flags."""

from __future__ import annotations

import os
from dataclasses import dataclass

READ_SIZE = 64 * 1024


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
    """A file's text, as UTF-8 without newline translation, bytes that are not UTF-8 kept.

    Such bytes become lone surrogates (``surrogateescape``, as ``os.fsdecode`` does), not U+FFFD:
    a name read here then reaches system calls as the kernel wrote it (statfs on a mount point
    named ``bad\\xffutf``), and two names differing only in such bytes stay two names. A name
    that goes into a label must go through ``valid_utf8``.

    Plain system calls: a text-mode ``open()`` builds three file objects and asks the file's
    size and terminal state first, which for a small /proc file costs more than reading it
    (24 against 14 us for /proc/meminfo); a scrape reads about twenty such files.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, READ_SIZE):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def valid_utf8(name: str) -> str:
    """A name from the host (read_text, os.listdir, os.uname) as a label value: valid UTF-8.

    A valid name is returned as it is. In a name holding bytes that are not UTF-8, each such byte
    becomes the text ``\\xff``, as Python's ``backslashreplace`` writes it, and each backslash
    ``\\\\``, so that two such names never give the same text. Only a valid name that itself
    contains such an escape (an interface literally named ``x\\xff``) can equal one; the
    collectors keeping one series per name report that case.
    """
    if name.isascii():  # O(1) in CPython: a flag of the string
        return name
    try:
        name.encode()
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "surrogateescape")
        return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")
    return name
