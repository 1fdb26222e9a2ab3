"""Comparing 2 to 10 runs: units per level, differences to a chosen baseline, price-performance.

Price-performance is the original's "work units per $/hour": the measured 100 % units per
second divided by the on-demand dollars per hour that applied to the run, computed in decimal
so that 182 units at $0.025/hour is exactly 7,280. Unlike the original, the baseline is chosen
(not whichever run came first), the 100 % level is measured, and runs without a price are
shown without a price-performance instead of with an invented one.

Ranks, % of best and the value range come from the unrounded values: rounded to the cent,
0.004 and 0.0004 units per $/hour would tie, and a best of 0.00 would be divided by.

Only runs whose units per $/hour mean what they say are ranked; the others are shown with an
``unranked_reason``: no price; priced with a catalog row of another size (vCPUs or memory)
than the machine tested; a burstable machine type (measured at burst speed, which it keeps only
on CPU credits or at an extra charge); counting another work unit than the baseline; or a 100%
level that was not accepted. Warnings tell, besides, of runs priced for another machine type or
region, runs of one machine type carrying different prices, prices older than the configured
age, and tenant prices more than ten times above or below the global catalog's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tenants.errors import Invalid
from tenants.loadtests.models import LoadTestRun, PriceEntry
from tenants.loadtests.prices import (
    BURSTABLE_NAMES,
    burstable_family,
    far_from_global,
    is_flexible,
    size_differences,
)
from tenants.models import utcnow

CENTS = Decimal("0.01")
TENTHS = Decimal("0.1")
DEFAULT_MAX_PRICE_AGE_DAYS = 180  # the admin setting loadtests.price-max-age-days


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
    # None for a run that is not ranked (see unranked_reason)
    unranked_reason: str | None  # why rank is None ("no price", ...); None when ranked
    burstable: bool = False  # a burstable machine type (measured at burst speed)
    price_age_days: int | None = None  # days from the price's as_of to today; None: no price
    price_stale: bool = False  # the price is older than the configured age

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


def compare(
    runs: list[LoadTestRun],
    baseline_id: int | None = None,
    *,
    today: date | None = None,
    max_price_age_days: int = DEFAULT_MAX_PRICE_AGE_DAYS,
    global_prices: Mapping[int, PriceEntry] | None = None,
) -> Comparison:
    """``global_prices``: for a run priced with a tenant's row, the global row of the same
    machine (``prices.global_counterpart``), to warn of a tenant price far from it."""
    baseline_id = runs[0].id if baseline_id is None else baseline_id
    by_id = {run.id: run for run in runs}
    if baseline_id not in by_id:
        raise Invalid("baseline must be one of the compared load tests", "baseline")
    today = today or utcnow().date()
    baseline = by_id[baseline_id]
    base_units = _units(baseline)
    base_max = baseline.max_units_per_second
    value = {run.id: exact_price_performance(run.max_units_per_second, run.price_usd_per_hour)
             for run in runs}  # fmt: skip
    reasons = {run.id: _unranked_reason(run, value[run.id], baseline) for run in runs}
    ranked = {run.id: None if reasons[run.id] else value[run.id] for run in runs}
    share = percent_of_best(ranked)
    ranks = _ranks(ranked)
    summaries = []
    for run in runs:
        units = _units(run)
        age = (today - run.price_as_of).days if run.price_as_of is not None else None
        summaries.append(RunSummary(
            run=run, units=units,
            measured={lv.target_busy_percent: lv.measured_busy_percent for lv in run.levels},
            accepted={lv.target_busy_percent: lv.accepted for lv in run.levels},
            difference={level: difference_percent(units[level], base_units.get(level))
                        for level in units},
            max_difference=difference_percent(run.max_units_per_second, base_max),
            units_per_vcpu=round(run.max_units_per_second / run.vcpus, 2),
            exact_price_performance=value[run.id], percent_of_best=share[run.id],
            rank=ranks.get(run.id), unranked_reason=reasons[run.id],
            burstable=is_burstable(run), price_age_days=age,
            price_stale=age is not None and age > max_price_age_days,
        ))  # fmt: skip
    levels = sorted({level for summary in summaries for level in summary.units})
    warnings = _warnings(runs, baseline) + _price_warnings(
        summaries, max_price_age_days, global_prices or {}
    )
    return Comparison(baseline_id, levels, summaries, value_range(ranked), warnings)


def _cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(CENTS, ROUND_HALF_EVEN)


UNPRICED = "no price"
OTHER_SIZE = "priced for another size"
BURSTABLE = "burstable machine type (measured at burst speed)"
OTHER_UNIT = "different work unit"
FULL_LOAD_NOT_ACCEPTED = "its 100% level was not accepted"


def _unranked_reason(run: LoadTestRun, value: Decimal | None, baseline: LoadTestRun) -> str | None:
    """Why a run with units per $/hour ``value`` has no rank (every reason that applies, joined
    by '; '); None for a ranked run."""
    reasons = []
    if value is None:
        reasons.append(UNPRICED)
    if _priced_as_another_size(run):
        reasons.append(OTHER_SIZE)
    if is_burstable(run):
        reasons.append(BURSTABLE)
    if run.unit_name != baseline.unit_name:
        reasons.append(OTHER_UNIT)
    if not run.full_load_accepted:
        reasons.append(FULL_LOAD_NOT_ACCEPTED)
    return "; ".join(reasons) or None


def is_burstable(run: LoadTestRun) -> bool:
    """The run's machine type is of a burstable family, or the catalog row it was priced with
    for that type says it is burstable."""
    if burstable_family(run.cloud_provider, run.instance_type):
        return True
    return bool(run.price_burstable) and not priced_as_another_type(run)


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


def _warnings(runs: list[LoadTestRun], baseline: LoadTestRun) -> list[str]:
    warnings = []
    units = sorted({run.unit_name for run in runs})
    if len(units) > 1:
        others = [run.display_name for run in runs if run.unit_name != baseline.unit_name]
        warnings.append(f"These runs count different work units ({', '.join(units)}): their "
                        "numbers are not directly comparable. Only runs counting the baseline's "
                        f"unit ({baseline.unit_name}) are ranked; {', '.join(others)} "
                        "(different work unit) are shown, not ranked.")  # fmt: skip
    unpriced = [run.display_name for run in runs if run.price_usd_per_hour is None]
    if unpriced:
        warnings.append(f"No price for {', '.join(unpriced)}: set one on the run to include it "
                        "in the price-performance ranking.")  # fmt: skip
    resized = [run.display_name for run in runs if _priced_as_another_size(run)]
    if resized:
        warnings.append(f"Priced for another size (vCPUs or memory) than the machine tested: "
                        f"{', '.join(resized)}. Their units per $/hour are not the tested "
                        "machine's, so they are not ranked: set the price of the machine's "
                        "size on the run.")  # fmt: skip
    retyped = [_type_note(run) for run in runs if priced_as_another_type(run)]
    if retyped:
        warnings.append(f"Priced with a catalog row of another machine type than the one "
                        f"tested: {', '.join(retyped)}. Their units per $/hour use that type's "
                        "price: set the tested type's price on the run.")  # fmt: skip
    burstable = [run.display_name for run in runs if is_burstable(run)]
    if burstable:
        warnings.append(f"{', '.join(burstable)}: burstable machine type ({BURSTABLE_NAMES}). "
                        "The load test measured its burst speed, which it keeps only while it "
                        "has CPU credits (in standard mode it then falls to its baseline) or at "
                        "an extra charge (AWS unlimited mode: $0.05 per vCPU-hour above the "
                        "baseline), so its units per $/hour overstate a sustained load's: shown, "
                        "not ranked.")  # fmt: skip
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


def _price_warnings(
    summaries: list[RunSummary], max_age_days: int, global_prices: Mapping[int, PriceEntry]
) -> list[str]:
    """Runs of one machine carrying different prices, old prices, tenant prices far from the
    global catalog's."""
    warnings = []
    machines: dict[tuple[str, str, int, int], list[LoadTestRun]] = {}
    for summary in summaries:
        run = summary.run
        if run.price_usd_per_hour is not None and run.cloud_provider and run.instance_type:
            machines.setdefault(_machine(run), []).append(run)
    for (provider, _, _, _), same in machines.items():
        if len({run.price_usd_per_hour for run in same}) > 1:
            listed = ", ".join(f"{run.display_name} ${_usd(run.price_usd_per_hour)}/h "
                               f"({_price_origin(run)})" for run in same)  # fmt: skip
            warnings.append(f"Runs of the same machine type ({provider} {same[0].instance_type}) "
                            f"carry different prices: {listed}. Each run keeps the price it was "
                            "stored with, so their ranks differ by price as well as by "
                            "performance: re-price them from the current catalog, or set the "
                            "same price on each.")  # fmt: skip
    stale: dict[date, list[RunSummary]] = {}
    for summary in summaries:
        if summary.price_stale and summary.run.price_as_of is not None:
            stale.setdefault(summary.run.price_as_of, []).append(summary)
    if stale:
        listed = "; ".join(
            f"as of {day} ({found[0].price_age_days} days ago): "
            + ", ".join(summary.run.display_name for summary in found)
            for day, found in sorted(stale.items()))  # fmt: skip
        warnings.append(f"Prices older than {max_age_days} days: {listed}. Providers change "
                        "prices: check them against their source, and re-price the runs once "
                        "the catalog is updated.")  # fmt: skip
    far = []
    for summary in summaries:
        run, other = summary.run, global_prices.get(summary.run.id)
        if other is None or run.price_usd_per_hour is None or run.price_scope != "tenant":
            continue
        ratio = far_from_global(run.price_usd_per_hour, other.usd_per_hour)
        if ratio is not None:
            far.append(f"{run.display_name} (${_usd(run.price_usd_per_hour)}/h, {ratio} of the "
                       f"global ${_usd(other.usd_per_hour)}/h)")  # fmt: skip
    if far:
        warnings.append(f"Tenant prices far from the global catalog's for the same machine: "
                        f"{', '.join(far)}. Prices are US dollars per hour (a monthly price is "
                        "about 730 times the hourly one): check the tenant's price.")  # fmt: skip
    return warnings


