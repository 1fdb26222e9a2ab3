"""The exporter's settings: node_exporter's flag names, each with a PERFANALYSIS_EXPORTER_ variable."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from exporter import __version__
from exporter.collectors.catalogue import COLLECTORS
from exporter.collectors.diskstats import DEFAULT_EXCLUDE as DISK_EXCLUDE
from exporter.collectors.filesystem import DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE
from exporter.collectors.statfs import STRAGGLE
from exporter.collectors.vmstat import DEFAULT_FIELDS
from perfanalysis.config import (
    MAX_TIMEOUT_SECONDS,
    Setting,
    Spec,
    listen_address,
    non_negative_int,
    parse,
    positive_int,
    readable_file,
    regex,
    timeout_seconds,
)

ENV_PREFIX = "PERFANALYSIS_EXPORTER_"
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")
VERSION = f"perfanalysis exporter, version {__version__}"

# node_exporter 1.5.0's deprecated names, accepted (with its warning) for the settings they became
DEPRECATED_FLAGS = {
    "collector.filesystem.ignored-mount-points": "collector.filesystem.mount-points-exclude",
    "collector.filesystem.ignored-fs-types": "collector.filesystem.fs-types-exclude",
    "collector.diskstats.ignored-devices": "collector.diskstats.device-exclude",
}
# node_exporter 1.5.0's collectors (prometheus-node-exporter --help); those not in COLLECTORS
# may be turned off (many deployments do, --no-collector.wifi say) but not on
NODE_EXPORTER_COLLECTORS = (
    "arp", "bcache", "bonding", "btrfs", "buddyinfo", "cgroups", "conntrack", "cpu", "cpufreq",
    "diskstats", "dmi", "drbd", "drm", "edac", "entropy", "ethtool", "fibrechannel", "filefd",
    "filesystem", "hwmon", "infiniband", "interrupts", "ipvs", "ksmd", "lnstat", "loadavg",
    "logind", "mdadm", "meminfo", "meminfo_numa", "mountstats", "netclass", "netdev", "netstat",
    "network_route", "nfs", "nfsd", "ntp", "nvme", "os", "perf", "powersupplyclass", "pressure",
    "processes", "qdisc", "rapl", "runit", "schedstat", "selinux", "slabinfo", "sockstat",
    "softnet", "stat", "supervisord", "sysctl", "systemd", "tapestats", "tcpstat", "textfile",
    "thermal_zone", "time", "timex", "udp_queues", "uname", "vmstat", "wifi", "xfs", "zfs",
    "zoneinfo",
)  # fmt: skip

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


def _log_format(text: str) -> str:
    if text not in LOG_FORMATS:
        raise ValueError(f"expected one of {', '.join(LOG_FORMATS)}")
    return text


def _path(text: str) -> str:
    if not text:
        raise ValueError("must not be empty")
    return text


def _telemetry_path(text: str) -> str:
    if not text.startswith("/") or text == "/":
        raise ValueError("must start with / and not be / itself, for example /metrics")
    return text


_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^([0-9]+) *(B|KiB|MiB|GiB|KB|MB|GB)?$")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
               "KB": 10**3, "MB": 10**6, "GB": 10**9}  # fmt: skip
MIN_SPOOL_BYTES = 64 << 10
MIN_PUSH_INTERVAL = 1.0  # seconds (see push_interval)


def duration(text: str) -> float:
    """Seconds from ``10s``, ``500ms``, ``2m``, ``1h`` or a bare number of seconds; above zero."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError("expected a duration such as 10s, 500ms, 2m or 1h")
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not seconds > 0:
        raise ValueError("must be greater than zero")
    return seconds


def push_duration(text: str) -> float:
    """A duration for the push flags: above zero and at most 24h (longer waits overflow timers)."""
    seconds = duration(text)
    if seconds > MAX_TIMEOUT_SECONDS:  # a day: far beyond any sane interval, timeout or backoff
        raise ValueError("must be at most 24h")
    return seconds


def push_interval(text: str) -> float:
    """--push.interval: at least a second. Each sample runs every collector, appends to the
    spool with an fdatasync and makes a write request: below a second that is a busy loop
    filling the spool (0.000001s wrote megabytes a second), almost surely a mistake."""
    seconds = push_duration(text)
    if seconds < MIN_PUSH_INTERVAL:
        raise ValueError("must be at least 1s")
    return seconds


