"""InfluxDB's API paths, as plain WSGI in front of Flask: the two write endpoints,
``POST /write`` and ``POST /api/v2/write``, and ``/query`` for the one statement InfluxDB 1.x
clients send before writing, ``CREATE DATABASE`` (ingest/influxql.py).

Writes are the one request ingest serves at volume, and for them Flask's request machinery
(request and app contexts, URL routing, Request and Response objects, hooks) cost about as much
CPU as checking and rewriting a 250-point batch. So they are answered here, from the WSGI
environ, and everything else (/health, /ready, /metrics, /ping, unknown paths) goes on to
Flask.

A path asked with a method it does not take gets 405 here, with ``Allow`` and the same JSON
error body as every other refusal. Every answer is counted in
``perfanalysis_ingest_requests_total`` by API (v1, v2, query) and status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from io import BytesIO
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from sqlalchemy.exc import DBAPIError

from ingest import errors
from ingest.auth import header_credential, query_credential
from ingest.body import BadBody, BodyTooLarge, UnsupportedEncoding, decode, read_limited
from ingest.context import IngestContext
from ingest.influxql import QueryError, create_database, statements
from ingest.lineprotocol import V1_PRECISIONS, V2_PRECISIONS
from ingest.service import LabelledChildren

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from tenants.keys import Identity

log = logging.getLogger(__name__)

# path -> (the API's label in the metrics, the precisions it accepts); ``db``, ``rp`` and
# ``consistency`` (v1) and ``org`` and ``bucket`` (v2) are accepted and ignored: the key decides.
WRITE_PATHS: dict[str, tuple[str, Sequence[str]]] = {
    "/write": ("v1", V1_PRECISIONS),
    "/api/v2/write": ("v2", V2_PRECISIONS),
}
QUERY_PATH = "/query"
FORM_TYPE = "application/x-www-form-urlencoded"
DATABASE_RETRY_SECONDS = 5  # a database restart or a migration being run takes seconds
DATABASE_WARNING_SECONDS = 60.0  # while the database is down, its warning is logged this often
BODY_RETRY_SECONDS = 1  # a body that came too slowly: the link, not ingest, was the bottleneck
STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class WriteEndpoints:
    """WSGI middleware: answers the write paths itself and passes the rest to ``app``."""

    def __init__(self, app: WSGIApplication, context: IngestContext) -> None:
        self.app = app
        self.context = context
        self._labelled = LabelledChildren()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        route = WRITE_PATHS.get(path)
        if route is not None:
            api, precisions = route
            return self._answer(environ, start_response, api, ("POST",),
                                lambda: self.write(environ, precisions))  # fmt: skip
        if path == QUERY_PATH:
            return self._answer(environ, start_response, "query", ("GET", "POST"),
                                lambda: self.query(environ))  # fmt: skip
        return self.app(environ, start_response)

    def _answer(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        api: str,
        methods: Sequence[str],
        handle: Callable[[], dict[str, Any] | None],
    ) -> Iterable[bytes]:
        """Run ``handle``: 204 when it returns None, else 200 with what it returns as JSON;
        an IngestError (or a bug) becomes its JSON refusal."""
        method = environ["REQUEST_METHOD"]
        status = 204
        headers: list[tuple[str, str]] = []
        body = b""
        try:
            if method not in methods:
                headers.append(("Allow", ", ".join(methods)))
                raise errors.not_allowed(method, environ["PATH_INFO"], methods)
            answer = handle()
            if answer is not None:
                status, body = 200, errors.encode(answer)
                headers.append(("Content-Type", "application/json"))
        except errors.IngestError as error:
            status, body = error.status, error.encoded()
            headers += [*error.headers(), ("Content-Type", "application/json")]
        except Exception as exc:  # a bug: logged, and answered as every other refusal is
            log.exception("unexpected error on %s %s", method, environ["PATH_INFO"])
            internal = errors.internal(f"internal error ({type(exc).__name__}); it has been logged")
            status, body = internal.status, internal.encoded()
            headers.append(("Content-Type", "application/json"))
        self._labelled(self.context.metrics.requests, api, str(status)).inc()
        if body:
            headers.append(("Content-Length", str(len(body))))
        start_response(STATUS_LINES[status], headers)
        return [body]

    def write(self, environ: WSGIEnvironment, precisions: Sequence[str]) -> None:
        received_ns = time.time_ns()
        args = url_arguments(environ)
        identity = self._authenticate(environ, args)
        try:
            body, precision = self._request_body(environ, args, precisions)
        except errors.IngestError as error:  # the service logs its own refusals, not these
            self.context.service.refused(identity, error)
            raise
        self.context.service.write(identity, precision, body, received_ns)

    def _request_body(
        self, environ: WSGIEnvironment, args: Sequence[tuple[str, str]], precisions: Sequence[str]
    ) -> tuple[bytes, str]:
        """The write's decoded body and its precision, or the refusal of either."""
        settings = self.context.settings
        precision = next((value for key, value in args if key == "precision"), "") or "ns"
        if precision not in precisions:
            raise errors.bad_request(
                f"unknown precision {precision!r}: expected one of {', '.join(precisions)}"
            )
        try:
            length = content_length(environ)
            raw = read_limited(body_stream(environ, length), length,
                               settings["limits_max_body_bytes"])  # fmt: skip
            body = decode(
                raw,
                environ.get("HTTP_CONTENT_ENCODING", ""),
                settings["limits_max_decompressed_bytes"],
            )
        except BodyTooLarge as exc:
            raise errors.too_large(str(exc)) from None
        except UnsupportedEncoding as exc:
            raise errors.unsupported_media(str(exc)) from None
        except BadBody as exc:
            raise errors.bad_request(str(exc)) from None
        except TimeoutError as exc:
            raise _body_timed_out(exc) from None
        return body, precision

    def query(self, environ: WSGIEnvironment) -> dict[str, Any]:
        """InfluxDB 1.x's answer to a ``q`` of CREATE DATABASE statements, each a no-op."""
        args = url_arguments(environ)
        self._authenticate(environ, args)
        form = self._form(environ)
        text = next((value for key, value in [*form, *args] if key == "q"), "")
        try:
            found = statements(text)
            if not found:
                raise QueryError('missing required parameter "q": a CREATE DATABASE statement')
            names = [create_database(statement, number).name
                     for number, statement in enumerate(found, 1)]  # fmt: skip
        except QueryError as exc:
            if exc.forbidden:
                raise errors.forbidden(exc.message) from None
            raise errors.bad_request(exc.message) from None
        return {"results": [
            {"statement_id": index, "messages": [{"level": "info", "text": (
                f"CREATE DATABASE {name} changed nothing: ingest writes every point to the "
                "key's tenant database, whatever database a client names"
            )}]}
            for index, name in enumerate(names)
        ]}  # fmt: skip

    def _authenticate(self, environ: WSGIEnvironment, args: list[tuple[str, str]]) -> Identity:
        name = query_credential(args)
        if name is not None:
            raise errors.unauthenticated(
                f"credentials in the URL (query parameter {name!r}) are refused because URLs "
                "are logged: send the key in a header, 'Authorization: Token <key>' or as the "
                "password of Basic auth; if it was a real key, rotate it"
            )
        try:
            return self.context.service.authenticate(
                header_credential(environ.get("HTTP_AUTHORIZATION"))
            )
        except DBAPIError as exc:
            raise self._database_unavailable(exc) from None

    _database_warned = -DATABASE_WARNING_SECONDS

    def _database_unavailable(self, exc: DBAPIError) -> errors.IngestError:
        """The admin database (down, or not migrated yet) cannot check the key: 503, which
        collectors retry, as for storage; a 500 would call it a bug of ours."""
        problem = f"{type(exc.orig).__name__}: {str(exc.orig).splitlines()[0]}"
        now = time.monotonic()
        if now - self._database_warned >= DATABASE_WARNING_SECONDS:
            self._database_warned = now
            log.warning("the admin database cannot check collector keys (%s); answering 503 "
                        "until it can; /health says why", problem)  # fmt: skip
        return errors.unavailable(
            "the admin database, which holds the collector keys, cannot be read "
            f"({type(exc.orig).__name__}); retry later (an operator: see /health)",
            DATABASE_RETRY_SECONDS,
        )

    def _form(self, environ: WSGIEnvironment) -> list[tuple[str, str]]:
        """The fields of a form body (how InfluxDB clients POST ``q``); none without a body."""
        if environ["REQUEST_METHOD"] != "POST":
            return []
        limit = self.context.settings["limits_max_body_bytes"]
        try:
            length = content_length(environ)
            raw = read_limited(body_stream(environ, length), length, limit)
        except BodyTooLarge:
            raise errors.too_large(f"the /query form is larger than {limit} bytes") from None
        except BadBody as exc:
            raise errors.bad_request(str(exc)) from None
        except TimeoutError as exc:
            raise _body_timed_out(exc) from None
        if not raw:
            return []
        media_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if media_type != FORM_TYPE:
            raise errors.unsupported_media(
                f"a /query body must be {FORM_TYPE} (q=...), not {media_type or 'untyped'}"
            )
        try:
            return parse_qsl(raw.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise errors.bad_request("the /query form is not UTF-8") from None


def url_arguments(environ: WSGIEnvironment) -> list[tuple[str, str]]:
    """The URL's query parameters, every occurrence, in order."""
    return parse_qsl(
        environ.get("QUERY_STRING", "").encode("latin-1").decode("utf-8", "replace"),
        keep_blank_values=True,
    )


def content_length(environ: WSGIEnvironment) -> int | None:
    """The declared body length; None when the body is chunked or its length is not given."""
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return None
    declared = environ.get("CONTENT_LENGTH", "")
    if not declared:
        return None
    if not declared.isdigit() or not declared.isascii():
        raise BadBody(f"Content-Length {declared!r} is not a byte count")
    return int(declared)


def body_stream(environ: WSGIEnvironment, length: int | None) -> Any:
    """The server's own input stream. Without a declared length it holds the body only where
    the server says its stream ends with the body (``wsgi.input_terminated``, as gunicorn and
    werkzeug's server set for chunked bodies); elsewhere nothing can be read safely."""
    if length is None and not environ.get("wsgi.input_terminated"):
        return BytesIO()
    return environ["wsgi.input"]


def _body_timed_out(exc: TimeoutError) -> errors.IngestError:
    """The server gave up waiting for the rest of the body (``web.request-timeout``,
    perfanalysis.gthread_worker): 503 with Retry-After, not 408. Nothing is wrong with the
    batch, and InfluxDB clients drop one answered 408 for good (influxdb-client retries only
    429 and above, Telegraf drops a 4xx it does not name); all of them retry a 503."""
    return errors.unavailable(
        f"the request body arrived too slowly ({exc}) and nothing was stored: send it again "
        "(in smaller batches if this recurs)",
        BODY_RETRY_SECONDS,
    )
