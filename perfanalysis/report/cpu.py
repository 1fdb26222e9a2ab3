"""CPU: busy share overall and per core, and the share of each mode, from the time counters.

For each CPU the rates of ``node_cpu_seconds_total`` by mode add up to the CPU's total time. Idle
time is the modes of ``perfanalysis.alerting.catalogue.IDLE_MODES``, idle and iowait: a CPU
waiting for a disk is idle, as the alert rules (HostCpuBusy, node-mixin's NodeCPUHighUsage) and
the dashboards count it, so a host mostly in iowait is not drawn busy against the same threshold.
Busy % is ``100 * (1 - (idle + iowait) / total)``, overall busy % is the same with idle, iowait
and total summed over CPUs, and a mode's share is its time over the total of all CPUs (iowait is
drawn on its own beside busy). Each step sums over the CPUs present in it: a host resized to
more vCPUs, or with a CPU taken offline (the exporter then omits it), keeps its figures for the
whole period.
"""

from __future__ import annotations

from perfanalysis.alerting.catalogue import IDLE_MODES
from perfanalysis.report import metrics as m
from perfanalysis.report.fetch import HostData
from perfanalysis.report.model import COUNT, PERCENT, Metric, Panel, Section
from perfanalysis.report.series import Values, combine, divide, empty, present, total

MODE_ORDER = ("user", "nice", "system", "iowait", "irq", "softirq", "steal")
MAX_CORE_LINES = 8
BUSY_NOTE = "Busy: CPU time neither idle nor iowait (a CPU waiting for a disk is idle)."


def _cpu_order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)


def cpu_section(data: HostData, busy_threshold: float | None) -> Section:
    count = data.grid.count
    cpus = sorted(data.tag_values(m.CPU, "cpu"), key=_cpu_order)
    modes = data.tag_values(m.CPU, "mode")
    rates = {(c, mode): data.rate(m.CPU, cpu=c, mode=mode) for c in cpus for mode in modes}
    per_cpu_total = {c: total([rates[c, mode] for mode in modes], count) for c in cpus}
    idle_modes = [mode for mode in IDLE_MODES if mode in modes]
    per_cpu_idle = {c: total([rates[c, mode] for mode in idle_modes], count) for c in cpus}

    def over_present_cpus(mode: str) -> Values:
        if mode not in modes:
            return empty(count)
        return sum_over_present({c: rates[c, mode] for c in cpus}, per_cpu_total, count)

    all_total = sum_over_present(per_cpu_total, per_cpu_total, count)
    busy = busy_share(sum_over_present(per_cpu_idle, per_cpu_total, count), all_total)
    shares = {mode: divide(over_present_cpus(mode), all_total, 100) for mode in modes}
    cores = {c: busy_share(per_cpu_idle[c], per_cpu_total[c]) for c in cpus}
    reporting = {c: present(*(data.get(m.CPU, cpu=c, mode=mode) for mode in modes)) for c in cpus}
    has_data = present_in_any(reporting, count)
    iowait = shares.get("iowait", [None] * count)
    load = data.get(m.LOAD1)

    overall = Panel(
        "cpu.overall",
        "CPU busy (all cores)",
        PERCENT,
        [
            Metric("cpu.busy", "busy", PERCENT, busy),
            Metric("cpu.iowait", "iowait", PERCENT, iowait),
        ],
        has_data,
        y_max=100,
        threshold=busy_threshold,
        note=BUSY_NOTE if cpus else "",
    )
    per_core = Panel(
        "cpu.per_core",
        "CPU busy per core",
        PERCENT,
        core_lines(cores, count),
        has_data,
        y_max=100,
        note=BUSY_NOTE if cpus else "",
    )
    by_mode = Panel(
        "cpu.modes",
        "CPU time by mode (share of all cores)",
        PERCENT,
        [Metric(f"cpu.mode.{mode}", mode, PERCENT, shares[mode]) for mode in _modes(modes)],
        has_data,
        stacked=True,
        y_max=100,
    )
    table = [
        Metric("cpu.busy", "CPU busy", PERCENT, busy),
        Metric("cpu.iowait", "CPU iowait", PERCENT, iowait),
        Metric("cpu.load1", "load average (1 min)", COUNT, load),
    ]
    subject = cpu_count_subject(reporting, count)
    note = "" if cpus else "No CPU counters (node_cpu_seconds_total) in this range."
    return Section("cpu", "CPU", subject, [overall, per_core, by_mode], table, has_data, note)


def sum_over_present(series: dict[str, Values], whole: dict[str, Values], count: int) -> Values:
    """The sum at each step over the CPUs whose total time is known there; None where none is."""
    sums = empty(count)
    for cpu, values in series.items():
        for index, (value, known) in enumerate(zip(values, whole[cpu], strict=True)):
            if known is not None and value is not None:
                sums[index] = (sums[index] or 0.0) + value
    return sums


def present_in_any(reporting: dict[str, list[bool]], count: int) -> list[bool]:
    return [any(flags[index] for flags in reporting.values()) for index in range(count)]


def cpu_count_subject(reporting: dict[str, list[bool]], count: int) -> str:
    """The section's subject: "4 CPUs", or "2 to 4 CPUs (...)" when CPUs came or went."""
    per_step = [sum(flags[index] for flags in reporting.values()) for index in range(count)]
    counts = [n for n in per_step if n] or ([len(reporting)] if reporting else [])
    if not counts:
        return ""
    low, high = min(counts), max(counts)
    if low == high:
        return f"{high} CPU{'s' if high != 1 else ''}"
    return f"{low} to {high} CPUs (the count changed during the period)"


def busy_share(idle: Values, whole: Values) -> Values:
    """``100 * (1 - idle / whole)``, with idle the time in IDLE_MODES; None where either is
    missing or the whole is zero."""
    return combine(lambda i, w: None if w == 0 else 100 * (1 - i / w), idle, whole)


def core_lines(cores: dict[str, Values], count: int) -> list[Metric]:
    """A line per core; beyond MAX_CORE_LINES cores, the busiest, mean and least busy core."""
    if len(cores) <= MAX_CORE_LINES:
        return [Metric(f"cpu.core.{c}", f"cpu {c}", PERCENT, values) for c, values in cores.items()]
    columns = list(cores.values())
    return [
        Metric("cpu.core.max", "busiest core", PERCENT, combine(lambda *v: max(v), *columns)),
        Metric(
            "cpu.core.mean", "mean of cores", PERCENT, combine(lambda *v: sum(v) / len(v), *columns)
        ),
        Metric("cpu.core.min", "least busy core", PERCENT, combine(lambda *v: min(v), *columns)),
    ]


def _modes(modes: list[str]) -> list[str]:
    known = [mode for mode in MODE_ORDER if mode in modes]
    return known + sorted(mode for mode in modes if mode not in MODE_ORDER and mode != "idle")
