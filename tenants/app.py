"""The admin app factory: ``create_app()`` with one ``init_app()`` per module."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import IO, Any

import click
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from perfanalysis.redact import RedactingFilter
from tenants import db, web
from tenants.crypto import CredentialHasher, Vault
from tenants.keys import KeyVerifier
from tenants.principals import PrincipalCache
from tenants.settings import load
from tenants.tenancy import NoStorage, Storage


def storage_for(settings: Mapping[str, Any]) -> Storage:
    if not settings["influxdb_url"]:
        return NoStorage()
    from tenants.influx import InfluxStorage

    storage: Storage = InfluxStorage(
        settings["influxdb_url"],
        settings["influxdb_admin_user"],
        settings["influxdb_admin_password"],
        settings["influxdb_retention"],
        ingest_user=settings["influxdb_ingest_user"],
        ingest_password=settings["influxdb_ingest_password"],
    )
    return storage


def create_app(settings: Mapping[str, Any] | None = None) -> Flask:
    settings = dict(load() if settings is None else settings)
    app = Flask(__name__)
    app.config.update(
        PA_SETTINGS=settings,
        SECRET_KEY=settings["secret_key"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["session_secure_cookie"]
        or bool(settings["web_tls_cert_file"]),
        SESSION_COOKIE_NAME="pa_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=web.MAX_BODY_BYTES,
    )
    previous = settings.get("previous_secret_keys", ())
    app.config["SECRET_KEY_FALLBACKS"] = list(previous)  # sessions signed before a rotation
    app.extensions["pa_hasher"] = CredentialHasher(settings["secret_key"], previous)
    app.extensions["pa_vault"] = Vault(settings["secret_key"], previous)
    app.extensions["pa_storage"] = storage_for(settings)
    db.init_app(app)
    app.extensions["pa_key_verifier"] = KeyVerifier(
        app.extensions["pa_sessions"], app.extensions["pa_hasher"], settings["key_cache_seconds"]
    )
    app.extensions["pa_principals"] = PrincipalCache(
        app.extensions["pa_sessions"], app.extensions["pa_hasher"], settings["key_cache_seconds"]
    )
    app.logger.addFilter(RedactingFilter())  # "Exception on /invitations/<link>" and the like
    web.init_app(app)
    _register_blueprints(app)
    hops = settings.get("web_trusted_proxies", 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    return app


def _register_blueprints(app: Flask) -> None:
    from tenants.views import register

    register(app)


class DatabaseNotReady(click.ClickException):
    """``admin serve`` refused to start on this database: exit 2, as for a bad setting."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"perfanalysis admin serve: {self.message}", err=True)


def check_database_before_serving(settings: Mapping[str, Any]) -> None:
    """Refuse (DatabaseNotReady) to serve a SQLite file that does not exist or a database
    without this release's schema, instead of answering /health 200 and every page 500.

    ``init-db`` runs before ``serve`` wherever this project starts the admin app: Compose's
    admin-init (service_completed_successfully), the Kubernetes Deployment's init container,
    ``make up``'s ensure-demo. A database that does not answer is not refused: it may come up
    later, and /health reports it meanwhile. ingest checks only the file (ingest/main.py).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from tenants.schema import (
        checking_engine,
        current_revision,
        schema_problem,
        sqlite_file_problem,
    )

    url = settings["database_url"]
    problem = sqlite_file_problem(url)
    if problem:
        raise DatabaseNotReady(f"setting database-url: {problem}")
    shown = make_url(url).render_as_string(hide_password=True)
    engine = checking_engine(url)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().partition("\n")[0]
        if engine.url.get_backend_name() == "sqlite":  # a file that is there but unreadable
            raise DatabaseNotReady(f"setting database-url: cannot read {shown}: {cause}") from None
        click.echo(f"perfanalysis admin serve: the database {shown} does not answer ({cause}); "
                   "starting anyway, /health reports it until it does", err=True)  # fmt: skip
        return
    finally:
        engine.dispose()
    problem = schema_problem(revision)
    if problem:
        raise DatabaseNotReady(f"database {shown}: {problem}")
