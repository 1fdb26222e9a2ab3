"""``GET /health``: the admin app and its database answer (for load balancers and make status)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import text

from tenants import db as database
from tenants.web import public

bp = Blueprint("health", __name__)


@bp.route("/health")
@public
def health() -> Any:
    try:
        database.session().execute(text("SELECT 1"))
    except Exception as exc:
        return jsonify({"status": "down", "database": type(exc).__name__}), 503
    return jsonify({"status": "ok", "database": "ok"})
