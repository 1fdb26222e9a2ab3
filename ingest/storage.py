"""Storage writers: InfluxDB's v1 ``/write`` (ingest/http1.py) and v2 ``/api/v2/write``.

Both send a payload ingest has already validated and made canonical, with nanosecond
timestamps, and translate what storage answered into these errors (architecture decision 5):

* StorageUnavailable: down, too slow, or 5xx/429. The client gets 503 with Retry-After and
  retries; nothing is retried here, so a request never outlives its timeout.
  StorageUnreachable, a kind of it, is no answer at all (connection refused or reset, no answer
  within the timeout, StorageTimedOut): group commit (ingest/groupcommit.py) then fails the
  writes queued behind it at once, and for a while answers new ones without asking storage but
  for one probe.
* StorageRefused, a kind of StorageUnavailable: storage refused ingest itself (401, 403, or a
  database not found): its credentials or grants are wrong, or the tenant's database is
  missing. 503 as well, so clients keep their points until an operator fixes it; logged as an
  error, and /health says ``refused`` when the credentials are the cause.
* StorageConflict: storage refused some points and wrote the others: InfluxDB 1.x's ``partial
  write`` (400), InfluxDB 2.x's 422. Mostly for what points say about its schema (a field whose
  type differs from the one stored, a point beyond retention), which ingest cannot know
  beforehand. Answered 422, as InfluxDB 2.x does, so clients drop the batch instead of replaying
  it forever. StoragePartialRefusal, a kind of it, is a partial write for any other reason (a
  line InfluxDB could not parse, a key over its length limit): ingest should have refused that
  line itself, so it is logged as an error, but the other points were written and resending them
  would write them again: 422 too.
* StorageWholeConflict: InfluxDB 1.x's ``field type conflict`` without ``partial write``: it
  refused the whole write (every point of it in a shard that this write creates, measured on
  1.6.7) because the batch gives a field two types, or because another write gave the field its
  type meanwhile. The service then looks for the conflicting lines in the batch (400) or, if
  there are none, has the client retry (503).
* StorageTooLarge: storage refused the write for its size (InfluxDB's ``max-body-size``, 413),
  before reading it, so nothing was written. Answered 413, so clients split the batch; ingest's
  own limits (``limits.max-decompressed-bytes``, ``storage.group-max-bytes``) belong below it.
* StorageRejected: any other 4xx, which means ingest let something through that it should not
  have. Logged, answered 500.

The v1 writer is the one to use with InfluxDB 1.x before 1.8, which does not serve
``/api/v2/write`` (1.6 answers 404). Both send over ingest/http1.py, with ``storage.timeout``
(or what group commit gives a write) bounding each request whole.
"""

from __future__ import annotations

import base64
import json
import re
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol

from ingest import http1
from perfanalysis.namelookup import LookupTimedOut

# InfluxDB 1.x's answer when it refused some points and wrote the others (400): a retry cannot help
PARTIAL_WRITE = "partial write"
# What points may say that storage refuses for its schema; with PARTIAL_WRITE, the rest is written.
CONFLICT_MARKERS = ("field type conflict", "beyond retention")
FIELD_TYPE_CONFLICT = CONFLICT_MARKERS[0]
# The cardinality limits (data.max-values-per-tag, data.max-series-per-database): they hold until
# an operator raises them or drops series.
LIMIT_MARKERS = ("max-values-per-tag limit exceeded", "max-series-per-database limit exceeded")
_DROPPED = re.compile(r"\bdropped=([0-9]{1,18})\b")
SHOW_DATABASES = "/query?" + urllib.parse.urlencode({"q": "SHOW DATABASES"})
# The bucket of the v2 writer's empty health write, which stores nothing: it need not exist.
HEALTH_BUCKET = "perfanalysis-ingest-health"


class StorageError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class StorageUnavailable(StorageError):
    """Storage is down, slow or failing: retry later."""


class StorageUnreachable(StorageUnavailable):
    """Storage gave no answer: it refused or dropped the connection, or did not answer in time."""


class StorageTimedOut(StorageUnreachable):
    """Storage did not answer within the time the write was given."""


class StorageRefused(StorageUnavailable):
    """Storage refused ingest itself: its credentials, its rights on the database, or a database
    that does not exist. An operator must fix it; until then clients keep their points and retry.
    """


