"""Where a collector key may come from: the Authorization header, never the URL.

Accepted, so that InfluxDB clients work unchanged:

* ``Authorization: Token <key>`` (InfluxDB 2.x clients; also ``Bearer``). The InfluxDB 1.8
  compatibility form ``Token <user>:<key>`` is read as the key after the colon.
* HTTP Basic auth with the key as the password (InfluxDB 1.x clients; the user is ignored),
  or as the user name when the password is empty.

InfluxDB 1.x also takes ``u``/``p`` query parameters; here they are refused, because URLs end up
in access logs and proxies. The access log format in ingest/main.py leaves query strings out
for the same reason.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from tenants.crypto import KEY_PREFIX

QUERY_CREDENTIAL_NAMES = frozenset(
    {"u", "p", "token", "key", "apikey", "api_key", "access_token", "authorization"}
)


def query_credential(args: Iterable[tuple[str, str]]) -> str | None:
    """The name of a query parameter that carries (or looks like) a credential, if any; every
    occurrence of a repeated parameter is looked at."""
    for name, value in args:
        if name.lower() in QUERY_CREDENTIAL_NAMES or f"{KEY_PREFIX}_" in value:
            return name
    return None


def header_credential(authorization: str | None) -> str | None:
    """The key in an Authorization header value, or None if there is none."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme in ("token", "bearer"):
        if ":" in value:  # InfluxDB 1.8's "Token user:password"
            value = value.rpartition(":")[2]
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return password or user or None
    return None
