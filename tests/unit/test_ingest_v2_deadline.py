"""The v2 writer's timeout bounds the whole request: connecting, sending and all of the answer.

Before (2026-11-25), the v2 writer went through influxdb-client and urllib3, whose timeout
bounds the connect and then each socket read on its own: a storage sending its answer a byte
every 0.2 s held a write with a 1 s ``storage.timeout`` for as long as it kept sending, and
/health's ping as long. Group commit and the write service rely on a write answering within its
timeout (503 with Retry-After). Storage here is a loopback server that paces its answers.
"""

from __future__ import annotations

import itertools
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from ingest.app import batch_rules
from ingest.batch import BatchPreparer
from ingest.errors import IngestError
from ingest.metrics import IngestMetrics
from ingest.ratelimit import Limit
from ingest.service import WriteService
from ingest.settings import load
from ingest.storage import StorageTimedOut, V2Writer
from tenants.keys import Identity
from tests.support.tls import self_signed_certificate

TIMEOUT = 1.0  # the writer's storage.timeout
INTERVAL = 0.2  # between the pieces of a paced answer
SLACK = 0.5  # a shared two-core machine may be slow to wake a thread
GIVE_UP = 6.0  # the server stops answering and closes: a writer without a deadline fails late
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"

Answer = Callable[[], Iterable[bytes]]


def one_byte_at_a_time(data: bytes) -> Iterator[bytes]:
    return (data[index : index + 1] for index in range(len(data)))


