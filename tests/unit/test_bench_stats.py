"""bench/stats: the nearest-rank percentile both benches use, and Student's t quantiles."""

from __future__ import annotations

import pytest

from bench.stats import T_975, Z_975, percentile, t_975


@pytest.mark.parametrize(
    ("n", "p99"),
    [(100, 99), (500, 495), (50, 50), (101, 100), (1, 1), (478, 474)],
)
def test_p99_is_the_nearest_rank_not_one_above_it(n: int, p99: int) -> None:
    values = [float(v) for v in range(n, 0, -1)]  # 1..n, given in reverse
    assert percentile(values, 0.99) == p99


def test_percentiles_at_the_edges_and_exact_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50  # the 50th of 100, not the 51st
    assert percentile(values, 0.07) == 7  # 0.07 * 100 is 7.000000000000001 in floating point
    assert percentile(values, 0.001) == 1
    assert percentile(values, 1.0) == 100
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.99)
    with pytest.raises(ValueError, match="fraction"):
        percentile(values, 0.0)


def test_t_quantiles_come_from_the_table_and_approach_the_normal_one() -> None:
    assert t_975(1) == 12.706
    assert t_975(4) == 2.776  # 5 rounds
    assert t_975(11) == 2.201  # 12 rounds
    assert t_975(29) == 2.045  # 30 rounds, the default
    assert T_975[120] == 1.980
    # between tabulated degrees of freedom, linear in 1/df (exact values to 4 places)
    assert t_975(35) == pytest.approx(2.0301, abs=5e-4)
    assert t_975(50) == pytest.approx(2.0086, abs=5e-4)
    assert t_975(200) == pytest.approx(1.9719, abs=5e-4)
    assert t_975(1_000_000) == pytest.approx(Z_975, abs=1e-4)
    quantiles = [t_975(df) for df in range(1, 500)]
    assert quantiles == sorted(quantiles, reverse=True)  # never rises with more rounds
    assert min(quantiles) > Z_975
    with pytest.raises(ValueError, match="degree of freedom"):
        t_975(0)
