"""The arithmetic: price-performance exactly as the original defines it, % of best, value range,
differences to a baseline, the CSV export, and the right-sizing steps on small known examples."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest

from tenants.csvsafe import records
from tenants.errors import Invalid
from tenants.loadtests.compare import (
    compare,
    csv_rows,
    difference_percent,
    percent_of_best,
    price_performance,
    to_json,
    value_range,
)
from tenants.loadtests.models import LoadTestLevel, LoadTestRun, PriceEntry
from tenants.loadtests.rightsizing import (
    busy_percents,
    machines_needed,
    profile,
    rank,
    units_at,
)


def test_182_units_at_a_quarter_cent_per_hour_is_7280_units_per_dollar_hour() -> None:
    assert price_performance(182.0, Decimal("0.025")) == Decimal("7280.00")
    assert str(price_performance(182.0, Decimal("0.025"))) == "7280.00"


def test_the_originals_published_rows() -> None:
    assert price_performance(396.0, Decimal("0.015")) == Decimal("26400.00")
    assert price_performance(234.0, Decimal("0.085")) == Decimal("2752.94")
    values = {1: Decimal("26400.00"), 2: Decimal("2752.94")}
    assert value_range(values) == Decimal("9.59")  # the UI's "Value Range: 9.59x"


@pytest.mark.parametrize(
    ("units", "price"),
    [(182.0, None), (182.0, Decimal(0)), (182.0, Decimal(-1)), (0.0, Decimal(1))],
)
def test_no_price_performance_without_a_positive_price_and_units(
    units: float, price: Decimal | None
) -> None:
    assert price_performance(units, price) is None


def test_percent_of_best_and_value_range_ignore_unpriced_runs() -> None:
    values = {1: Decimal("7280.00"), 2: Decimal("3640.00"), 3: None, 4: Decimal("1456.00")}
    assert percent_of_best(values) == {1: Decimal("100.0"), 2: Decimal("50.0"), 3: None,
                                       4: Decimal("20.0")}  # fmt: skip
    assert value_range(values) == Decimal("5.00")
    assert value_range({1: Decimal(5), 2: None}) is None
    assert percent_of_best({1: None}) == {1: None}


def test_difference_against_the_baseline_in_percent() -> None:
    assert difference_percent(274.0, 182.0) == 50.5
    assert difference_percent(91.0, 182.0) == -50.0
    assert difference_percent(182.0, 182.0) == 0.0
    assert difference_percent(10.0, None) is None
    assert difference_percent(None, 10.0) is None


def make_run(run_id: int, units: list[float], price: str | None, **fields: Any) -> LoadTestRun:
    levels = [LoadTestLevel(target_busy_percent=10 * (i + 1), measured_busy_percent=10.0 * (i + 1),
                            units_per_second=value, repeats=[value], cv_percent=None, attempts=1,
                            accepted=True) for i, value in enumerate(units)]  # fmt: skip
    run = LoadTestRun(
        id=run_id, label=fields.get("label", f"run {run_id}"), hostname=f"h{run_id}", vcpus=2,
        cpu_model=fields.get("cpu_model", "cpu"), cloud_provider=fields.get("provider", "oci"),
        region="r", instance_type=fields.get("instance_type", f"t{run_id}"),
        unit_name=fields.get("unit", "pa-mem4m-v1"), max_units_per_second=units[-1],
        all_levels_accepted=True, price_usd_per_hour=Decimal(price) if price else None,
        price_source="https://example.test/prices" if price else None,
        price_vcpus=fields.get("price_vcpus"), price_memory_gib=fields.get("price_memory_gib"),
        memory_bytes=fields.get("memory_bytes", 4 * 2**30),
    )  # fmt: skip
    run.levels = levels
    return run


def test_compare_uses_the_chosen_baseline_and_ranks_by_price_performance() -> None:
    oci = make_run(1, [18.0, 182.0], "0.025")
    azure = make_run(2, [28.0, 274.0], "0.192", provider="azure")
    unpriced = make_run(3, [20.0, 200.0], None)
    result = compare([oci, azure, unpriced], baseline_id=2)
    assert result.baseline_id == 2
    assert result.levels == [10, 20]
    first, second, third = result.summaries
    assert first.price_performance == Decimal("7280.00")
    assert second.price_performance == Decimal("1427.08")
    assert (first.rank, second.rank, third.rank) == (1, 2, None)
    assert (first.percent_of_best, second.percent_of_best) == (Decimal("100.0"), Decimal("19.6"))
    assert result.value_range == Decimal("5.10")
    assert first.difference == {10: -35.7, 20: -33.6}
    assert second.difference == {10: 0.0, 20: 0.0}
    assert first.max_difference == -33.6
    assert first.units_per_vcpu == 91.0
    assert any("No price for run 3" in warning for warning in result.warnings)


def test_compare_defaults_to_the_first_run_and_refuses_a_foreign_baseline() -> None:
    runs = [make_run(5, [1.0, 2.0], "1"), make_run(6, [1.0, 3.0], "1")]
    assert compare(runs).baseline_id == 5
    with pytest.raises(Invalid) as refused:
        compare(runs, baseline_id=7)
    assert refused.value.field == "baseline"


def test_compare_warns_when_work_units_differ() -> None:
    runs = [make_run(1, [1.0, 2.0], "1"), make_run(2, [1.0, 3.0], "1", unit="perfcpumeasure-4mib")]
    assert "different work units" in compare(runs).warnings[0]


def test_equal_price_performance_shares_a_rank() -> None:
    runs = [make_run(1, [10.0, 100.0], "0.10"), make_run(2, [20.0, 200.0], "0.20"),
            make_run(3, [5.0, 50.0], "0.10"), make_run(4, [30.0, 300.0], "0.30"),
            make_run(5, [1.0, 2.0], None)]  # fmt: skip
    result = compare(runs)
    values = [summary.price_performance for summary in result.summaries]
    assert values == [Decimal(1000), Decimal(1000), Decimal(500), Decimal(1000), None]
    assert [s.rank for s in result.summaries] == [1, 1, 4, 1, None]
    header, *rows = csv_rows(result)
    ranks = {row[0]: row[header.index("rank")] for row in rows}
    assert ranks == {"1": "1", "2": "1", "3": "4", "4": "1", "5": ""}


def test_compare_warns_about_runs_priced_for_another_size() -> None:
    gib = 2**30
    same = make_run(1, [1.0, 2.0], "1", price_vcpus=2, price_memory_gib=Decimal(4),
                    memory_bytes=int(3.8 * gib))  # fmt: skip
    fewer_vcpus = make_run(2, [1.0, 2.0], "1", price_vcpus=1, price_memory_gib=Decimal(4),
                           memory_bytes=4 * gib)  # fmt: skip
    less_memory = make_run(3, [1.0, 2.0], "1", price_vcpus=2, price_memory_gib=Decimal(16),
                           memory_bytes=64 * gib)  # fmt: skip
    warnings = compare([same, fewer_vcpus, less_memory]).warnings
    assert warnings == ["Priced for another size (vCPUs or memory) than the machine tested: "
                        "run 2, run 3. Their units per $/hour are not the tested machine's, so "
                        "they are not ranked: set the price of the machine's size on the run."]  # fmt: skip


def test_a_run_whose_full_load_level_was_not_accepted_is_shown_but_not_ranked() -> None:
    """Disturbed by other work, it measured less than the machine can do: ranked, it could
    come first on a number that is not the machine's."""
    quiet = make_run(1, [18.0, 182.0], "0.025")
    disturbed = make_run(2, [10.0, 775.0], "0.0416")
    disturbed.levels[-1].accepted = False
    disturbed.all_levels_accepted = False
    result = compare([quiet, disturbed])
    first, second = result.summaries
    assert second.price_performance == Decimal("18629.81")  # shown
    assert (first.rank, second.rank) == (1, None)
    assert (first.percent_of_best, second.percent_of_best) == (Decimal("100.0"), None)
    assert result.value_range is None  # one ranked run: no range
    assert result.warnings == [
        "The 100% level of run 2 was not accepted (it missed its busy% band, or other work on "
        "the host disturbed it), so it measured less than the machine can do: its units per "
        "$/hour are shown but not ranked. Run the load test again on a quiet host."
    ]
    header, *rows = csv_rows(result)
    accepted = {(row[0], row[header.index("target_busy_percent")]): row[-1] for row in rows}
    assert header[-1] == "level_accepted"
    assert accepted == {("1", "10"): "true", ("1", "20"): "true", ("2", "10"): "true",
                        ("2", "20"): "false"}  # fmt: skip
    exported = to_json(result, lambda run: {"id": run.id})["runs"]
    assert [run["levels_accepted"] for run in exported] == [[True, True], [True, False]]
    assert [run["rank"] for run in exported] == [1, None]


