"""One blueprint per area; ``register`` adds them all to the app."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from tenants.views import auth, health, invitations

    app.register_blueprint(auth.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(invitations.bp)
    for module_name in ("formatting", "pages", "users", "api", "loadtests"):
        try:
            module = __import__(f"tenants.views.{module_name}", fromlist=["init_app"])
        except ModuleNotFoundError as exc:
            if exc.name != f"tenants.views.{module_name}":
                raise
            continue
        module.init_app(app)