def _machine(run: LoadTestRun) -> tuple[str, str, int, int]:
    """A machine type as priced: provider and type; a flexible shape's size too."""
    size = (
        (run.vcpus, round(run.memory_bytes / 2**30))
        if is_flexible(run.instance_type or "")
        else (0, 0)
    )
    return (run.cloud_provider or "", (run.instance_type or "").lower(), *size)


def _price_origin(run: LoadTestRun) -> str:
    parts = [f"{run.price_scope or 'catalog'} price",
             f"for {run.price_region}" if run.price_region else "",
             f"as of {run.price_as_of}" if run.price_as_of else ""]  # fmt: skip
    return " ".join(part for part in parts if part)


def _usd(value: Decimal | None) -> str:
    return "" if value is None else f"{value.normalize():f}"


def priced_as_another_type(run: LoadTestRun) -> bool:
    """A price whose provider or instance type is not the run's (a row chosen by hand)."""
    if run.price_usd_per_hour is None or run.price_instance_type is None:
        return False
    return (run.price_provider != run.cloud_provider
            or run.price_instance_type.lower() != (run.instance_type or "").lower())  # fmt: skip


def _type_note(run: LoadTestRun) -> str:
    tested = f"{run.cloud_provider or 'no provider'} {run.instance_type or 'no type given'}"
    return (
        f"{run.display_name} ({tested}, priced as {run.price_provider} {run.price_instance_type})"
    )


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
              "price_as_of", "price_region", "price_match", "price_provider", "price_instance_type",
              "price_burstable", "price_stale", "units_per_usd_hour", "percent_of_best", "rank",
              "unranked_reason", "level_accepted"]  # fmt: skip


