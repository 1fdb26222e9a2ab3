"""The price catalog: global rows seeded from provisioning/prices.yaml, plus each tenant's rows.

A machine is (provider, region, instance type, vCPUs, memory): flexible shapes such as OCI's
E5.Flex have one row per configuration. A tenant sees the global rows with its own rows laid
over them: a tenant row with the same machine key *overrides* the global one (a negotiated
discount, a different currency conversion), any other tenant row *adds* a machine. Tenant
admins edit only their tenant's rows; global rows change only through ``seed_prices`` (the
YAML file is where their sources are reviewed). The file holds one row per machine: a repeated
machine, a repeated key or a top-level key other than ``prices`` is refused, naming the file and
the row, and nothing is stored.

A run copies the price it gets (``snapshot``) so that later catalog changes leave it alone.

A row says whether its machine type is *burstable*: it runs above a baseline share of its CPUs
only while it has CPU credits (AWS t2/t3/t3a/t4g in standard mode, Azure B-series, GCP's
shared-core e2-micro/small/medium, f1-micro and g1-small, OCI's VM.Standard.E2.1.Micro) or at
an extra charge per vCPU-hour (AWS unlimited mode). A load test measures such a machine at burst
speed, so the comparison does not rank it. The known families are always burstable; any other
row may be marked so (an OCI flexible shape configured with a baseline, say).

A tenant's price more than ``FAR_FROM_GLOBAL`` times above or below the global row for the same
machine (a monthly price typed as hourly is 730x) is accepted with a warning, on the form, in
the API's answer and in comparisons.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from perfanalysis import strictyaml
from tenants import validation
from tenants.access import Actor, require, require_platform
from tenants.audit import record
from tenants.errors import Conflict, Forbidden, Invalid, NotFound
from tenants.loadtests.contract import PROVIDERS, Host
from tenants.loadtests.models import LoadTestRun, PriceEntry
from tenants.models import Tenant, utcnow

MAX_PRICE = Decimal(10000)
MAX_GIB = Decimal(1 << 20)
PRICE_DECIMALS = 6
GIB_DECIMALS = 2
BYTES_PER_GIB = 1 << 30
MEMORY_TOLERANCE = Decimal("0.1")  # of the catalog row's memory, but at least MEMORY_TOLERANCE_GIB
MEMORY_TOLERANCE_GIB = Decimal(1)  # MemTotal is below the nominal size by what the kernel keeps
FLEXIBLE_SUFFIX = ".flex"  # OCI's flexible shapes: one catalog row per configuration
DUPLICATE_MACHINE = ("this tenant already has a price for that machine (provider, region, "
                     "instance type, vCPUs and memory)")  # fmt: skip
FIELDS = ("provider", "region", "instance_type", "vcpus", "memory_gib", "usd_per_hour", "source",
          "as_of", "notes", "burstable")  # fmt: skip
FAR_FROM_GLOBAL = Decimal(10)  # a tenant price this many times above or below the global row
BURSTABLE_FAMILIES = {  # lower-case instance types, whole
    "aws": re.compile(r"t(1|2|3|3a|4g)\..+"),
    "azure": re.compile(r"standard_b[0-9].*"),
    "gcp": re.compile(r"(e2-(micro|small|medium)|f1-micro|g1-small)"),
    "oci": re.compile(r"vm\.standard\.e2\.1\.micro"),
}
BURSTABLE_NAMES = ("AWS t2, t3, t3a and t4g, Azure B-series, GCP e2-micro, e2-small, e2-medium, "
                   "f1-micro and g1-small, OCI VM.Standard.E2.1.Micro")  # fmt: skip
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def burstable_family(provider: str | None, instance_type: str | None) -> bool:
    """Whether the type belongs to a family that is always burstable (``BURSTABLE_NAMES``)."""
    pattern = BURSTABLE_FAMILIES.get((provider or "").lower())
    return bool(pattern and instance_type and pattern.fullmatch(instance_type.lower()))


# ---- reading the catalog ----------------------------------------------------------------------


def effective_catalog(db: Session, tenant: Tenant) -> list[PriceEntry]:
    """Global rows not overridden by the tenant, and the tenant's rows, in a stable order."""
    rows = list(db.scalars(select(PriceEntry).where(
        or_(PriceEntry.tenant_id.is_(None), PriceEntry.tenant_id == tenant.id))))  # fmt: skip
    own = {row.machine_key() for row in rows if row.tenant_id is not None}
    visible = [row for row in rows if row.tenant_id is not None or row.machine_key() not in own]
    return sorted(visible, key=_order)