def byte_size(text: str) -> int:
    """Bytes from ``64MiB``, ``500KB``, ``1GiB`` or a bare number of bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError("expected a size such as 64MiB, 512KiB or 1GB")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def _spool_size(text: str) -> int:
    size = byte_size(text)
    if size < MIN_SPOOL_BYTES:
        raise ValueError("must be at least 64KiB")
    return size


def _push_url(text: str) -> str:
    """The ingest base URL; the exporter posts to <url>/api/v2/write."""
    from exporter.push.transport import Endpoint  # only when pushing: keeps /metrics-only light

    Endpoint.parse(text.strip())  # raises ValueError saying what is wrong
    return text.strip().rstrip("/")


def _web_config(text: str) -> Any:
    """Loads and checks the whole file at start-up (imported only when the flag is given)."""
    from exporter.webconfig import WebConfigError, load

    try:
        return load(text)
    except WebConfigError as exc:
        raise ValueError("; ".join(exc.problems)) from None


def _host_tag(text: str) -> str:
    if not text.strip() or any(c in text for c in "\n\r"):
        raise ValueError("must be a non-empty single line")
    from exporter.push.lineproto import escape_tag  # only when the flag is given

    host = text.strip()
    if host.endswith("\\") or not escape_tag(host):
        # line protocol cannot end a tag value with a backslash: it would escape the separator
        raise ValueError("must not end with a backslash (line protocol cannot carry it)")
    return host


def default_spool_dir(environ: Mapping[str, str] | None = None) -> str:
    """systemd's StateDirectory, else /var/lib/perfanalysis/spool as root, else the XDG state dir."""
    env = os.environ if environ is None else environ
    if env.get("STATE_DIRECTORY"):
        return os.path.join(env["STATE_DIRECTORY"].split(":")[0], "spool")
    if os.geteuid() == 0:
        return "/var/lib/perfanalysis/spool"
    state = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "perfanalysis", "spool")


def _key_file_problem(path: str) -> str | None:
    """The key file's content, checked with the settings: empty, binary or two words is a bad
    configuration (exit 2), as for ``loadtest upload --key-file``."""
    from exporter.push.keyfile import KeyFileError, read_key

    try:
        read_key(path)
    except KeyFileError as exc:
        return str(exc)
    return None


def _add_push_settings(spec: Spec) -> None:
    add = spec.add
    add(
        Setting(
            "push.url",
            "Push samples to this ingest base URL (posts to <url>/api/v2/write), as well as serving them. Needs --push.key-file.",
            None,
            _push_url,
            metavar="URL",
        )
    )
    add(
        Setting(
            "push.key-file",
            "File holding the collector key sent to ingest; re-read when ingest refuses the key (401/403), so a rotated key needs no restart.",
            None,
            readable_file,
            metavar="FILE",
            validate=_key_file_problem,
        )
    )
    add(
        Setting(
            "push.interval",
            "How often to sample and push. Each host samples at its own point in the interval, "
            "from a hash of its host tag, so that a fleet started together does not push in "
            "lockstep; the first sample waits for it. At least 1s.",
            "10s",
            push_interval,
            metavar="DURATION",
        )
    )
    add(
        Setting(
            "push.batch-size",
            "Maximum points per write request; halved while ingest refuses requests as too "
            "large (413) or requests time out while sent or awaiting their answer (a link too "
            "slow for them, or a hanging ingest), doubled back after 10 accepted ones.",
            5000,
            positive_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "push.spool-dir",
            "Directory of the on-disk spool for points not yet acknowledged. Default: $STATE_DIRECTORY/spool under systemd, /var/lib/perfanalysis/spool as root, else $XDG_STATE_HOME/perfanalysis/spool.",
            None,
            _path,
            metavar="DIR",
        )
    )
    add(
        Setting(
            "push.spool-max-bytes",
            "Bound on the spool's size on disk; beyond it, or when its filesystem is full, the oldest "
            "points are dropped and counted.",
            "64MiB",
            _spool_size,
            metavar="SIZE",
        )
    )
    add(
        Setting(
            "push.timeout",
            "Longest a write request may take, from looking up ingest's name to the last byte "
            "of its answer. A request never runs into the next sample: it gets at most the time "
            "left until then, so a timeout at or above --push.interval means until the next "
            "sample. One that times out while sent or awaiting its answer is sent again in "
            "halves.",
            "10s",
            push_duration,
            metavar="DURATION",
        )
    )
    add(
        Setting(
            "push.max-backoff",
            "Longest wait between retries (also caps a Retry-After from ingest).",
            "60s",
            push_duration,
            metavar="DURATION",
        )
    )
    add(
        Setting(
            "push.host",
            "Value of the host tag on pushed points. Default: this machine's hostname.",
            None,
            _host_tag,
            metavar="NAME",
        )
    )
    add(
        Setting(
            "push.tls-ca-file",
            "PEM bundle of the CAs to verify an https:// --push.url with, instead of the system's.",
            None,
            readable_file,
            metavar="FILE",
        )
    )
    add(
        Setting(
            "push.tls-cert-file",
            "PEM client certificate (with its chain) to present to ingest, for mutual TLS; with "
            "--push.tls-key-file. Renewed files are used from the next connection on.",
            None,
            readable_file,
            metavar="FILE",
        )
    )
    add(
        Setting(
            "push.tls-key-file",
            "Unencrypted PEM private key of --push.tls-cert-file.",
            None,
            readable_file,
            metavar="FILE",
        )
    )
    spec.checks.append(_push_pair)  # fmt: skip
    spec.checks.append(_push_tls)  # fmt: skip


