"""Comparing 2 to 10 runs: units per level, differences to a chosen baseline, price-performance.

Price-performance is the original's "work units per $/hour": the measured 100 % units per
second divided by the on-demand dollars per hour that applied to the run, computed in decimal
so that 182 units at $0.025/hour is exactly 7,280. Unlike the original, the baseline is chosen
(not whichever run came first), the 100 % level is measured, and runs without a price are
shown without a price-performance instead of with an invented one.

Ranks, % of best and the value range come from the unrounded values: rounded to the cent,
0.004 and 0.0004 units per $/hour would tie, and a best of 0.00 would be divided by.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tenants.errors import Invalid
from tenants.loadtests.models import LoadTestRun
from tenants.loadtests.prices import size_differences

CENTS = Decimal("0.01")
TENTHS = Decimal("0.1")


def exact_price_performance(max_units: float, usd_per_hour: Decimal | None) -> Decimal | None:
    """Units per second at 100 % busy per on-demand $/hour, unrounded; None without a price."""
    if usd_per_hour is None or usd_per_hour <= 0 or max_units <= 0:
        return None
    return Decimal(repr(max_units)) / usd_per_hour


def price_performance(max_units: float, usd_per_hour: Decimal | None) -> Decimal | None:
    """Units per $/hour to the cent, for display; None without a price."""
    return _cents(exact_price_performance(max_units, usd_per_hour))


def percent_of_best(values: dict[int, Decimal | None]) -> dict[int, Decimal | None]:
    """Each value as a percentage of the largest; all None when no value is above zero."""
    known = [value for value in values.values() if value is not None]
    best = max(known, default=Decimal(0))
    if best <= 0:
        return dict.fromkeys(values)
    return {key: None if value is None else (value * 100 / best).quantize(TENTHS)
            for key, value in values.items()}  # fmt: skip


def value_range(values: dict[int, Decimal | None]) -> Decimal | None:
    """Best over worst price-performance ("9.59x"); None with fewer than two priced runs."""
    known = [value for value in values.values() if value is not None and value > 0]
    if len(known) < 2:
        return None
    return (max(known) / min(known)).quantize(CENTS, ROUND_HALF_EVEN)


def difference_percent(value: float | None, baseline: float | None) -> float | None:
    """How far ``value`` is above (+) or below (-) the baseline, in percent, to 0.1."""
    if value is None or baseline is None or baseline <= 0:
        return None
    return round((value - baseline) / baseline * 100, 1)


@dataclass(frozen=True)
class RunSummary:
    run: LoadTestRun
    units: dict[int, float]  # target busy% -> units per second
    measured: dict[int, float]  # target busy% -> measured busy%
    accepted: dict[int, bool]  # target busy% -> whether the level was accepted
    difference: dict[int, float | None]  # target busy% -> % against the baseline
    max_difference: float | None
    units_per_vcpu: float
    exact_price_performance: Decimal | None  # unrounded, what rank and percent_of_best use
    percent_of_best: Decimal | None
    rank: int | None  # by price-performance, 1 = best; equal values share a rank (1, 1, 3);
    # None without a price or with its 100% level not accepted
    unranked_reason: str | None  # why rank is None ("no price", ...); None when ranked

    @property
    def price_performance(self) -> Decimal | None:
        """Units per $/hour to the cent, as shown and exported."""
        return _cents(self.exact_price_performance)


@dataclass(frozen=True)
class Comparison:
    baseline_id: int
    levels: list[int]
    summaries: list[RunSummary]
    value_range: Decimal | None
    warnings: list[str]


def compare(runs: list[LoadTestRun], baseline_id: int | None = None) -> Comparison:
    baseline_id = runs[0].id if baseline_id is None else baseline_id
    by_id = {run.id: run for run in runs}
    if baseline_id not in by_id:
        raise Invalid("baseline must be one of the compared load tests", "baseline")
    base_units = _units(by_id[baseline_id])
    base_max = by_id[baseline_id].max_units_per_second
    value = {run.id: exact_price_performance(run.max_units_per_second, run.price_usd_per_hour)
             for run in runs}  # fmt: skip
    ranked = {run.id: value[run.id] if run.full_load_accepted else None for run in runs}
    share = percent_of_best(ranked)
    ranks = _ranks(ranked)
    summaries = []
    for run in runs:
        units = _units(run)
        summaries.append(RunSummary(
            run=run, units=units,
            measured={lv.target_busy_percent: lv.measured_busy_percent for lv in run.levels},
            accepted={lv.target_busy_percent: lv.accepted for lv in run.levels},
            difference={level: difference_percent(units[level], base_units.get(level))
                        for level in units},
            max_difference=difference_percent(run.max_units_per_second, base_max),
            units_per_vcpu=round(run.max_units_per_second / run.vcpus, 2),
            exact_price_performance=value[run.id], percent_of_best=share[run.id],
            rank=ranks.get(run.id), unranked_reason=_unranked_reason(run, value[run.id]),
        ))  # fmt: skip
    levels = sorted({level for summary in summaries for level in summary.units})
    return Comparison(baseline_id, levels, summaries, value_range(ranked), _warnings(runs))


def _cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(CENTS, ROUND_HALF_EVEN)


UNPRICED = "no price"
FULL_LOAD_NOT_ACCEPTED = "its 100% level was not accepted"


def _unranked_reason(run: LoadTestRun, value: Decimal | None) -> str | None:
    """Why a run with units per $/hour ``value`` has no rank (both reasons, when both apply);
    None for a ranked run."""
    reasons = []
    if value is None:
        reasons.append(UNPRICED)
    if not run.full_load_accepted:
        reasons.append(FULL_LOAD_NOT_ACCEPTED)
    return "; ".join(reasons) or None


def ranking_order(summaries: list[RunSummary]) -> list[RunSummary]:
    """Ranked runs by rank, then unranked runs: priced ones best value first, unpriced last."""

    def key(summary: RunSummary) -> tuple[int, Decimal]:
        if summary.rank is not None:
            return (0, Decimal(summary.rank))
        value = summary.exact_price_performance
        return (1, -value) if value is not None else (2, Decimal(0))

    return sorted(summaries, key=key)


def _units(run: LoadTestRun) -> dict[int, float]:
    return {level.target_busy_percent: level.units_per_second for level in run.levels}


def _ranks(values: dict[int, Decimal | None]) -> dict[int, int]:
    """Competition ranking: one more than the number of better values."""
    priced = [value for value in values.values() if value is not None]
    return {key: 1 + sum(other > value for other in priced)
            for key, value in values.items() if value is not None}  # fmt: skip


def _warnings(runs: list[LoadTestRun]) -> list[str]:
    warnings = []
    units = sorted({run.unit_name for run in runs})
    if len(units) > 1:
        warnings.append(f"These runs count different work units ({', '.join(units)}): their "
                        "numbers are not directly comparable.")  # fmt: skip
    unpriced = [run.display_name for run in runs if run.price_usd_per_hour is None]
    if unpriced:
        warnings.append(f"No price for {', '.join(unpriced)}: set one on the run to include it "
                        "in the price-performance ranking.")  # fmt: skip
    resized = [run.display_name for run in runs if _priced_as_another_size(run)]
    if resized:
        warnings.append(f"Priced for another size (vCPUs or memory) than the machine tested: "
                        f"{', '.join(resized)}. Their units per $/hour are not the tested "
                        "machine's: set the right price on the run.")  # fmt: skip
    elsewhere = [_region_note(run) for run in runs if _priced_for_another_region(run)]
    if elsewhere:
        warnings.append(f"Priced with a row of another region than the machine ran in: "
                        f"{', '.join(elsewhere)}. Prices can differ between regions: check "
                        "the price, or set the right one on the run.")  # fmt: skip
    unranked = [run.display_name for run in runs if not run.full_load_accepted]
    if unranked:
        warnings.append(f"The 100% level of {', '.join(unranked)} was not accepted (it missed "
                        "its busy% band, or other work on the host disturbed it), so it measured "
                        "less than the machine can do: its units per $/hour are shown but not "
                        "ranked. Run the load test again on a quiet host.")  # fmt: skip
    partial = [run.display_name for run in runs
               if not run.all_levels_accepted and run.full_load_accepted]  # fmt: skip
    if partial:
        warnings.append(f"Some levels below 100% of {', '.join(partial)} were not accepted "
                        "(they missed their busy% band, or other work disturbed them).")  # fmt: skip
    return warnings


def _priced_as_another_size(run: LoadTestRun) -> bool:
    if run.price_vcpus is None or run.price_memory_gib is None:
        return False
    return bool(size_differences(run.vcpus, run.memory_bytes, run.price_vcpus,
                                 run.price_memory_gib))  # fmt: skip


def _priced_for_another_region(run: LoadTestRun) -> bool:
    """A price of another region than the run's, or one guessed for a run that named none (the
    catalog's regions are lower-case; a run's is as its host reported it)."""
    if run.price_region is None:
        return False
    return (run.region or "").lower() != run.price_region


def _region_note(run: LoadTestRun) -> str:
    ran = f"ran in {run.region}" if run.region else "region not given"
    return f"{run.display_name} ({ran}, priced for {run.price_region})"


# ---- exports ----------------------------------------------------------------------------------

CSV_HEADER = ["run_id", "name", "baseline", "hostname", "cloud_provider", "region",
              "instance_type", "vcpus", "cpu_model", "unit", "target_busy_percent",
              "measured_busy_percent", "units_per_second", "difference_vs_baseline_percent",
              "max_units_per_second", "max_units_per_vcpu", "usd_per_hour", "price_source",
              "price_as_of", "price_region", "price_match", "units_per_usd_hour", "percent_of_best", "rank",
              "level_accepted"]  # fmt: skip
FORMULA_CELL_START = ("=", "+", "-", "@", "\t", "\r")


def csv_rows(comparison: Comparison) -> list[list[str]]:
    """One row per run and level (tidy data); the run's own figures repeat on each of its rows."""
    rows = [CSV_HEADER]
    for summary in comparison.summaries:
        run = summary.run
        for level in sorted(summary.units):
            rows.append([
                str(run.id), _text(run.display_name), str(run.id == comparison.baseline_id).lower(),
                _text(run.hostname), _text(run.cloud_provider), _text(run.region),
                _text(run.instance_type), str(run.vcpus), _text(run.cpu_model),
                _text(run.unit_name), str(level), _number(summary.measured.get(level)),
                _number(summary.units[level]), _number(summary.difference.get(level)),
                _number(run.max_units_per_second), _number(summary.units_per_vcpu),
                _number(run.price_usd_per_hour), _text(run.price_source),
                run.price_as_of.isoformat() if run.price_as_of else "",
                _text(run.price_region), _text(run.price_match),
                _number(summary.price_performance), _number(summary.percent_of_best),
                _number(summary.rank), str(summary.accepted.get(level, False)).lower(),
            ])  # fmt: skip
    return rows