def _order(entry: PriceEntry) -> tuple[str, str, str, int, Decimal, int]:
    return (entry.provider, entry.region, entry.instance_type.lower(), entry.vcpus,
            entry.memory_gib, 0 if entry.tenant_id is None else 1)  # fmt: skip


def list_catalog(db: Session, actor: Actor, tenant: Tenant) -> list[PriceEntry]:
    require(db, actor, tenant, "read")
    return effective_catalog(db, tenant)


def overridden_ids(db: Session, tenant: Tenant) -> set[int]:
    """Global rows the tenant has overridden (shown struck through, for transparency)."""
    own = {row.machine_key() for row in db.scalars(
        select(PriceEntry).where(PriceEntry.tenant_id == tenant.id))}  # fmt: skip
    globals_ = db.scalars(select(PriceEntry).where(PriceEntry.tenant_id.is_(None)))
    return {row.id for row in globals_ if row.machine_key() in own}


def visible_entry(
    db: Session, tenant: Tenant, entry_id: int, field: str = "price_id"
) -> PriceEntry:
    """A catalog row the tenant may use: global or its own; another tenant's row is unknown."""
    entry = db.get(PriceEntry, entry_id)
    if entry is None or entry.tenant_id not in (None, tenant.id):
        raise NotFound("no such price in this tenant's catalog", field)
    return entry


# ---- checking input ---------------------------------------------------------------------------


