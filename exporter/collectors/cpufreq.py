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

Reading: a worker thread of the collector's own reads the CPUs in order with plain
os.open/os.read (256 CPUs in about 17 ms, where a pool of eight threads fighting over the GIL
took 34-134 ms), and the scrape waits for it; CPUs that share a policy (their cpufreq links lead
to one policyN) share one reading. On some kernels each scaling_cur_freq read sleeps for
10-20 ms (node_exporter#1086, the reason procfs reads in parallel): the workers are
filesystem's statfs runner (``StatfsRunner``, with ``read_policy`` for its call), so while a
worker is inside a read after each ``straggle`` (50 ms) the CPUs it has not reached move to
another, up to eight. A read that has not returned after ``timeout`` (5 s; a FIFO, a wedged
driver) never hangs the scrape: the CPUs not read are left out, the collector fails naming them
(success 0, in /health), and a policy whose read is still blocked is skipped by later scrapes,
without a new thread, until that read returns.
"""

from __future__ import annotations

import os
import re
from typing import cast

from exporter.collectors.statfs import MountTimeoutError, StatfsRunner
from exporter.model import GAUGE, CollectorError, MetricFamily, family
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
STRAGGLE = 0.05  # seconds a reader may be inside a read before the CPUs left move on
READ_TIMEOUT = 5.0  # seconds a scrape waits for the readers
UINT_READ_SIZE = 4096  # a sysfs attribute is at most a page, given whole by one read(2)

Frequencies = list[float | None]
Reading = Frequencies | Exception | None  # None: not read before the deadline


class CPUFreqCollector:
    name = "cpufreq"

    def __init__(
        self, paths: Paths, timeout: float = READ_TIMEOUT, straggle: float = STRAGGLE
    ) -> None:
        self.paths = paths
        self.timeout = timeout
        self._runner = StatfsRunner(
            MAX_READERS, timeout, read_policy, straggle, name="cpufreq", subject="the policy"
        )

    @property
    def stuck(self) -> list[str]:
        return self._runner.stuck

    def collect(self) -> list[MetricFamily]:
        cpus = self._cpufreq_dirs()
        readings = self._read_policies([path for _, path in cpus])
        families = [family(name, help_text, GAUGE, "cpu") for _, name, help_text in FREQUENCIES]
        skipped = []
        for (cpu, path), values in zip(cpus, readings, strict=True):
            if values is None:
                skipped.append(path)
                continue
            if isinstance(values, Exception):
                raise values
            for fam, hertz in zip(families, values, strict=True):
                if hertz is not None:
                    fam.add(hertz, cpu)
        produced = [fam for fam in families if fam.samples]
        if skipped:
            raise CollectorError(
                f"no answer within {self.timeout:g}s from {', '.join(skipped)}: left out, and "
                "skipped until the blocked read returns",
                produced,
            )
        return produced

    def _read_policies(self, paths: list[str]) -> list[Reading]:
        """Each path's frequencies, the error its read raised, or None when it was not read in
        time (or is still blocked from an earlier scrape). A policy is read once, through the
        first CPU's path to it, for all the CPUs that share it."""
        policies = [os.path.realpath(path) for path in paths]
        first: dict[str, str] = {}  # policy -> the first CPU's path to it, the one read
        for path, policy in zip(paths, policies, strict=True):
            first.setdefault(policy, path)
        results = self._runner.stat_many(first.values())
        readings = {
            path: cast(Reading, None if isinstance(result, MountTimeoutError) else result)
            for path, result in results.items()
        }
        return [readings[first[policy]] for policy in policies]

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
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, PermissionError):
        return None
    try:
        chunks = []
        while chunk := os.read(fd, UINT_READ_SIZE):
            chunks.append(chunk)
            if len(chunk) < UINT_READ_SIZE:  # sysfs gives an attribute whole; a short read ends it
                break
    except PermissionError:
        return None
    finally:
        os.close(fd)
    text = b"".join(chunks).strip()
    if not text.isdigit() or int(text) > MAX_UINT64:
        shown = text.decode(errors="replace")
        raise ValueError(f"{path}: {shown!r} is not an unsigned 64-bit integer")
    return int(text)


def _read_attribute(path: str) -> None:
    """procfs SysReadFile (one read(2)); the content is unused, but any error is raised."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.read(fd, SYSFS_READ_SIZE)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
