"""Right-sizing advice for one collector: its CPU history, its own load test, the ranked machines.

When something needed is missing (no InfluxDB, no history, no load test of its own, no other
machine type with a load test and a price) the advice says which, instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session, defer, selectinload
from sqlalchemy.sql.selectable import ScalarSelect

from perfanalysis.report.stats import percentile
from tenants.access import Actor, require
from tenants.errors import Invalid
from tenants.loadtests.cpu_history import CpuHistory, HistoryUnavailable
from tenants.loadtests.models import LoadTestLevel, LoadTestRun, PriceEntry
from tenants.loadtests.prices import burstable_family, effective_catalog
from tenants.loadtests.rightsizing import (
    Candidate,
    busy_percents,
    profile,
    rank,
    units_at,
)
from tenants.loadtests.runs import latest_for_collector
from tenants.models import Collector, Tenant

WHOLE = re.compile(r"[0-9]{1,3}")
DECIMAL = re.compile(r"[0-9]{1,3}(\.[0-9]{1,6})?")
LIMITS = {"percentile": (50.0, 100.0), "headroom": (10.0, 100.0), "days": (1, 90)}
Machine = tuple[str, str, int]  # provider, lower-case instance type, vCPUs


@dataclass(frozen=True)
class Params:
    percentile: float = 95.0  # of busy% over the window
    headroom: float = 70.0  # busy% a machine may reach when serving the demand
    days: int = 7  # how much history


def parse_params(args: Mapping[str, str]) -> Params:
    """``percentile``, ``headroom`` and ``days`` from a query string; each refusal names its field."""
    values: dict[str, float | int] = {}
    for name, (low, high) in LIMITS.items():
        text = args.get(name)
        if text is None:
            continue
        pattern = WHOLE if name == "days" else DECIMAL
        if not pattern.fullmatch(text):
            raise Invalid(f"{name} must be a number from {low:g} to {high:g}", name)
        number = int(text) if name == "days" else float(text)
        if not low <= number <= high:
            raise Invalid(f"{name} must be a number from {low:g} to {high:g}", name)
        values[name] = number
    return Params(**values)  # type: ignore[arg-type]


@dataclass
class Advice:
    status: str  # ok | no_influxdb | history_error | no_history | no_loadtest | no_candidates
    message: str
    params: Params
    own_run: LoadTestRun | None = None
    samples: int = 0
    busy_percentile: float | None = None
    busy_peak: float | None = None
    demand_units: float | None = None
    candidates: list[Candidate] = field(default_factory=list)
    current: Candidate | None = None
    excluded: list[str] = field(default_factory=list)


def advise(
    db: Session, actor: Actor, tenant: Tenant, collector: Collector, history: CpuHistory,
    params: Params,
) -> Advice:  # fmt: skip
    require(db, actor, tenant, "read")
    own = latest_for_collector(db, tenant, collector.id)
    advice = Advice("ok", "", params, own)
    try:
        counters = history.idle_counters(tenant, collector, params.days)
    except HistoryUnavailable as exc:
        advice.status, advice.message = exc.reason, exc.message
        return advice
    busy = busy_percents(counters)
    if not busy:
        advice.status = "no_history"
        advice.message = (f"No CPU history for collector {collector.name} in the last "
                          f"{params.days} days: InfluxDB holds no node_cpu_seconds_total "
                          "idle or iowait counters for it.")  # fmt: skip
        return advice
    advice.samples = len(busy)
    advice.busy_percentile = round(percentile(sorted(busy), params.percentile), 2)
    advice.busy_peak = round(max(busy), 2)
    if own is None:
        advice.status = "no_loadtest"
        advice.message = (f"Collector {collector.name} has no load test of its own: run "
                          "'perfanalysis loadtest run --upload' on it with its key.")  # fmt: skip
        return advice
    advice.demand_units = round(units_at(profile(own), advice.busy_percentile), 3)
    options, advice.excluded = machine_options(db, tenant, own)
    advice.candidates = rank(advice.demand_units, params.headroom, options)
    advice.current = next(
        (c for c in advice.candidates if c.entry.id == own.price_entry_id),
        next((c for c in advice.candidates if _same_machine(c.run, own)), None),
    )
    if not advice.candidates:
        advice.status = "no_candidates"
        advice.message = ("No machine type in the catalog has both a price and a load test in "
                          "this tenant: upload load tests of the machines to compare.")  # fmt: skip
    return advice


def machine_options(
    db: Session, tenant: Tenant, own: LoadTestRun
) -> tuple[list[tuple[PriceEntry, LoadTestRun]], list[str]]:
    """Each catalog row with the tenant's latest load test of that machine type (provider,
    instance type, vCPUs) whose 100% level was accepted, and why other tested machines were
    left out. A burstable type is left out: its load test measured burst speed, which it
    sustains only on CPU credits or at an extra charge."""
    latest, tested_machines = latest_accepted_runs(db, tenant)
    options, excluded = [], []
    for entry in effective_catalog(db, tenant):
        machine = (entry.provider, entry.instance_type.lower(), entry.vcpus)
        run = latest.get(machine)
        name = (f"{entry.instance_type} ({entry.region}, {entry.vcpus} vCPUs, "
                f"{entry.memory_gib.normalize():f} GiB)")  # fmt: skip
        if run is None:
            if machine in tested_machines:
                excluded.append(f"{name}: no load test of it had its 100% level accepted")
            continue
        if entry.burstable or burstable_family(entry.provider, entry.instance_type):
            excluded.append(f"{name}: a burstable machine type, measured at burst speed, which it "
                            "sustains only on CPU credits or at an extra charge")  # fmt: skip
            continue
        if run.unit_name != own.unit_name:
            excluded.append(f"{name}: its load test counts {run.unit_name}, not {own.unit_name}")
            continue
        options.append((entry, run))
    return options, excluded


def latest_accepted_runs(
    db: Session, tenant: Tenant
) -> tuple[dict[Machine, LoadTestRun], set[Machine]]:
    """The tenant's latest run (by start, then id) of each machine type whose 100% level was
    accepted, with its levels; and every machine type the tenant has a run of.

    The database picks one run per machine type (a window function), so a tenant with
    thousands of runs costs two small queries, not every run with its levels and document:
    an accepted run ranks first in its type, and a type whose first run is not accepted has
    none. Instance types are ASCII (the upload contract's ``WORD``), so SQL's ``lower`` groups
    them as Python's does."""
    accepted = func.coalesce(_full_load_accepted(), false())
    provider, instance_type = LoadTestRun.cloud_provider, LoadTestRun.instance_type
    place = func.row_number().over(
        partition_by=(provider, func.lower(instance_type), LoadTestRun.vcpus),
        order_by=(accepted.desc(), LoadTestRun.started_at.desc(), LoadTestRun.id.desc()),
    )
    ranked = (
        select(LoadTestRun.id, provider, instance_type, LoadTestRun.vcpus,
               accepted.label("accepted"), place.label("place"))
        .where(LoadTestRun.tenant_id == tenant.id,
               provider.is_not(None), provider != "", instance_type.is_not(None),
               instance_type != "")
        .subquery()
    )  # fmt: skip
    firsts = db.execute(select(ranked).where(ranked.c.place == 1)).all()
    tested = {(row.cloud_provider, row.instance_type.lower(), row.vcpus) for row in firsts}
    chosen = [row.id for row in firsts if row.accepted]
    if not chosen:
        return {}, tested
    runs = db.scalars(
        select(LoadTestRun).where(LoadTestRun.id.in_(chosen))
        .options(defer(LoadTestRun.document), selectinload(LoadTestRun.levels))
    )  # fmt: skip
    return {_machine(run): run for run in runs}, tested


def _full_load_accepted() -> ScalarSelect[bool]:
    """Whether a run's highest level, its 100% one, was accepted (NULL for a run without
    levels), as ``LoadTestRun.full_load_accepted`` tells from the loaded levels."""
    return (
        select(LoadTestLevel.accepted)
        .where(LoadTestLevel.run_id == LoadTestRun.id)
        .order_by(LoadTestLevel.target_busy_percent.desc())
        .limit(1)
        .correlate(LoadTestRun)
        .scalar_subquery()
    )


def _machine(run: LoadTestRun) -> Machine:
    return (run.cloud_provider or "", (run.instance_type or "").lower(), run.vcpus)


def _same_machine(run: LoadTestRun, own: LoadTestRun) -> bool:
    return _machine(run) == _machine(own)