def clean_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Form strings or JSON values, checked; each refusal names its field."""
    clean: dict[str, Any] = {
        "provider": _provider(fields.get("provider")),
        "region": _word(fields.get("region"), "region", 60).lower(),
        "instance_type": _word(fields.get("instance_type"), "instance_type", 80),
        "vcpus": _vcpus(fields.get("vcpus")),
        "memory_gib": _decimal(fields.get("memory_gib"), "memory_gib", MAX_GIB, GIB_DECIMALS,
                               "memory must be more than 0 GiB"),
        "usd_per_hour": _decimal(fields.get("usd_per_hour"), "usd_per_hour", MAX_PRICE, PRICE_DECIMALS,
                                 "the price must be more than $0 per hour: a free or negative "
                                 "price makes units per $/hour meaningless"),
        "source": validation.text(fields.get("source"), "source", 500),
        "as_of": _as_of(fields.get("as_of")),
        "notes": validation.text(fields.get("notes"), "notes", 1000, required=False),
    }  # fmt: skip
    clean["burstable"] = _burstable(fields.get("burstable"), clean["provider"],
                                    clean["instance_type"])  # fmt: skip
    return clean


def _burstable(value: Any, provider: str, instance_type: str) -> bool:
    """True or false as JSON, or a form's word; absent (or empty, or "auto"): whether the type is
    of a burstable family. A type of such a family cannot be marked not burstable."""
    family = burstable_family(provider, instance_type)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return family
    if isinstance(value, bool):
        flag = value
    elif isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        flag = value.strip().lower() in TRUE_WORDS
    else:
        raise Invalid("burstable must be true or false (or left out: decided by the type)",
                      "burstable")  # fmt: skip
    if family and not flag:
        raise Invalid(f"burstable: {instance_type} is of a burstable family "
                      f"({BURSTABLE_NAMES}); it cannot be marked not burstable", "burstable")  # fmt: skip
    return flag


def _provider(value: Any) -> str:
    """One of the providers an upload may name: a row of another would never match a run."""
    provider = _word(value, "provider", 20).lower()
    if provider not in PROVIDERS:
        raise Invalid(f"provider must be one of {', '.join(PROVIDERS)}", "provider")
    return provider


def _word(value: Any, field: str, length: int) -> str:
    text = validation.text(value, field, length)
    if (
        not text[0].isalnum()
        or not all(c.isalnum() or c in "._-" for c in text)
        or not text.isascii()
    ):
        raise Invalid(f"{field} must be letters, digits, '.', '_' or '-'", field)
    return text


def _vcpus(value: Any) -> int:
    number = validation.optional_int(value, "vcpus", 1, 4096)
    if number is None:
        raise Invalid("vcpus is required", "vcpus")
    return number


def _decimal(value: Any, field: str, high: Decimal, decimals: int, low_message: str) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Invalid(f"{field} is required", field)
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise Invalid(f"{field} must be a number", field)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise Invalid(f"{field} must be a number, e.g. 0.085", field) from None
    if not number.is_finite():
        raise Invalid(f"{field} must be a finite number", field)
    if number <= 0:
        raise Invalid(low_message, field)
    if number > high:
        raise Invalid(f"{field} must be at most {high}", field)
    step = Decimal(1).scaleb(-decimals)
    if number != number.quantize(step):
        raise Invalid(f"{field} may have at most {decimals} decimals", field)
    return number.quantize(step)


def _as_of(value: Any) -> date:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        day = value
    else:
        text = validation.text(value, "as_of", 10)
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise Invalid("as_of must be a date such as 2025-06-01", "as_of") from None
    if day > (utcnow() + timedelta(days=1)).date():
        raise Invalid("as_of must not be in the future", "as_of")
    return day


# ---- tenant rows ------------------------------------------------------------------------------


def create_price(db: Session, actor: Actor, tenant: Tenant, fields: dict[str, Any]) -> PriceEntry:
    require(db, actor, tenant, "admin")
    entry = PriceEntry(tenant_id=tenant.id, **clean_fields(fields))
    _refuse_duplicate(db, tenant, entry.machine_key(), None)
    with _unique_machine(db):
        db.add(entry)
        db.flush()
        record(db, actor, "price.create", tenant, "price", entry.id, **_audit_fields(entry))
        db.commit()
    return entry


def update_price(
    db: Session, actor: Actor, tenant: Tenant, entry_id: int, fields: dict[str, Any]
) -> PriceEntry:
    require(db, actor, tenant, "admin")
    entry = _own_entry(db, tenant, entry_id)
    before = _audit_fields(entry)
    current = _current(entry)
    if "burstable" not in fields and any(
        name in fields and str(fields[name]).lower() != str(current[name]).lower()
        for name in ("provider", "instance_type")
    ):
        del current["burstable"]  # another type: its family decides, unless the change says
    clean = clean_fields({**current, **fields})
    _refuse_duplicate(db, tenant, PriceEntry(**clean).machine_key(), entry.id)
    with _unique_machine(db):
        for name, value in clean.items():
            setattr(entry, name, value)
        record(db, actor, "price.update", tenant, "price", entry.id, before=before,
               after=_audit_fields(entry))  # fmt: skip
        db.commit()
    return entry


def delete_price(db: Session, actor: Actor, tenant: Tenant, entry_id: int) -> None:
    require(db, actor, tenant, "admin")
    entry = _own_entry(db, tenant, entry_id)
    record(db, actor, "price.delete", tenant, "price", entry.id, **_audit_fields(entry))
    db.delete(entry)
    db.commit()


def _own_entry(db: Session, tenant: Tenant, entry_id: int) -> PriceEntry:
    entry = visible_entry(db, tenant, entry_id, "")
    if entry.tenant_id is None:
        raise Forbidden("global prices come from the seed file; add a tenant price with the same "
                        "machine to override this one")  # fmt: skip
    return entry


def _current(entry: PriceEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in FIELDS}


def _refuse_duplicate(
    db: Session, tenant: Tenant, key: tuple[str, str, str, int, Decimal], entry_id: int | None
) -> None:
    """Checked before any change is made, so the query cannot flush a half-applied one."""
    for other in db.scalars(select(PriceEntry).where(PriceEntry.tenant_id == tenant.id)):
        if other.id != entry_id and other.machine_key() == key:
            raise Conflict(DUPLICATE_MACHINE, "instance_type")


@contextmanager
def _unique_machine(db: Session) -> Iterator[None]:
    """A concurrent request may store the same machine between the check and the write: the
    unique constraint then refuses it, with the same answer as the check."""
    try:
        yield
    except IntegrityError:
        db.rollback()
        raise Conflict(DUPLICATE_MACHINE, "instance_type") from None


def _audit_fields(entry: PriceEntry) -> dict[str, Any]:
    return {"provider": entry.provider, "region": entry.region,
            "instance_type": entry.instance_type, "vcpus": entry.vcpus,
            "memory_gib": str(entry.memory_gib), "usd_per_hour": str(entry.usd_per_hour),
            "as_of": entry.as_of.isoformat(), "burstable": entry.burstable}  # fmt: skip


# ---- a tenant price far from the global one ---------------------------------------------------


def global_counterpart(
    db: Session, provider: str, region: str, instance_type: str, vcpus: int, memory_gib: Decimal
) -> PriceEntry | None:
    """The global row of the same machine: same region first, else any region (list prices
    differ between regions by far less than ``FAR_FROM_GLOBAL``)."""
    rows = [row for row in db.scalars(select(PriceEntry).where(
                PriceEntry.tenant_id.is_(None), PriceEntry.provider == provider,
                PriceEntry.vcpus == vcpus, PriceEntry.memory_gib == memory_gib))
            if row.instance_type.lower() == instance_type.lower()]  # fmt: skip
    return min(rows, key=lambda row: (row.region != region, row.region), default=None)


def global_counterparts(db: Session, runs: list[LoadTestRun]) -> dict[int, PriceEntry]:
    """For each run priced with a tenant's row, the global row of the same machine (if any)."""
    found = {}
    for run in runs:
        if (run.price_scope != "tenant" or run.price_provider is None or run.price_region is None
                or run.price_instance_type is None or run.price_vcpus is None
                or run.price_memory_gib is None):  # fmt: skip
            continue
        other = global_counterpart(db, run.price_provider, run.price_region,
                                   run.price_instance_type, run.price_vcpus, run.price_memory_gib)  # fmt: skip
        if other is not None:
            found[run.id] = other
    return found


