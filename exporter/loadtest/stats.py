"""Mean and coefficient of variation of the repeats of a level."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def cv_percent(values: Sequence[float]) -> float | None:
    """Sample standard deviation over the mean, in percent; None (not measured) below two values
    or at a mean of 0."""
    if len(values) < 2:
        return None
    average = statistics.fmean(values)
    if average == 0:
        return None
    return 100.0 * statistics.stdev(values) / average
