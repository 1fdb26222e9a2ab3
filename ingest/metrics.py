"""The service's own metrics, ``perfanalysis_ingest_*``, correct across gunicorn workers.

Each gunicorn worker is a process with its own counters. Under ``perfanalysis ingest`` the
PROMETHEUS_MULTIPROC_DIR variable is set before any worker starts (ingest/main.py), so every
worker writes its values to files there and ``/metrics`` adds up all of them, those of workers
that have since exited included, so counters never go backwards. Without the variable (tests,
or a WSGI server started by hand) the numbers are those of the answering process.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import values as prometheus_values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STORAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
BATCH_BUCKETS = (1, 10, 100, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "perfanalysis_ingest_requests_total",
            "Requests to the InfluxDB APIs answered, by API (v1 and v2 writes; query: /query's "
            "CREATE DATABASE) and HTTP status code.",
            ["api", "code"],
            registry=self.registry,
        )
        self.points_accepted = Counter(
            "perfanalysis_ingest_points_accepted_total",
            "Points written to storage, by tenant.",
            ["tenant"],
            registry=self.registry,
        )
        self.points_rejected = Counter(
            "perfanalysis_ingest_points_rejected_total",
            "Points refused, by tenant and reason (invalid, too_large: over ingest's limits or "
            "storage's body limit, rate_limited, storage_unavailable, storage_refused, "
            "storage_conflict, storage_error).",
            ["tenant", "reason"],
            registry=self.registry,
        )
        self.storage_seconds = Histogram(
            "perfanalysis_ingest_storage_write_seconds",
            "Time a write request took to be answered by storage, waiting for a lane included "
            "(group commit), by outcome (ok, unavailable, refused, conflict, too_large, error).",
            ["outcome"],
            buckets=STORAGE_BUCKETS,
            registry=self.registry,
        )
        self.storage_group_requests = Histogram(
            "perfanalysis_ingest_storage_group_requests",
            "Write requests that went to storage together as one write (group commit).",
            buckets=GROUP_BUCKETS,
            registry=self.registry,
        )
        self.batch_points = Histogram(
            "perfanalysis_ingest_batch_points",
            "Points per accepted write request.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.rate_limit_shared = RateLimitSharedGauge(self.registry)

    def exposition(self) -> bytes:
        """The text exposition: every worker's values in multiprocess mode, else this process's."""
        if multiprocess_enabled():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class RateLimitSharedGauge:
    """``perfanalysis_ingest_rate_limit_shared``, exported from its first ``set`` on.

    Only a limiter that shares through Redis sets it (ingest/ratelimit.py), at its start: an
    ingest without a redis-url has no such series, where a 0 would mean nothing and look like
    Redis failing. In multiprocess mode a gauge has its value in its worker's file from its
    creation, so it is created with the first ``set``: /metrics then shows the series only if
    some live worker set it, the least of their values (livemin), and a worker's value goes when
    it exits (ingest/main.py's child_exit)."""

    NAME = "perfanalysis_ingest_rate_limit_shared"

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._gauge: Gauge | None = None
        self._lock = threading.Lock()

    def set(self, shared: bool) -> None:
        with self._lock:
            if self._gauge is None:
                self._gauge = Gauge(
                    self.NAME,
                    "1 while every live worker shares the per-tenant rate limits through Redis "
                    "(with the other replicas); 0 while one limits on its own because Redis did "
                    "not answer (its log says when it switched, and back). Not exported without "
                    "a redis-url.",
                    multiprocess_mode="livemin",
                    registry=self._registry,
                )
            self._gauge.set(1 if shared else 0)


def multiprocess_enabled() -> bool:
    """Whether values go to files: the variable was set before prometheus_client was imported."""
    return bool(os.environ.get(MULTIPROC_ENV)) and (
        prometheus_values.ValueClass is not prometheus_values.MutexValue
    )
