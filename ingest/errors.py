"""Refusals with their HTTP status, a stable code and a message clients can show.

The JSON body carries ``code`` and ``message`` (what InfluxDB 2.x clients read) and ``error``
(what InfluxDB 1.x clients read), plus details such as the bad lines of a batch.
"""

from __future__ import annotations

from typing import Any


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

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Token realm="perfanalysis ingest"'
        return headers


def bad_request(message: str, **details: Any) -> IngestError:
    return IngestError(400, "invalid", message, **details)


def unauthenticated(message: str) -> IngestError:
    return IngestError(401, "unauthorized", message)


def forbidden(message: str) -> IngestError:
    return IngestError(403, "forbidden", message)


def request_timeout(message: str) -> IngestError:
    return IngestError(408, "request timeout", message)


def too_large(message: str) -> IngestError:
    return IngestError(413, "request too large", message)


def unsupported_media(message: str) -> IngestError:
    return IngestError(415, "unsupported media type", message)


def unprocessable(message: str, **details: Any) -> IngestError:
    return IngestError(422, "unprocessable entity", message, **details)


def rate_limited(message: str, retry_after: int) -> IngestError:
    return IngestError(429, "too many requests", message, retry_after)


def internal(message: str) -> IngestError:
    return IngestError(500, "internal error", message)


def unavailable(message: str, retry_after: int) -> IngestError:
    return IngestError(503, "unavailable", message, retry_after)
