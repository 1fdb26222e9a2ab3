"""Refusals with their HTTP status, a stable code and a message clients can show.

The JSON body carries ``code`` and ``message`` (what InfluxDB 2.x clients read) and ``error``
(what InfluxDB 1.x clients read), plus details such as the bad lines of a batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

REALM = "perfanalysis ingest"
# A 401 offers both schemes ingest takes (RFC 7235 allows a challenge per header; a client
# answers one it supports). Basic comes first, as InfluxDB 1.x sends it alone: clients that
# send credentials only once challenged (curl --anyauth, urllib's HTTPBasicAuthHandler, Java
# and .NET without preemptive auth) look for it, and urllib gives up at a first scheme it does
# not know. InfluxDB 2.x clients send their Token unasked and read no challenge.
CHALLENGES = (f'Basic realm="{REALM}"', f'Token realm="{REALM}"')
# InfluxDB 2.x's error codes, by the status each goes with; another status's code is its phrase
CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request too large",
    415: "unsupported media type",
    422: "unprocessable entity",
    429: "too many requests",
    500: "internal error",
    503: "unavailable",
}


class IngestError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        retry_after: int | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "error": self.message, **self.details}

    def encoded(self) -> bytes:
        return encode(self.body())

    def headers(self) -> list[tuple[str, str]]:
        """Name and value pairs, a name repeated where the answer has it more than once."""
        headers = []
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        if self.status == 401:
            headers += [("WWW-Authenticate", challenge) for challenge in CHALLENGES]
        return headers


def encode(body: dict[str, Any]) -> bytes:
    """A JSON answer as ingest sends every one: compact, keys sorted, one line."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def refusal(status: int, message: str) -> IngestError:
    """A refusal with the code InfluxDB 2.x gives its status."""
    return IngestError(status, CODES.get(status) or HTTPStatus(status).phrase.lower(), message)


def bad_request(message: str, **details: Any) -> IngestError:
    return IngestError(400, CODES[400], message, **details)


def unauthenticated(message: str) -> IngestError:
    return refusal(401, message)


def forbidden(message: str) -> IngestError:
    return refusal(403, message)


def not_allowed(method: str, path: str, methods: Sequence[str]) -> IngestError:
    return refusal(405, f"{method} {path} is not answered: use {' or '.join(methods)}")


def too_large(message: str) -> IngestError:
    return refusal(413, message)


def unsupported_media(message: str) -> IngestError:
    return refusal(415, message)


def unprocessable(message: str, **details: Any) -> IngestError:
    return IngestError(422, CODES[422], message, **details)


def rate_limited(message: str, retry_after: int) -> IngestError:
    return IngestError(429, CODES[429], message, retry_after)


def internal(message: str) -> IngestError:
    return refusal(500, message)


def unavailable(message: str, retry_after: int) -> IngestError:
    return IngestError(503, CODES[503], message, retry_after)
