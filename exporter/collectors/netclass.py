"""netclass: node_network_* properties of each interface in /sys/class/net, as node_exporter 1.5.0.

For every entry of /sys/class/net that is not a regular file (``bonding_masters`` is one) and
that ``--collector.netclass.ignored-devices`` (default ``^$``) does not match: ``node_network_up``
(operstate ``up``) and ``node_network_info`` always, and one gauge or counter per numeric
attribute the directory holds. As 1.5.0's procfs (0.8): every regular file of the directory is
read (at most 128 bytes, trimmed); one missing, not permitted, or refused with EOPNOTSUPP or
EINVAL (``speed`` of an interface that is down, ``carrier`` of one not up) is skipped, any other
read error fails the collector; numbers are read as Go's ParseInt with base 0 (``flags`` is
``0x1003``), a value that does not parse as 0 (1.5.0 ignores the error). ``speed`` is Mbit/s: exported in bytes
per second, -1 (unknown) included unless ``--collector.netclass.ignore-invalid-speed``.
"""

from __future__ import annotations

import errno
import os
import re

from exporter.collectors.names import LabelClashes
from exporter.model import COUNTER, GAUGE, MetricFamily, NoDataError, family
from exporter.paths import Paths, valid_utf8

SYS_READ_SIZE = 128  # procfs' util.SysReadFile buffer
SKIPPED_ERRORS = frozenset(
    {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EOPNOTSUPP, errno.EINVAL}
)
STRINGS = ("address", "broadcast", "duplex", "ifalias", "operstate")
# (sysfs attribute, metric suffix, kind), in the order 1.5.0 sends them
NUMBERS = (
    ("addr_assign_type", "address_assign_type", GAUGE),
    ("carrier", "carrier", GAUGE),
    ("carrier_changes", "carrier_changes_total", COUNTER),
    ("carrier_up_count", "carrier_up_changes_total", COUNTER),
    ("carrier_down_count", "carrier_down_changes_total", COUNTER),
    ("dev_id", "device_id", GAUGE),
    ("dormant", "dormant", GAUGE),
    ("flags", "flags", GAUGE),
    ("ifindex", "iface_id", GAUGE),
    ("iflink", "iface_link", GAUGE),
    ("link_mode", "iface_link_mode", GAUGE),
    ("mtu", "mtu_bytes", GAUGE),
    ("name_assign_type", "name_assign_type", GAUGE),
    ("netdev_group", "net_dev_group", GAUGE),
    ("speed", "speed_bytes", GAUGE),
    ("tx_queue_len", "transmit_queue_length", GAUGE),
    ("type", "protocol_type", GAUGE),
)
WANTED = frozenset(STRINGS) | {attr for attr, _, _ in NUMBERS}
# Go's strconv.ParseInt(s, 0, 64): sign, then 0x/0o/0b prefixes, a leading 0 for octal, and
# underscores only between digits after a prefix
_GO_INT = re.compile(
    r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|0(?:_?[0-7])*|[1-9][0-9]*)"
)
INT64 = 1 << 63


class NetclassCollector:
    name = "netclass"

    def __init__(
        self,
        paths: Paths,
        ignored: re.Pattern[str] | None = None,
        ignore_invalid_speed: bool = False,
    ) -> None:
        self.paths = paths
        self.ignored = ignored or re.compile("^$")
        self.ignore_invalid_speed = ignore_invalid_speed
        self.clashes = LabelClashes("/sys/class/net")

    def collect(self) -> list[MetricFamily]:
        root = self.paths.sys("class", "net")
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except (FileNotFoundError, PermissionError) as exc:
            raise NoDataError(f"Could not read netclass file: {exc}") from None
        up = family(
            "node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", GAUGE, "device"
        )
        info = family(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            GAUGE,
            "device", *STRINGS,
        )  # fmt: skip
        numbers = {
            attr: family(f"node_network_{suffix}", f"Network device property: {suffix}", kind, "device")
            for attr, suffix, kind in NUMBERS
        }  # fmt: skip
        seen: dict[str, str] = {}
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                continue
            if self.ignored.search(entry.name):
                continue
            attrs = _read_attributes(os.path.join(root, entry.name))
            device = valid_utf8(entry.name)
            if self.clashes.seen_before(seen, entry.name, device):
                continue
            seen[device] = entry.name
            operstate = attrs.get("operstate", "")
            up.add(1.0 if operstate == "up" else 0.0, device)
            info.add(1.0, device, *(valid_utf8(attrs.get(key, "")) for key in STRINGS))
            for attr, _, _ in NUMBERS:
                value = _go_int(attrs.get(attr))
                if value is None:
                    continue
                if attr == "speed":
                    if value < 0 and self.ignore_invalid_speed:
                        continue
                    # Go's int64 arithmetic: speed * 1000 * 1000 / 8, truncated toward zero
                    value = -(-value * 1_000_000 // 8) if value < 0 else value * 1_000_000 // 8
                numbers[attr].add(float(value), device)
        return [up, info, *numbers.values()]


def _read_attributes(directory: str) -> dict[str, str]:
    """The attributes 1.5.0's procfs reads from one interface's directory."""
    out: dict[str, str] = {}
    with os.scandir(directory) as it:
        names = [e.name for e in it if e.name in WANTED and e.is_file(follow_symlinks=False)]
    for name in names:
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                raw = os.read(fd, SYS_READ_SIZE)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno in SKIPPED_ERRORS:
                continue
            raise OSError(exc.errno, f"failed to read file {path!r}: {exc.strerror}") from None
        out[name] = raw.decode("utf-8", "surrogateescape").strip()
    return out


def _go_int(text: str | None) -> int | None:
    """procfs' ValueParser.PInt64 as 1.5.0 uses it: Go's ParseInt(text, 0, 64), its error
    ignored, so text that is no number reads 0 and one out of range the nearest int64."""
    if text is None:
        return None
    if not _GO_INT.fullmatch(text):
        return 0
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-").replace("_", "")
    if len(body) > 1 and body[0] == "0" and body[1] not in "xXoObB":
        value = int(body, 8)
    else:
        value = int(body, 0)
    return max(-INT64, min(INT64 - 1, value * sign))
