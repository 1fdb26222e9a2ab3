"""filesystem: node_filesystem_* from the mount table and statfs(2), as node_exporter 1.5.0.

The mount table is ``<procfs>/1/mounts`` (the host's namespace when --path.procfs points at a host
/proc), falling back to ``<procfs>/mounts``. The labels are node_exporter 1.5.0's: ``device`` exactly
as in the table, ``mountpoint`` with only ``\\040`` (space) and ``\\011`` (tab) decoded and the
--path.rootfs prefix stripped; the filters see that label. statfs runs on the fully decoded path (the
directory's real name, bytes that are not UTF-8 included) under --path.rootfs with a deadline (see
statfs.py); 1.5.0 gives statfs the label's text, so there a mount point holding ``\\134`` or
``\\012`` only gets device_error 1. A mount that errs or hangs is reported only through
``node_filesystem_device_error`` 1, and its reason is kept for /health.

Labels go through ``valid_utf8``: a byte that is not UTF-8 is written ``\\xff`` (1.5.0 panics on
such a mount). That never equals another mount's label, since the table spells every real backslash
``\\134``.
"""

from __future__ import annotations

import logging
import re
from typing import NamedTuple

from exporter.collectors.filters import NameFilter
from exporter.collectors.statfs import StatfsRunner
from exporter.model import GAUGE, MetricFamily, family
from exporter.paths import Paths, read_text, valid_utf8

log = logging.getLogger(__name__)

DEFAULT_MOUNT_POINTS_EXCLUDE = (
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
DEFAULT_FS_TYPES_EXCLUDE = (
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660"
    r"|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs"
    r"|tracefs)$"
)
LABELS = ("device", "fstype", "mountpoint")
OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    """Undo the kernel's octal escapes in /proc/mounts (\\040 space, \\011 tab, \\134 backslash)."""
    if "\\" not in field:
        return field
    return OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def label_mountpoint(field: str) -> str:
    """A mount point as node_exporter 1.5.0 labels it: only \\040 and \\011 decoded (fstab(5))."""
    if "\\" not in field:
        return field
    return field.replace("\\040", " ").replace("\\011", "\t")


class Mount(NamedTuple):
    device: str  # the label: as in the mount table, escapes kept
    fstype: str
    mountpoint: str  # the label: see label_mountpoint, --path.rootfs stripped
    path: str  # the real name (fully decoded, raw bytes kept), --path.rootfs stripped: for statfs
    readonly: bool


class FilesystemCollector:
    name = "filesystem"

    def __init__(
        self,
        paths: Paths,
        mount_points: NameFilter | None = None,
        fs_types: NameFilter | None = None,
        runner: StatfsRunner | None = None,
    ) -> None:
        self.paths = paths
        self.mount_points = mount_points or NameFilter.build(
            None, None, DEFAULT_MOUNT_POINTS_EXCLUDE
        )
        self.fs_types = fs_types or NameFilter.build(None, None, DEFAULT_FS_TYPES_EXCLUDE)
        self.runner = runner or StatfsRunner()
        self.device_errors: dict[str, str] = {}
        self._mount_table: tuple[str, list[Mount]] = ("", [])

    def mounts(self) -> list[Mount]:
        """Each wanted mount, the first occurrence of its labels kept."""
        try:
            text = read_text(self.paths.proc("1", "mounts"))
        except OSError:
            text = read_text(self.paths.proc("mounts"))
        if text != self._mount_table[0]:  # the table seldom changes: parse it only when it has
            self._mount_table = (text, self._parse_mounts(text))
        return list(self._mount_table[1])

    def _parse_mounts(self, text: str) -> list[Mount]:
        found: dict[tuple[str, str, str], Mount] = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 4:
                log.debug("skipping malformed mounts line %r", line)
                continue
            device, fstype = valid_utf8(parts[0]), valid_utf8(parts[2])
            mountpoint = valid_utf8(self.paths.strip_rootfs(label_mountpoint(parts[1])))
            if not (self.mount_points(mountpoint) and self.fs_types(fstype)):
                continue
            path = self.paths.strip_rootfs(unescape(parts[1]))
            readonly = "ro" in parts[3].split(",")
            found.setdefault(
                (device, fstype, mountpoint), Mount(device, fstype, mountpoint, path, readonly)
            )
        return list(found.values())

    def collect(self) -> list[MetricFamily]:
        mounts = self.mounts()
        stats = self.runner.stat_many(self.paths.under_rootfs(m.path) for m in mounts)
        size, free, avail, files, files_free, readonly, error = (
            family(name, help_text, GAUGE, *LABELS)
            for name, help_text in (
                ("node_filesystem_size_bytes", "Filesystem size in bytes."),
                ("node_filesystem_free_bytes", "Filesystem free space in bytes."),
                ("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes."),
                ("node_filesystem_files", "Filesystem total file nodes."),
                ("node_filesystem_files_free", "Filesystem total free file nodes."),
                ("node_filesystem_readonly", "Filesystem read-only status."),
                ("node_filesystem_device_error", "Whether an error occurred while getting statistics for the given device."),
            )
        )  # fmt: skip
        errors: dict[str, str] = {}
        for device, fstype, mountpoint, path, ro in mounts:
            labels = (device, fstype, mountpoint)
            st = stats[self.paths.under_rootfs(path)]
            if isinstance(st, BaseException):
                errors[mountpoint] = str(st) or type(st).__name__
                error.add(1.0, *labels)
                continue
            size.add(float(st.f_blocks * st.f_bsize), *labels)
            free.add(float(st.f_bfree * st.f_bsize), *labels)
            avail.add(float(st.f_bavail * st.f_bsize), *labels)
            files.add(float(st.f_files), *labels)
            files_free.add(float(st.f_ffree), *labels)
            readonly.add(1.0 if ro else 0.0, *labels)
            error.add(0.0, *labels)
        for mountpoint, reason in errors.items():
            if self.device_errors.get(mountpoint) != reason:
                log.warning("filesystem %s: %s", mountpoint, reason)
        self.device_errors = errors
        return [size, free, avail, files, files_free, readonly, error]
