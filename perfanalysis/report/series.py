"""Series on a step grid: one value per bucket, ``None`` where a bucket holds no data.

Nothing is interpolated: an operation on buckets yields ``None`` wherever an input is ``None``,
so a gap in the data stays a gap in every derived series.

Rates: a counter's value per bucket is its last sample there (InfluxQL ``last``); the rate in
bucket *i* is ``(c[i] - c[i-1]) / (t[i] - t[i-1])``, the increase between the two buckets' last
samples over the time between them (``seconds[i]``, read with the values), present only when
buckets *i* and *i-1* both hold data and the counter did not go down (a reset). Dividing by the
nominal step instead would count a sample lost (or late) as a faster rate: the increase of two
sampling intervals over one step. Only adjacent buckets make a rate, so a gap never yields one
long averaged rate across it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Values = list[float | None]


def empty(count: int) -> Values:
    return [None] * count


def rate(
    counter: Sequence[float | None],
    seconds: Sequence[float | None],
    before: float | None = None,
) -> Values:
    """Per bucket, ``(counter[i] - counter[i-1]) / seconds[i]``: ``seconds[i]`` is the time
    between the two buckets' last samples; ``before`` the counter's last value in the bucket
    before the first (None: the first bucket has no rate)."""
    result: Values = []
    previous = before
    for current, elapsed in zip(counter, seconds, strict=True):
        if previous is None or current is None or current < previous or not elapsed:
            result.append(None)
        else:
            result.append((current - previous) / elapsed)
        previous = current
    return result


def combine(function: Callable[..., float | None], *series: Sequence[float | None]) -> Values:
    """``function(a[i], b[i], ...)`` where every input is present, else None."""
    return [
        None if any(x is None for x in values) else function(*values)
        for values in zip(*series, strict=True)
    ]


def total(series: Sequence[Sequence[float | None]], count: int) -> Values:
    """The sum of the series bucket by bucket; None where any is missing (or none are given)."""
    if not series:
        return empty(count)
    return combine(lambda *values: sum(values), *series)


def divide(
    numerator: Sequence[float | None], denominator: Sequence[float | None], scale: float = 1.0
) -> Values:
    """``scale * a / b`` where both are present and ``b`` is not zero."""
    return [
        None if a is None or b is None or b == 0 else scale * a / b
        for a, b in zip(numerator, denominator, strict=True)
    ]


def scaled(series: Sequence[float | None], factor: float) -> Values:
    return [None if x is None else x * factor for x in series]


def present(*series: Sequence[float | None]) -> list[bool]:
    """Whether any of the series holds data in each bucket."""
    return [any(x is not None for x in values) for values in zip(*series, strict=True)]


def gaps(mask: Sequence[bool]) -> list[tuple[int, int]]:
    """Runs of buckets without data: (first bucket, bucket after the last)."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, has_data in enumerate(mask):
        if not has_data and start is None:
            start = index
        elif has_data and start is not None:
            runs.append((start, index))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return runs


def last_present(series: Sequence[float | None]) -> tuple[int, float] | None:
    for index in range(len(series) - 1, -1, -1):
        value = series[index]
        if value is not None:
            return index, value
    return None
