"""Percentiles by linear interpolation between closest ranks (type 7), over present values only."""

from __future__ import annotations

import random
import statistics

import pytest

from perfanalysis.report.stats import percentile, summarise


def test_linear_interpolation_between_closest_ranks_exactly() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    # rank h = (n - 1) * p / 100: 8.55, 8.775 and 8.91 for p95, p97.5 and p99
    assert percentile(values, 95) == pytest.approx(9.55, abs=1e-12)
    assert percentile(values, 97.5) == pytest.approx(9.775, abs=1e-12)
    assert percentile(values, 99) == pytest.approx(9.91, abs=1e-12)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 5.5
    assert percentile(values, 100) == 10.0


def test_numpys_and_rs_default_examples() -> None:
    # numpy.percentile([15, 20, 35, 40, 50], 40) == 29.0; R quantile(c(15,20,35,40,50), 0.4) == 29
    assert percentile([15.0, 20.0, 35.0, 40.0, 50.0], 40) == 29.0
    assert percentile([7.0], 99) == 7.0  # one value is every percentile
    assert percentile([3.0, 3.0, 3.0], 97.5) == 3.0


def test_equals_the_standard_librarys_inclusive_quantiles() -> None:
    rng = random.Random(8)
    for size in (2, 3, 17, 1000):
        values = sorted(rng.uniform(0, 100) for _ in range(size))
        cuts = statistics.quantiles(values, n=200, method="inclusive")  # cut i is p = i / 2
        assert percentile(values, 95) == pytest.approx(cuts[189], rel=1e-12)
        assert percentile(values, 97.5) == pytest.approx(cuts[194], rel=1e-12)
        assert percentile(values, 99) == pytest.approx(cuts[197], rel=1e-12)


def test_out_of_range_and_empty_input_are_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 95)
    with pytest.raises(ValueError, match="outside 0-100"):
        percentile([1.0], 101)


def test_summaries_leave_missing_steps_out_rather_than_counting_them_as_zero() -> None:
    series = [None, 10.0, None, None, 30.0, 20.0, None]
    summary = summarise(series, [50, 95])
    assert summary.count == 3
    assert summary.total == 7
    assert summary.missing_fraction == pytest.approx(4 / 7)
    assert summary.percentiles == {50: 20.0, 95: 29.0}
    assert summary.maximum == 30.0
    assert summary.mean == 20.0


def test_a_series_without_values_has_no_figures() -> None:
    summary = summarise([None, None], [95])
    assert (summary.count, summary.total, summary.percentiles, summary.maximum) == (0, 2, {}, None)
    assert summary.missing_fraction == 1.0