class StorageConflict(StorageError):
    """Storage refused some points for their content and wrote the rest: do not retry."""

    @property
    def dropped(self) -> int | None:
        """The points storage says it dropped (InfluxDB 1.x ends its message ``dropped=N``)."""
        said = _DROPPED.findall(self.message)
        return int(said[-1]) if said else None


class StoragePartialRefusal(StorageConflict):
    """Storage refused some points for a reason ingest checks itself (InfluxDB 1.x could not
    parse a line, or found its key too long) and wrote the others: ingest's bug, not retried."""


class StorageWholeConflict(StorageError):
    """Storage refused the whole write for a field type conflict (InfluxDB 1.x, in a shard the
    write creates): the batch gives a field two types, or another write gave it one meanwhile."""


class StorageLimitExceeded(StorageConflict):
    """Storage's series limit refused new series; InfluxDB 1.6.7 also drops the points before a
    refused one in the batch (measured), so the rest may not have been written."""


class StorageTooLarge(StorageError):
    """Storage refused the write as too large (413) and wrote none of it: split and resend."""


class StorageRejected(StorageError):
    """Storage refused the request as malformed: ingest let through what it should not have."""


class StorageWriter(Protocol):
    name: str

    def write(self, database: str, payload: bytes) -> None:
        """Write canonical line protocol (ns timestamps) into ``database``; raise StorageError."""

    def health(self) -> str:
        """``ok``; ``down: …`` when storage does not answer; ``refused: …`` when it answers but
        refuses ingest's credentials, so that every write would fail; ``unsupported: …`` when
        it does not serve the write API this writer speaks."""

    def close(self) -> None: ...


class TimedStorageWriter(StorageWriter, Protocol):
    """A writer to storage itself, whose writes group commit may give less than its timeout."""

    timeout: float

    def write(self, database: str, payload: bytes, timeout: float | None = None) -> None:
        """As StorageWriter's; ``timeout``: the seconds storage may take to answer this write
        instead of the writer's own, StorageTimedOut after them."""


def classify(status: int, message: str) -> StorageError:
    """The error for a non-2xx answer from storage."""
    text = f"storage answered {status}: {message}"
    if status >= 500 or status == 429:
        return StorageUnavailable(text, status)
    if status in (401, 403) or (status == 404 and "database not found" in message):
        return StorageRefused(text, status)
    if status == 413:
        return StorageTooLarge(text, status)
    if any(marker in message for marker in LIMIT_MARKERS):
        return StorageLimitExceeded(text, status)
    if status == 422 or PARTIAL_WRITE in message:
        if status == 422 or any(marker in message for marker in CONFLICT_MARKERS):
            return StorageConflict(text, status)
        return StoragePartialRefusal(text, status)
    if FIELD_TYPE_CONFLICT in message:  # no partial write: refused whole (in the shard)
        return StorageWholeConflict(text, status)
    if any(marker in message for marker in CONFLICT_MARKERS):
        return StorageConflict(text, status)
    return StorageRejected(text, status)


def refusal(status: int, body: bytes | str | None) -> str:
    """``refused: …`` for an answer that classify() calls StorageRefused, else ''."""
    if 200 <= status < 300:
        return ""
    error = classify(status, _error_text(body))
    return f"refused: {error.message}" if isinstance(error, StorageRefused) else ""


def _error_text(body: bytes | str | None) -> str:
    """What storage said in an error answer's body: the ``error`` or ``message`` of InfluxDB's
    JSON, else the text (VictoriaMetrics answers text/plain, a proxy an HTML page, perhaps not in
    UTF-8: its bytes that are not are shown as U+FFFD). Both writers have the body as bytes.
    """
    if not body:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    try:
        parsed = json.loads(text)
    except ValueError:
        return _shortened(text.strip())
    if isinstance(parsed, dict):
        return _shortened(str(parsed.get("error") or parsed.get("message") or parsed))
    return _shortened(str(parsed))


def _shortened(text: str, keep: int = 250) -> str:
    """At most about 2 * ``keep`` characters: the beginning and the end, where InfluxDB says why
    and ``dropped=N`` after a line it quotes whole (``unable to parse '<line>': <why>``)."""
    return text if len(text) <= 2 * keep + 5 else f"{text[:keep]} ... {text[-keep:]}"


