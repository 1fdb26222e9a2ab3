"""``GET /health``: the admin app and its database answer, and the database's schema is this
release's (for load balancers and make status)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from tenants import db as database
from tenants.schema import SchemaCheck
from tenants.web import public

bp = Blueprint("health", __name__)


@bp.route("/health")
@public
def health() -> Any:
    """200 with ``database: ok``; else 503 with what is wrong: the exception's type when the
    database does not answer, or the missing or old schema and the command that migrates it."""
    check: SchemaCheck = current_app.extensions["pa_schema_check"]
    try:
        database.session().execute(text("SELECT 1"))
        problem = check.problem()
    except Exception as exc:
        return jsonify({"status": "down", "database": type(exc).__name__}), 503
    if problem:
        return jsonify({"status": "down", "database": problem}), 503
    return jsonify({"status": "ok", "database": "ok"})
