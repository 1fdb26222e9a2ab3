"""The coefficient of variation of a level's repeats: sample standard deviation over the mean."""

from __future__ import annotations

import pytest

from exporter.loadtest.stats import cv_percent, mean


def test_cv_of_known_values() -> None:
    # mean 20, sample standard deviation 2 -> 10%
    assert cv_percent([18.0, 20.0, 22.0]) == pytest.approx(10.0)
    assert cv_percent([18, 18, 19]) == pytest.approx(
        3.1492, abs=1e-4
    )  # the example in the issue: 3.1


def test_identical_repeats_have_no_variation() -> None:
    assert cv_percent([182.0, 182.0, 182.0]) == 0.0


def test_one_repeat_or_a_zero_mean_is_not_measured() -> None:
    assert cv_percent([5.0]) is None
    assert cv_percent([]) is None
    assert cv_percent([0.0, 0.0]) is None


def test_mean() -> None:
    assert mean([1.0, 2.0, 6.0]) == 3.0
    assert mean([]) == 0.0