class _PooledWriter:
    """Requests to storage over keep-alive connections (ingest/http1.py), one per request in
    flight, each bounded whole by its timeout: connecting, sending and all of the answer. A
    connection is reused only while its server has not closed it (checked before each use); one
    that failed or timed out, perhaps with half an answer unread, is closed, never pooled;
    nothing is ever sent twice.
    """

    def __init__(self, url: str, authorization: str, timeout: float, max_idle: int = 16) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"storage URL {url!r}: expected http:// or https:// and a host")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._path = parts.path.rstrip("/")
        host = f"[{self._host}]" if ":" in self._host else self._host
        headers = [f"Host: {host}" if parts.port is None else f"Host: {host}:{parts.port}"]
        headers.append("Content-Type: text/plain; charset=utf-8")
        if http1.splits_a_header(authorization):
            # a line break would end the header early: storage would read an empty write, 204
            raise ValueError("storage credentials: a control character would split the header")
        if authorization:
            headers.append(f"Authorization: {authorization}")
        self._headers = "".join(f"{header}\r\n" for header in headers)
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._idle: list[http1.Connection] = []
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._write_lines: dict[str, str] = {}  # by database: the write's request line

    def _post(self, line: str, payload: bytes, timeout: float | None) -> tuple[int, bytes]:
        """POST ``payload`` with request line ``line``: storage's status and answer's body."""
        head = f"{line}{self._headers}Content-Length: {len(payload)}\r\n\r\n".encode()
        return self._exchange(head, payload, timeout)

    def _get(self, target: str) -> bytes:
        return f"GET {self._path}{target} HTTP/1.1\r\n{self._headers}\r\n".encode()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _exchange(
        self, head: bytes, body: bytes | None, timeout: float | None = None
    ) -> tuple[int, bytes]:
        """One request and its answer: status and body; StorageUnavailable if there is none."""
        wait = self.timeout if timeout is None else timeout
        connection = self._connection(wait)
        try:
            answer = connection.exchange(head, body)
        except LookupTimedOut as exc:
            raise StorageTimedOut(
                f"storage: looking {self._host} up took over {round(wait, 3):g}s"
            ) from exc
        except TimeoutError as exc:
            raise StorageTimedOut(f"storage did not answer within {round(wait, 3):g}s") from exc
        except socket.gaierror as exc:
            raise StorageUnreachable(
                f"storage unreachable: looking {self._host} up: {exc}"
            ) from exc
        except (OSError, http1.BadAnswer) as exc:
            raise StorageUnreachable(f"storage unreachable: {type(exc).__name__}: {exc}") from exc
        if answer.reusable:
            self._release(connection)
        return answer.status, answer.body

    def _connection(self, timeout: float) -> http1.Connection:
        """An idle connection the server has not closed, or a new one (connected on first use)."""
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                break
            if _still_open(connection):
                connection.set_timeout(timeout)
                return connection
            connection.close()
        return http1.Connection(self._host, self._port, timeout, self._tls)

    def _release(self, connection: http1.Connection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()


class V1Writer(_PooledWriter):
    """``POST /write?db=…&precision=ns``.

    ingest/http1.py, not requests or http.client: a write is one request with a large body and
    an empty answer, and their per-call machinery cost more CPU than the system calls.
    """

    name = "v1"

    def __init__(
        self, url: str, username: str, password: str, timeout: float, max_idle: int = 16
    ) -> None:
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        super().__init__(url, f"Basic {basic}" if username else "", timeout, max_idle)

    def write(self, database: str, payload: bytes, timeout: float | None = None) -> None:
        line = self._write_lines.get(database)
        if line is None:
            query = urllib.parse.urlencode({"db": database, "precision": "ns"})
            line = self._write_lines[database] = f"POST {self._path}/write?{query} HTTP/1.1\r\n"
        status, body = self._post(line, payload, timeout)
        if not 200 <= status < 300:
            raise classify(status, _error_text(body))

    def health(self) -> str:
        """/ping, then an authenticated ``SHOW DATABASES``: InfluxDB's /ping answers whoever
        asks, so a wrong or expired password would otherwise look healthy. Storage without
        InfluxQL (VictoriaMetrics) answers the query with another error, which is not a refusal.
        """
        wait = min(self.timeout, 2.0)
        try:
            status, _ = self._exchange(self._get("/ping"), None, wait)
            if status not in (200, 204):
                return f"down: /ping answered {status}"
            status, body = self._exchange(self._get(SHOW_DATABASES), None, wait)
        except StorageUnavailable as exc:
            return f"down: {exc.message}"
        return refusal(status, body) or "ok"


def _still_open(connection: http1.Connection) -> bool:
    """Whether an idle connection can be reused: an idle socket that is readable was closed
    by the server (or holds garbage), and a request sent on it would fail half-way."""
    sock = connection.sock
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)