def _text(value: str | None) -> str:
    """Text a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    text = value or ""
    return "'" + text if text.startswith(FORMULA_CELL_START) else text


def _number(value: float | int | Decimal | None) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def to_json(comparison: Comparison, run_json: Any) -> dict[str, Any]:
    """The comparison as the JSON export and the API answer; ``run_json`` shapes each run."""
    return {
        "baseline_id": comparison.baseline_id,
        "levels": comparison.levels,
        "value_range": _decimal(comparison.value_range),
        "warnings": comparison.warnings,
        "runs": [
            {
                "run": run_json(summary.run),
                "units_per_second": [summary.units.get(level) for level in comparison.levels],
                "measured_busy_percent": [summary.measured.get(level)
                                          for level in comparison.levels],
                "difference_vs_baseline_percent": [summary.difference.get(level)
                                                   for level in comparison.levels],
                "max_difference_vs_baseline_percent": summary.max_difference,
                "max_units_per_vcpu": summary.units_per_vcpu,
                "units_per_usd_hour": _decimal(summary.price_performance),
                "percent_of_best": _decimal(summary.percent_of_best),
                "rank": summary.rank,
                "unranked_reason": summary.unranked_reason,
                "levels_accepted": [summary.accepted.get(level) for level in comparison.levels],
            }
            for summary in comparison.summaries
        ],
    }  # fmt: skip


def _decimal(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