def far_from_global(usd_per_hour: Decimal, global_usd_per_hour: Decimal) -> str | None:
    """How far a price is from the global one ("730x", "1/20") when it is more than
    FAR_FROM_GLOBAL times above or below it; None when it is within."""
    if usd_per_hour <= 0 or global_usd_per_hour <= 0:
        return None
    ratio = usd_per_hour / global_usd_per_hour
    if ratio > FAR_FROM_GLOBAL:
        return f"{ratio:.0f}x"
    if ratio < 1 / FAR_FROM_GLOBAL:
        return f"1/{1 / ratio:.0f}"
    return None


def price_warnings(db: Session, entry: PriceEntry) -> list[str]:
    """What to tell whoever stored a tenant price: one far from the global row's."""
    if entry.tenant_id is None:
        return []
    other = global_counterpart(db, entry.provider, entry.region, entry.instance_type,
                               entry.vcpus, entry.memory_gib)  # fmt: skip
    ratio = None if other is None else far_from_global(entry.usd_per_hour, other.usd_per_hour)
    if other is None or ratio is None:
        return []
    return [f"usd_per_hour {entry.usd_per_hour.normalize():f} is {ratio} of the global catalog's "
            f"{other.usd_per_hour.normalize():f} for {entry.provider} {entry.instance_type} "
            f"({other.region}): prices here are US dollars per hour (a monthly price is about "
            "730 times the hourly one). Check it; it is stored and used as it is."]  # fmt: skip


