"""What "CPU busy" and "the filesystems that count" mean on every dashboard and Grafana rule: the
Prometheus rules' definitions (``perfanalysis.alerting.catalogue``), written in InfluxQL and PromQL.

* CPU busy is node-mixin's, as HostCpuBusy measures it: the share of CPU time in modes other than
  ``IDLE_MODES`` (idle and iowait), averaged over CPUs. A CPU waiting for a disk is idle: a host
  60% in iowait is not 60% busy (Disk utilisation and queue show the disk). The Host dashboard
  divides a host's idle and iowait seconds per second by its CPU seconds per second in every
  mode (two hidden targets and server-side math, ``cpu_busy_targets``). The Fleet dashboard and
  the Grafana rule (``cpu_busy``) take 1 minus each CPU's idle and iowait seconds per second,
  which equals it only while a CPU's modes add up to one second per second: not while counters
  stall (a paused VM's read 99% busy when it resumed, before rates stopped spanning gaps), nor
  from an interval with fewer samples (a gap's edge: 55% for 40%). The ratio reads every mode,
  four times the series, too many for every host of a fleet.
* Filesystems are every type but those in ``FS_IGNORED`` (pseudo and in-memory ones), imported
  rather than copied. PromQL anchors a regex and InfluxQL does not, hence ``/^(...)$/`` there.
  Read-only filesystems are not left out here: the fill alerts skip them (a read-only one is
  HostFilesystemTurnedReadOnly's), and the panels still show them.
"""

# ruff: noqa: S608 -- InfluxQL for dashboards and alert rules, built from constants

from __future__ import annotations

import re

from perfanalysis.alerting.catalogue import FS_IGNORED, IDLE_MODES
from perfanalysis.grafana import influxql as iq
from perfanalysis.grafana.targets import InfluxQL, Target, math

CPU_SECONDS = "node_cpu_seconds_total"


def influx_regex(promql_string: str) -> str:
    """A regex written inside a PromQL string literal, for an InfluxQL ``/.../`` literal: the
    string's escapes undone (``\\\\`` is one backslash there), ``/`` escaped. Both are RE2."""
    return re.sub(r"\\(.)", r"\1", promql_string).replace("/", "\\/")


_IDLE = "|".join(IDLE_MODES)
IDLE_TIME = f'"mode" =~ /^({_IDLE})$/'  # InfluxQL
PROM_IDLE_TIME = f'mode=~"{_IDLE}"'
FILESYSTEMS = f'"fstype" !~ /^({influx_regex(FS_IGNORED)})$/'  # InfluxQL
PROM_FILESYSTEMS = f'fstype!~"{FS_IGNORED}"'


def cpu_seconds(*conditions: str, alias: str = "") -> str:
    """CPU seconds per second per host and interval, summed over its CPUs and the modes
    ``conditions`` select (every mode without), null across a gap (``influxql.rate_sum``)."""
    return iq.rate_sum(CPU_SECONDS, *conditions, per=("host", "cpu", "mode"), alias=alias)


CPU_BUSY = "100 - 100 * $A / $B"  # A: idle and iowait seconds per second, B: all CPU seconds


def cpu_busy_targets() -> list[Target]:
    """CPU busy in percent per host and interval: the share of CPU time counted that was neither
    idle nor iowait. The series of C carry the label ``host``."""
    return [InfluxQL("A", cpu_seconds(IDLE_TIME)).hidden(), InfluxQL("B", cpu_seconds()).hidden(),
            math("C", CPU_BUSY)]  # fmt: skip


def cpu_busy(alias: str = "", *, over_time: bool = True) -> str:
    """CPU busy in percent per host, 1 minus the idle and iowait seconds per second of its CPUs:
    per interval (``over_time``), else the mean over the range.

    Three levels, since InfluxQL cannot divide by the number of CPUs: each CPU's rate in each idle
    mode, summed per CPU as ``influxql.rate_sum`` sums them (a reboot reads null, not 100%; no
    rate across a gap), then 100 minus 100 times its mean over the CPUs. The Fleet dashboard and
    the Grafana CPU rule read it: a fifth of the series the ratio of the Host dashboard reads, and
    exact while the counters count every second: not on the edges of a gap, in an interval with
    fewer samples (55% for 40%), nor while a VM is paused for up to a minute.
    """
    per_cpu = iq.rate_sum(CPU_SECONDS, IDLE_TIME, per=("host", "cpu", "mode"),
                          by=("host", "cpu"), alias="r")  # fmt: skip
    named = f' AS "{alias}"' if alias else ""
    group = f'{iq.BUCKETS}, "host" fill(null)' if over_time else '"host"'
    return (
        f'SELECT 100 - 100 * mean("r"){named} FROM ({per_cpu}) WHERE $timeFilter GROUP BY {group}'
    )


def prom_cpu_busy(selector: str) -> str:
    """CPU busy in percent per instance, over ``selector``'s series (job and instance matchers)."""
    idle = f"rate({CPU_SECONDS}{{{PROM_IDLE_TIME}, {selector}}}[$__rate_interval])"
    return f"100 * (1 - avg by (instance) (sum without (mode) ({idle})))"
