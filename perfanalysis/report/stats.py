"""Percentiles, maximum and mean of a series over its present values only.

Percentile method: linear interpolation between closest ranks (Hyndman and Fan's type 7, the
default of R's ``quantile`` that the original R reports used, and of numpy's ``percentile``).
For the ``n`` values sorted ascending, ``x[0] .. x[n-1]``, the p-th percentile is at rank
``h = (n - 1) * p / 100``: ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``.
Missing buckets are left out, never counted as zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (0 <= p <= 100) of values already sorted ascending."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0-100")
    rank = (len(sorted_values) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + fraction * (sorted_values[high] - sorted_values[low])


@dataclass(frozen=True)
class Summary:
    count: int  # present values
    total: int  # buckets
    percentiles: dict[float, float] = field(default_factory=dict)
    maximum: float | None = None
    mean: float | None = None

    @property
    def missing_fraction(self) -> float:
        return 1 - self.count / self.total if self.total else 1.0


def summarise(series: Sequence[float | None], percentiles: Sequence[float]) -> Summary:
    values = sorted(x for x in series if x is not None)
    if not values:
        return Summary(0, len(series))
    return Summary(
        count=len(values),
        total=len(series),
        percentiles={p: percentile(values, p) for p in percentiles},
        maximum=values[-1],
        mean=math.fsum(values) / len(values),
    )