# ---- the global seed --------------------------------------------------------------------------


def seed_prices(db: Session, actor: Actor, path: Path | str) -> int:
    """Insert or update the global rows from a YAML file; returns how many rows changed."""
    require_platform(actor)
    entries = read_seed(Path(path))
    existing = {row.machine_key(): row for row in
                db.scalars(select(PriceEntry).where(PriceEntry.tenant_id.is_(None)))}  # fmt: skip
    changed = 0
    for clean in entries:
        candidate = PriceEntry(tenant_id=None, **clean)
        row = existing.get(candidate.machine_key())
        if row is None:
            db.add(candidate)
            existing[candidate.machine_key()] = candidate
            changed += 1
        elif _current(row) != clean:
            for name, value in clean.items():
                setattr(row, name, value)
            changed += 1
    record(db, actor, "price.seed", None, "price_catalog", Path(path).name[:60], path=str(path),
           rows=len(entries), changed=changed)  # fmt: skip
    db.commit()
    return changed


def read_seed(path: Path) -> list[dict[str, Any]]:
    """The rows of a price file, checked; Invalid names the file and the row (and the field).
    The shared loader refuses a repeated key (a second ``prices:`` would drop the first list),
    an alias bomb, deep nesting and a scalar its tag cannot be, at their line and column, and
    keeps an unquoted date that is no date (2025-02-30) as text, so that its row and field are
    named like any other bad value."""
    try:
        text = path.read_text(encoding="utf-8")
        document = strictyaml.load(text)
    except strictyaml.StrictYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise Invalid(f"cannot read the price file {path}: {where}{exc.problem}",
                      "path") from None  # fmt: skip
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise Invalid(f"cannot read the price file {path}: {exc}", "path") from None
    rows = document.get("prices") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise Invalid(f"{path}: expected a top-level 'prices:' list", "prices")
    others = sorted(str(key) for key in document if key != "prices")
    if others:
        raise Invalid(f"{path}: unknown top-level key {', '.join(others)}: the file holds only "
                      "'prices:'", others[0])  # fmt: skip
    entries: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, str, int, Decimal], int] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) - set(FIELDS):
            raise Invalid(f"{path}: prices[{index}] must map only {', '.join(FIELDS)}",
                          f"prices[{index}]")  # fmt: skip
        try:
            clean = clean_fields(row)
        except Invalid as exc:
            raise Invalid(f"{path}: prices[{index}]: {exc.message}",
                          f"prices[{index}].{exc.field}") from None  # fmt: skip
        machine = PriceEntry(**clean).machine_key()  # what seed_prices matches stored rows on
        if machine in seen:
            raise Invalid(f"{path}: prices[{index}] repeats the machine of prices[{seen[machine]}] "
                          f"({_machine_text(clean)}): one row per machine",
                          f"prices[{index}]")  # fmt: skip
        seen[machine] = index
        entries.append(clean)
    return entries


def _machine_text(clean: dict[str, Any]) -> str:
    return (f"{clean['provider']} {clean['region']} {clean['instance_type']}, "
            f"{clean['vcpus']} vCPUs, {clean['memory_gib'].normalize():f} GiB")  # fmt: skip


# ---- the price a run gets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    entry: PriceEntry
    how: str  # shown next to the price: why this row


