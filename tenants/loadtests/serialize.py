"""JSON shapes of runs, prices and right-sizing advice (the API and the JSON export)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tenants.loadtests.advice import Advice
from tenants.loadtests.compare import price_performance
from tenants.loadtests.contract import NOT_RECORDED
from tenants.loadtests.models import LoadTestLevel, LoadTestRun, PriceEntry
from tenants.loadtests.rightsizing import Candidate

HOURS_PER_MONTH = 730  # the providers' own convention

Json = dict[str, Any]


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def run_json(run: LoadTestRun, levels: bool = False) -> Json:
    value = price_performance(run.max_units_per_second, run.price_usd_per_hour)
    body: Json = {
        "id": run.id,
        "name": run.display_name,
        "label": run.label,
        "notes": run.notes,
        "collector_id": run.collector_id,
        "collector_name": run.collector.name if run.collector else None,
        "uploaded_at": timestamp(run.uploaded_at),
        "uploaded_by": run.uploaded_by,
        "uploaded_via": run.uploaded_via,
        "started_at": timestamp(run.started_at),
        "finished_at": timestamp(run.finished_at),
        "host": {
            "hostname": run.hostname,
            "cpu_model": run.cpu_model,
            "vcpus": run.vcpus,
            "memory_bytes": run.memory_bytes,
            "kernel": recorded_kernel(run),
            "cloud_provider": run.cloud_provider,
            "region": run.region,
            "instance_type": run.instance_type,
        },
        "unit": run.unit_name,
        "max_units_per_second": run.max_units_per_second,
        "repeatability_cv_percent": run.repeatability_cv_percent,
        "all_levels_accepted": run.all_levels_accepted,
        "price": price_snapshot_json(run),
        "units_per_usd_hour": money(value),
    }
    if levels:
        body["levels"] = [level_json(level) for level in run.levels]
    return body


def recorded_kernel(run: LoadTestRun) -> str | None:
    """The run's kernel; None when not recorded, which the column holds as "" (NOT NULL)."""
    return None if run.kernel == NOT_RECORDED else run.kernel


def price_snapshot_json(run: LoadTestRun) -> Json | None:
    if run.price_usd_per_hour is None:
        return None
    return {
        "entry_id": run.price_entry_id,
        "scope": run.price_scope,
        "provider": run.price_provider,
        "region": run.price_region,
        "instance_type": run.price_instance_type,
        "vcpus": run.price_vcpus,
        "memory_gib": money(run.price_memory_gib),
        "usd_per_hour": money(run.price_usd_per_hour),
        "source": run.price_source,
        "as_of": day(run.price_as_of),
        "match": run.price_match,
        "burstable": bool(run.price_burstable),
    }


def level_json(level: LoadTestLevel) -> Json:
    return {
        "target_busy_percent": level.target_busy_percent,
        "measured_busy_percent": level.measured_busy_percent,
        "units_per_second": level.units_per_second,
        "repeats": level.repeats,
        "cv_percent": level.cv_percent,
        "attempts": level.attempts,
        "accepted": level.accepted,
    }


def price_json(entry: PriceEntry) -> Json:
    return {
        "id": entry.id,
        "scope": entry.scope,
        "provider": entry.provider,
        "region": entry.region,
        "instance_type": entry.instance_type,
        "vcpus": entry.vcpus,
        "memory_gib": float(entry.memory_gib),
        "usd_per_hour": float(entry.usd_per_hour),
        "source": entry.source,
        "as_of": entry.as_of.isoformat(),
        "notes": entry.notes,
        "burstable": entry.burstable,
        "updated_at": timestamp(entry.updated_at),
    }


def candidate_json(rank: int, candidate: Candidate, current: bool) -> Json:
    return {
        "rank": rank,
        "price": price_json(candidate.entry),
        "loadtest_id": candidate.run.id,
        "units_at_headroom": candidate.units_at_headroom,
        "machines": candidate.machines,
        "usd_per_hour": float(candidate.usd_per_hour),
        "usd_per_month": round(float(candidate.usd_per_hour) * HOURS_PER_MONTH, 2),
        "spare_percent": candidate.spare_percent,
        "current": current,
    }


def advice_json(advice: Advice, collector_id: int) -> Json:
    return {
        "collector_id": collector_id,
        "status": advice.status,
        "message": advice.message,
        "params": {
            "percentile": advice.params.percentile,
            "headroom": advice.params.headroom,
            "days": advice.params.days,
        },
        "samples": advice.samples,
        "busy_percentile": advice.busy_percentile,
        "busy_peak": advice.busy_peak,
        "demand_units_per_second": advice.demand_units,
        "own_loadtest_id": advice.own_run.id if advice.own_run else None,
        "candidates": [
            candidate_json(rank, candidate, candidate is advice.current)
            for rank, candidate in enumerate(advice.candidates, start=1)
        ],
        "excluded": advice.excluded,
    }
