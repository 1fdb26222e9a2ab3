"""Tables of load tests and the price catalog, on the admin schema's ``Base``.

A run keeps a copy of the price that applied when it was stored (``price_*`` columns): later
changes to the catalog never rewrite history. ``price_entry_id`` only links to the row it came
from while that row exists.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenants.models import Base, Collector, UTCDateTime, utcnow

MONEY = Numeric(12, 6)  # US dollars per hour; GCP lists six decimals
GIB = Numeric(10, 2)
GLOBAL_ROW = text("tenant_id IS NULL")  # a row of the seed, not of a tenant


class PriceEntry(Base):
    """One machine type's on-demand price: global (``tenant_id`` NULL, from the seed) or a
    tenant's own row, which overrides the global row with the same machine key."""

    __tablename__ = "price_entries"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "provider", "region", "instance_type", "vcpus", "memory_gib",
            name="uq_price_entries_tenant_machine",
        ),
        Index(
            "uq_price_entries_global_machine",
            "provider", "region", "instance_type", "vcpus", "memory_gib",
            unique=True,
            postgresql_where=GLOBAL_ROW,
            sqlite_where=GLOBAL_ROW,
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(20))
    region: Mapped[str] = mapped_column(String(60))
    instance_type: Mapped[str] = mapped_column(String(80))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_gib: Mapped[Decimal] = mapped_column(GIB)
    usd_per_hour: Mapped[Decimal] = mapped_column(MONEY)
    source: Mapped[str] = mapped_column(String(500))
    as_of: Mapped[date] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")
    # a type that runs above its baseline CPU only on credits or at an extra charge (AWS t3,
    # Azure B-series, GCP shared-core): a load test measures its burst speed, not its sustained one
    burstable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def scope(self) -> str:
        return "global" if self.tenant_id is None else "tenant"

    def machine_key(self) -> tuple[str, str, str, int, Decimal]:
        return (self.provider, self.region, self.instance_type.lower(), self.vcpus,
                self.memory_gib)  # fmt: skip


class LoadTestRun(Base):
    __tablename__ = "loadtest_runs"
    __table_args__ = (UniqueConstraint("tenant_id", "document_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    collector_id: Mapped[int | None] = mapped_column(
        ForeignKey("collectors.id", ondelete="SET NULL"), index=True
    )
    label: Mapped[str] = mapped_column(String(100), default="")
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    uploaded_by: Mapped[str] = mapped_column(String(254))  # e-mail, "collector web1", "cli"
    uploaded_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    uploaded_via: Mapped[str] = mapped_column(String(16))  # collector_key | user | example
    document_sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the upload as it was checked

    schema: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    hostname: Mapped[str] = mapped_column(String(253))
    cpu_model: Mapped[str] = mapped_column(String(200))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    kernel: Mapped[str] = mapped_column(String(100))
    cloud_provider: Mapped[str | None] = mapped_column(String(20))
    region: Mapped[str | None] = mapped_column(String(60))
    instance_type: Mapped[str | None] = mapped_column(String(80))
    unit_name: Mapped[str] = mapped_column(String(60))
    unit_buffer_bytes: Mapped[int] = mapped_column(BigInteger)
    window_seconds: Mapped[float] = mapped_column(Float)
    repeats: Mapped[int] = mapped_column(Integer)
    tolerance_points: Mapped[float] = mapped_column(Float)
    max_units_per_second: Mapped[float] = mapped_column(Float)
    repeatability_cv_percent: Mapped[float | None] = mapped_column(Float)  # None: not measured
    notes: Mapped[str] = mapped_column(Text, default="")
    all_levels_accepted: Mapped[bool] = mapped_column(Boolean)

    # the price that applied when the run was stored, copied from the catalog
    price_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("price_entries.id", ondelete="SET NULL")
    )
    price_scope: Mapped[str | None] = mapped_column(String(10))  # global | tenant
    price_provider: Mapped[str | None] = mapped_column(String(20))
    price_region: Mapped[str | None] = mapped_column(String(60))
    price_instance_type: Mapped[str | None] = mapped_column(String(80))
    price_vcpus: Mapped[int | None] = mapped_column(Integer)
    price_memory_gib: Mapped[Decimal | None] = mapped_column(GIB)
    price_usd_per_hour: Mapped[Decimal | None] = mapped_column(MONEY)
    price_source: Mapped[str | None] = mapped_column(String(500))
    price_as_of: Mapped[date | None] = mapped_column(Date)
    price_match: Mapped[str | None] = mapped_column(String(400))  # how the price was chosen
    price_burstable: Mapped[bool | None] = mapped_column(Boolean)  # the row's flag; None: no price

    collector: Mapped[Collector | None] = relationship()
    levels: Mapped[list[LoadTestLevel]] = relationship(
        back_populates="run",
        cascade="all, delete-orphan",
        order_by="LoadTestLevel.target_busy_percent",
    )

    @property
    def display_name(self) -> str:
        machine = self.instance_type or self.hostname
        return self.label or f"{machine} #{self.id}"

    @property
    def full_load_accepted(self) -> bool:
        """Whether the 100% level, whose units are ``max_units_per_second``, was accepted: one
        that missed its band or was disturbed by other work on the host measured less than the
        machine can do, so its price-performance is not ranked nor used for right-sizing."""
        top = max(self.levels, key=lambda level: level.target_busy_percent, default=None)
        return top is not None and top.accepted


# a tenant's runs newest first, a page at a time (runs.runs_page), read in order (migration 0011)
Index("ix_loadtest_runs_tenant_id_started_at_id", LoadTestRun.tenant_id,
      LoadTestRun.started_at.desc(), LoadTestRun.id.desc())  # fmt: skip


class LoadTestLevel(Base):
    __tablename__ = "loadtest_levels"
    __table_args__ = (UniqueConstraint("run_id", "target_busy_percent"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("loadtest_runs.id", ondelete="CASCADE"), index=True
    )
    target_busy_percent: Mapped[int] = mapped_column(Integer)
    measured_busy_percent: Mapped[float] = mapped_column(Float)
    units_per_second: Mapped[float] = mapped_column(Float)
    repeats: Mapped[list[float]] = mapped_column(JSON)
    cv_percent: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[bool] = mapped_column(Boolean)

    run: Mapped[LoadTestRun] = relationship(back_populates="levels")
