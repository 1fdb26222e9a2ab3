"""Statistics the benchmarks share: nearest-rank percentiles and Student's t quantiles.

The standard library has no t distribution, so the two-sided 95% quantiles are tabulated: every
degree of freedom from 1 to 30, then 40, 60 and 120, and the normal quantile beyond. Between two
tabulated degrees of freedom the quantile is interpolated linearly in 1/df: every quantile is then
within 0.0005 of the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# t such that P(-t < T < t) = 0.95 for T with df degrees of freedom (the 0.975 quantile)
T_975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
    17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
    25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000,
    120: 1.980,
}  # fmt: skip
Z_975 = 1.960  # the limit as df grows: the normal distribution's


def t_975(df: int) -> float:
    """Student's t quantile for a two-sided 95% interval with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("a t quantile needs at least one degree of freedom")
    if df in T_975:
        return T_975[df]
    below = max(d for d in T_975 if d < df)
    above = min((d for d in T_975 if d > df), default=None)
    high, low = T_975[below], Z_975 if above is None else T_975[above]
    # linear in 1/df: 1/below at ``below``, 1/above (0 beyond the table) at ``above``
    far = 0.0 if above is None else 1 / above
    return low + (high - low) * (1 / df - far) / (1 / below - far)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``fraction`` of all values
    at or below it (p99 of 100 values is the 99th smallest, not the largest)."""
    if not values:
        raise ValueError("no values")
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    ordered = sorted(values)
    # rounded first: 0.07 * 100 is 7.000000000000001 in binary floating point
    rank = math.ceil(round(fraction * len(ordered), 9))
    return ordered[max(1, rank) - 1]