class V2Writer(_PooledWriter):
    """``POST /api/v2/write?org=…&bucket=…&precision=ns``, bucket = the tenant's database, with
    ``Authorization: Token …`` (``user:password`` for InfluxDB 1.8), as influxdb-client sends it.

    Over ingest/http1.py as the v1 writer, not influxdb-client: urllib3 under it bounds the
    connect and then each socket read alone, so a storage sending its answer a byte every 0.2 s
    held a write with a 1 s timeout for as long as it kept sending (2026-11-25), past group
    commit's deadlines and the clients' own timeouts, and /health's ping as long. Storage's
    answer is classified by its status whatever its body's encoding (influxdb-client decoded
    every body as strict UTF-8 first: a proxy's Latin-1 502 page raised UnicodeDecodeError).
    """

    name = "v2"

    def __init__(self, url: str, token: str, org: str, timeout: float, max_idle: int = 16) -> None:
        super().__init__(url, f"Token {token}" if token else "", timeout, max_idle)
        self.org = org

    def write(self, database: str, payload: bytes, timeout: float | None = None) -> None:
        status, body = self._post(self._write_line(database), payload, timeout)
        if not 200 <= status < 300:
            raise classify(status, _error_text(body))

    def _write_line(self, bucket: str) -> str:
        line = self._write_lines.get(bucket)
        if line is None:
            query = urllib.parse.urlencode({"org": self.org, "bucket": bucket, "precision": "ns"})
            line = f"POST {self._path}/api/v2/write?{query} HTTP/1.1\r\n"
            self._write_lines[bucket] = line
        return line

    def health(self) -> str:
        """/ping, then an empty write with the token, which stores nothing: InfluxDB 2 refuses a
        bad token with 401, and storage without ``/api/v2/write`` says so. InfluxDB 1.6.7 answers
        it 404 ``404 page not found`` (its /ping answers, and every write would fail);
        VictoriaMetrics 204 (both measured); InfluxDB 2 and 1.8 a JSON error for the bucket,
        which need not exist: the API does. Each has min(timeout, 2 s), whole."""
        wait = min(self.timeout, 2.0)
        try:
            status, _ = self._exchange(self._get("/ping"), None, wait)
            if status not in (200, 204):
                return f"down: /ping answered {status}"
            status, body = self._post(self._write_line(HEALTH_BUCKET), b"", wait)
        except StorageUnavailable as exc:
            return f"down: {exc.message}"
        return _write_probe_finding(status, body) if not 200 <= status < 300 else "ok"


def _write_probe_finding(status: int, body: bytes | str | None) -> str:
    """/health's finding from storage's answer to an empty v2 write other than 2xx."""
    message = _error_text(body)
    said = f"storage answered {status} to an empty write: {message}"
    if status in (401, 403):
        return f"refused: {said}"
    if status >= 500 or status == 429:
        return f"down: {said}"
    if (status == 404 and not _is_json_object(body)) or "unsupported path" in message:
        # Go's "404 page not found" (InfluxDB before 1.8); VictoriaMetrics' unsupported path
        return (f"unsupported: {said}; this storage has no /api/v2/write (InfluxDB 1.x before "
                "1.8 serves only /write): set storage.api to v1")  # fmt: skip
    if "organization" in message:  # InfluxDB 2 does not know storage.org: every write fails
        return f"refused: {said}; check storage.org"
    return "ok"  # a JSON refusal of the probe's bucket or empty body: the write API is there


def _is_json_object(body: bytes | str | None) -> bool:
    try:
        return isinstance(json.loads(body or b""), dict)
    except ValueError:
        return False


def make_writer(settings: Mapping[str, Any]) -> TimedStorageWriter:
    timeout = float(settings["storage_timeout"])
    if settings["storage_api"] == "v2":
        token = settings["storage_token"] or (
            f"{settings['storage_username']}:{settings['storage_password']}"
            if settings["storage_username"]
            else ""
        )
        return V2Writer(settings["storage_url"], token, settings["storage_org"], timeout)
    return V1Writer(
        settings["storage_url"],
        settings["storage_username"],
        settings["storage_password"],
        timeout,
    )
