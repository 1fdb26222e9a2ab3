"""The Host dashboard's panels, once in InfluxQL (pushed samples) and once in PromQL (scrapes).

Both flavours share every panel's title, description, unit and layout; only the queries differ.
Ratios (CPU busy, memory used, disk latency, filesystem fill) are server-side math over two hidden
InfluxQL targets, one per measurement or per mode selection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from perfanalysis.grafana import definitions
from perfanalysis.grafana import influxql as iq
from perfanalysis.grafana.panels import Override, Spec, named, negative_y
from perfanalysis.grafana.targets import InfluxQL, Target, math, promql

SEL = 'job=~"$job", instance=~"$instance"'
DEV = f'{SEL}, device=~"$device"'
NIC = f'{SEL}, device=~"$interface"'
DEVICE = '"device" =~ /^$device$/'
INTERFACE = '"device" =~ /^$interface$/'
FILESYSTEM = definitions.FILESYSTEMS
FS = f"{SEL}, {definitions.PROM_FILESYSTEMS}"
ROOT = "\"mountpoint\" = '/'"

Targets = Callable[[], list[Target]]


@dataclass(frozen=True)
class HostPanel:
    spec: Spec
    influx: Targets
    prom: Targets


def _q(ref: str, query: str, alias: str) -> Target:
    return InfluxQL(ref, query).alias(alias)


def _in(ref: str, query: str) -> Target:
    return InfluxQL(ref, query).hidden()


def _p(ref: str, expr: str, legend: str) -> Target:
    return promql(ref, expr, legend)


def _rate(metric: str, selector: str = SEL) -> str:
    return f"rate({metric}{{{selector}}}[$__rate_interval])"


def _dashed(suffix: str) -> Override:
    return Override(
        "regexp", f".* {suffix}$", {"custom.lineStyle": {"fill": "dash", "dash": [10, 10]}}
    )


def _labelled(*refs_and_names: tuple[str, str]) -> list[Override]:
    return [named(ref, name) for ref, name in refs_and_names]


def _stat(title: str, description: str, unit: str, **extra: object) -> Spec:
    return Spec(title, description, unit, "stat", width=6, height=4, decimals=1, **extra)  # type: ignore[arg-type]


_NON_IDLE_RATE = _rate("node_cpu_seconds_total", 'mode!="idle", ' + SEL)
_IDLE_CPUS = f'count by (instance) (node_cpu_seconds_total{{mode="idle", {SEL}}})'

OVERVIEW = [
    HostPanel(
        _stat(
            "CPU busy",
            "Share of CPU time neither idle nor iowait, averaged over all CPUs, as the CPU busy "
            "alert rules count it: a CPU waiting for a disk is idle (see iowait under CPU time "
            "by mode).",
            "percent",
            min=0,
            max=100,
            overrides=_labelled(("C", "${__field.labels.host}")),
        ),
        definitions.cpu_busy_targets,
        lambda: [_p("A", definitions.prom_cpu_busy(SEL), "{{instance}}")],
    ),
    HostPanel(
        _stat(
            "Memory used",
            "Memory in use: 1 - MemAvailable / MemTotal.",
            "percent",
            min=0,
            max=100,
            overrides=_labelled(("C", "${__field.labels.host}")),
        ),
        lambda: [
            _in("A", iq.gauge("node_memory_MemAvailable_bytes")),
            _in("B", iq.gauge("node_memory_MemTotal_bytes")),
            math("C", "100 - 100 * $A / $B"),
        ],
        lambda: [
            _p(
                "A",
                f"100 * (1 - node_memory_MemAvailable_bytes{{{SEL}}} / node_memory_MemTotal_bytes{{{SEL}}})",
                "{{instance}}",
            )
        ],
    ),
    HostPanel(
        _stat(
            "Root filesystem used",
            "Space used on / (size - available, as unprivileged users see it).",
            "percent",
            min=0,
            max=100,
            overrides=_labelled(("C", "${__field.labels.host}")),
        ),
        lambda: [
            _in("A", iq.gauge("node_filesystem_avail_bytes", ROOT)),
            _in("B", iq.gauge("node_filesystem_size_bytes", ROOT)),
            math("C", "100 - 100 * $A / $B"),
        ],
        lambda: [
            _p(
                "A",
                f'100 * (1 - node_filesystem_avail_bytes{{{SEL}, mountpoint="/"}} / node_filesystem_size_bytes{{{SEL}, mountpoint="/"}})',
                "{{instance}}",
            )
        ],
    ),
    HostPanel(
        _stat("CPU cores", "Online logical CPUs (one idle-time series each).", "short"),
        lambda: [_q("A", iq.cores(), "$tag_host")],
        lambda: [_p("A", _IDLE_CPUS, "{{instance}}")],
    ),
]

_PSI = [("A", "cpu_waiting"), ("B", "memory_waiting"), ("C", "memory_stalled"),
        ("D", "io_waiting"), ("E", "io_stalled")]  # fmt: skip

CPU = [
    HostPanel(
        Spec(
            "CPU time by mode",
            "Seconds per second spent in each mode but idle, averaged over CPUs. iowait is "
            "drawn but is not busy time: CPU busy is the stack without it.",
            "percentunit",
            stacked=True,
            min=0,
        ),
        lambda: [
            _q(
                "A",
                iq.rate_over(
                    "node_cpu_seconds_total",
                    "\"mode\" != 'idle'",
                    per=("host", "cpu", "mode"),
                    by=("host", "mode"),
                ),
                "$tag_host $tag_mode",
            )
        ],
        lambda: [_p("A", f"avg by (instance, mode) ({_NON_IDLE_RATE})", "{{instance}} {{mode}}")],
    ),
    HostPanel(
        Spec(
            "Load against cores",
            "1, 5 and 15 minute load averages with the number of CPUs "
            "(dashed): load above the core count means runnable tasks wait.",
            "short",
            min=0,
            overrides=[_dashed("cores")],
        ),
        lambda: [
            _q("A", iq.gauge("node_load1"), "$tag_host load1"),
            _q("B", iq.gauge("node_load5"), "$tag_host load5"),
            _q("C", iq.gauge("node_load15"), "$tag_host load15"),
            _q("D", iq.cores(), "$tag_host cores"),
        ],
        lambda: [
            _p("A", f"node_load1{{{SEL}}}", "{{instance}} load1"),
            _p("B", f"node_load5{{{SEL}}}", "{{instance}} load5"),
            _p("C", f"node_load15{{{SEL}}}", "{{instance}} load15"),
            _p("D", _IDLE_CPUS, "{{instance}} cores"),
        ],
    ),
    HostPanel(
        Spec(
            "Pressure stall",
            "PSI: share of wall time in which some tasks waited for CPU, memory "
            "or IO (waiting), or all non-idle tasks were stalled (stalled).",
            "percentunit",
            min=0,
        ),
        lambda: [
            _q(ref, iq.rate(f"node_pressure_{name}_seconds_total"), f"$tag_host {name}")
            for ref, name in _PSI
        ],
        lambda: [
            _p(ref, _rate(f"node_pressure_{name}_seconds_total"), f"{{{{instance}}}} {name}")
            for ref, name in _PSI
        ],
    ),
]

_MEM = ["MemTotal", "MemAvailable", "MemFree", "Cached", "Buffers"]

MEMORY = [
    HostPanel(
        Spec(
            "Memory",
            "Total, used (total - available), available, cached, buffers and free memory.",
            "bytes",
            width=12,
            min=0,
            overrides=_labelled(("U", "${__field.labels.host} used")),
        ),
        lambda: [
            *[
                _q(chr(65 + i), iq.gauge(f"node_memory_{m}_bytes"), f"$tag_host {m}")
                for i, m in enumerate(_MEM)
            ],
            math("U", "$A - $B"),
        ],
        lambda: [
            *[
                _p(chr(65 + i), f"node_memory_{m}_bytes{{{SEL}}}", f"{{{{instance}}}} {m}")
                for i, m in enumerate(_MEM)
            ],
            _p(
                "U",
                f"node_memory_MemTotal_bytes{{{SEL}}} - node_memory_MemAvailable_bytes{{{SEL}}}",
                "{{instance}} used",
            ),
        ],
    ),
    HostPanel(
        Spec(
            "Memory and swap used",
            "Share of memory in use (1 - available / total) and of swap "
            "in use (1 - free / total); swap is empty when the host has none.",
            "percent",
            width=12,
            min=0,
            max=100,
            overrides=_labelled(
                ("M", "${__field.labels.host} memory"), ("S", "${__field.labels.host} swap")
            ),
        ),
        lambda: [
            _in("A", iq.gauge("node_memory_MemAvailable_bytes")),
            _in("B", iq.gauge("node_memory_MemTotal_bytes")),
            _in("C", iq.gauge("node_memory_SwapFree_bytes")),
            _in("D", iq.gauge("node_memory_SwapTotal_bytes")),
            math("M", "100 - 100 * $A / $B"),
            math("S", "100 - 100 * $C / $D"),
        ],
        lambda: [
            _p(
                "M",
                f"100 * (1 - node_memory_MemAvailable_bytes{{{SEL}}} / node_memory_MemTotal_bytes{{{SEL}}})",
                "{{instance}} memory",
            ),
            _p(
                "S",
                f"100 * (1 - node_memory_SwapFree_bytes{{{SEL}}} / (node_memory_SwapTotal_bytes{{{SEL}}} > 0))",
                "{{instance}} swap",
            ),
        ],
    ),
]


def _pair(
    title: str,
    description: str,
    unit: str,
    families: list[tuple[str, str]],
    filt: str,
    prom_sel: str,
    scale: str = "",
    prom_scale: str = "",
    below: str = "",
    width: int = 8,
) -> HostPanel:
    def influx() -> list[Target]:
        return [
            _q(
                chr(65 + i),
                iq.rate(f, filt, by=("host", "device"), scale=scale),
                f"$tag_host $tag_device {n}",
            )
            for i, (f, n) in enumerate(families)
        ]

    def prom() -> list[Target]:
        return [
            _p(
                chr(65 + i),
                f"{_rate(f, prom_sel)}{prom_scale}",
                f"{{{{instance}}}} {{{{device}}}} {n}",
            )
            for i, (f, n) in enumerate(families)
        ]

    overrides = [negative_y(f".* ({below})$")] if below else []
    return HostPanel(Spec(title, description, unit, width=width, overrides=overrides), influx, prom)


NETWORK = [
    _pair(
        "Network traffic",
        "Bits per second received and transmitted (below the axis) per interface.",
        "bps",
        [("node_network_receive_bytes_total", "rx"), ("node_network_transmit_bytes_total", "tx")],
        INTERFACE,
        NIC,
        " * 8",
        " * 8",
        below="tx",
    ),
    _pair(
        "Network packets",
        "Packets per second received and transmitted (below the axis).",
        "pps",
        [
            ("node_network_receive_packets_total", "rx"),
            ("node_network_transmit_packets_total", "tx"),
        ],
        INTERFACE,
        NIC,
        below="tx",
    ),
    _pair(
        "Network errors and drops",
        "Receive and transmit errors and dropped packets per second; "
        "anything above zero deserves a look.",
        "pps",
        [
            ("node_network_receive_errs_total", "rx errors"),
            ("node_network_transmit_errs_total", "tx errors"),
            ("node_network_receive_drop_total", "rx drops"),
            ("node_network_transmit_drop_total", "tx drops"),
        ],
        INTERFACE,
        NIC,
        below="tx errors|tx drops",
    ),
]


def _latency_influx() -> list[Target]:
    by = ("host", "device")
    return [
        _in("A", iq.rate("node_disk_read_time_seconds_total", DEVICE, by=by)),
        _in("B", iq.rate("node_disk_reads_completed_total", DEVICE, by=by)),
        _in("C", iq.rate("node_disk_write_time_seconds_total", DEVICE, by=by)),
        _in("D", iq.rate("node_disk_writes_completed_total", DEVICE, by=by)),
        math("R", "$A / $B"),
        math("W", "$C / $D"),
    ]


DISK = [
    _pair(
        "Disk IOPS",
        "Completed reads and writes (below the axis) per second per device.",
        "iops",
        [
            ("node_disk_reads_completed_total", "reads"),
            ("node_disk_writes_completed_total", "writes"),
        ],
        DEVICE,
        DEV,
        below="writes",
        width=6,
    ),
    _pair(
        "Disk throughput",
        "Bytes read and written (below the axis) per second per device.",
        "Bps",
        [("node_disk_read_bytes_total", "read"), ("node_disk_written_bytes_total", "written")],
        DEVICE,
        DEV,
        below="written",
        width=6,
    ),
    HostPanel(
        Spec(
            "Disk latency",
            "Average time per completed read and write: time spent on the "
            "operations divided by their number, per device.",
            "s",
            width=6,
            min=0,
            overrides=_labelled(
                ("R", "${__field.labels.host} ${__field.labels.device} read"),
                ("W", "${__field.labels.host} ${__field.labels.device} write"),
            ),
        ),
        _latency_influx,
        lambda: [
            _p(
                "R",
                f"{_rate('node_disk_read_time_seconds_total', DEV)} / {_rate('node_disk_reads_completed_total', DEV)}",
                "{{instance}} {{device}} read",
            ),
            _p(
                "W",
                f"{_rate('node_disk_write_time_seconds_total', DEV)} / {_rate('node_disk_writes_completed_total', DEV)}",
                "{{instance}} {{device}} write",
            ),
        ],
    ),
    HostPanel(
        Spec(
            "Disk utilisation",
            "Share of time the device had IO in flight (io_time); near 1.0 "
            "a device without internal parallelism is saturated.",
            "percentunit",
            width=6,
            min=0,
        ),
        lambda: [
            _q(
                "A",
                iq.rate("node_disk_io_time_seconds_total", DEVICE, by=("host", "device")),
                "$tag_host $tag_device",
            )
        ],
        lambda: [_p("A", _rate("node_disk_io_time_seconds_total", DEV), "{{instance}} {{device}}")],
    ),
]

FILESYSTEMS = [
    HostPanel(
        Spec(
            "Filesystem fill",
            "Share of each filesystem's space in use (1 - available / size). The types the "
            "filesystem alert rules leave out (pseudo and in-memory) are left out here too; "
            "read-only filesystems are shown, though the fill alerts skip them.",
            "percent",
            width=12,
            min=0,
            max=100,
            overrides=_labelled(("C", "${__field.labels.host} ${__field.labels.mountpoint}")),
        ),
        lambda: [
            _in(
                "A", iq.gauge("node_filesystem_avail_bytes", FILESYSTEM, by=("host", "mountpoint"))
            ),
            _in("B", iq.gauge("node_filesystem_size_bytes", FILESYSTEM, by=("host", "mountpoint"))),
            math("C", "100 - 100 * $A / $B"),
        ],
        lambda: [
            _p(
                "C",
                f"100 * (1 - node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}})",
                "{{instance}} {{mountpoint}}",
            )
        ],
    ),
    HostPanel(
        Spec(
            "Filesystem fill trend",
            "How fast available space shrinks, in bytes per second "
            "(negative: space is being freed), for the filesystems of Filesystem fill. Divide the "
            "available space by it for the time left.",
            "Bps",
            width=12,
        ),
        lambda: [
            _q(
                "A",
                iq.change(
                    "node_filesystem_avail_bytes",
                    FILESYSTEM,
                    by=("host", "mountpoint"),
                    scale=" * -1",
                ),
                "$tag_host $tag_mountpoint",
            )
        ],
        lambda: [
            _p(
                "A",
                f"-deriv(node_filesystem_avail_bytes{{{FS}}}[$__rate_interval])",
                "{{instance}} {{mountpoint}}",
            )
        ],
    ),
]

ROWS: list[tuple[str, list[HostPanel]]] = [
    ("Overview", OVERVIEW), ("CPU", CPU), ("Memory", MEMORY), ("Network", NETWORK),
    ("Disk", DISK), ("Filesystems", FILESYSTEMS),
]  # fmt: skip
