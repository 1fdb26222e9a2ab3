"""HTTP routes besides the write APIs (ingest/writeapi.py answers those): /health, /metrics and
/ping."""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from ingest.context import IngestContext

bp = Blueprint("ingest", __name__)


def _context() -> IngestContext:
    context: IngestContext = current_app.extensions["ingest"]
    return context


@bp.get("/health")
def health() -> tuple[Response, int]:
    """200 when storage answers and takes ingest's credentials, and the admin database (where
    keys live) can be queried and has this release's schema; else 503, each check saying what is
    wrong (an unmigrated database: the command that migrates it)."""
    context = _context()
    checks: dict[str, Any] = {"storage": context.writer.health()}
    try:
        with context.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = context.schema.problem() or "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ok" if healthy else "down", **checks}), 200 if healthy else 503


@bp.get("/metrics")
def metrics() -> Response:
    return Response(_context().metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


@bp.route("/ping", methods=["GET", "HEAD"])
def ping() -> Response:
    """InfluxDB clients' liveness probe: ingest itself answers (storage is /health's business).

    Some clients also read the version header: influxdb-java calls a server without one (or with
    "unknown") down, and the Python ``influxdb`` client's ping() fails with a KeyError. It names
    ingest, not an InfluxDB release, so that no client takes it for one.
    """
    return Response(
        status=204,
        headers={"X-Influxdb-Build": "perfanalysis-ingest", "X-Influxdb-Version": _version()},
    )


@functools.cache
def _version() -> str:
    try:
        return f"perfanalysis-ingest-{importlib.metadata.version('perfanalysis')}"
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "perfanalysis-ingest"
