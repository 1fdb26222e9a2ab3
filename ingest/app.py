"""The ingest app factory: ``create_app(settings)`` wires settings to the write service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy.orm import sessionmaker

from ingest import views
from ingest.batch import BatchPreparer, BatchRules
from ingest.context import IngestContext
from ingest.groupcommit import GroupCommitWriter
from ingest.metrics import IngestMetrics
from ingest.ratelimit import Limit, make_limiter
from ingest.service import WriteService
from ingest.settings import load
from ingest.storage import make_writer
from ingest.writeapi import WriteEndpoints
from tenants.crypto import CredentialHasher
from tenants.db import make_engine
from tenants.keys import KeyVerifier

NS_PER_SECOND = 1_000_000_000


def batch_rules(settings: Mapping[str, Any]) -> BatchRules:
    return BatchRules(
        max_line_bytes=settings["limits_max_line_bytes"],
        max_tags=settings["limits_max_tags"],
        max_fields=settings["limits_max_fields"],
        max_points=settings["limits_max_points"],
        max_age_ns=int(settings["limits_max_age"] * NS_PER_SECOND),
        max_future_ns=int(settings["limits_max_future"] * NS_PER_SECOND),
        allow_unsigned=settings["storage_unsigned_integers"],
    )


def create_app(settings: Mapping[str, Any] | None = None) -> Flask:
    settings = dict(load() if settings is None else settings)
    app = Flask(__name__)
    engine = make_engine(settings["database_url"])
    verifier = KeyVerifier(
        sessionmaker(engine, expire_on_commit=False),
        CredentialHasher(settings["secret_key"], settings["previous_secret_keys"]),
        ttl=settings["key_cache_seconds"],
    )
    metrics = IngestMetrics()
    writer = GroupCommitWriter(
        make_writer(settings),
        lanes=settings["storage_writes_in_flight"],
        max_bytes=settings["storage_group_max_bytes"],
        observe_group=metrics.storage_group_requests.observe,
        hold=settings["storage_timeout"],
    )
    service = WriteService(
        verifier=verifier,
        preparer=BatchPreparer(batch_rules(settings), settings["series_cache_size"]),
        limiter=make_limiter(settings, metrics.rate_limit_shared.set),
        default_limit=Limit(float(settings["limits_rate"]), int(settings["limits_burst"])),
        writer=writer,
        metrics=metrics,
        retry_after=settings["storage_retry_after"],
    )
    context = IngestContext(settings, service, engine, writer, metrics)
    app.extensions["ingest"] = context
    app.register_blueprint(views.bp)
    app.wsgi_app = WriteEndpoints(app.wsgi_app, context)  # type: ignore[method-assign]
    return app