def test_a_run_with_only_a_lower_level_not_accepted_is_ranked_with_a_warning() -> None:
    partial = make_run(1, [18.0, 182.0], "0.025")
    partial.levels[0].accepted = False
    partial.all_levels_accepted = False
    result = compare([partial, make_run(2, [28.0, 274.0], "0.192")])
    assert [summary.rank for summary in result.summaries] == [1, 2]
    assert result.warnings == ["Some levels below 100% of run 1 were not accepted (they missed "
                               "their busy% band, or other work disturbed them)."]  # fmt: skip


def test_csv_is_tidy_and_quotes_text_a_spreadsheet_would_run() -> None:
    runs = [make_run(1, [18.0, 182.0], "0.025", label="=HYPERLINK(1)", cpu_model="+cmd"),
            make_run(2, [28.0, 274.0], "0.192")]  # fmt: skip
    rows = list(csv.reader(io.StringIO(records(csv_rows(compare(runs))), newline="")))
    header, first = rows[0], dict(zip(rows[0], rows[2], strict=True))
    assert len(rows) == 1 + 4  # two runs, two levels each
    assert header[:3] == ["run_id", "name", "baseline"]
    assert first["name"] == "'=HYPERLINK(1)"
    assert first["cpu_model"] == "'+cmd"
    assert first["units_per_second"] == "182"
    assert first["units_per_usd_hour"] == "7280.00"
    assert first["usd_per_hour"] == "0.025"
    second = dict(zip(header, rows[4], strict=True))
    assert second["difference_vs_baseline_percent"] == "50.5"


