"""The exporter's settings: node_exporter's flag names, each with a PERFANALYSIS_EXPORTER_ variable."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from exporter.collectors.catalogue import COLLECTORS
from exporter.collectors.diskstats import DEFAULT_EXCLUDE as DISK_EXCLUDE
from exporter.collectors.filesystem import DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE
from exporter.collectors.vmstat import DEFAULT_FIELDS
from perfanalysis.config import (
    Setting,
    Spec,
    listen_address,
    parse,
    positive_float,
    positive_int,
    regex,
)

ENV_PREFIX = "PERFANALYSIS_EXPORTER_"
LOG_LEVELS = ("debug", "info", "warn", "error")

# include/exclude pairs that node_exporter refuses together
EXCLUSIVE_PAIRS = (
    ("collector.netdev.device-include", "collector.netdev.device-exclude"),
    ("collector.diskstats.device-include", "collector.diskstats.device-exclude"),
    ("collector.filesystem.mount-points-include", "collector.filesystem.mount-points-exclude"),
    ("collector.filesystem.fs-types-include", "collector.filesystem.fs-types-exclude"),
)


def _log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return text.lower()


def _path(text: str) -> str:
    if not text:
        raise ValueError("must not be empty")
    return text


def _telemetry_path(text: str) -> str:
    if not text.startswith("/") or text == "/":
        raise ValueError("must start with / and not be / itself, for example /metrics")
    return text


def build_spec() -> Spec:
    spec = Spec(
        program="perfanalysis exporter",
        env_prefix=ENV_PREFIX,
        description="Serve node_exporter-compatible metrics read from /proc and /sys.",
    )
    add = spec.add
    add(
        Setting(
            "web.listen-address",
            "Address on which to expose metrics.",
            ":9100",
            listen_address,
            metavar="HOST:PORT",
        )
    )
    add(
        Setting(
            "web.telemetry-path",
            "Path under which to expose metrics.",
            "/metrics",
            _telemetry_path,
            metavar="PATH",
        )
    )
    add(
        Setting(
            "web.max-requests",
            "Maximum number of parallel scrape requests; beyond it the answer is 503.",
            40,
            positive_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "web.disable-exporter-metrics",
            "Exclude the exporter's own process_* and build metrics.",
            False,
            boolean=True,
        )
    )
    add(Setting("path.procfs", "procfs mountpoint.", "/proc", _path, metavar="DIR"))
    add(Setting("path.sysfs", "sysfs mountpoint.", "/sys", _path, metavar="DIR"))
    add(
        Setting(
            "path.rootfs",
            "rootfs mountpoint (the host's / when running in a container).",
            "/",
            _path,
            metavar="DIR",
        )
    )
    add(Setting("path.udev.data", "udev data path.", "/run/udev/data", _path, metavar="DIR"))
    add(
        Setting(
            "collector.disable-defaults",
            "Disable every collector not enabled explicitly.",
            False,
            boolean=True,
        )
    )
    for name, entry in COLLECTORS.items():
        add(
            Setting(
                f"collector.{name}",
                f"Enable the {name} collector: {entry.help} (default: enabled)",
                None,
                boolean=True,
            )
        )
    add(Setting("collector.cpu.guest", "Export node_cpu_guest_seconds_total.", True, boolean=True))
    add(
        Setting(
            "collector.stat.softirq", "Export node_softirqs_total by vector.", False, boolean=True
        )
    )
    add(
        Setting(
            "collector.netdev.device-include",
            "Regexp of net devices to include (mutually exclusive with device-exclude).",
            None,
            regex,
            metavar="REGEX",
        )
    )
    add(
        Setting(
            "collector.netdev.device-exclude",
            "Regexp of net devices to exclude (mutually exclusive with device-include). Default: none.",
            None,
            regex,
            metavar="REGEX",
        )
    )
    add(
        Setting(
            "collector.diskstats.device-include",
            "Regexp of diskstats devices to include (mutually exclusive with device-exclude).",
            None,
            regex,
            metavar="REGEX",
        )
    )
    add(
        Setting(
            "collector.diskstats.device-exclude",
            f"Regexp of diskstats devices to exclude (mutually exclusive with device-include). Default: {DISK_EXCLUDE}",
            None,
            regex,
            metavar="REGEX",
        )
    )
    add(
        Setting(
            "collector.filesystem.mount-points-include",
            "Regexp of mount points to include (mutually exclusive with mount-points-exclude).",
            None,
            regex,
            metavar="REGEX",
        )
    )
    add(
        Setting(
            "collector.filesystem.mount-points-exclude",
            f"Regexp of mount points to exclude. Default: {DEFAULT_MOUNT_POINTS_EXCLUDE}",
            None,
            regex,
            metavar="REGEX",
        )
    )
    add(
        Setting(
            "collector.filesystem.fs-types-include",
            "Regexp of filesystem types to include (mutually exclusive with fs-types-exclude).",
            None,
            regex,
            metavar="REGEX",
        )
    )
    add(
        Setting(
            "collector.filesystem.fs-types-exclude",
            f"Regexp of filesystem types to exclude. Default: {DEFAULT_FS_TYPES_EXCLUDE}",
            None,
            regex,
            metavar="REGEX",
        )
    )
    add(
        Setting(
            "collector.filesystem.mount-timeout",
            "Seconds a statfs may take before its mount is reported stuck (device_error 1) and skipped until it returns.",
            5.0,
            positive_float,
            metavar="SECONDS",
        )
    )
    add(
        Setting(
            "collector.filesystem.stat-workers",
            "Threads that run statfs calls concurrently.",
            4,
            positive_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "collector.vmstat.fields",
            "Regexp of /proc/vmstat fields to export.",
            regex(DEFAULT_FIELDS),
            regex,
            metavar="REGEX",
        )
    )
    add(
        Setting(
            "log.level",
            "Only log messages with the given severity or above: debug, info, warn, error.",
            "info",
            _log_level,
            metavar="LEVEL",
        )
    )
    spec.checks.append(_exclusive_pairs)
    spec.checks.append(_some_collector)
    return spec  # fmt: skip


def _dest(flag: str) -> str:
    return Setting(flag, "").dest


def _exclusive_pairs(values: dict[str, Any]) -> list[str]:
    return [
        f"flags --{a} and --{b}: are mutually exclusive, give one"
        for a, b in EXCLUSIVE_PAIRS
        if values[_dest(a)] is not None and values[_dest(b)] is not None
    ]


def enabled_collectors(values: Mapping[str, Any]) -> list[str]:
    default = not values["collector_disable_defaults"]
    enabled = []
    for name in COLLECTORS:
        explicit = values[_dest(f"collector.{name}")]
        if explicit if explicit is not None else default:
            enabled.append(name)
    return enabled


def _some_collector(values: dict[str, Any]) -> list[str]:
    if enabled_collectors(values):
        return []
    return ["no collector is enabled: enable one with --collector.NAME"]


def load(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse the exporter's configuration; raises ConfigError listing every problem."""
    return parse(build_spec(), argv, os.environ if environ is None else environ)