def match_price(db: Session, tenant: Tenant, host: Host) -> Match | None:
    """The catalog row for the host's provider and instance type, None when the catalog has no
    such machine type. A flexible shape (OCI's ``*.Flex``) is priced by its configuration, so a
    row of the host's size comes before a row of its region: same size and region, then same
    size elsewhere, then the host's region at another size, then the rest. A fixed type's size
    is the type's, so its region comes first. Among equals: the host's vCPUs, the nearest
    memory, a tenant's row. ``how`` says in what the row differs from the host."""
    if host.cloud_provider is None or host.instance_type is None:
        return None
    wanted = host.instance_type.lower()
    pool = [entry for entry in effective_catalog(db, tenant)
            if entry.provider == host.cloud_provider and entry.instance_type.lower() == wanted]  # fmt: skip
    if not pool:
        return None
    region = (host.region or "").lower()
    entry = min(pool, key=lambda row: _preference(row, host, region, is_flexible(wanted)))
    notes = _region_differences(pool, entry, host, region)
    notes += size_differences(host.vcpus, host.memory_bytes, entry.vcpus, entry.memory_gib)
    how = "matched " + ("exactly" if not notes else f"with differences: {'; '.join(notes)}")
    return Match(entry, how)


def is_flexible(instance_type: str) -> bool:
    """A shape whose vCPUs and memory are chosen per host (OCI's VM.Standard.E5.Flex and kin);
    every other provider's type, GCP's custom types included, names its size."""
    return instance_type.lower().endswith(FLEXIBLE_SUFFIX)


def _preference(
    entry: PriceEntry, host: Host, region: str, flexible: bool
) -> tuple[bool, bool, bool, Decimal, bool, str]:
    other_size = not _same_size(entry, host)
    other_region = entry.region != region
    first, second = (other_size, other_region) if flexible else (other_region, other_size)
    host_gib = Decimal(host.memory_bytes) / BYTES_PER_GIB
    return (first, second, entry.vcpus != host.vcpus, abs(entry.memory_gib - host_gib),
            entry.tenant_id is None, entry.region)  # fmt: skip


def _same_size(entry: PriceEntry, host: Host) -> bool:
    return not size_differences(host.vcpus, host.memory_bytes, entry.vcpus, entry.memory_gib)


def _region_differences(
    pool: list[PriceEntry], entry: PriceEntry, host: Host, region: str
) -> list[str]:
    if entry.region == region:
        return []
    if not region:
        return ["region not given"]
    if any(row.region == region for row in pool):
        return [f"no price for this size in region {region}"]
    return [f"no price for region {region}"]


def size_differences(
    vcpus: int, memory_bytes: int, price_vcpus: int, price_memory_gib: Decimal
) -> list[str]:
    """How a priced machine's size differs from the tested host's: vCPUs, or memory beyond
    MemTotal's shortfall from the nominal size (10% of the row, at least 1 GiB)."""
    notes = []
    if price_vcpus != vcpus:
        notes.append(f"catalog has {price_vcpus} vCPUs, the host {vcpus}")
    host_gib = Decimal(memory_bytes) / BYTES_PER_GIB
    tolerance = max(price_memory_gib * MEMORY_TOLERANCE, MEMORY_TOLERANCE_GIB)
    if abs(price_memory_gib - host_gib) > tolerance:
        catalog = f"{price_memory_gib.normalize():f}"
        notes.append(f"catalog has {catalog} GiB, the host {host_gib:.1f} GiB")
    return notes


def snapshot(run: LoadTestRun, entry: PriceEntry | None, how: str | None) -> None:
    """Copy the price onto the run, or clear it."""
    run.price_entry_id = entry.id if entry else None
    run.price_scope = entry.scope if entry else None
    run.price_provider = entry.provider if entry else None
    run.price_region = entry.region if entry else None
    run.price_instance_type = entry.instance_type if entry else None
    run.price_vcpus = entry.vcpus if entry else None
    run.price_memory_gib = entry.memory_gib if entry else None
    run.price_usd_per_hour = entry.usd_per_hour if entry else None
    run.price_source = entry.source if entry else None
    run.price_as_of = entry.as_of if entry else None
    run.price_match = how[:400] if entry and how else None
    run.price_burstable = entry.burstable if entry else None
