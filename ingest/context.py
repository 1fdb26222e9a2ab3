"""What one ingest app holds: settings, the write service and the resources behind it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from ingest.metrics import IngestMetrics
from ingest.service import WriteService
from ingest.storage import StorageWriter
from tenants.schema import SchemaCheck


@dataclass
class IngestContext:
    settings: dict[str, Any]
    service: WriteService
    engine: Engine
    writer: StorageWriter
    metrics: IngestMetrics
    schema: SchemaCheck = field(init=False)  # /health's: is the admin database migrated?
    started: float = field(init=False, default_factory=time.time)  # /ready's

    def __post_init__(self) -> None:
        self.schema = SchemaCheck(self.engine)

    def close(self) -> None:
        """Record pending key use, then release connections (worker exit, test teardown)."""
        self.service.verifier.flush()
        self.writer.close()
        self.engine.dispose()
