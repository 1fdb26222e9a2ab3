"""What one ingest app holds: settings, the write service and the resources behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from ingest.metrics import IngestMetrics
from ingest.service import WriteService
from ingest.storage import StorageWriter


@dataclass
class IngestContext:
    settings: dict[str, Any]
    service: WriteService
    engine: Engine
    writer: StorageWriter
    metrics: IngestMetrics

    def close(self) -> None:
        """Record pending key use, then release connections (worker exit, test teardown)."""
        self.service.verifier.flush()
        self.writer.close()
        self.engine.dispose()
