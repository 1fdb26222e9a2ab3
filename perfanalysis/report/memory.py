"""Memory: used (``MemTotal - MemAvailable``, as the alert rules count it), buffers and page cache
(``Buffers + Cached + SReclaimable``, free(1)'s buff/cache), free, and swap in use."""

from __future__ import annotations

from perfanalysis.report import metrics as m
from perfanalysis.report.fetch import HostData
from perfanalysis.report.model import BYTES, PERCENT, Metric, Panel, Section
from perfanalysis.report.series import combine, divide, present


def memory_section(data: HostData, used_threshold: float | None) -> Section:
    field = {name: data.get(measurement) for name, measurement in m.MEMORY.items()}
    total, available = field["total"], field["available"]
    used = combine(lambda t, a: t - a, total, available)
    used_percent = combine(lambda t, a: None if t == 0 else 100 * (1 - a / t), total, available)
    cache = combine(
        lambda b, c, r: b + c + r, field["buffers"], field["cached"], field["reclaimable"]
    )
    swap_used = combine(lambda t, f: t - f, field["swap_total"], field["swap_free"])
    swap_percent = divide(swap_used, field["swap_total"], 100)
    has_data = present(total, available)
    has_swap = any(t for t in field["swap_total"] if t)
    # "no swap" is claimed only when the host said so (SwapTotal 0); without SwapTotal there is
    # nothing to tell, and with no memory data at all the section's note says that
    swap_known = any(t is not None for t in field["swap_total"])
    if has_swap:
        swap_note = ""
    elif swap_known:
        swap_note = "No swap is configured on this host."
    elif any(has_data):
        swap_note = f"No swap data ({m.MEMORY['swap_total']}) in this range."
    else:
        swap_note = ""

    usage = Panel(
        "memory.usage",
        "Memory",
        BYTES,
        [
            Metric("memory.used", "used", BYTES, used),
            Metric("memory.cache", "buffers and cache", BYTES, cache),
            Metric("memory.free", "free", BYTES, field["free"]),
            Metric("memory.total", "total", BYTES, total, dashed=True),
        ],
        has_data,
    )
    percent = Panel(
        "memory.used_percent",
        "Memory used",
        PERCENT,
        [Metric("memory.used_percent", "used", PERCENT, used_percent)],
        has_data,
        y_max=100,
        threshold=used_threshold,
    )
    swap = Panel(
        "memory.swap",
        "Swap",
        BYTES,
        [
            Metric("memory.swap_used", "swap used", BYTES, swap_used),
            Metric("memory.swap_total", "swap size", BYTES, field["swap_total"], dashed=True),
        ],
        present(field["swap_total"]),
        note=swap_note,
    )
    table = [
        Metric("memory.used_percent", "memory used (% of total)", PERCENT, used_percent),
        Metric("memory.used", "memory used (bytes)", BYTES, used),
        Metric("memory.cache", "buffers and cache", BYTES, cache),
        Metric("memory.swap_used", "swap used", BYTES, swap_used),
    ]
    if has_swap:
        table.append(
            Metric("memory.swap_used_percent", "swap used (% of swap)", PERCENT, swap_percent)
        )
    note = "" if any(has_data) else "No memory data (node_memory_*) in this range."
    return Section("memory", "Memory", "", [usage, percent, swap], table, has_data, note)
