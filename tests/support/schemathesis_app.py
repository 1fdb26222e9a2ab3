"""What the schemathesis tests of the admin API share: the WSGI indirection and a fixed token.

schemathesis collects its cases at import time from one schema object with one app, while each
test gets a fresh admin app from fixtures: ``CurrentApp`` forwards to whichever app the running
test installed. The token is stored by id and HMAC like any other, for a platform admin.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import schemathesis
from flask import Flask

from tenants import db as database
from tenants.accounts import get_user_by_email
from tenants.models import ApiToken


class CurrentApp:
    """The WSGI app schemathesis calls: it forwards to the app of the test running now."""

    def __init__(self) -> None:
        self.app: Flask | None = None
        self.path_values: dict[str, Any] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        assert self.app is not None, "the target fixture sets the app"
        return self.app(environ, start_response)


def schema_for(document: dict[str, Any], token: str) -> tuple[Any, CurrentApp]:
    """The schema to parametrize tests with, calling a CurrentApp with ``token`` as bearer auth.

    The token is given as auth, not as a header, so that schemathesis's negative cases can leave
    it out.
    """
    current = CurrentApp()
    schema = schemathesis.openapi.from_dict(document)
    schema.app = current

    class BearerToken:
        def get(self, case: schemathesis.Case[Any], context: schemathesis.AuthContext) -> str:
            return token

        def set(
            self, case: schemathesis.Case[Any], value: str, context: schemathesis.AuthContext
        ) -> None:
            case.headers["Authorization"] = f"Bearer {value}"

    schema.auth(refresh_interval=None)(BearerToken)
    return schema, current


def store_token(app: Flask, email: str, token: str) -> None:
    """Store ``token`` (``pat_<id>_<secret>``) as the API token of the user with ``email``."""
    _, token_id, secret = token.split("_", 2)
    with app.app_context():
        db = database.session()
        user = get_user_by_email(db, email)
        assert user is not None
        digest = app.extensions["pa_hasher"].digest(secret)
        db.add(ApiToken(token_id=token_id, secret_hash=digest, user_id=user.id, name="st"))
        db.commit()
