"""Where a collector key may come from: the Authorization header, never the URL.

Accepted, so that InfluxDB clients work unchanged:

* ``Authorization: Token <key>`` (InfluxDB 2.x clients; also ``Bearer``). The InfluxDB 1.8
  compatibility form ``Token <user>:<key>`` is read as the key after the colon.
* HTTP Basic auth with the key as the password (InfluxDB 1.x clients; the user is ignored),
  or as the user name when the password is empty.

InfluxDB 1.x also takes ``u``/``p`` query parameters; here a secret in the URL is refused,
because URLs end up in access logs and proxies (the access log format in ingest/main.py leaves
query strings out for the same reason), and the client is told to send it in the header, and to
rotate it if it was a real key. A secret is a parameter named as one (``p``, ``token``...)
whatever its value, or anything holding a whole key. ``u`` alone is a user name, which InfluxDB
1.x clients send with ``p``, and is no secret.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from tenants.crypto import KEY_PREFIX, TOKEN_PREFIX

SECRET_PARAMETERS = frozenset(
    {"p", "token", "key", "apikey", "api_key", "access_token", "authorization"}
)
# A whole collector key (or admin API token) anywhere in a name or value: the shape of
# tenants.crypto.CREDENTIAL, not its prefix alone (a bucket named "spak_prod" is no key).
_CREDENTIAL = re.compile(rf"(?:{KEY_PREFIX}|{TOKEN_PREFIX})_[a-z2-7]{{13}}_[A-Za-z0-9_-]{{43}}")


def query_credential(args: Iterable[tuple[str, str]]) -> str | None:
    """The name of a query parameter that carries a secret (a parameter named as one, or a
    key in its name or value), if any; every occurrence of a repeated parameter is looked at."""
    for name, value in args:
        if name.lower() in SECRET_PARAMETERS or _CREDENTIAL.search(f"{name}={value}"):
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