def csv_rows(comparison: Comparison) -> list[list[str]]:
    """One row per run and level (tidy data); the run's own figures repeat on each of its rows.
    Text is as stored: write the rows with tenants.csvsafe.records, which keeps a spreadsheet
    from running any of it as a formula."""
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
                _money(run.price_usd_per_hour), _text(run.price_source),
                run.price_as_of.isoformat() if run.price_as_of else "",
                _text(run.price_region), _text(run.price_match), _text(run.price_provider),
                _text(run.price_instance_type), _flag(run.price_burstable),
                _flag(summary.price_stale if run.price_as_of else None),
                _number(summary.price_performance), _number(summary.percent_of_best),
                _number(summary.rank), _text(summary.unranked_reason),
                str(summary.accepted.get(level, False)).lower(),
            ])  # fmt: skip
    return rows


def _text(value: str | None) -> str:
    return value or ""


def _money(value: Decimal | None) -> str:
    """Dollars as the JSON export gives them: 0.038, not the stored 0.038000."""
    return "" if value is None else repr(float(value))


def _flag(value: bool | None) -> str:
    return "" if value is None else str(value).lower()


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
                "burstable": summary.burstable,
                "price_age_days": summary.price_age_days,
                "price_stale": summary.price_stale,
                "levels_accepted": [summary.accepted.get(level) for level in comparison.levels],
            }
            for summary in comparison.summaries
        ],
    }  # fmt: skip


def _decimal(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
