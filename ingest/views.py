"""HTTP routes besides the write APIs (ingest/writeapi.py answers those): /health, /ready,
/metrics and /ping, in the shapes InfluxDB 2.x clients read; and Flask's own refusals (an
unknown path, a method a path does not take) in the JSON of every other refusal."""

from __future__ import annotations

import functools
import importlib.metadata
import time
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, NotFound

from ingest import errors
from ingest.context import IngestContext
from ingest.writeapi import QUERY_PATH, WRITE_PATHS

bp = Blueprint("ingest", __name__)
NAME = "perfanalysis-ingest"


def _context() -> IngestContext:
    context: IngestContext = current_app.extensions["ingest"]
    return context


@bp.get("/health")
def health() -> tuple[Response, int]:
    """200 when storage answers and takes ingest's credentials, and the admin database (where
    keys live) can be queried and has this release's schema; else 503, each check saying what is
    wrong (an unmigrated database: the command that migrates it).

    The answer is InfluxDB 2.x's HealthCheck (``name``, ``message``, ``status`` pass or fail,
    ``checks``, ``version``), which influxdb-client's ``health()`` reads, with each check's
    finding also under its own name (``storage``, ``database``: "ok" or what is wrong)."""
    context = _context()
    found: dict[str, str] = {"storage": context.writer.health()}
    try:
        with context.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        found["database"] = context.schema.problem() or "ok"
    except Exception as exc:
        found["database"] = f"down: {type(exc).__name__}"
    wrong = [f"{name}: {finding}" for name, finding in found.items() if finding != "ok"]
    report = {
        "name": NAME,
        "message": "; ".join(wrong) or "ready for writes",
        "status": "fail" if wrong else "pass",
        "checks": [
            {"name": name, "status": "pass" if finding == "ok" else "fail", "message": finding}
            for name, finding in found.items()
        ],
        "version": _version(),
        **found,
    }
    return jsonify(report), 503 if wrong else 200


@bp.get("/ready")
def ready() -> Response:
    """InfluxDB 2.x's readiness answer, which influxdb-client's ``ready()`` reads: this process
    is up (whether storage and the admin database are is /health's business, and the
    readiness probe's)."""
    started = _context().started
    return jsonify(
        {
            "status": "ready",
            "started": datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z"),
            "up": f"{max(0.0, time.time() - started):.3f}s",
        }
    )


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
        headers={"X-Influxdb-Build": NAME, "X-Influxdb-Version": _version()},
    )


@bp.app_errorhandler(HTTPException)
def refusal(error: HTTPException) -> Response:
    """Flask's refusals as JSON with ``code``, ``message`` and ``error``, as every other: an
    InfluxDB client shows the message, and would show werkzeug's HTML page whole."""
    if isinstance(error, NotFound):
        answer = errors.refusal(
            404, f"no such path: {request.path} (ingest answers {', '.join(_paths())})"
        )
    elif isinstance(error, MethodNotAllowed):
        methods = sorted(set(error.valid_methods or ()) - {"OPTIONS"})  # every path takes it
        answer = errors.not_allowed(request.method, request.path, methods)
    elif isinstance(error, InternalServerError):  # a bug in a route, logged by Flask
        cause = error.original_exception or error
        answer = errors.internal(f"internal error ({type(cause).__name__}); it has been logged")
    else:
        answer = errors.refusal(error.code or 500, error.description or error.name)
    headers = [
        (name, value) for name, value in error.get_headers() if name.lower() != "content-type"
    ]
    return Response(
        answer.encoded(), answer.status, [*headers, *answer.headers()], "application/json"
    )


def _paths() -> list[str]:
    """Every path ingest answers: the write API's and Flask's."""
    flask_paths = [rule.rule for rule in current_app.url_map.iter_rules() if not rule.arguments]
    return sorted({*WRITE_PATHS, QUERY_PATH, *flask_paths})


@functools.cache
def _version() -> str:
    try:
        return f"{NAME}-{importlib.metadata.version('perfanalysis')}"
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return NAME
