"""HTTP routes: the two write APIs, /health, /metrics and /ping, translated to WriteService."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from ingest import errors
from ingest.auth import header_credential, query_credential
from ingest.body import BadBody, BodyTooLarge, UnsupportedEncoding, decode, read_limited
from ingest.context import IngestContext
from ingest.lineprotocol import V1_PRECISIONS, V2_PRECISIONS

bp = Blueprint("ingest", __name__)
WRITE_APIS = {"ingest.write_v1": "v1", "ingest.write_v2": "v2"}


def _context() -> IngestContext:
    context: IngestContext = current_app.extensions["ingest"]
    return context


@bp.post("/api/v2/write")
def write_v2() -> Response:
    """InfluxDB 2.x's write API; ``org`` and ``bucket`` are accepted and ignored."""
    return _write(V2_PRECISIONS)


@bp.post("/write")
def write_v1() -> Response:
    """InfluxDB 1.x's write API; ``db``, ``rp`` and ``consistency`` are accepted and ignored."""
    return _write(V1_PRECISIONS)


def _write(precisions: Sequence[str]) -> Response:
    received_ns = time.time_ns()
    context = _context()
    limits = context.settings
    name = query_credential(request.args)
    if name is not None:
        raise errors.unauthenticated(
            f"credentials in the URL (query parameter {name!r}) are refused because URLs are "
            "logged: send the key as 'Authorization: Token <key>'; if it was a real key, "
            "rotate it"
        )
    identity = context.service.authenticate(header_credential(request.headers.get("Authorization")))
    precision = request.args.get("precision") or "ns"
    if precision not in precisions:
        raise errors.bad_request(
            f"unknown precision {precision!r}: expected one of {', '.join(precisions)}"
        )
    try:
        # With a declared length the server's own stream is read in one call; werkzeug's
        # wrapper (request.stream) would copy every byte twice more.
        length = request.content_length
        stream = request.stream if length is None else request.environ["wsgi.input"]
        raw = read_limited(stream, length, limits["limits_max_body_bytes"])
        body = decode(
            raw,
            request.headers.get("Content-Encoding", ""),
            limits["limits_max_decompressed_bytes"],
        )
    except BodyTooLarge as exc:
        raise errors.too_large(str(exc)) from None
    except UnsupportedEncoding as exc:
        raise errors.unsupported_media(str(exc)) from None
    except BadBody as exc:
        raise errors.bad_request(str(exc)) from None
    context.service.write(identity, precision, body, received_ns)
    return Response(status=204)


@bp.errorhandler(errors.IngestError)
def _refused(error: errors.IngestError) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error.body()), error.status, error.headers()


@bp.after_app_request
def _count(response: Response) -> Response:
    api = WRITE_APIS.get(request.endpoint or "")
    if api is not None:
        _context().metrics.requests.labels(api, str(response.status_code)).inc()
    return response


@bp.get("/health")
def health() -> tuple[Response, int]:
    """200 when storage answers and the admin database (where keys live) can be queried."""
    context = _context()
    checks: dict[str, Any] = {"storage": "ok" if context.writer.ping() else "down"}
    try:
        with context.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ok" if healthy else "down", **checks}), 200 if healthy else 503


@bp.get("/metrics")
def metrics() -> Response:
    return Response(_context().metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)


@bp.route("/ping", methods=["GET", "HEAD"])
def ping() -> Response:
    """InfluxDB clients' liveness probe: ingest itself answers (storage is /health's business)."""
    return Response(status=204, headers={"X-Influxdb-Build": "perfanalysis-ingest"})