def _push_pair(values: dict[str, Any]) -> list[str]:
    if bool(values["push_url"]) == bool(values["push_key_file"]):
        return []
    if values["push_url"]:
        return ["flag --push.url needs --push.key-file: ingest accepts only keyed writes"]
    return ["flag --push.key-file is given without --push.url: where should the exporter push?"]


def _push_tls(values: dict[str, Any]) -> list[str]:
    cert, key = values["push_tls_cert_file"], values["push_tls_key_file"]
    if cert and not key:
        return ["flag --push.tls-cert-file needs --push.tls-key-file"]
    if key and not cert:
        return ["flag --push.tls-key-file is given without --push.tls-cert-file"]
    given = [
        f"--push.tls-{name}-file"
        for name in ("ca", "cert", "key")
        if values[f"push_tls_{name}_file"]
    ]
    url = values["push_url"] or ""
    if given and not url.startswith("https://"):
        return [f"flag {given[0]} needs an https:// --push.url"]
    return []


def build_spec() -> Spec:
    spec = Spec(
        program="perfanalysis exporter",
        env_prefix=ENV_PREFIX,
        description="Serve node_exporter-compatible metrics read from /proc and /sys.",
        aliases=dict(DEPRECATED_FLAGS),
        absent={
            f"collector.{name}": f"node_exporter's {name} collector is not implemented here"
            for name in NODE_EXPORTER_COLLECTORS
            if name not in COLLECTORS
        },
        version=VERSION,
    )
    add = spec.add
    add(
        Setting(
            "web.listen-address",
            "Address on which to expose metrics; repeat the flag to listen on several (the "
            "variable holds one). Without a host (:9100), every IPv4 and IPv6 address, as "
            "node_exporter listens.",
            ":9100",
            listen_address,
            metavar="HOST:PORT",
            repeatable=True,
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
            "Maximum number of parallel scrape requests; beyond it the answer is 503. 0: no limit.",
            40,
            non_negative_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "web.max-connections",
            "Maximum number of open connections, one thread each. When all are open, a new "
            "one closes the connection idle longest (waiting for a request), or, if every one "
            "is busy answering, waits in the listen backlog until one is done.",
            64,
            positive_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "web.disable-exporter-metrics",
            "Exclude the exporter's own process_* and build metrics (the push path's "
            "perfanalysis_exporter_push_* metrics stay: alerts and dashboards use them).",
            False,
            boolean=True,
        )
    )
    add(
        Setting(
            "web.config.file",
            "Path to a web configuration file (node_exporter's format) that turns on TLS and/or "
            "basic authentication; see docs/configuration.md. Checked at start-up.",
            None,
            _web_config,
            metavar="FILE",
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
            "collector.cpu.info",
            "Export node_cpu_info from /proc/cpuinfo (on when a flags or bugs filter is given).",
            False,
            boolean=True,
        )
    )
    for listed in ("flags", "bugs"):
        add(
            Setting(
                f"collector.cpu.info.{listed}-include",
                f"Regexp of the first CPU's /proc/cpuinfo {listed} to export as "
                f"node_cpu_{listed[:-1]}_info. Default: none.",
                None,
                regex,
                metavar="REGEX",
            )
        )
    add(
        Setting(
            "collector.netdev.netlink",
            "Read interface statistics over netlink, as node_exporter does by default: not "
            "implemented; this exporter reads /proc/net/dev, as node_exporter with "
            "--no-collector.netdev.netlink (it lacks node_network_receive_nohandler_total).",
            False,
            boolean=True,
        )
    )
    add(
        Setting(
            "collector.stat.softirq", "Export node_softirqs_total by vector.", False, boolean=True
        )
    )
    add(
        Setting(
            "collector.netclass.ignored-devices",
            "Regexp of net devices to ignore for netclass collector.",
            "^$",
            regex,
            metavar="REGEX",
        )
    )
    add(
        Setting(
            "collector.netclass.ignore-invalid-speed",
            "Ignore devices where the speed is invalid (-1, unknown): no node_network_speed_bytes "
            "for them.",
            False,
            boolean=True,
        )
    )
    add(
        Setting(
            "collector.netclass.netlink",
            "Read interface properties over netlink, as node_exporter can: not implemented; this "
            "exporter reads /sys/class/net, as node_exporter does by default.",
            False,
            boolean=True,
        )
    )
    add(
        Setting(
            "collector.textfile.directory",
            "Directory (or glob of directories) to read text files with metrics from: every "
            "*.prom file in it. Default: none (Debian's node_exporter package passes "
            "/var/lib/prometheus/node-exporter).",
            None,
            _path,
            metavar="DIR",
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
            timeout_seconds,
            metavar="SECONDS",
        )
    )
    add(
        Setting(
            "collector.filesystem.stat-workers",
            "Threads for statfs calls: a scrape's run on one, and those queued behind a call "
            f"slower than {STRAGGLE * 1e3:g} ms move to another.",
            4,
            positive_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "collector.vmstat.fields",
            "Regexp of /proc/vmstat fields to export.",
            DEFAULT_FIELDS,
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
    add(
        Setting(
            "log.format",
            "Output format of log messages: logfmt or json (one object a line), as "
            "node_exporter's.",
            "logfmt",
            _log_format,
            metavar="FORMAT",
        )
    )
    _add_push_settings(spec)
    spec.checks.append(_exclusive_pairs)
    spec.checks.append(_no_netlink)
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


def _no_netlink(values: dict[str, Any]) -> list[str]:
    problems = []
    if values["collector_netdev_netlink"]:
        problems.append(
            "flag --collector.netdev.netlink: netlink statistics are not implemented; this "
            "exporter reads /proc/net/dev, as node_exporter with --no-collector.netdev.netlink does"
        )
    if values["collector_netclass_netlink"]:
        problems.append(
            "flag --collector.netclass.netlink: netlink is not implemented; this exporter reads "
            "/sys/class/net, as node_exporter does without the flag"
        )
    return problems


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


def load(
    argv: Sequence[str],
    environ: Mapping[str, str] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Parse the exporter's configuration; raises ConfigError listing every problem, and adds
    warnings to log (deprecated flags, collectors turned off that do not exist here) to notes."""
    values = parse(build_spec(), argv, os.environ if environ is None else environ, notes)
    _cpu_info_from_filters(values, notes)
    return values


def _cpu_info_from_filters(values: dict[str, Any], notes: list[str] | None) -> None:
    """A flags or bugs filter turns node_cpu_info on, with node_exporter's notice."""
    filtered = (
        values["collector_cpu_info_flags_include"] or values["collector_cpu_info_bugs_include"]
    )
    if filtered and not values["collector_cpu_info"]:
        values["collector_cpu_info"] = True
        if notes is not None:
            notes.append(
                "--collector.cpu.info has been set to `true` because you set "
                "--collector.cpu.info.flags-include or --collector.cpu.info.bugs-include"
            )