# ---- right-sizing --------------------------------------------------------------------------


def test_busy_percent_from_idle_counters_across_cpus() -> None:
    # two CPUs, 60 s apart: cpu0 idles 30 s and cpu1 15 s of 60, so busy = 1 - 45/120 = 62.5 %
    counters = {"0": [(0.0, 100.0), (60.0, 130.0), (120.0, 190.0)],
                "1": [(0.0, 50.0), (60.0, 65.0), (120.0, 125.0)]}  # fmt: skip
    assert busy_percents(counters) == [62.5, 0.0]


def test_busy_percent_skips_resets_and_intervals_a_cpu_misses() -> None:
    counters = {"0": [(0.0, 100.0), (60.0, 10.0), (120.0, 40.0)],  # reboot between 0 and 60
                "1": [(0.0, 50.0), (60.0, 80.0), (120.0, 80.0)]}  # fmt: skip
    assert busy_percents(counters) == [75.0]  # only 120: (1 - (30 + 0) / 120)
    assert busy_percents({}) == []


def test_units_interpolate_through_the_origin_and_stop_at_the_top() -> None:
    run = make_run(1, [18.0, 36.0, 54.0, 72.0, 92.0, 110.0, 128.0, 146.0, 164.0, 182.0], "1")
    points = profile(run)
    assert points[0] == (0.0, 0.0)
    assert units_at(points, 5.0) == pytest.approx(9.0)
    assert units_at(points, 45.0) == pytest.approx(82.0)
    assert units_at(points, 100.0) == 182.0
    assert units_at(points, 100.5) == 182.0


def test_machines_needed_rounds_up_but_not_on_float_noise() -> None:
    assert machines_needed(200.0, 100.0) == 2
    assert machines_needed(200.0000000001, 100.0) == 2
    assert machines_needed(201.0, 100.0) == 3
    assert machines_needed(0.0, 100.0) == 1


def entry(entry_id: int, instance_type: str, price: str) -> PriceEntry:
    return PriceEntry(id=entry_id, provider="aws", region="us-east-1", instance_type=instance_type,
                      vcpus=2, memory_gib=Decimal(4), usd_per_hour=Decimal(price))  # fmt: skip


def test_ranking_by_the_hourly_cost_of_serving_the_demand() -> None:
    # capacity at 70 % busy: small 70, big 210 (linear: units = busy x 1 resp. x 3)
    small = make_run(1, [float(b) for b in range(10, 101, 10)], "1")
    big = make_run(2, [3.0 * b for b in range(10, 101, 10)], "1")
    tiny = make_run(3, [0.5 * b for b in range(10, 101, 10)], "1")
    options = [(entry(1, "small", "0.10"), small), (entry(2, "big", "0.25"), big),
               (entry(3, "tiny", "0.04"), tiny)]  # fmt: skip
    ranked = rank(150.0, 70.0, options)
    # small: ceil(150/70)=3 x 0.10 = 0.30; big: 1 x 0.25; tiny: ceil(150/35)=5 x 0.04 = 0.20
    assert [(c.entry.instance_type, c.machines, c.usd_per_hour) for c in ranked] == [
        ("tiny", 5, Decimal("0.20")), ("big", 1, Decimal("0.25")), ("small", 3, Decimal("0.30"))]  # fmt: skip
    assert ranked[1].units_at_headroom == 210.0
    assert ranked[1].spare_percent == pytest.approx(28.6)