PACED_ANSWERS: dict[str, Answer] = {
    "head-a-byte-at-a-time": lambda: one_byte_at_a_time(
        b"HTTP/1.1 204 No Content\r\nX-Pad: " + b"a" * 10_000
    ),
    "body-a-byte-at-a-time": lambda: itertools.chain(
        [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 10000\r\n\r\n"], itertools.repeat(b"x")
    ),
    "chunked-body-a-byte-at-a-time": lambda: itertools.chain(
        [b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"],
        itertools.repeat(b"1\r\nx\r\n"),
    ),
    "interim-answers-one-after-another": lambda: itertools.repeat(b"HTTP/1.1 100 Continue\r\n\r\n"),
    "the-status-line-then-nothing": lambda: itertools.chain(
        [b"HTTP/1.1 204 No Content\r\n"], itertools.repeat(b"")
    ),
    "nothing-at-all": lambda: itertools.repeat(b""),
}


def no_content() -> Iterable[bytes]:
    """204 at once (after the first INTERVAL, as every answer)."""
    return [NO_CONTENT]


class PacedStorage:
    """Answers the n-th request with ``answers[n]``'s pieces, each sent ``INTERVAL`` after the
    one before (an empty piece: nothing that time), on as many connections as the writer opens,
    one at a time. It drops a connection the writer closed, and closes every connection once
    closed itself or ``GIVE_UP`` seconds after it started, so that a writer that waits for an
    endless answer fails late instead of hanging the test run. ``requests`` holds each request
    as received and ``connections`` counts them."""

    def __init__(self, answers: list[Answer], tls: ssl.SSLContext | None = None) -> None:
        self.answers = answers
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.stopped = threading.Event()
        self.give_up_at = time.monotonic() + GIVE_UP
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers and not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
                if self.tls is not None:
                    connection = self.tls.wrap_socket(connection, server_side=True)
            except OSError:  # closed by close(), or a handshake the client gave up
                continue
            self.connections += 1
            with connection:
                while self.answers:
                    request = _read_request(connection)
                    if request is None:
                        break
                    self.requests.append(request)
                    if not self._send(connection, self.answers.pop(0)()):
                        break

    def _send(self, connection: socket.socket, pieces: Iterable[bytes]) -> bool:
        """Whether the whole answer went out and the connection may carry another."""
        for piece in pieces:
            readable, _, _ = select.select([connection], [], [], INTERVAL)
            if readable or self.stopped.is_set() or time.monotonic() > self.give_up_at:
                return False  # the writer closed the connection (or sent what it should not)
            try:
                connection.sendall(piece)
            except OSError:
                return False
        return True

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(timeout=GIVE_UP + 5)


def _read_request(connection: socket.socket) -> bytes | None:
    """A request's head and its Content-Length's body; None if the connection closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(1 << 16)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    fields = head.lower().split(b"content-length:")
    length = int(fields[1].split(b"\r\n")[0]) if len(fields) > 1 else 0
    while len(body) < length:
        chunk = connection.recv(1 << 16)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path)


@pytest.mark.parametrize("what", PACED_ANSWERS)
def test_a_write_storage_answers_slowly_times_out_within_storage_timeout(what: str) -> None:
    """Every piece comes well within the timeout, but the answer as a whole does not."""
    storage = PacedStorage([PACED_ANSWERS[what]])
    writer = V2Writer(storage.url, "t", "o", timeout=TIMEOUT)
    started = time.monotonic()
    try:
        with pytest.raises(StorageTimedOut, match=r"^storage did not answer within 1s$"):
            writer.write("db", b"m v=1 1")
        took = time.monotonic() - started
    finally:
        writer.close()
        storage.close()
    assert TIMEOUT - 0.01 <= took < TIMEOUT + SLACK, what


def test_a_write_given_less_than_storage_timeout_times_out_within_it() -> None:
    """Group commit gives a write that waited for a lane only what is left of its timeout."""
    storage = PacedStorage([PACED_ANSWERS["head-a-byte-at-a-time"]])
    writer = V2Writer(storage.url, "t", "o", timeout=5)
    started = time.monotonic()
    try:
        with pytest.raises(StorageTimedOut, match=r"within 0\.5s"):
            writer.write("db", b"m v=1 1", timeout=0.5)
        took = time.monotonic() - started
    finally:
        writer.close()
        storage.close()
    assert 0.49 <= took < 0.5 + SLACK


def test_a_write_over_tls_storage_answers_slowly_times_out_within_storage_timeout(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the default context trusts it
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    storage = PacedStorage([PACED_ANSWERS["head-a-byte-at-a-time"], no_content], tls=server_side)
    writer = V2Writer(storage.url, "t", "o", timeout=TIMEOUT)
    started = time.monotonic()
    try:
        with pytest.raises(StorageTimedOut):
            writer.write("db", b"m v=1 1")
        took = time.monotonic() - started
        writer.write("db", b"m v=2 2")  # the certificate was taken
    finally:
        writer.close()
        storage.close()
    assert TIMEOUT - 0.01 <= took < TIMEOUT + SLACK


def test_a_storage_that_does_not_take_the_connection_times_out_within_storage_timeout() -> None:
    """A listener whose backlog is full: the kernel drops the SYN, and the connect waits."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    queued = [socket.create_connection(("127.0.0.1", port), timeout=1)]
    probe = socket.socket()
    probe.settimeout(0.2)
    try:
        probe.connect(("127.0.0.1", port))
    except TimeoutError:
        pass
    else:
        pytest.skip("this kernel takes connections past a full backlog")
    finally:
        queued.append(probe)
    writer = V2Writer(f"http://127.0.0.1:{port}", "t", "o", timeout=TIMEOUT)
    started = time.monotonic()
    try:
        with pytest.raises(StorageTimedOut, match="within 1s"):
            writer.write("db", b"m v=1 1")
        took = time.monotonic() - started
    finally:
        writer.close()
        for sock in queued:
            sock.close()
        listener.close()
    assert TIMEOUT - 0.01 <= took < TIMEOUT + SLACK


def test_the_write_after_a_timed_out_one_does_not_reuse_its_connection() -> None:
    """The timed-out answer was read in part: its connection is closed, never pooled, so the
    next write neither reads the rest of it as its own answer nor waits for it."""
    storage = PacedStorage([PACED_ANSWERS["body-a-byte-at-a-time"], no_content])
    writer = V2Writer(storage.url, "t", "o", timeout=TIMEOUT)
    try:
        with pytest.raises(StorageTimedOut):
            writer.write("db", b"m v=1 1")
        started = time.monotonic()
        writer.write("db", b"m v=2 2")
        took = time.monotonic() - started
    finally:
        writer.close()
        storage.close()
    assert took < INTERVAL + SLACK
    assert storage.connections == 2
    assert storage.requests[1].startswith(
        b"POST /api/v2/write?org=o&bucket=db&precision=ns HTTP/1.1\r\n"
    )
    assert storage.requests[1].endswith(b"\r\n\r\nm v=2 2")


def test_writes_answered_promptly_share_one_connection() -> None:
    storage = PacedStorage([no_content, no_content, no_content])
    writer = V2Writer(storage.url, "a-token", "o", timeout=TIMEOUT)
    try:
        for number in range(3):
            writer.write("db", b"m v=%d %d" % (number, number))
    finally:
        writer.close()
        storage.close()
    assert storage.connections == 1
    assert [request.rsplit(b"\r\n\r\n", 1)[1] for request in storage.requests] == [
        b"m v=0 0",
        b"m v=1 1",
        b"m v=2 2",
    ]
    head = storage.requests[0].split(b"\r\n\r\n")[0]
    assert b"\r\nAuthorization: Token a-token\r\n" in head


@pytest.mark.parametrize(
    "answers",
    [
        [PACED_ANSWERS["head-a-byte-at-a-time"]],  # to /ping
        [no_content, PACED_ANSWERS["head-a-byte-at-a-time"]],  # to the empty write after it
        [no_content, PACED_ANSWERS["the-status-line-then-nothing"]],
    ],
    ids=["ping", "empty-write", "empty-write-stalled"],
)
def test_health_is_down_within_its_wait_when_storage_answers_slowly(
    answers: list[Answer],
) -> None:
    """/health's probes have min(storage.timeout, 2 s) each, whole."""
    storage = PacedStorage(answers)
    writer = V2Writer(storage.url, "t", "o", timeout=TIMEOUT)
    started = time.monotonic()
    try:
        health = writer.health()
        took = time.monotonic() - started
    finally:
        writer.close()
        storage.close()
    assert health == "down: storage did not answer within 1s"
    assert took < len(answers) * INTERVAL + TIMEOUT + SLACK


def test_health_says_what_a_failing_ping_answered() -> None:
    failing = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    storage = PacedStorage([lambda: [failing]])
    writer = V2Writer(storage.url, "t", "o", timeout=TIMEOUT)
    try:
        health = writer.health()
    finally:
        writer.close()
        storage.close()
    assert health == "down: /ping answered 503"
    assert storage.requests[0].startswith(b"GET /ping HTTP/1.1\r\n")


class _Limiter:
    def __init__(self) -> None:
        self.given_back = 0

    def acquire(self, tenant: str, points: int, limit: Limit) -> float:
        return 0.0

    def release(self, tenant: str, points: int, limit: Limit) -> None:
        self.given_back += points


class _Verifier:
    def record_use(self, identity: Identity, points: int) -> None:
        pass


def test_the_write_service_answers_a_slow_v2_storage_503_with_retry_after() -> None:
    storage = PacedStorage([PACED_ANSWERS["head-a-byte-at-a-time"]])
    writer = V2Writer(storage.url, "t", "o", timeout=TIMEOUT)
    limiter = _Limiter()
    service = WriteService(
        verifier=_Verifier(),  # type: ignore[arg-type]
        preparer=BatchPreparer(
            batch_rules(load([], {"PERFANALYSIS_INGEST_SECRET_KEY": "s" * 40})), 1000
        ),
        limiter=limiter,
        default_limit=Limit(50, 30),
        writer=writer,
        metrics=IngestMetrics(),
        retry_after=7,
    )
    identity = Identity(1, "acme", "pa_acme", 2, "web1", "k" * 13, 3, None, None)
    now = time.time_ns()
    lines = b"\n".join(b"cpu value=%d %d" % (i, now - i) for i in range(20))
    started = time.monotonic()
    try:
        with pytest.raises(IngestError) as refused:
            service.write(identity, "ns", lines, now)
        took = time.monotonic() - started
    finally:
        writer.close()
        storage.close()
    assert (refused.value.status, refused.value.retry_after) == (503, 7)
    assert limiter.given_back == 20
    assert took < TIMEOUT + SLACK
