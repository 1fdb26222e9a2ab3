"""Right-sizing arithmetic: busy% from CPU counters, demand in work units, machines ranked by cost.

1. Busy% per interval from ``node_cpu_seconds_total`` in modes ``idle`` and ``iowait``: each
   CPU's idle and iowait seconds per second over the interval, summed over the CPUs and divided
   by their number, is the idle share; busy% = 100 x (1 - idle share). iowait counts as idle, as
   in the load test's own busy% (``1 - (idle + iowait) / total``), so that a host waiting on its
   disks is not taken for one doing CPU work. Intervals where a CPU is missing or its counter
   went backwards (a reboot) are left out.
2. The chosen percentile (95th by default) of those busy% values is the load to serve.
3. The collector's own load test turns that busy% into work units per second: linear
   interpolation through (0 %, 0 units) and its levels at their measured busy%.
4. For every catalog machine type with a load test in the tenant: units it gives at the headroom
   target (70 % busy by default), machines needed = ceil(demand / those units), cost per hour =
   machines x price. Cheapest first; fewer machines, then more spare capacity, break ties.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from tenants.loadtests.models import LoadTestRun, PriceEntry

Counters = dict[str, list[tuple[float, float]]]  # cpu -> [(unix seconds, idle + iowait seconds)]
EPSILON = 1e-9


def busy_percents(counters: Counters) -> list[float]:
    """Busy% of every interval in which all CPUs report, oldest first."""
    if not counters:
        return []
    rates: dict[float, list[float]] = {}
    for samples in counters.values():
        ordered = sorted(samples)
        for (t1, v1), (t2, v2) in itertools.pairwise(ordered):
            if t2 > t1 and v2 >= v1:
                rates.setdefault(t2, []).append((v2 - v1) / (t2 - t1))
    cpus = len(counters)
    busy = []
    for moment in sorted(rates):
        if len(rates[moment]) == cpus:
            idle_share = sum(rates[moment]) / cpus
            busy.append(min(100.0, max(0.0, 100.0 * (1.0 - idle_share))))
    return busy


def profile(run: LoadTestRun) -> list[tuple[float, float]]:
    """(busy%, units per second) of a run's levels at their measured busy%, from (0, 0)."""
    points = sorted((level.measured_busy_percent, level.units_per_second) for level in run.levels)
    return [(0.0, 0.0), *[(busy, units) for busy, units in points if busy > 0]]


def units_at(points: Sequence[tuple[float, float]], busy: float) -> float:
    """Units per second at ``busy``% on a profile; beyond its last level, that level's units."""
    if busy >= points[-1][0]:
        return points[-1][1]
    for (b1, u1), (b2, u2) in itertools.pairwise(points):
        if b1 <= busy <= b2:
            return u1 if b2 == b1 else u1 + (u2 - u1) * (busy - b1) / (b2 - b1)
    return 0.0


@dataclass(frozen=True)
class Candidate:
    entry: PriceEntry
    run: LoadTestRun  # the tenant's load test of this machine type
    units_at_headroom: float
    machines: int
    usd_per_hour: Decimal  # machines x price
    spare_percent: float  # capacity left at the headroom target after serving the demand


def machines_needed(demand: float, capacity: float) -> int:
    if capacity <= 0:
        raise ValueError("a machine type with no capacity at the headroom target")
    return max(1, math.ceil(demand / capacity - EPSILON))


def rank(
    demand: float, headroom: float, options: Iterable[tuple[PriceEntry, LoadTestRun]]
) -> list[Candidate]:
    candidates = []
    for entry, run in options:
        capacity = units_at(profile(run), headroom)
        if capacity <= 0:
            continue
        machines = machines_needed(demand, capacity)
        total = machines * capacity
        candidates.append(Candidate(
            entry=entry, run=run, units_at_headroom=round(capacity, 3), machines=machines,
            usd_per_hour=entry.usd_per_hour * machines,
            spare_percent=round((total - demand) / total * 100, 1),
        ))  # fmt: skip
    return sorted(candidates, key=lambda c: (c.usd_per_hour, c.machines, -c.spare_percent))
