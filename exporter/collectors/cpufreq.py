"""cpufreq: per-CPU frequencies from sysfs, as node_exporter 1.5.0's cpufreq collector.

For every ``devices/system/cpu/cpu[0-9]*`` whose ``cpufreq`` exists (usually a symlink to
``../cpufreq/policyN``, followed; CPUs sharing a policy report the same values), these gauges
labelled ``{cpu}`` are emitted, each sysfs kHz value times 1000:

* ``node_cpu_frequency_hertz`` / ``_min_hertz`` / ``_max_hertz``: cpuinfo_cur/min/max_freq;
* ``node_cpu_scaling_frequency_hertz`` / ``_min_hertz`` / ``_max_hertz``: scaling_cur/min/max_freq.

Behaviour copied from 1.5.0 (procfs ``SystemCpufreq``, the errgroup version without the offline
filter):

* A frequency file that is missing or unreadable (cpuinfo_cur_freq is root-only) is skipped for
  that CPU; any other read error, or content that is not an unsigned integer, fails the collector.
  cpuinfo_transition_latency is parsed under the same rules though not exported.
* The attributes scaling_available_governors, scaling_driver, scaling_governor, related_cpus and
  scaling_setspeed are read (one 128-byte read each) though nothing is exported from them: a
  missing or unreadable one fails the collector, as it fails procfs.
* A CPU without cpufreq is skipped; no CPU directories or no cpufreq at all (a VM) gives no
  samples and success 1 (1.5.0 returns nil, not ErrNoData).
* ``node_cpu_scaling_governor`` (node_exporter#2569, 2023) and ``node_cpu_frequency_avg_hertz``
  came after 1.5.0 and are not emitted.

Like procfs, the CPUs are read in parallel: on some kernels each scaling_cur_freq read sleeps for
10-20 ms (node_exporter#1086).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

from exporter.model import GAUGE, MetricFamily, family
from exporter.paths import Paths, valid_utf8

CPU_DIR = ("devices", "system", "cpu")
CPU_NAME = re.compile(r"cpu[0-9]")
# (sysfs file, metric name, HELP), in node_exporter's emission order
FREQUENCIES = (
    ("cpuinfo_cur_freq", "node_cpu_frequency_hertz", "Current cpu thread frequency in hertz."),
    ("cpuinfo_min_freq", "node_cpu_frequency_min_hertz", "Minimum cpu thread frequency in hertz."),
    ("cpuinfo_max_freq", "node_cpu_frequency_max_hertz", "Maximum cpu thread frequency in hertz."),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
)
# read by procfs and required there, though 1.5.0 exports nothing from them
REQUIRED_ATTRIBUTES = (
    "scaling_available_governors",
    "scaling_driver",
    "scaling_governor",
    "related_cpus",
    "scaling_setspeed",
)
LATENCY = "cpuinfo_transition_latency"  # parsed by procfs, not exported
SYSFS_READ_SIZE = 128  # procfs util.SysReadFile: one read(2) of this many bytes
MAX_UINT64 = 2**64 - 1
MAX_READERS = 8

Frequencies = list[float | None]


class CPUFreqCollector:
    name = "cpufreq"

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def collect(self) -> list[MetricFamily]:
        cpus = self._cpufreq_dirs()
        if len(cpus) > 1:
            with ThreadPoolExecutor(min(len(cpus), MAX_READERS)) as pool:
                readings = list(pool.map(read_policy, (path for _, path in cpus)))
        else:
            readings = [read_policy(path) for _, path in cpus]
        families = [family(name, help_text, GAUGE, "cpu") for _, name, help_text in FREQUENCIES]
        for (cpu, _), values in zip(cpus, readings, strict=True):
            for fam, hertz in zip(families, values, strict=True):
                if hertz is not None:
                    fam.add(hertz, cpu)
        return [fam for fam in families if fam.samples]

    def _cpufreq_dirs(self) -> list[tuple[str, str]]:
        """(cpu label, cpufreq path) for each CPU that has cpufreq, in name order."""
        base = self.paths.sys(*CPU_DIR)
        try:
            names = sorted(n for n in os.listdir(base) if CPU_NAME.match(n))
        except OSError:  # like filepath.Glob: an absent or unreadable directory matches nothing
            return []
        found = []
        for name in names:
            path = os.path.join(base, name, "cpufreq")
            try:
                os.stat(path)  # follows the policy symlink; a dangling one counts as absent
            except FileNotFoundError:
                continue
            found.append((valid_utf8(name[len("cpu") :]), path))
        return found


def read_policy(path: str) -> Frequencies:
    """The six frequencies in hertz (None where the file is absent or unreadable)."""
    khz = [_read_uint(os.path.join(path, file)) for file, _, _ in FREQUENCIES]
    _read_uint(os.path.join(path, LATENCY))
    for attribute in REQUIRED_ATTRIBUTES:
        _read_attribute(os.path.join(path, attribute))
    return [None if v is None else float(v) * 1000.0 for v in khz]


def _read_uint(path: str) -> int | None:
    """procfs ReadUintFromFile, with a missing or unreadable file giving None."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, PermissionError):
        return None
    text = data.strip()
    if not text.isdigit() or int(text) > MAX_UINT64:
        shown = text.decode(errors="replace")
        raise ValueError(f"{path}: {shown!r} is not an unsigned 64-bit integer")
    return int(text)


def _read_attribute(path: str) -> None:
    """procfs SysReadFile (one read(2)); the content is unused, but any error is raised."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.read(fd, SYSFS_READ_SIZE)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
